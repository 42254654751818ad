#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "decloud/chain/payout_sender.hpp"
#include "decloud/common/clock.hpp"
#include "decloud/common/result.hpp"
#include "orchestrator/app/billing_service.hpp"
#include "orchestrator/app/chain_session.hpp"
#include "orchestrator/ports/chain_repository.hpp"

namespace decloud::orchestrator::app {

struct PayoutOptions {
    chain::PayoutSenderConfig sender;  // chain id, token, confirmations, gas and fee caps
    common::Duration interval = std::chrono::hours{24 * 7};  // between batches
    domain::Amount minimum = domain::Amount::Micros(10 * domain::kMicrosPerUnit);
};

struct PayoutReport {
    bool ran = false;        // false: another replica holds the payout lock
    bool batch_ran = false;  // a batch was due and ran now
    std::size_t reserved = 0;
    std::size_t submitted = 0;
    std::size_t settled = 0;
    std::size_t cancelled = 0;
    std::size_t in_flight = 0;  // open payouts left after this tick
    std::int64_t settled_micros = 0;
    std::size_t errors = 0;  // payouts that hit an error this tick (logged; retried next tick)
};

// Weekly payouts of operators' earnings, one ERC-20 transfer each (PayoutSender, journal in the
// database). Order per payout: ReservePayout in the ledger (earnings -> in flight), sign and
// journal, broadcast, and SettlePayout once the sender reports it confirmed, or CancelPayout
// only when every attempt was mined reverted (nothing moved). Every tick first resumes what an
// earlier run (maybe of another replica, maybe crashed) left open, so a crash at any point pays
// nobody twice and loses no payout. Blocking; one Tick at a time per object.
class PayoutService {
  public:
    PayoutService(ChainSession& session, ports::ChainRepository& repository,
                  chain::PayoutJournal& journal, BillingService& billing,
                  const chain::PrivateKey& treasury, const common::Clock& clock,
                  PayoutOptions options);

    // Under the cluster-wide payout lock: resumes and advances open payouts, then runs the batch
    // if `interval` passed since the last one (the first batch runs at once).
    common::Result<PayoutReport> Tick();

  private:
    common::Status Work(PayoutReport& report);
    // Settles or cancels `open` if its chain outcome is final.
    void Finish(const chain::PayoutSender& sender, const ports::OpenPayout& open,
                PayoutReport& report);
    void Send(chain::PayoutSender& sender, const ports::OpenPayout& open, PayoutReport& report);
    // Gives a reserved payout's earnings back (nothing of it is or will be on the chain).
    void Cancel(const ports::OpenPayout& open, const std::string& why, PayoutReport& report);
    // Drops the count of the chain's refusals of a payout that was sent or cancelled.
    void ForgetRefusals(const std::string& payout_id);

    // A payout the chain refuses to even estimate (the treasury lacks the tokens, or the gas cap
    // is too low) on this many ticks in a row (counted in the database) is cancelled: its earnings
    // go back to the operator and the next batch tries again, instead of it staying in flight for
    // ever.
    static constexpr int kRefusedTicksBeforeCancel = 3;

    ChainSession& session_;
    ports::ChainRepository& repository_;
    chain::PayoutJournal& journal_;
    BillingService& billing_;
    const chain::PrivateKey& treasury_;
    const common::Clock& clock_;
    PayoutOptions options_;
};

struct EarningsView {
    domain::Amount node_earnings;
    domain::Amount relay_earnings;
    domain::Amount in_flight;
    domain::Amount paid;  // settled payouts
};

// What operators and depositors read about the chain side of billing. Blocking, thread-safe.
class ChainAccountService {
  public:
    explicit ChainAccountService(ports::ChainRepository& repository) : repository_(repository) {}

    common::Result<EarningsView> Earnings(const std::string& wallet);
    common::Result<std::vector<ports::PayoutView>> Payouts(const std::string& wallet,
                                                           std::size_t limit);
    common::Result<std::vector<ports::PendingDeposit>> PendingDeposits(const std::string& wallet);

  private:
    ports::ChainRepository& repository_;
};

}  // namespace decloud::orchestrator::app
