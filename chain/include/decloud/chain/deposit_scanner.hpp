#pragma once

// Deposit scanning as a pure state machine: the caller fetches what Next() asks for (block
// headers and the token's Transfer logs of a block range) and hands it to Apply(), which answers
// with what happened. No I/O, no clock.
//
// Rules:
// - Blocks are processed in order; the hashes of the last `2 * confirmations + 2` processed
//   blocks are kept. Each step re-fetches the last processed block, so a block replaced at the
//   same height is noticed too.
// - A header whose hash differs from the one kept for its height, or whose parent hash differs
//   from the kept hash of the block below, is a reorganisation: kept blocks from there up are
//   dropped, and their deposits (never confirmed, see below) are reported as dropped. The scan
//   then walks back one block per step until the parent hashes agree again.
// - A deposit (a Transfer of the token to the deposit address) in block b is confirmed once block
//   b + confirmations - 1 has been processed on top of it (confirmations = 1: at once). It is
//   reported exactly once per (transaction hash, log index); after that nothing moves it: a
//   reorganisation that would reach a block holding confirmed deposits is refused with
//   kConflict and the state is left untouched (that needs an operator, not an automatism).

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "decloud/chain/chain_client.hpp"
#include "decloud/chain/types.hpp"
#include "decloud/common/result.hpp"

namespace decloud::chain {

struct DepositScannerConfig {
    Address token{};
    Address deposit_address{};
    std::uint64_t confirmations = 12;  // >= 1
    std::uint64_t start_block = 0;     // the first block to scan
    std::uint64_t max_range = 500;     // blocks per step, >= 1
};

struct Deposit {
    Hash transaction_hash{};
    std::uint64_t log_index = 0;
    std::uint64_t block_number = 0;
    Hash block_hash{};
    Address from{};  // the sending wallet: the user to credit
    U256 amount;
    friend bool operator==(const Deposit&, const Deposit&) = default;
};

// Fetch headers and logs of blocks [from, to].
struct ScanStep {
    std::uint64_t from = 0;
    std::uint64_t to = 0;
    friend bool operator==(const ScanStep&, const ScanStep&) = default;
};

struct ScanEvents {
    std::vector<Deposit> seen;       // new, not yet confirmed
    std::vector<Deposit> dropped;    // seen earlier, their block left the canonical chain
    std::vector<Deposit> confirmed;  // final: credit these (once each)
    bool reorg = false;              // a reorganisation was detected in this step
};

class DepositScanner {
  public:
    // What a restart needs to resume exactly where the last run stopped.
    struct State {
        std::uint64_t next_block = 0;    // first block not processed yet
        std::deque<BlockHeader> recent;  // processed blocks kept for reorg checks, ascending
        std::vector<Deposit> pending;    // seen, not confirmed
        // (transaction hash, log index) -> block, of confirmed deposits in the kept window.
        std::map<std::pair<Hash, std::uint64_t>, std::uint64_t> confirmed_keys;
        // Blocks up to here are final (processed tip - confirmations + 1, never lowered).
        std::optional<std::uint64_t> final_block;
        friend bool operator==(const State&, const State&) = default;
    };

    // kInvalidArgument for confirmations or max_range of 0.
    static common::Result<DepositScanner> Create(DepositScannerConfig config);
    static common::Result<DepositScanner> Restore(DepositScannerConfig config, State state);

    // The next range to fetch given the chain head; empty when there is nothing to do.
    std::optional<ScanStep> Next(std::uint64_t head) const;
    // Headers must be exactly the step's blocks in ascending order; logs are those of the token's
    // Transfer events in the step's range. kUnavailable (retry: the chain moved between the two
    // fetches) if a log names a block hash other than the header's, and kConflict for a reorg
    // deeper than the confirmations; the state is unchanged on any error.
    common::Result<ScanEvents> Apply(const ScanStep& step, const std::vector<BlockHeader>& headers,
                                     const std::vector<LogEntry>& logs);

    const State& state() const { return state_; }
    const DepositScannerConfig& config() const { return config_; }
    // The highest processed block, if any.
    std::optional<std::uint64_t> tip() const;

  private:
    DepositScanner(DepositScannerConfig config, State state)
        : config_(config), state_(std::move(state)) {}
    // Drops kept blocks >= number; kConflict if one of them holds confirmed deposits.
    common::Status DropFrom(std::uint64_t number, State& state, ScanEvents& events) const;

    DepositScannerConfig config_;
    State state_;
};

}  // namespace decloud::chain
