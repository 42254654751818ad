#include "decloud/chain/payout_sender.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "decloud/chain/abi.hpp"

namespace decloud::chain {

using common::Error;
using common::ErrorCode;
using common::Result;
using common::Status;

std::string_view ToString(PayoutStatus status) {
    switch (status) {
        case PayoutStatus::kPending:
            return "pending";
        case PayoutStatus::kConfirmed:
            return "confirmed";
        case PayoutStatus::kFailed:
            return "failed";
    }
    return "pending";
}

namespace {

json ToJson(const PayoutRecord& r) {
    json attempts = json::array();
    for (const auto& a : r.attempts)
        attempts.push_back({{"nonce", a.nonce},
                            {"hash", ToString(a.hash)},
                            {"raw", ToHexData(a.raw)},
                            {"signed_at_block", a.signed_at_block}});
    json out = {{"id", r.id},
                {"to", ToString(r.to)},
                {"amount", r.amount.ToDecimal()},
                {"status", std::string(ToString(r.status))},
                {"attempts", attempts},
                {"mined_block", r.mined_block}};
    if (r.mined_hash) out["mined_hash"] = ToString(*r.mined_hash);
    return out;
}

Result<PayoutRecord> FromJson(const json& j) {
    try {
        PayoutRecord r;
        r.id = j.at("id").get<std::string>();
        auto to = ParseAddress(j.at("to").get<std::string>());
        auto amount = U256::ParseDecimal(j.at("amount").get<std::string>());
        if (!to || !amount) return Error::Internal("payout journal: bad recipient or amount");
        r.to = *to;
        r.amount = *amount;
        const auto status = j.at("status").get<std::string>();
        if (status == "pending") {
            r.status = PayoutStatus::kPending;
        } else if (status == "confirmed") {
            r.status = PayoutStatus::kConfirmed;
        } else if (status == "failed") {
            r.status = PayoutStatus::kFailed;
        } else {
            return Error::Internal("payout journal: unknown status " + status);
        }
        for (const auto& a : j.at("attempts")) {
            auto hash = ParseHash(a.at("hash").get<std::string>());
            auto raw = ParseHexData(a.at("raw").get<std::string>());
            if (!hash || !raw) return Error::Internal("payout journal: bad attempt");
            r.attempts.push_back({a.at("nonce").get<std::uint64_t>(), *hash, std::move(*raw),
                                  a.value("signed_at_block", std::uint64_t{0})});
        }
        r.mined_block = j.at("mined_block").get<std::uint64_t>();
        if (j.contains("mined_hash")) {
            auto hash = ParseHash(j["mined_hash"].get<std::string>());
            if (!hash) return Error::Internal("payout journal: bad mined hash");
            r.mined_hash = *hash;
        }
        return r;
    } catch (const json::exception& e) {
        return Error::Internal(std::string("payout journal: ") + e.what());
    }
}

Status WriteDurably(const std::string& path, const std::string& content) {
    const std::string tmp = path + ".tmp";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return Error::Unavailable("payout journal " + tmp + ": " + std::strerror(errno));
    std::size_t done = 0;
    while (done < content.size()) {
        const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            ::close(fd);
            return Error::Unavailable("payout journal write: " + std::string(std::strerror(errno)));
        }
        done += static_cast<std::size_t>(n);
    }
    if (::fsync(fd) != 0) {
        ::close(fd);
        return Error::Unavailable("payout journal fsync: " + std::string(std::strerror(errno)));
    }
    ::close(fd);
    if (::rename(tmp.c_str(), path.c_str()) != 0)
        return Error::Unavailable("payout journal rename: " + std::string(std::strerror(errno)));
    const auto dir = std::filesystem::path(path).parent_path();
    const int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
    }
    return common::Ok();
}

// old + old/8, rounded up: a 12.5% bump.
std::optional<U256> Bumped(const U256& old) {
    const auto [eighth, rest] = old.DivMod(8);
    auto up = eighth.Add(U256(rest == 0 ? 0 : 1));
    return up ? old.Add(*up) : std::nullopt;
}

// Distinct nonces a payout has used: fee replacements share theirs.
int NoncesUsed(const PayoutRecord& record) {
    int n = 0;
    for (std::size_t i = 0; i < record.attempts.size(); ++i)
        if (i == 0 || record.attempts[i].nonce != record.attempts[i - 1].nonce) ++n;
    return n;
}

}  // namespace

std::optional<TransactionFees> ReplacementFees(const TransactionFees& old, const FeeSuggestion& now,
                                               const U256& max_fee_cap,
                                               const U256& max_priority_fee_cap) {
    const auto min_tip = Bumped(old.priority_fee);
    const auto min_fee = Bumped(old.max_fee);
    if (!min_tip || !min_fee) return std::nullopt;
    const U256 tip = std::max(*min_tip, std::min(now.priority_fee, max_priority_fee_cap));
    if (tip > max_priority_fee_cap) return std::nullopt;
    auto asked = now.base_fee.Mul(2);
    if (asked) asked = asked->Add(tip);
    const U256 wanted = asked ? std::max(*min_fee, *asked) : max_fee_cap;
    const U256 fee = std::min(wanted, max_fee_cap);
    if (fee < *min_fee || fee < tip) return std::nullopt;
    return TransactionFees{fee, tip};
}

Result<std::vector<PayoutRecord>> FilePayoutJournal::Load(const std::vector<std::string>&) {
    std::map<std::string, PayoutRecord> records;
    std::ifstream in(path_);
    if (in) {
        std::stringstream text;
        text << in.rdbuf();
        const json j = json::parse(text.str(), nullptr, false);
        if (j.is_discarded() || !j.is_object() || !j.contains("records") ||
            !j["records"].is_array())
            return Error::Internal("payout journal " + path_ + " is corrupt");
        for (const auto& item : j["records"]) {
            auto record = FromJson(item);
            if (!record) return record.error();
            records[record->id] = std::move(*record);
        }
    }
    std::vector<PayoutRecord> out;
    for (const auto& [id, r] : records) out.push_back(r);
    records_ = std::move(records);
    return out;
}

Status FilePayoutJournal::Save(const PayoutRecord& record) {
    if (!records_) {
        auto loaded = Load({});
        if (!loaded) return loaded.error();
    }
    auto next = *records_;
    next[record.id] = record;
    json j = {{"records", json::array()}};
    for (const auto& [id, r] : next) j["records"].push_back(ToJson(r));
    if (auto st = WriteDurably(path_, j.dump(2)); !st) return st;
    records_ = std::move(next);
    return common::Ok();
}

PayoutSender::PayoutSender(ChainClient& chain, PayoutJournal& journal, const PrivateKey& treasury,
                           PayoutSenderConfig config)
    : chain_(chain), journal_(journal), treasury_(treasury), config_(config) {}

Status PayoutSender::Start(const std::vector<std::string>& also) {
    auto loaded = journal_.Load(also);
    if (!loaded) return loaded.error();
    records_.clear();
    next_local_nonce_ = 0;
    for (auto& r : *loaded) {
        for (const auto& a : r.attempts)
            next_local_nonce_ = std::max(next_local_nonce_, a.nonce + 1);
        records_[r.id] = std::move(r);
    }
    started_ = true;
    return common::Ok();
}

const PayoutRecord* PayoutSender::Find(const std::string& id) const {
    auto it = records_.find(id);
    return it == records_.end() ? nullptr : &it->second;
}

Status PayoutSender::Commit(const PayoutRecord& record) {
    if (auto st = journal_.Save(record); !st) return st;
    for (const auto& a : record.attempts)
        next_local_nonce_ = std::max(next_local_nonce_, a.nonce + 1);
    records_[record.id] = record;
    return common::Ok();
}

asio::awaitable<Result<PayoutAttempt>> PayoutSender::SignTransfer(PayoutRecord record) {
    auto head_op = chain_.BlockNumber();
    auto head = co_await std::move(head_op);
    if (!head) co_return head.error();
    auto nonce_op = chain_.GetTransactionCount(treasury_.address(), BlockTag::kPending);
    auto chain_nonce = co_await std::move(nonce_op);
    if (!chain_nonce) co_return chain_nonce.error();
    const std::uint64_t nonce = std::max(*chain_nonce, next_local_nonce_);

    CallRequest call;
    call.from = treasury_.address();
    call.to = config_.token;
    call.data = abi::EncodeTransfer(record.to, record.amount);
    auto gas_op = chain_.EstimateGas(call);
    auto estimate = co_await std::move(gas_op);
    if (!estimate) co_return estimate.error();
    const std::uint64_t gas = *estimate + *estimate / 5;
    if (gas > config_.gas_limit_cap)
        co_return Error::Unprocessable("payout " + record.id + ": gas " + std::to_string(gas) +
                                       " above the cap " + std::to_string(config_.gas_limit_cap));

    auto fees_op = chain_.SuggestFees();
    auto fees = co_await std::move(fees_op);
    if (!fees) co_return fees.error();
    const U256 tip = std::min(fees->priority_fee, config_.max_priority_fee);
    auto wanted = fees->base_fee.Mul(2);
    const U256 max_fee =
        wanted && wanted->Add(tip) ? std::min(*wanted->Add(tip), config_.max_fee) : config_.max_fee;
    auto needed = fees->base_fee.Add(tip);
    if (!needed || *needed > max_fee)
        co_return Error::Unavailable("payout " + record.id + ": base fee " +
                                     fees->base_fee.ToDecimal() + " wei is above the fee cap");

    Eip1559Transaction tx;
    tx.chain_id = config_.chain_id;
    tx.nonce = nonce;
    tx.max_priority_fee_per_gas = tip;
    tx.max_fee_per_gas = max_fee;
    tx.gas_limit = gas;
    tx.to = config_.token;
    tx.data = std::move(call.data);
    auto signed_tx = Sign(tx, treasury_);
    co_return PayoutAttempt{nonce, signed_tx.hash, std::move(signed_tx.raw), *head};
}

asio::awaitable<Result<std::optional<PayoutAttempt>>> PayoutSender::SignReplacement(
    PayoutAttempt current, std::uint64_t head) {
    // The same transfer (nonce, gas, recipient, amount) as signed before; only the fees change.
    auto decoded = DecodeSignedEip1559(current.raw);
    if (!decoded) co_return Error::Internal("payout journal holds an undecodable transaction");
    if (decoded->sender != treasury_.address() || decoded->tx.nonce != current.nonce)
        co_return Error::Internal("payout journal holds a transaction of another key or nonce");
    auto fees_op = chain_.SuggestFees();
    auto now = co_await std::move(fees_op);
    if (!now) co_return now.error();
    const auto fees =
        ReplacementFees({decoded->tx.max_fee_per_gas, decoded->tx.max_priority_fee_per_gas}, *now,
                        config_.max_fee, config_.max_priority_fee);
    if (!fees) co_return std::optional<PayoutAttempt>{};
    Eip1559Transaction tx = std::move(decoded->tx);
    tx.max_fee_per_gas = fees->max_fee;
    tx.max_priority_fee_per_gas = fees->priority_fee;
    auto signed_tx = Sign(tx, treasury_);
    co_return PayoutAttempt{current.nonce, signed_tx.hash, std::move(signed_tx.raw), head};
}

asio::awaitable<Status> PayoutSender::Broadcast(PayoutAttempt attempt) {
    auto op = chain_.SendRawTransaction(attempt.raw);
    auto sent = co_await std::move(op);
    if (sent) {
        if (*sent != attempt.hash)
            co_return Error::Internal("node reports another hash for our transaction");
        co_return common::Ok();
    }
    // The node refusing a transaction it already has, or whose nonce is used, is not a failure
    // of the payout: Poll() decides from receipts and nonces what happened.
    if (sent.error().code == ErrorCode::kUnprocessable) co_return common::Ok();
    co_return sent.error();
}

asio::awaitable<Result<PayoutRecord>> PayoutSender::Prepare(PayoutRequest request) {
    if (!started_) co_return Error::Internal("payout sender not started");
    if (auto* known = Find(request.id)) {
        if (known->to != request.to || known->amount != request.amount)
            co_return Error::Conflict("payout " + request.id +
                                      " exists with another recipient or amount");
        co_return *known;
    }
    if (request.amount.IsZero()) co_return Error::InvalidArgument("payout amount must be > 0");
    PayoutRecord record;
    record.id = request.id;
    record.to = request.to;
    record.amount = request.amount;
    auto sign_op = SignTransfer(record);
    auto attempt = co_await std::move(sign_op);
    if (!attempt) co_return attempt.error();
    record.attempts.push_back(std::move(*attempt));
    // Durable before it can ever reach the network.
    if (auto st = Commit(record); !st) co_return st.error();
    co_return record;
}

asio::awaitable<Result<PayoutRecord>> PayoutSender::Submit(PayoutRequest request) {
    const bool known = Find(request.id) != nullptr;
    auto prepare_op = Prepare(std::move(request));
    auto record = co_await std::move(prepare_op);
    if (!record || known) co_return record;
    auto send_op = Broadcast(record->attempts.back());
    auto st = co_await std::move(send_op);
    if (!st) co_return st.error();
    co_return record;
}

asio::awaitable<Result<std::optional<PayoutRecord>>> PayoutSender::Advance(
    PayoutRecord record, std::uint64_t head, std::uint64_t mined_nonce) {
    using Changed = std::optional<PayoutRecord>;
    for (auto it = record.attempts.rbegin(); it != record.attempts.rend(); ++it) {
        auto receipt_op = chain_.GetTransactionReceipt(it->hash);
        auto receipt = co_await std::move(receipt_op);
        if (!receipt) co_return receipt.error();
        if (!*receipt) continue;
        const Receipt r = **receipt;
        if (head < r.block_number || head - r.block_number + 1 < config_.confirmations)
            co_return Changed{};  // mined, not deep enough yet
        record.mined_hash = it->hash;
        record.mined_block = r.block_number;
        if (r.success) {
            record.status = PayoutStatus::kConfirmed;
        } else if (NoncesUsed(record) >= config_.max_attempts) {
            record.status = PayoutStatus::kFailed;
        } else {
            // Reverted: the nonce is used up and nothing moved; a new transaction may go out.
            auto sign_op = SignTransfer(record);
            auto attempt = co_await std::move(sign_op);
            if (!attempt) co_return attempt.error();
            record.attempts.push_back(std::move(*attempt));
            record.mined_hash.reset();
            record.mined_block = 0;
        }
        if (auto st = Commit(record); !st) co_return st.error();
        if (record.status == PayoutStatus::kPending) {
            auto send_op = Broadcast(record.attempts.back());
            if (auto st = co_await std::move(send_op); !st) co_return st.error();
        }
        co_return Changed(record);
    }
    const PayoutAttempt current = record.attempts.back();
    if (mined_nonce <= current.nonce) {
        // Not mined and its nonce still free: alive, maybe dropped by the node, maybe offering
        // too little for the chain's fees now. Send it again, or once it has waited long enough,
        // a replacement with the same nonce and higher fees.
        const bool waited_long = config_.replace_after_blocks > 0 &&
                                 head >= current.signed_at_block + config_.replace_after_blocks;
        if (waited_long) {
            auto replace_op = SignReplacement(current, head);
            auto replacement = co_await std::move(replace_op);
            if (!replacement) co_return replacement.error();
            if (*replacement) {
                record.attempts.push_back(std::move(**replacement));
                // Durable before it can reach the network, like every signed transaction.
                if (auto st = Commit(record); !st) co_return st.error();
                auto send_op = Broadcast(record.attempts.back());
                if (auto st = co_await std::move(send_op); !st) co_return st.error();
                co_return Changed(record);
            }
        }
        auto send_op = Broadcast(current);
        if (auto st = co_await std::move(send_op); !st) co_return st.error();
        co_return Changed{};
    }
    // The nonce was consumed and none of our transactions has a receipt. Before calling them
    // dead, make sure the node does not know any of them either (a receipt can lag behind).
    for (const auto& a : record.attempts) {
        auto known_op = chain_.TransactionKnown(a.hash);
        auto known = co_await std::move(known_op);
        if (!known) co_return known.error();
        if (*known) co_return Changed{};
    }
    if (NoncesUsed(record) >= config_.max_attempts) {
        record.status = PayoutStatus::kFailed;
        if (auto st = Commit(record); !st) co_return st.error();
        co_return Changed(record);
    }
    auto sign_op = SignTransfer(record);
    auto attempt = co_await std::move(sign_op);
    if (!attempt) co_return attempt.error();
    record.attempts.push_back(std::move(*attempt));
    if (auto st = Commit(record); !st) co_return st.error();
    auto send_op = Broadcast(record.attempts.back());
    if (auto st = co_await std::move(send_op); !st) co_return st.error();
    co_return Changed(record);
}

asio::awaitable<Result<std::vector<PayoutRecord>>> PayoutSender::Poll() {
    if (!started_) co_return Error::Internal("payout sender not started");
    // The mined nonce is read before any receipt, so "no receipt" below means "not ours".
    auto nonce_op = chain_.GetTransactionCount(treasury_.address(), BlockTag::kLatest);
    auto mined_nonce = co_await std::move(nonce_op);
    if (!mined_nonce) co_return mined_nonce.error();
    auto head_op = chain_.BlockNumber();
    auto head = co_await std::move(head_op);
    if (!head) co_return head.error();
    std::vector<std::string> pending;
    for (const auto& [id, record] : records_) {
        if (record.status == PayoutStatus::kPending) pending.push_back(id);
    }
    std::vector<PayoutRecord> changed;
    for (const auto& id : pending) {
        auto op = Advance(records_.at(id), *head, *mined_nonce);
        auto moved = co_await std::move(op);
        if (!moved) co_return moved.error();
        if (*moved) changed.push_back(std::move(**moved));
    }
    co_return changed;
}

}  // namespace decloud::chain
