#pragma once

// Paying operators on chain: one ERC-20 transfer per payout, signed with the treasury key as an
// EIP-1559 transaction, every signed transaction written to a journal BEFORE it is broadcast.
//
// Guarantees (the journal is the source of truth across restarts):
// - A payout id is paid at most once: Submit() of a known id never signs anything new; the only
//   new signature for an id comes from Poll() after its current transaction is known dead.
// - Known dead = its nonce was consumed by another transaction (the account's mined nonce moved
//   past it, none of the payout's transactions has a receipt and the node knows none of them
//   by hash), or it was mined and reverted
//   (nothing moved). Only then is a new transaction signed, with a new nonce.
// - A transaction that is merely slow is re-broadcast as is (same bytes, same hash). Once it has
//   waited replace_after_blocks blocks it is replaced by the same transfer with the SAME nonce
//   and higher fees (see ReplacementFees): only one transaction of a nonce can ever be mined, so
//   a replacement never pays twice, and every signed version stays in the record and is watched.
// - Nonces: max(the chain's pending nonce, the journal's highest nonce + 1).
// - Gas: eth_estimateGas + 20%, refused above gas_limit_cap. Fees: base fee of the next block
//   (eth_feeHistory) * 2 + tip, tip capped at max_priority_fee, total capped at max_fee; a base
//   fee above the cap postpones the payout (kUnavailable) instead of overpaying.
// Not thread-safe: one coroutine at a time.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "decloud/chain/chain_client.hpp"
#include "decloud/chain/transaction.hpp"
#include "decloud/chain/types.hpp"
#include "decloud/common/result.hpp"

namespace decloud::chain {

struct PayoutRequest {
    std::string id;  // idempotency key: the ledger's payout id
    Address to{};
    U256 amount;
};

enum class PayoutStatus {
    kPending,    // signed (maybe broadcast), outcome not known yet
    kConfirmed,  // mined with status 1 and `confirmations` deep: the operator has the tokens
    kFailed,     // every attempt was mined reverted (nothing moved); needs a human
};
std::string_view ToString(PayoutStatus status);

struct PayoutAttempt {
    std::uint64_t nonce = 0;
    Hash hash{};
    Bytes raw;
    // The chain's head when it was signed; 0 in records journaled before this was kept (such an
    // attempt may be replaced at the first poll).
    std::uint64_t signed_at_block = 0;
    friend bool operator==(const PayoutAttempt&, const PayoutAttempt&) = default;
};

struct PayoutRecord {
    std::string id;
    Address to{};
    U256 amount;
    PayoutStatus status = PayoutStatus::kPending;
    std::vector<PayoutAttempt> attempts;  // the last one is current; replacements share a nonce
    std::optional<Hash> mined_hash;       // the attempt that was mined (confirmed or reverted)
    std::uint64_t mined_block = 0;
    friend bool operator==(const PayoutRecord&, const PayoutRecord&) = default;
};

// Durable storage of payout records (role). Save must be durable when it returns.
class PayoutJournal {
  public:
    virtual ~PayoutJournal() = default;
    // Every pending record and every record named in `also`, whatever its status; may return
    // others. Finished records are not needed otherwise: their transactions are mined, so the
    // chain's nonce is past them, and a journal of years of payouts need not be read each time.
    virtual common::Result<std::vector<PayoutRecord>> Load(
        const std::vector<std::string>& also) = 0;
    virtual common::Status Save(const PayoutRecord& record) = 0;
};

// A JSON file, rewritten atomically (temporary file, fsync, rename, fsync of the directory).
// Holds signed transactions, not keys.
class FilePayoutJournal final : public PayoutJournal {
  public:
    explicit FilePayoutJournal(std::string path) : path_(std::move(path)) {}
    // ports::PayoutJournal; Load returns every record (the file is read whole anyway).
    common::Result<std::vector<PayoutRecord>> Load(const std::vector<std::string>& also) override;
    common::Status Save(const PayoutRecord& record) override;

  private:
    std::string path_;
    std::optional<std::map<std::string, PayoutRecord>> records_;
};

struct TransactionFees {
    U256 max_fee;       // max_fee_per_gas, wei
    U256 priority_fee;  // max_priority_fee_per_gas, wei
    friend bool operator==(const TransactionFees&, const TransactionFees&) = default;
};

// Fees for replacing a pending transaction that pays `old`: both fees at least 12.5% higher
// (rounded up; geth asks 10%, others 12.5%), and no lower than what the chain asks now
// (twice the next base fee plus the suggested tip). Empty when the caps leave no room for such a
// replacement: then the old transaction keeps waiting. Pure.
std::optional<TransactionFees> ReplacementFees(const TransactionFees& old, const FeeSuggestion& now,
                                               const U256& max_fee_cap,
                                               const U256& max_priority_fee_cap);

struct PayoutSenderConfig {
    std::uint64_t chain_id = 0;
    Address token{};
    std::uint64_t confirmations = 1;
    std::uint64_t gas_limit_cap = 150'000;
    U256 max_fee = U256(500'000'000'000);          // wei per gas
    U256 max_priority_fee = U256(50'000'000'000);  // wei per gas
    // Nonces per payout (each mined reverted, or taken by another transaction) before it is
    // kFailed. Fee replacements share their nonce and do not count.
    int max_attempts = 3;
    // Blocks a pending transaction waits before it is replaced with higher fees; 0: never.
    std::uint64_t replace_after_blocks = 20;
};

class PayoutSender {
  public:
    PayoutSender(ChainClient& chain, PayoutJournal& journal, const PrivateKey& treasury,
                 PayoutSenderConfig config);

    // Loads the journal's pending records and those of `also` (see PayoutJournal::Load); call
    // once before anything else. Find knows only what was loaded or prepared since.
    common::Status Start(const std::vector<std::string>& also = {});
    // Signs and journals a transfer for a new id (does not broadcast). A known id returns its
    // record unchanged; the same id with another recipient or amount is kConflict.
    asio::awaitable<common::Result<PayoutRecord>> Prepare(PayoutRequest request);
    // Prepare, then broadcast the current transaction.
    asio::awaitable<common::Result<PayoutRecord>> Submit(PayoutRequest request);
    // Advances every pending payout: receipts, confirmations, re-broadcasts, and replacements of
    // known-dead transactions. Returns the records that changed.
    asio::awaitable<common::Result<std::vector<PayoutRecord>>> Poll();

    const PayoutRecord* Find(const std::string& id) const;

  private:
    // Signs the next transfer of `record` (nonce not reserved until Commit).
    asio::awaitable<common::Result<PayoutAttempt>> SignTransfer(PayoutRecord record);
    // Signs `current` again with its nonce and higher fees; empty when the caps leave no room.
    asio::awaitable<common::Result<std::optional<PayoutAttempt>>> SignReplacement(
        PayoutAttempt current, std::uint64_t head);
    asio::awaitable<common::Status> Broadcast(PayoutAttempt attempt);
    // The record after one step, if it changed (already committed).
    asio::awaitable<common::Result<std::optional<PayoutRecord>>> Advance(PayoutRecord record,
                                                                         std::uint64_t head,
                                                                         std::uint64_t mined_nonce);
    // Journals the record, then adopts it in memory and reserves its nonces.
    common::Status Commit(const PayoutRecord& record);

    ChainClient& chain_;
    PayoutJournal& journal_;
    const PrivateKey& treasury_;
    PayoutSenderConfig config_;
    std::map<std::string, PayoutRecord> records_;
    std::uint64_t next_local_nonce_ = 0;
    bool started_ = false;
};

}  // namespace decloud::chain
