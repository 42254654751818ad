#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "decloud/chain/deposit_scanner.hpp"
#include "decloud/common/result.hpp"
#include "orchestrator/app/billing_service.hpp"
#include "orchestrator/app/chain_session.hpp"
#include "orchestrator/ports/chain_repository.hpp"

namespace decloud::orchestrator::app {

struct DepositWatcherOptions {
    std::uint64_t chain_id = 0;  // the node must report this chain id, or nothing is scanned
    chain::Address token{};
    chain::Address deposit_address{};
    std::uint64_t confirmations = 64;  // >= 1
    // First block of a fresh scan; 0: the chain head when the watcher first runs.
    std::uint64_t start_block = 0;
    std::uint64_t max_range = 500;  // blocks per request
    std::size_t max_steps_per_tick = 20;
};

struct DepositWatchReport {
    bool ran = false;  // false: another replica holds the deposit lock
    std::size_t steps = 0;
    std::size_t seen = 0;      // new unconfirmed deposits
    std::size_t dropped = 0;   // unconfirmed deposits whose block left the chain
    std::size_t credited = 0;  // confirmed deposits credited now (replays not counted)
    std::int64_t credited_micros = 0;
    bool reorg = false;       // a reorganisation within the confirmations was handled
    bool deep_reorg = false;  // one deeper than the confirmations: nothing moved, needs a human
    std::optional<std::uint64_t> tip;  // highest processed block
};

// Credits confirmed deposits (ERC-20 Transfers of the token to the deposit address) to the
// sending wallet through BillingService::CreditDeposit. The scanner's state lives in the
// repository and is saved after each step, after the step's credits: a crash re-applies the
// step and the credits replay (idempotent on chain id, transaction hash, log index).
// Blocking; Tick() from one thread at a time per object (replicas exclude each other by lock).
class DepositWatcher {
  public:
    DepositWatcher(ChainSession& session, ports::ChainRepository& repository,
                   BillingService& billing, DepositWatcherOptions options);

    // One round under the cluster-wide deposit lock: scans until caught up (at most
    // max_steps_per_tick steps). Errors of the chain or the database leave the stored state as
    // the last completed step left it; a deep reorganisation is reported, not an error.
    common::Result<DepositWatchReport> Tick();

    ports::DepositWatch watch() const;

  private:
    common::Status Scan(DepositWatchReport& report);
    common::Status Credit(const chain::Deposit& deposit, DepositWatchReport& report);

    ChainSession& session_;
    ports::ChainRepository& repository_;
    BillingService& billing_;
    DepositWatcherOptions options_;
    bool chain_checked_ = false;
};

}  // namespace decloud::orchestrator::app
