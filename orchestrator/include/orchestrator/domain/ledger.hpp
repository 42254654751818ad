#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "decloud/common/clock.hpp"
#include "decloud/common/result.hpp"
#include "orchestrator/domain/money.hpp"

namespace decloud::orchestrator::domain {

// The double-entry ledger's accounts. Convention: an entry's amount is added to its account's
// balance, every transaction's entries sum to zero, and every balance is what the account holds
// (non-negative) except treasury_in, the source of all deposited money (minus what came in).
enum class AccountKind {
    kUserBalance,      // per user wallet: prepaid money VMs are charged from
    kNodeEarnings,     // per operator wallet: node operators' share of charges
    kRelayEarnings,    // per operator wallet: relay operators' share of charges
    kPlatformFee,      // platform-wide: the platform's fee
    kTreasuryIn,       // platform-wide: negative total of deposits received on chain
    kTreasuryOut,      // platform-wide: total paid out on chain
    kPayoutsInFlight,  // per operator wallet: payouts signed or about to be, not yet settled
};
std::string_view ToString(AccountKind kind);
std::optional<AccountKind> ParseAccountKind(std::string_view text);
// Whether the account is one of a wallet (true) or of the platform (owner empty).
bool IsPerWallet(AccountKind kind);
// Whether the account's balance may go below zero (only treasury_in).
bool MayBeNegative(AccountKind kind);

struct AccountRef {
    AccountKind kind = AccountKind::kUserBalance;
    std::string owner;  // lowercase 0x wallet for per-wallet accounts, empty for platform ones
    friend bool operator==(const AccountRef&, const AccountRef&) = default;
};
AccountRef UserBalance(std::string_view wallet);
AccountRef NodeEarnings(std::string_view wallet);
AccountRef RelayEarnings(std::string_view wallet);
AccountRef PayoutsInFlight(std::string_view wallet);
AccountRef PlatformAccount(AccountKind kind);
// "user_balance:0xab..", "platform_fee".
std::string AccountName(const AccountRef& account);

// A wallet as the ledger keys it: "0x" + 40 hex digits, lowercased; kInvalidArgument otherwise.
common::Result<std::string> NormalizeWallet(std::string_view wallet);

struct Entry {
    AccountRef account;
    Amount amount;  // added to the account's balance; never zero
    friend bool operator==(const Entry&, const Entry&) = default;
};

enum class TransactionKind {
    kDeposit,
    kCharge,
    kPayoutReserve,
    kPayoutSettle,
    kPayoutCancel,
};
std::string_view ToString(TransactionKind kind);
std::optional<TransactionKind> ParseTransactionKind(std::string_view text);

// One movement of money: balanced entries written atomically under a unique idempotency key.
struct LedgerTransaction {
    std::string idempotency_key;
    TransactionKind kind = TransactionKind::kDeposit;
    std::string currency = std::string(kUsdc);
    std::vector<Entry> entries;
    nlohmann::json metadata = nlohmann::json::object();
    common::TimePoint created_at{};
};

// Builds a transaction from legs: zero legs are dropped, legs on the same account merged (in
// first-appearance order). kInvalidArgument unless the key is non-empty, the legs sum to zero
// exactly (checked arithmetic) and at least two accounts remain.
common::Result<LedgerTransaction> BuildTransaction(std::string idempotency_key,
                                                   TransactionKind kind, std::vector<Entry> legs,
                                                   nlohmann::json metadata,
                                                   common::TimePoint created_at);

// How one charge is shared. Rounding is explicit: the platform fee is floor(charge x fee / 10^4),
// the relay's part is floor((charge - fee) x relay share / 10^4), and the node operator gets the
// remainder, so the three parts always add up to the charge exactly.
struct ChargeSplit {
    Amount platform_fee;
    Amount relay;
    Amount node;
    friend bool operator==(const ChargeSplit&, const ChargeSplit&) = default;
};
inline constexpr std::uint32_t kBasisPoints = 10'000;
// Precondition: charge >= 0. Shares above 10,000 basis points count as 10,000.
ChargeSplit SplitCharge(Amount charge, std::uint32_t platform_fee_bps, bool has_relay,
                        std::uint32_t relay_share_bps);

// The balanced legs of a charge of `charge` to `user`, shared as `split` between the node's
// operator, the relay's operator (if any) and the platform.
std::vector<Entry> ChargeLegs(std::string_view user, std::string_view node_operator,
                              std::string_view relay_operator, Amount charge,
                              const ChargeSplit& split);

// Idempotency keys: one per (chain, transaction, log) deposit, (vm, hour) charge, payout step.
std::string DepositKey(std::uint64_t chain_id, std::string_view tx_hash, std::uint64_t log_index);
std::string ChargeKey(std::string_view vm_id, common::TimePoint hour_start);
std::string PayoutReserveKey(std::string_view payout_id);
// Settling and cancelling share one key: a payout ends once, one way.
std::string PayoutFinalKey(std::string_view payout_id);

}  // namespace decloud::orchestrator::domain
