#include "orchestrator/domain/ledger.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <utility>

namespace decloud::orchestrator::domain {

using common::Error;
using common::Result;

namespace {

constexpr std::array<std::pair<AccountKind, std::string_view>, 7> kAccountNames{{
    {AccountKind::kUserBalance, "user_balance"},
    {AccountKind::kNodeEarnings, "node_earnings"},
    {AccountKind::kRelayEarnings, "relay_earnings"},
    {AccountKind::kPlatformFee, "platform_fee"},
    {AccountKind::kTreasuryIn, "treasury_in"},
    {AccountKind::kTreasuryOut, "treasury_out"},
    {AccountKind::kPayoutsInFlight, "payouts_in_flight"},
}};

constexpr std::array<std::pair<TransactionKind, std::string_view>, 5> kTransactionNames{{
    {TransactionKind::kDeposit, "deposit"},
    {TransactionKind::kCharge, "charge"},
    {TransactionKind::kPayoutReserve, "payout_reserve"},
    {TransactionKind::kPayoutSettle, "payout_settle"},
    {TransactionKind::kPayoutCancel, "payout_cancel"},
}};

AccountRef PerWallet(AccountKind kind, std::string_view wallet) {
    return AccountRef{kind, std::string(wallet)};
}

}  // namespace

std::string_view ToString(AccountKind kind) {
    for (const auto& [k, name] : kAccountNames)
        if (k == kind) return name;
    return "unknown";
}

std::optional<AccountKind> ParseAccountKind(std::string_view text) {
    for (const auto& [k, name] : kAccountNames)
        if (name == text) return k;
    return std::nullopt;
}

bool IsPerWallet(AccountKind kind) {
    return kind == AccountKind::kUserBalance || kind == AccountKind::kNodeEarnings ||
           kind == AccountKind::kRelayEarnings || kind == AccountKind::kPayoutsInFlight;
}

bool MayBeNegative(AccountKind kind) { return kind == AccountKind::kTreasuryIn; }

AccountRef UserBalance(std::string_view wallet) {
    return PerWallet(AccountKind::kUserBalance, wallet);
}
AccountRef NodeEarnings(std::string_view wallet) {
    return PerWallet(AccountKind::kNodeEarnings, wallet);
}
AccountRef RelayEarnings(std::string_view wallet) {
    return PerWallet(AccountKind::kRelayEarnings, wallet);
}
AccountRef PayoutsInFlight(std::string_view wallet) {
    return PerWallet(AccountKind::kPayoutsInFlight, wallet);
}
AccountRef PlatformAccount(AccountKind kind) { return AccountRef{kind, ""}; }

std::string AccountName(const AccountRef& account) {
    std::string name(ToString(account.kind));
    if (!account.owner.empty()) name += ":" + account.owner;
    return name;
}

Result<std::string> NormalizeWallet(std::string_view wallet) {
    if (wallet.size() != 42 || wallet[0] != '0' || (wallet[1] != 'x' && wallet[1] != 'X'))
        return Error::InvalidArgument("wallet: 0x followed by 40 hex digits");
    std::string out = "0x";
    for (const char c : wallet.substr(2)) {
        if (c >= '0' && c <= '9')
            out += c;
        else if (c >= 'a' && c <= 'f')
            out += c;
        else if (c >= 'A' && c <= 'F')
            out += static_cast<char>(c - 'A' + 'a');
        else
            return Error::InvalidArgument("wallet: 0x followed by 40 hex digits");
    }
    return out;
}

std::string_view ToString(TransactionKind kind) {
    for (const auto& [k, name] : kTransactionNames)
        if (k == kind) return name;
    return "unknown";
}

std::optional<TransactionKind> ParseTransactionKind(std::string_view text) {
    for (const auto& [k, name] : kTransactionNames)
        if (name == text) return k;
    return std::nullopt;
}

Result<LedgerTransaction> BuildTransaction(std::string idempotency_key, TransactionKind kind,
                                           std::vector<Entry> legs, nlohmann::json metadata,
                                           common::TimePoint created_at) {
    if (idempotency_key.empty()) return Error::InvalidArgument("ledger: empty idempotency key");
    LedgerTransaction tx;
    tx.idempotency_key = std::move(idempotency_key);
    tx.kind = kind;
    tx.metadata = std::move(metadata);
    tx.created_at = created_at;
    Amount sum;
    for (auto& leg : legs) {
        if (IsPerWallet(leg.account.kind) == leg.account.owner.empty())
            return Error::InvalidArgument("ledger: account " + AccountName(leg.account) +
                                          " has the wrong owner");
        auto next = sum.Plus(leg.amount);
        if (!next) return next.error();
        sum = *next;
        auto it = std::find_if(tx.entries.begin(), tx.entries.end(),
                               [&](const Entry& e) { return e.account == leg.account; });
        if (it == tx.entries.end()) {
            tx.entries.push_back(std::move(leg));
            continue;
        }
        auto merged = it->amount.Plus(leg.amount);
        if (!merged) return merged.error();
        it->amount = *merged;
    }
    if (!sum.IsZero())
        return Error::InvalidArgument("ledger: entries sum to " + FormatAmount(sum) + ", not zero");
    std::erase_if(tx.entries, [](const Entry& e) { return e.amount.IsZero(); });
    if (tx.entries.size() < 2)
        return Error::InvalidArgument("ledger: a transaction moves money between two accounts");
    return tx;
}

ChargeSplit SplitCharge(Amount charge, std::uint32_t platform_fee_bps, bool has_relay,
                        std::uint32_t relay_share_bps) {
    platform_fee_bps = std::min(platform_fee_bps, kBasisPoints);
    relay_share_bps = std::min(relay_share_bps, kBasisPoints);
    ChargeSplit split;
    split.platform_fee = MulDivFloor(charge, platform_fee_bps, kBasisPoints);
    const Amount node_revenue = Amount::Micros(charge.micros() - split.platform_fee.micros());
    split.relay =
        has_relay ? MulDivFloor(node_revenue, relay_share_bps, kBasisPoints) : Amount::Micros(0);
    split.node = Amount::Micros(node_revenue.micros() - split.relay.micros());
    return split;
}

std::vector<Entry> ChargeLegs(std::string_view user, std::string_view node_operator,
                              std::string_view relay_operator, Amount charge,
                              const ChargeSplit& split) {
    std::vector<Entry> legs;
    legs.push_back({UserBalance(user), Amount::Micros(-charge.micros())});
    legs.push_back({NodeEarnings(node_operator), split.node});
    if (!split.relay.IsZero()) legs.push_back({RelayEarnings(relay_operator), split.relay});
    legs.push_back({PlatformAccount(AccountKind::kPlatformFee), split.platform_fee});
    return legs;
}

std::string DepositKey(std::uint64_t chain_id, std::string_view tx_hash, std::uint64_t log_index) {
    std::string hash(tx_hash);
    std::transform(hash.begin(), hash.end(), hash.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return "deposit:" + std::to_string(chain_id) + ":" + hash + ":" + std::to_string(log_index);
}

std::string ChargeKey(std::string_view vm_id, common::TimePoint hour_start) {
    const auto secs =
        std::chrono::duration_cast<std::chrono::seconds>(hour_start.time_since_epoch()).count();
    return "charge:" + std::string(vm_id) + ":" + std::to_string(secs);
}

std::string PayoutReserveKey(std::string_view payout_id) {
    return "payout:" + std::string(payout_id) + ":reserve";
}

std::string PayoutFinalKey(std::string_view payout_id) {
    return "payout:" + std::string(payout_id) + ":final";
}

}  // namespace decloud::orchestrator::domain
