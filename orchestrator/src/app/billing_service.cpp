#include "orchestrator/app/billing_service.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <limits>
#include <map>

#include "orchestrator/domain/metering.hpp"

namespace decloud::orchestrator::app {

using common::Error;
using common::Result;
using domain::Amount;
using domain::Entry;
using nlohmann::json;

namespace {

Result<std::string> NormalizeTxHash(std::string_view hash) {
    if (hash.size() != 66 || hash[0] != '0' || (hash[1] != 'x' && hash[1] != 'X'))
        return Error::InvalidArgument("transaction hash: 0x followed by 64 hex digits");
    std::string out = "0x";
    for (const char c : hash.substr(2)) {
        if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))
            out += c;
        else if (c >= 'A' && c <= 'F')
            out += static_cast<char>(c - 'A' + 'a');
        else
            return Error::InvalidArgument("transaction hash: 0x followed by 64 hex digits");
    }
    return out;
}

Result<std::string> ValidPayoutId(const std::string& id) {
    if (id.empty() || id.size() > 128) return Error::InvalidArgument("payout id: 1-128 characters");
    return id;
}

LedgerOutcome OutcomeOf(ports::PostedTransaction posted) {
    return LedgerOutcome{posted.id, std::move(posted.transaction), posted.replayed};
}

std::int64_t EpochSeconds(common::TimePoint t) {
    return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

// Entries as a comparable set (the database returns them in its own order).
std::vector<std::pair<std::string, std::int64_t>> Canonical(const std::vector<Entry>& entries) {
    std::vector<std::pair<std::string, std::int64_t>> out;
    for (const auto& e : entries)
        out.emplace_back(domain::AccountName(e.account), e.amount.micros());
    std::sort(out.begin(), out.end());
    return out;
}

}  // namespace

BillingService::BillingService(ports::LedgerRepository& ledger, VmService& vms,
                               const common::Clock& clock, BillingOptions options)
    : ledger_(ledger), vms_(vms), clock_(clock), options_(std::move(options)) {}

Result<LedgerOutcome> BillingService::PostOnce(domain::LedgerTransaction tx) {
    auto posted = ledger_.Post(tx);
    if (!posted) return posted.error();
    if (posted->replayed && (posted->transaction.kind != tx.kind ||
                             Canonical(posted->transaction.entries) != Canonical(tx.entries)))
        return Error::Conflict("idempotency key " + tx.idempotency_key +
                               " was used for a different movement");
    return OutcomeOf(std::move(*posted));
}

Result<LedgerOutcome> BillingService::CreditDeposit(const std::string& wallet, Amount amount,
                                                    std::uint64_t chain_id,
                                                    const std::string& tx_hash,
                                                    std::uint64_t log_index) {
    auto user = domain::NormalizeWallet(wallet);
    if (!user) return user.error();
    auto hash = NormalizeTxHash(tx_hash);
    if (!hash) return hash.error();
    if (amount <= Amount::Micros(0)) return Error::InvalidArgument("deposit: amount must be > 0");
    json metadata{{"wallet", *user},
                  {"chainId", chain_id},
                  {"txHash", *hash},
                  {"logIndex", log_index},
                  {"amount", domain::FormatAmount(amount)}};
    auto tx = domain::BuildTransaction(domain::DepositKey(chain_id, *hash, log_index),
                                       domain::TransactionKind::kDeposit,
                                       {{domain::PlatformAccount(domain::AccountKind::kTreasuryIn),
                                         Amount::Micros(-amount.micros())},
                                        {domain::UserBalance(*user), amount}},
                                       std::move(metadata), clock_.Now());
    if (!tx) return tx.error();
    return PostOnce(std::move(*tx));
}

Result<LedgerOutcome> BillingService::ReservePayout(const std::string& operator_wallet,
                                                    Amount amount, const std::string& payout_id) {
    auto wallet = domain::NormalizeWallet(operator_wallet);
    if (!wallet) return wallet.error();
    if (auto id = ValidPayoutId(payout_id); !id) return id.error();
    if (amount <= Amount::Micros(0)) return Error::InvalidArgument("payout: amount must be > 0");
    const auto key = domain::PayoutReserveKey(payout_id);
    const auto same = [&](const domain::LedgerTransaction& t) {
        return t.metadata.value("wallet", "") == *wallet &&
               t.metadata.value("amount", "") == domain::FormatAmount(amount);
    };
    // A replay must not depend on the earnings left now: answer it from the first reserve.
    auto existing = ledger_.FindByKey(key);
    if (!existing) return existing.error();
    if (*existing) {
        if (!same((*existing)->transaction))
            return Error::Conflict("payout " + payout_id + " was reserved for another amount");
        (*existing)->replayed = true;
        return OutcomeOf(std::move(**existing));
    }
    auto node_balance = ledger_.Balance(domain::NodeEarnings(*wallet));
    if (!node_balance) return node_balance.error();
    const Amount from_node = std::min(amount, *node_balance);
    const Amount from_relay = Amount::Micros(amount.micros() - from_node.micros());
    json metadata{{"payoutId", payout_id},
                  {"wallet", *wallet},
                  {"amount", domain::FormatAmount(amount)},
                  {"fromNodeEarnings", domain::FormatAmount(from_node)},
                  {"fromRelayEarnings", domain::FormatAmount(from_relay)}};
    auto tx = domain::BuildTransaction(
        key, domain::TransactionKind::kPayoutReserve,
        {{domain::NodeEarnings(*wallet), Amount::Micros(-from_node.micros())},
         {domain::RelayEarnings(*wallet), Amount::Micros(-from_relay.micros())},
         {domain::PayoutsInFlight(*wallet), amount}},
        std::move(metadata), clock_.Now());
    if (!tx) return tx.error();
    auto posted = ledger_.Post(*tx);
    if (!posted) {
        if (posted.error().code == common::ErrorCode::kUnprocessable)
            return Error::Unprocessable("payout " + payout_id + ": the earnings of " + *wallet +
                                        " do not cover " + domain::FormatAmount(amount));
        return posted.error();
    }
    if (posted->replayed && !same(posted->transaction))
        return Error::Conflict("payout " + payout_id + " was reserved for another amount");
    return OutcomeOf(std::move(*posted));
}

Result<LedgerOutcome> BillingService::SettlePayout(const std::string& payout_id) {
    if (auto id = ValidPayoutId(payout_id); !id) return id.error();
    auto reserve = ledger_.FindByKey(domain::PayoutReserveKey(payout_id));
    if (!reserve) return reserve.error();
    if (!*reserve) return Error::NotFound("payout " + payout_id + " was never reserved");
    const auto& r = (*reserve)->transaction;
    const std::string wallet = r.metadata.value("wallet", "");
    auto amount = domain::ParseAmount(r.metadata.value("amount", ""));
    if (!amount) return Error::Internal("payout " + payout_id + ": reserve without an amount");
    auto tx = domain::BuildTransaction(
        domain::PayoutFinalKey(payout_id), domain::TransactionKind::kPayoutSettle,
        {{domain::PayoutsInFlight(wallet), Amount::Micros(-amount->micros())},
         {domain::PlatformAccount(domain::AccountKind::kTreasuryOut), *amount}},
        json{
            {"payoutId", payout_id}, {"wallet", wallet}, {"amount", domain::FormatAmount(*amount)}},
        clock_.Now());
    if (!tx) return tx.error();
    auto posted = ledger_.Post(*tx);
    if (!posted) return posted.error();
    if (posted->transaction.kind != domain::TransactionKind::kPayoutSettle)
        return Error::Conflict("payout " + payout_id + " was cancelled, it cannot be settled");
    return OutcomeOf(std::move(*posted));
}

Result<LedgerOutcome> BillingService::CancelPayout(const std::string& payout_id) {
    if (auto id = ValidPayoutId(payout_id); !id) return id.error();
    auto reserve = ledger_.FindByKey(domain::PayoutReserveKey(payout_id));
    if (!reserve) return reserve.error();
    if (!*reserve) return Error::NotFound("payout " + payout_id + " was never reserved");
    const auto& r = (*reserve)->transaction;
    std::vector<Entry> legs;
    for (const auto& e : r.entries) legs.push_back({e.account, Amount::Micros(-e.amount.micros())});
    auto tx = domain::BuildTransaction(domain::PayoutFinalKey(payout_id),
                                       domain::TransactionKind::kPayoutCancel, std::move(legs),
                                       json{{"payoutId", payout_id},
                                            {"wallet", r.metadata.value("wallet", "")},
                                            {"amount", r.metadata.value("amount", "")}},
                                       clock_.Now());
    if (!tx) return tx.error();
    auto posted = ledger_.Post(*tx);
    if (!posted) return posted.error();
    if (posted->transaction.kind != domain::TransactionKind::kPayoutCancel)
        return Error::Conflict("payout " + payout_id + " was settled, it cannot be cancelled");
    return OutcomeOf(std::move(*posted));
}

Result<MeteringReport> BillingService::RunMetering() {
    MeteringReport report;
    common::Status inner = common::Ok();
    auto locked = ledger_.WithMeteringLock([&] {
        inner = [&]() -> common::Status {
            const auto end = domain::HourFloor(clock_.Now());
            auto until = ledger_.MeteredUntil();
            if (!until) return until.error();
            common::TimePoint start = end;
            if (*until) {
                start = **until;
            } else {
                auto first = ledger_.FirstVmEvent();
                if (!first) return first.error();
                if (*first) start = std::min(end, domain::HourFloor(**first));
            }
            report.from = report.to = start;
            if (start >= end) {
                if (!*until) return ledger_.SetMeteredUntil(end);
                return common::Ok();
            }
            const auto to =
                std::min(end, start + std::chrono::hours{static_cast<std::int64_t>(
                                          std::max<std::size_t>(options_.max_hours_per_run, 1))});
            auto vms = ledger_.MeterableVms(start, to);
            if (!vms) return vms.error();
            for (const auto& vm : *vms) {
                for (const auto& slice : domain::RunningSecondsByHour(vm.history, start, to)) {
                    auto st = ChargeSlice(vm, slice, report);
                    if (!st) return st;
                }
            }
            if (auto st = ledger_.SetMeteredUntil(to); !st) return st;
            report.to = to;
            return common::Ok();
        }();
    });
    if (!locked) return locked.error();
    report.ran = *locked;
    if (!inner) return inner.error();
    return report;
}

common::Status BillingService::ChargeSlice(const ports::MeterableVm& vm,
                                           const domain::MeterSlice& slice,
                                           MeteringReport& report) {
    const Amount cost = domain::ChargeForSeconds(vm.hourly_rate, slice.running_seconds);
    if (cost.IsZero()) return common::Ok();
    if (vm.node_operator.empty() || vm.owner_wallet.empty()) {
        spdlog::warn("metering: VM {} ran without a node or owner; not billed", vm.vm_id);
        return common::Ok();
    }
    const auto key = domain::ChargeKey(vm.vm_id, slice.hour_start);
    // A rerun after a crash finds its earlier charges here (Post would also refuse a second).
    auto existing = ledger_.FindByKey(key);
    if (!existing) return existing.error();
    if (*existing) {
        ++report.already_billed;
        return common::Ok();
    }
    // The balance may move under us (a deposit, a read): retry a capped charge a few times.
    for (int attempt = 0; attempt < 3; ++attempt) {
        auto balance = ledger_.Balance(domain::UserBalance(vm.owner_wallet));
        if (!balance) return balance.error();
        const Amount charged = std::min(cost, *balance);
        const Amount uncovered = Amount::Micros(cost.micros() - charged.micros());
        if (charged.IsZero()) {
            report.uncovered_micros += uncovered.micros();
            return common::Ok();
        }
        const auto split =
            domain::SplitCharge(charged, options_.platform_fee_bps, !vm.relay_operator.empty(),
                                options_.relay_share_bps);
        json metadata{
            {"vmId", vm.vm_id},
            {"hourStart", common::FormatRfc3339(slice.hour_start)},
            {"runningSeconds", slice.running_seconds},
            {"hourlyRate", domain::FormatAmount(vm.hourly_rate)},
            {"cost", domain::FormatAmount(cost)},
            {"charged", domain::FormatAmount(charged)},
            {"uncovered", domain::FormatAmount(uncovered)},
            {"nodeOperator", vm.node_operator},
            {"relayOperator", vm.relay_operator.empty() ? json(nullptr) : json(vm.relay_operator)},
            {"platformFee", domain::FormatAmount(split.platform_fee)},
            {"nodeShare", domain::FormatAmount(split.node)},
            {"relayShare", domain::FormatAmount(split.relay)}};
        auto tx = domain::BuildTransaction(key, domain::TransactionKind::kCharge,
                                           domain::ChargeLegs(vm.owner_wallet, vm.node_operator,
                                                              vm.relay_operator, charged, split),
                                           std::move(metadata), clock_.Now());
        if (!tx) return tx.error();
        auto posted = ledger_.Post(*tx);
        if (!posted) {
            if (posted.error().code == common::ErrorCode::kUnprocessable) continue;
            return posted.error();
        }
        if (posted->replayed) {
            ++report.already_billed;
        } else {
            ++report.charges;
            report.billed_micros += charged.micros();
            report.uncovered_micros += uncovered.micros();
        }
        return common::Ok();
    }
    return Error::Unavailable("metering: the balance of " + vm.owner_wallet +
                              " kept changing; retrying next run");
}

common::Status BillingService::MayStart(const std::string& owner,
                                        std::uint64_t hourly_rate_micro_usdc) {
    if (hourly_rate_micro_usdc == 0) return common::Ok();
    auto wallet = domain::NormalizeWallet(owner);
    if (!wallet) return wallet.error();
    auto balance = ledger_.Balance(domain::UserBalance(*wallet));
    if (!balance) return balance.error();
    if (!balance->IsZero()) return common::Ok();
    const auto rate = domain::Amount::Micros(static_cast<std::int64_t>(
        std::min<std::uint64_t>(hourly_rate_micro_usdc, std::numeric_limits<std::int64_t>::max())));
    return Error::PaymentRequired(
        "your balance is 0 USDC and this VM costs " + domain::FormatAmount(rate) +
        " USDC an hour: deposit USDC first (GET /api/billing/deposit-info says where to send it; "
        "it is credited after the confirmations it names)");
}

Result<LowBalanceReport> BillingService::CheckBalances() {
    LowBalanceReport report;
    auto running = ledger_.RunningVms();
    if (!running) return running.error();
    struct Owner {
        std::string stored;  // the VM service's owner key
        Amount hourly;
        std::vector<std::string> vms;
    };
    std::map<std::string, Owner> owners;
    for (const auto& vm : *running) {
        auto wallet = domain::NormalizeWallet(vm.owner_wallet);
        if (!wallet) continue;
        auto& o = owners[*wallet];
        o.stored = vm.owner_wallet;
        auto sum = o.hourly.Plus(vm.hourly_rate);
        if (!sum) return sum.error();
        o.hourly = *sum;
        o.vms.push_back(vm.vm_id);
    }
    const auto now = clock_.Now();
    const auto hour = std::to_string(EpochSeconds(domain::HourFloor(now)));
    const auto horizon =
        std::chrono::duration_cast<std::chrono::seconds>(options_.low_balance_horizon).count();
    for (const auto& [wallet, o] : owners) {
        if (o.hourly.IsZero()) continue;
        auto balance = ledger_.Balance(domain::UserBalance(wallet));
        if (!balance) return balance.error();
        if (balance->IsZero()) {
            json stopped = json::array();
            for (const auto& vm_id : o.vms) {
                auto vm = vms_.Act(o.stored, vm_id, domain::VmAction::kStop);
                if (!vm) {
                    spdlog::warn("billing: stopping VM {} of {} at zero balance failed: {}", vm_id,
                                 wallet, vm.error().message);
                    continue;
                }
                stopped.push_back(vm_id);
                report.stopped.push_back(vm_id);
            }
            if (stopped.empty()) continue;
            ports::AccountEvent event{0, wallet, "vms_stopped",
                                      json{{"reason", "balance reached zero"}, {"vmIds", stopped}},
                                      now};
            auto added = ledger_.AddAccountEvent(
                event, "vms_stopped:" + wallet + ":" + std::to_string(EpochSeconds(now)));
            if (!added) return added.error();
            continue;
        }
        const Amount need = domain::MulDivFloor(
            o.hourly, static_cast<std::uint64_t>(std::max<std::int64_t>(horizon, 0)), 3600);
        if (*balance >= need) continue;
        ports::AccountEvent event{0, wallet, "low_balance",
                                  json{{"balance", domain::FormatAmount(*balance)},
                                       {"hourlyRate", domain::FormatAmount(o.hourly)},
                                       {"needed", domain::FormatAmount(need)},
                                       {"horizonSeconds", horizon},
                                       {"runningVms", o.vms.size()}},
                                  now};
        auto added = ledger_.AddAccountEvent(event, "low_balance:" + wallet + ":" + hour);
        if (!added) return added.error();
        if (*added) report.warned.push_back(wallet);
    }
    return report;
}

common::Status BillingService::Tick() {
    auto metered = RunMetering();
    if (!metered) return metered.error();
    if (metered->charges > 0 || metered->uncovered_micros > 0)
        spdlog::info("metering {} .. {}: {} charges, {} billed, {} not covered by balances",
                     common::FormatRfc3339(metered->from), common::FormatRfc3339(metered->to),
                     metered->charges, domain::FormatAmount(Amount::Micros(metered->billed_micros)),
                     domain::FormatAmount(Amount::Micros(metered->uncovered_micros)));
    if (!metered->ran) return common::Ok();  // the replica holding the lock checks balances
    auto checked = CheckBalances();
    if (!checked) return checked.error();
    for (const auto& w : checked->warned) spdlog::info("billing: low balance warning for {}", w);
    for (const auto& v : checked->stopped) spdlog::info("billing: stopped VM {} (balance zero)", v);
    return common::Ok();
}

Result<BalanceView> BillingService::Balance(const std::string& wallet_in) {
    auto wallet = domain::NormalizeWallet(wallet_in);
    if (!wallet) return wallet.error();
    BalanceView view;
    auto balances = ledger_.BalancesOf(*wallet);
    if (!balances) return balances.error();
    for (const auto& b : *balances) {
        switch (b.account.kind) {
            case domain::AccountKind::kUserBalance:
                view.balance = b.balance;
                break;
            case domain::AccountKind::kNodeEarnings:
                view.node_earnings = b.balance;
                break;
            case domain::AccountKind::kRelayEarnings:
                view.relay_earnings = b.balance;
                break;
            case domain::AccountKind::kPayoutsInFlight:
                view.payouts_in_flight = b.balance;
                break;
            default:
                break;
        }
    }
    auto running = ledger_.RunningVms();
    if (!running) return running.error();
    for (const auto& vm : *running) {
        auto owner = domain::NormalizeWallet(vm.owner_wallet);
        if (!owner || *owner != *wallet) continue;
        auto sum = view.running_hourly.Plus(vm.hourly_rate);
        if (!sum) return sum.error();
        view.running_hourly = *sum;
    }
    const auto horizon =
        std::chrono::duration_cast<std::chrono::seconds>(options_.low_balance_horizon).count();
    view.low =
        !view.running_hourly.IsZero() &&
        view.balance < domain::MulDivFloor(
                           view.running_hourly,
                           static_cast<std::uint64_t>(std::max<std::int64_t>(horizon, 0)), 3600);
    auto events = ledger_.AccountEvents(*wallet, 20);
    if (!events) return events.error();
    view.events = std::move(*events);
    return view;
}

Result<TransactionPage> BillingService::Transactions(const std::string& wallet_in,
                                                     std::size_t limit, const std::string& cursor) {
    auto wallet = domain::NormalizeWallet(wallet_in);
    if (!wallet) return wallet.error();
    std::int64_t before = 0;
    if (!cursor.empty()) {
        const auto [p, ec] = std::from_chars(cursor.data(), cursor.data() + cursor.size(), before);
        if (ec != std::errc() || p != cursor.data() + cursor.size() || before <= 0)
            return Error::InvalidArgument("cursor: use nextCursor from the previous page");
    }
    limit = std::clamp<std::size_t>(limit, 1, 500);
    auto rows = ledger_.TransactionsOf(*wallet, limit + 1, before);
    if (!rows) return rows.error();
    TransactionPage page;
    if (rows->size() > limit) {
        rows->resize(limit);
        page.next_cursor = std::to_string(rows->back().id);
    }
    page.transactions = std::move(*rows);
    return page;
}

Result<ports::InvariantReport> BillingService::Invariants() { return ledger_.CheckInvariants(); }

}  // namespace decloud::orchestrator::app
