#include "orchestrator/app/payout_service.hpp"

#include <spdlog/spdlog.h>

#include <set>

namespace decloud::orchestrator::app {

using common::Error;
using common::Result;
using domain::Amount;

namespace {

std::int64_t EpochSeconds(common::TimePoint t) {
    return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

}  // namespace

PayoutService::PayoutService(ChainSession& session, ports::ChainRepository& repository,
                             chain::PayoutJournal& journal, BillingService& billing,
                             const chain::PrivateKey& treasury, const common::Clock& clock,
                             PayoutOptions options)
    : session_(session),
      repository_(repository),
      journal_(journal),
      billing_(billing),
      treasury_(treasury),
      clock_(clock),
      options_(std::move(options)) {}

Result<PayoutReport> PayoutService::Tick() {
    PayoutReport report;
    common::Status inner = common::Ok();
    auto locked = repository_.WithLock(ports::ChainLock::kPayouts, [&] { inner = Work(report); });
    if (!locked) return locked.error();
    report.ran = *locked;
    if (!inner) return inner.error();
    return report;
}

common::Status PayoutService::Work(PayoutReport& report) {
    auto open = repository_.OpenPayouts();
    if (!open) return open.error();
    // A fresh sender each tick: the journal in the database is the truth, also across replicas.
    // It reads the journal's pending records and those of the payouts still open in the ledger
    // (one confirmed but not yet settled is among them), not every payout ever made.
    chain::PayoutSender sender(session_.chain(), journal_, treasury_, options_.sender);
    std::vector<std::string> open_ids;
    for (const auto& p : *open) open_ids.push_back(p.payout_id);
    if (auto st = sender.Start(open_ids); !st) return st;

    // 1. Resume: reserved payouts the journal does not know were never signed (a crash between
    //    reserve and sign, or a send that failed): sign and send them now.
    for (const auto& p : *open)
        if (sender.Find(p.payout_id) == nullptr) Send(sender, p, report);

    // 2. Advance: receipts, confirmations, re-broadcasts, replacements of dead nonces.
    auto polled = session_.Run(sender.Poll());
    if (!polled) return polled.error();
    for (const auto& record : *polled) {
        if (record.status != chain::PayoutStatus::kPending) continue;
        // Still pending but changed: a new transaction went out (a replacement with higher fees
        // for the same nonce, or a new nonce after the old transaction died).
        const auto& last = record.attempts.back();
        const bool same_nonce = record.attempts.size() > 1 &&
                                record.attempts[record.attempts.size() - 2].nonce == last.nonce;
        spdlog::warn("payouts: {} was not mined; sent again as {} ({}, nonce {})", record.id,
                     chain::ToString(last.hash),
                     same_nonce ? "higher fees" : "new nonce, the old one is dead", last.nonce);
    }
    for (const auto& p : *open) Finish(sender, p, report);

    // 3. The batch, when due.
    const auto now = clock_.Now();
    auto last = repository_.LastPayoutBatch();
    if (!last) return last.error();
    if (!*last || now - **last >= options_.interval) {
        report.batch_ran = true;
        auto still_open = repository_.OpenPayouts();
        if (!still_open) return still_open.error();
        // One payout in flight per operator: earnings that arrived since wait for the next batch.
        std::set<std::string> busy;
        for (const auto& p : *still_open) busy.insert(p.wallet);
        auto operators = repository_.OperatorsWithEarnings(options_.minimum);
        if (!operators) return operators.error();
        const std::string batch = "batch-" + std::to_string(EpochSeconds(now));
        for (const auto& op : *operators) {
            if (busy.contains(op.wallet)) continue;
            const std::string id = batch + "-" + op.wallet;
            // Reserved in the ledger BEFORE anything is signed: a crash from here on leaves an
            // open payout that step 1 of the next tick sends.
            auto reserved = billing_.ReservePayout(op.wallet, op.earnings, id);
            if (!reserved) {
                ++report.errors;
                spdlog::warn("payouts: reserving {} USDC for {} failed: {}",
                             domain::FormatAmount(op.earnings), op.wallet,
                             reserved.error().message);
                continue;
            }
            if (!reserved->replayed) ++report.reserved;
            Send(sender, ports::OpenPayout{id, op.wallet, op.earnings}, report);
        }
        if (auto st = repository_.SetLastPayoutBatch(now); !st) return st;
        spdlog::info("payouts: batch {} reserved {} payout(s)", batch, report.reserved);
    }
    auto left = repository_.OpenPayouts();
    if (!left) return left.error();
    report.in_flight = left->size();
    return common::Ok();
}

void PayoutService::Send(chain::PayoutSender& sender, const ports::OpenPayout& p,
                         PayoutReport& report) {
    auto to = chain::ParseAddress(p.wallet);
    if (!to) {
        ++report.errors;
        spdlog::error("payouts: {} has no valid payout address ({}): {}", p.payout_id, p.wallet,
                      to.error().message);
        return;
    }
    chain::PayoutRequest request{p.payout_id, *to,
                                 chain::U256(static_cast<std::uint64_t>(p.amount.micros()))};
    auto sent = session_.Run(sender.Submit(std::move(request)));
    if (!sent) {
        ++report.errors;
        // The node refused (kUnprocessable: a reverting transfer, gas over the cap) before
        // anything was signed and journaled, so nothing can be on the chain: after a few ticks
        // the reservation is cancelled. Other failures (the node unreachable; signed but not
        // broadcast) are retried by the next tick.
        const bool refused = sent.error().code == common::ErrorCode::kUnprocessable &&
                             sender.Find(p.payout_id) == nullptr;
        if (!refused) {
            ForgetRefusals(p.payout_id);
            spdlog::warn("payouts: sending {} ({} USDC to {}) failed, will retry: {}", p.payout_id,
                         domain::FormatAmount(p.amount), p.wallet, sent.error().message);
            return;
        }
        // Counted in the database: a restart or another replica continues the count.
        auto refusals = repository_.CountPayoutRefusal(p.payout_id, sent.error().message);
        if (!refusals) {
            spdlog::error("payouts: counting the chain's refusal of {} failed: {}", p.payout_id,
                          refusals.error().message);
            return;
        }
        if (*refusals < kRefusedTicksBeforeCancel) {
            spdlog::warn(
                "payouts: the chain refused {} ({} USDC to {}) {} tick(s) in a row, will "
                "retry: {}",
                p.payout_id, domain::FormatAmount(p.amount), p.wallet, *refusals,
                sent.error().message);
            return;
        }
        Cancel(p,
               "refused by the chain " + std::to_string(*refusals) + " ticks in a row (" +
                   sent.error().message +
                   "); check the treasury's balance and payouts.gas_limit_cap",
               report);
        return;
    }
    ForgetRefusals(p.payout_id);
    ++report.submitted;
    spdlog::info("payouts: {} USDC to {} sent as {} ({})", domain::FormatAmount(p.amount), p.wallet,
                 chain::ToString(sent->attempts.back().hash), p.payout_id);
}

void PayoutService::Finish(const chain::PayoutSender& sender, const ports::OpenPayout& p,
                           PayoutReport& report) {
    const auto* record = sender.Find(p.payout_id);
    if (record == nullptr || record->status == chain::PayoutStatus::kPending) return;
    if (record->status == chain::PayoutStatus::kConfirmed) {
        auto settled = billing_.SettlePayout(p.payout_id);
        if (!settled) {
            ++report.errors;
            spdlog::error("payouts: {} is confirmed on chain but settling it failed: {}",
                          p.payout_id, settled.error().message);
            return;
        }
        if (!settled->replayed) {
            ++report.settled;
            report.settled_micros += p.amount.micros();
        }
        spdlog::info("payouts: {} settled ({} USDC to {}, tx {})", p.payout_id,
                     domain::FormatAmount(p.amount), p.wallet,
                     record->mined_hash ? chain::ToString(*record->mined_hash) : "?");
        return;
    }
    // kFailed: every attempt was mined reverted, nothing moved: the earnings go back.
    Cancel(p, "reverted on chain", report);
}

void PayoutService::Cancel(const ports::OpenPayout& p, const std::string& why,
                           PayoutReport& report) {
    auto cancelled = billing_.CancelPayout(p.payout_id);
    if (!cancelled) {
        ++report.errors;
        spdlog::error("payouts: cancelling payout {} ({}) failed: {}", p.payout_id, why,
                      cancelled.error().message);
        return;
    }
    if (!cancelled->replayed) ++report.cancelled;
    ForgetRefusals(p.payout_id);
    spdlog::error(
        "payouts: {} ({} USDC to {}) {}; cancelled, the earnings are back and the next batch "
        "retries",
        p.payout_id, domain::FormatAmount(p.amount), p.wallet, why);
}

void PayoutService::ForgetRefusals(const std::string& payout_id) {
    // Only a stale count is left behind on failure: the next refusal adds to it.
    if (auto st = repository_.ForgetPayoutRefusals(payout_id); !st)
        spdlog::warn("payouts: forgetting the refusals of {} failed: {}", payout_id,
                     st.error().message);
}

Result<EarningsView> ChainAccountService::Earnings(const std::string& wallet) {
    auto normalized = domain::NormalizeWallet(wallet);
    if (!normalized) return normalized.error();
    auto totals = repository_.TotalsOf(*normalized);
    if (!totals) return totals.error();
    return EarningsView{totals->node_earnings, totals->relay_earnings, totals->in_flight,
                        totals->paid};
}

Result<std::vector<ports::PayoutView>> ChainAccountService::Payouts(const std::string& wallet,
                                                                    std::size_t limit) {
    auto normalized = domain::NormalizeWallet(wallet);
    if (!normalized) return normalized.error();
    return repository_.PayoutsOf(*normalized, limit);
}

Result<std::vector<ports::PendingDeposit>> ChainAccountService::PendingDeposits(
    const std::string& wallet) {
    auto normalized = domain::NormalizeWallet(wallet);
    if (!normalized) return normalized.error();
    return repository_.PendingDeposits(*normalized);
}

}  // namespace decloud::orchestrator::app
