#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "decloud/chain/deposit_scanner.hpp"
#include "decloud/common/clock.hpp"
#include "decloud/common/result.hpp"
#include "orchestrator/domain/money.hpp"

namespace decloud::orchestrator::ports {

// What the deposit scanner watches; its state is kept per watch.
struct DepositWatch {
    std::uint64_t chain_id = 0;
    std::string token;            // lowercase 0x address
    std::string deposit_address;  // lowercase 0x address
};

struct PendingDeposit {
    std::string tx_hash;
    std::uint64_t log_index = 0;
    std::uint64_t block_number = 0;
    std::string wallet;  // lowercase
    chain::U256 amount;
};

// A payout reserved in the ledger and neither settled nor cancelled yet.
struct OpenPayout {
    std::string payout_id;
    std::string wallet;  // lowercase
    domain::Amount amount;
};

struct OperatorEarnings {
    std::string wallet;       // lowercase
    domain::Amount earnings;  // node + relay earnings
};

// A payout as its operator sees it: the ledger's state and the chain's.
struct PayoutView {
    std::string payout_id;
    domain::Amount amount;
    std::string state;         // in_flight, settled, cancelled (the ledger)
    std::string chain_status;  // pending, confirmed, failed; empty before it was signed
    std::string tx_hash;       // empty before it was signed
    common::TimePoint reserved_at{};
};

// An operator's money, read in one snapshot (a payout moving between them is never counted twice).
struct OperatorTotals {
    domain::Amount node_earnings;
    domain::Amount relay_earnings;
    domain::Amount in_flight;
    domain::Amount paid;  // settled payouts
};

enum class ChainLock { kDeposits, kPayouts };

// Chain-side state of billing (migration 0009). Blocking, thread-safe.
class ChainRepository {
  public:
    virtual ~ChainRepository() = default;

    // Runs `body` holding the cluster-wide advisory lock of `lock`; false without running it
    // when another replica holds it.
    virtual common::Result<bool> WithLock(ChainLock lock, const std::function<void()>& body) = 0;

    virtual common::Result<std::optional<chain::DepositScanner::State>> LoadScannerState(
        const DepositWatch& watch) = 0;
    // Stores the state and replaces the watch's pending deposits with state.pending, atomically.
    virtual common::Status SaveScannerState(const DepositWatch& watch,
                                            const chain::DepositScanner::State& state) = 0;
    virtual common::Result<std::vector<PendingDeposit>> PendingDeposits(
        const std::string& wallet) = 0;

    // Operators whose node + relay earnings are at least `minimum` (and above zero).
    virtual common::Result<std::vector<OperatorEarnings>> OperatorsWithEarnings(
        domain::Amount minimum) = 0;
    // Reserved payouts without a settle or cancel, oldest first.
    virtual common::Result<std::vector<OpenPayout>> OpenPayouts() = 0;
    virtual common::Result<OperatorTotals> TotalsOf(const std::string& wallet) = 0;
    // The wallet's payouts, newest first.
    virtual common::Result<std::vector<PayoutView>> PayoutsOf(const std::string& wallet,
                                                              std::size_t limit) = 0;
    virtual common::Result<std::optional<common::TimePoint>> LastPayoutBatch() = 0;
    virtual common::Status SetLastPayoutBatch(common::TimePoint at) = 0;
    // One more tick on which the chain refused `payout_id` (with `error`); returns the count so
    // far. Durable and shared by replicas, so a restart does not start the count again.
    virtual common::Result<int> CountPayoutRefusal(const std::string& payout_id,
                                                   const std::string& error) = 0;
    virtual common::Status ForgetPayoutRefusals(const std::string& payout_id) = 0;
};

}  // namespace decloud::orchestrator::ports
