#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "decloud/common/clock.hpp"
#include "decloud/common/result.hpp"
#include "orchestrator/app/vm_service.hpp"
#include "orchestrator/domain/ledger.hpp"
#include "orchestrator/ports/funds_check.hpp"
#include "orchestrator/ports/ledger_repository.hpp"

namespace decloud::orchestrator::app {

// Where users send USDC (shown by GET /api/billing/deposit-info).
struct DepositInfo {
    std::uint64_t chain_id = 137;  // Polygon PoS
    std::string token_address;     // the USDC contract
    std::string deposit_address;   // the platform's deposit address
    std::uint32_t confirmations = 64;
};

struct BillingOptions {
    std::uint32_t platform_fee_bps = 1000;  // 10% of every charge
    std::uint32_t relay_share_bps = 2000;   // 20% of the node's revenue for a CGNAT node's relay
    // A user is warned when the balance cannot cover this much running time of their VMs.
    common::Duration low_balance_horizon = std::chrono::hours{1};
    // At most this many hours are metered per run (a long catch-up continues next run).
    std::size_t max_hours_per_run = 24 * 7;
    // VMs that cost something are created and started only for users with a balance above zero
    // (the orchestrator wires this check into the VM use cases).
    bool require_balance_to_start = true;
    DepositInfo deposit;
};

// The result of a ledger use case: the transaction and whether it was a replay.
struct LedgerOutcome {
    std::int64_t transaction_id = 0;
    domain::LedgerTransaction transaction;
    bool replayed = false;
};

struct MeteringReport {
    bool ran = false;  // false: another replica holds the metering lock
    common::TimePoint from{};
    common::TimePoint to{};             // metered up to here now
    std::size_t charges = 0;            // charges written by this run
    std::size_t already_billed = 0;     // (vm, hour) slices a previous run had written
    std::int64_t billed_micros = 0;     // sum of the charges written by this run
    std::int64_t uncovered_micros = 0;  // running time users' balances could not pay for
};

struct LowBalanceReport {
    std::vector<std::string> warned;   // wallets that got a low_balance event now
    std::vector<std::string> stopped;  // VMs stopped because their owner's balance is zero
};

struct BalanceView {
    domain::Amount balance;
    domain::Amount running_hourly;  // what the user's running VMs cost per hour
    bool low = false;               // the balance does not cover low_balance_horizon of that
    domain::Amount node_earnings;
    domain::Amount relay_earnings;
    domain::Amount payouts_in_flight;
    std::vector<ports::AccountEvent> events;  // newest first
};

struct TransactionPage {
    std::vector<ports::PostedTransaction> transactions;  // newest first
    std::string next_cursor;                             // empty: no more
};

// The billing use cases over the ledger. Blocking, thread-safe; run it off the I/O threads.
// Every ledger movement is one database transaction with an idempotency key: calling a use case
// again with the same key returns the first result and moves nothing.
class BillingService final : public ports::FundsCheck {
  public:
    // `vms` stops VMs of users whose balance reached zero (through its owner stop use case).
    BillingService(ports::LedgerRepository& ledger, VmService& vms, const common::Clock& clock,
                   BillingOptions options);

    // ports::FundsCheck: kPaymentRequired at a zero balance, saying how to deposit.
    common::Status MayStart(const std::string& owner,
                            std::uint64_t hourly_rate_micro_usdc) override;

    // Deposit watcher: credits `amount` to the wallet's balance, once per (chain id, transaction
    // hash, log index). kConflict if that key was credited with another wallet or amount.
    common::Result<LedgerOutcome> CreditDeposit(const std::string& wallet, domain::Amount amount,
                                                std::uint64_t chain_id, const std::string& tx_hash,
                                                std::uint64_t log_index);
    // Payouts: moves `amount` of the operator's earnings (node earnings first, then relay
    // earnings) into payouts in flight. kUnprocessable if the earnings do not cover it; kConflict
    // if the payout id was reserved with another wallet or amount.
    common::Result<LedgerOutcome> ReservePayout(const std::string& operator_wallet,
                                                domain::Amount amount,
                                                const std::string& payout_id);
    // The payout was confirmed on chain: in flight -> treasury out. kNotFound without a reserve,
    // kConflict if the payout was cancelled.
    common::Result<LedgerOutcome> SettlePayout(const std::string& payout_id);
    // The payout is known dead: in flight -> back to the earnings it came from. kConflict if it
    // was settled.
    common::Result<LedgerOutcome> CancelPayout(const std::string& payout_id);

    // Bills every whole hour since the last run (under the cluster-wide metering lock): for each
    // VM and hour, its running seconds at its hourly rate, split between node operator, relay
    // operator and platform, keyed (vm, hour). A charge is capped at the user's balance.
    common::Result<MeteringReport> RunMetering();
    // Warns users whose balance cannot cover the next horizon of their running VMs, and stops the
    // running VMs of users whose balance is zero.
    common::Result<LowBalanceReport> CheckBalances();
    // Both, as the metering job runs them.
    common::Status Tick();

    common::Result<BalanceView> Balance(const std::string& wallet);
    // `cursor`: a next_cursor from the previous page, or empty.
    common::Result<TransactionPage> Transactions(const std::string& wallet, std::size_t limit,
                                                 const std::string& cursor);
    common::Result<ports::InvariantReport> Invariants();

    const BillingOptions& options() const { return options_; }

  private:
    common::Result<LedgerOutcome> PostOnce(domain::LedgerTransaction tx);
    common::Status ChargeSlice(const ports::MeterableVm& vm, const domain::MeterSlice& slice,
                               MeteringReport& report);

    ports::LedgerRepository& ledger_;
    VmService& vms_;
    const common::Clock& clock_;
    BillingOptions options_;
};

}  // namespace decloud::orchestrator::app
