#include "orchestrator/adapters/pg/pg_chain_repository.hpp"

#include "pg_support.hpp"

namespace decloud::orchestrator::adapters::pg {

using common::Error;
using common::Result;
using domain::Amount;
using nlohmann::json;

namespace {

// Arbitrary but fixed, distinct from the metering lock: one replica scans deposits, one pays.
constexpr long long kDepositLockId = 0x636861696e646570;  // "chaindep"
constexpr long long kPayoutLockId = 0x636861696e706179;   // "chainpay"

constexpr const char* kLoadState = R"sql(
SELECT state::text FROM chain_deposit_scanner
WHERE chain_id = $1 AND token = $2 AND deposit_address = $3)sql";
constexpr const char* kSaveState = R"sql(
INSERT INTO chain_deposit_scanner (chain_id, token, deposit_address, state, updated_at)
VALUES ($1, $2, $3, $4::jsonb, now())
ON CONFLICT (chain_id, token, deposit_address) DO UPDATE
SET state = EXCLUDED.state, updated_at = now())sql";
constexpr const char* kClearPending = "DELETE FROM chain_pending_deposits WHERE chain_id = $1";
constexpr const char* kInsertPending = R"sql(
INSERT INTO chain_pending_deposits (chain_id, tx_hash, log_index, wallet, amount, block_number)
VALUES ($1, $2, $3, $4, $5::numeric, $6) ON CONFLICT DO NOTHING)sql";
// Pending means seen and not yet credited. The watcher credits a deposit (the ledger) before it
// saves the scanner state that drops the row here, so a row already credited is left out by its
// ledger key (domain::DepositKey) rather than shown twice, as pending and as balance.
constexpr const char* kPendingOf = R"sql(
SELECT p.tx_hash, p.log_index, p.block_number, p.wallet, p.amount::text
FROM chain_pending_deposits p
WHERE p.wallet = $1
  AND NOT EXISTS (SELECT 1 FROM ledger_transactions t
                  WHERE t.idempotency_key = 'deposit:' || p.chain_id || ':' || lower(p.tx_hash) ||
                                            ':' || p.log_index)
ORDER BY p.block_number, p.log_index)sql";

constexpr const char* kOperatorsWithEarnings = R"sql(
SELECT owner, sum(balance) FROM ledger_accounts
WHERE kind IN ('node_earnings', 'relay_earnings') AND currency = 'USDC'
GROUP BY owner HAVING sum(balance) >= $1 AND sum(balance) > 0 ORDER BY owner)sql";

// The final key of a payout is domain::PayoutFinalKey: "payout:<id>:final".
constexpr const char* kOpenPayouts = R"sql(
SELECT r.metadata->>'payoutId', r.metadata->>'wallet', r.metadata->>'amount'
FROM ledger_transactions r
WHERE r.kind = 'payout_reserve' AND NOT EXISTS (
    SELECT 1 FROM ledger_transactions f
    WHERE f.idempotency_key = 'payout:' || (r.metadata->>'payoutId') || ':final')
ORDER BY r.id)sql";
constexpr const char* kPayoutsOf = R"sql(
SELECT r.metadata->>'payoutId', r.metadata->>'amount',
       (extract(epoch FROM r.created_at) * 1000000)::bigint, coalesce(f.kind, ''),
       coalesce(j.status, ''), coalesce(j.tx_hash, '')
FROM ledger_transactions r
LEFT JOIN ledger_transactions f
       ON f.idempotency_key = 'payout:' || (r.metadata->>'payoutId') || ':final'
LEFT JOIN chain_payout_journal j ON j.payout_id = r.metadata->>'payoutId'
WHERE r.kind = 'payout_reserve' AND r.metadata->>'wallet' = $1
ORDER BY r.id DESC LIMIT $2)sql";

// One statement: one snapshot of the four amounts.
constexpr const char* kTotalsOf = R"sql(
SELECT
  coalesce((SELECT balance FROM ledger_accounts
            WHERE kind = 'node_earnings' AND owner = $1 AND currency = 'USDC'), 0),
  coalesce((SELECT balance FROM ledger_accounts
            WHERE kind = 'relay_earnings' AND owner = $1 AND currency = 'USDC'), 0),
  coalesce((SELECT balance FROM ledger_accounts
            WHERE kind = 'payouts_in_flight' AND owner = $1 AND currency = 'USDC'), 0),
  coalesce((SELECT sum(e.amount) FROM ledger_entries e
            JOIN ledger_accounts a ON a.id = e.account_id
            JOIN ledger_transactions t ON t.id = e.transaction_id
            WHERE t.kind = 'payout_settle' AND a.kind = 'payouts_in_flight' AND a.owner = $1
              AND a.currency = 'USDC'), 0)::bigint)sql";

constexpr const char* kLastBatch =
    "SELECT (extract(epoch FROM last_batch_at) * 1000000)::bigint FROM chain_payout_schedule";
constexpr const char* kSetLastBatch = R"sql(
INSERT INTO chain_payout_schedule (singleton, last_batch_at) VALUES (true, $1::timestamptz)
ON CONFLICT (singleton) DO UPDATE SET last_batch_at = EXCLUDED.last_batch_at)sql";

constexpr const char* kCountRefusal = R"sql(
INSERT INTO chain_payout_refusals (payout_id, refusals, last_error, updated_at)
VALUES ($1, 1, $2, now())
ON CONFLICT (payout_id) DO UPDATE
SET refusals = chain_payout_refusals.refusals + 1, last_error = EXCLUDED.last_error,
    updated_at = now()
RETURNING refusals)sql";
constexpr const char* kForgetRefusals = "DELETE FROM chain_payout_refusals WHERE payout_id = $1";

// Pending records (a partial index holds them) and the named ones (by primary key).
constexpr const char* kLoadJournal = R"sql(
SELECT record::text FROM chain_payout_journal
WHERE status = 'pending' OR payout_id = ANY(string_to_array(nullif($1, ''), ','))
ORDER BY payout_id)sql";
constexpr const char* kSaveJournal = R"sql(
INSERT INTO chain_payout_journal (payout_id, wallet, status, tx_hash, record, updated_at)
VALUES ($1, $2, $3, $4, $5::jsonb, now())
ON CONFLICT (payout_id) DO UPDATE
SET status = EXCLUDED.status, tx_hash = EXCLUDED.tx_hash, record = EXCLUDED.record,
    updated_at = now())sql";

std::string Lower(std::string text) {
    for (auto& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return text;
}

json HeaderToJson(const chain::BlockHeader& h) {
    return json{
        {"number", h.number},
        {"hash", chain::ToString(h.hash)},
        {"parentHash", chain::ToString(h.parent_hash)},
        {"baseFee", h.base_fee_per_gas ? json(h.base_fee_per_gas->ToDecimal()) : json(nullptr)}};
}

json DepositToJson(const chain::Deposit& d) {
    return json{{"tx", chain::ToString(d.transaction_hash)},
                {"logIndex", d.log_index},
                {"block", d.block_number},
                {"blockHash", chain::ToString(d.block_hash)},
                {"from", Lower(chain::ToString(d.from))},
                {"amount", d.amount.ToDecimal()}};
}

// The parsers throw (nlohmann's type errors, or std::runtime_error from Must); the public
// functions turn that into kInternal.
template <class T>
T Must(Result<T> r, const char* what) {
    if (!r) throw std::runtime_error(std::string(what) + ": " + r.error().message);
    return std::move(*r);
}

chain::BlockHeader HeaderFromJson(const json& j) {
    chain::BlockHeader h;
    h.number = j.at("number").get<std::uint64_t>();
    h.hash = Must(chain::ParseHash(j.at("hash").get<std::string>()), "hash");
    h.parent_hash = Must(chain::ParseHash(j.at("parentHash").get<std::string>()), "parentHash");
    if (!j.at("baseFee").is_null())
        h.base_fee_per_gas =
            Must(chain::U256::ParseDecimal(j.at("baseFee").get<std::string>()), "baseFee");
    return h;
}

chain::Deposit DepositFromJson(const json& j) {
    chain::Deposit d;
    d.transaction_hash = Must(chain::ParseHash(j.at("tx").get<std::string>()), "tx");
    d.log_index = j.at("logIndex").get<std::uint64_t>();
    d.block_number = j.at("block").get<std::uint64_t>();
    d.block_hash = Must(chain::ParseHash(j.at("blockHash").get<std::string>()), "blockHash");
    d.from = Must(chain::ParseAddress(j.at("from").get<std::string>()), "from");
    d.amount = Must(chain::U256::ParseDecimal(j.at("amount").get<std::string>()), "amount");
    return d;
}

template <class T>
Result<T> Guarded(const std::function<T()>& parse, const char* what) {
    try {
        return Result<T>(boost::system::in_place_value, parse());
    } catch (const std::exception& e) {
        return Error::Internal(std::string(what) + ": stored JSON does not parse: " + e.what());
    }
}

std::string PayoutTxHash(const chain::PayoutRecord& r) {
    if (r.mined_hash) return chain::ToString(*r.mined_hash);
    if (!r.attempts.empty()) return chain::ToString(r.attempts.back().hash);
    return "";
}

}  // namespace

json ScannerStateToJson(const chain::DepositScanner::State& state) {
    json recent = json::array();
    for (const auto& h : state.recent) recent.push_back(HeaderToJson(h));
    json pending = json::array();
    for (const auto& d : state.pending) pending.push_back(DepositToJson(d));
    json confirmed = json::array();
    for (const auto& [key, block] : state.confirmed_keys)
        confirmed.push_back(
            json{{"tx", chain::ToString(key.first)}, {"logIndex", key.second}, {"block", block}});
    return json{{"nextBlock", state.next_block},
                {"recent", std::move(recent)},
                {"pending", std::move(pending)},
                {"confirmed", std::move(confirmed)},
                {"finalBlock", state.final_block ? json(*state.final_block) : json(nullptr)}};
}

Result<chain::DepositScanner::State> ScannerStateFromJson(const json& j) {
    return Guarded<chain::DepositScanner::State>(
        [&] {
            chain::DepositScanner::State s;
            s.next_block = j.at("nextBlock").get<std::uint64_t>();
            for (const auto& h : j.at("recent")) s.recent.push_back(HeaderFromJson(h));
            for (const auto& d : j.at("pending")) s.pending.push_back(DepositFromJson(d));
            for (const auto& c : j.at("confirmed"))
                s.confirmed_keys[{Must(chain::ParseHash(c.at("tx").get<std::string>()), "tx"),
                                  c.at("logIndex").get<std::uint64_t>()}] =
                    c.at("block").get<std::uint64_t>();
            if (!j.at("finalBlock").is_null())
                s.final_block = j.at("finalBlock").get<std::uint64_t>();
            return s;
        },
        "deposit scanner state");
}

json PayoutRecordToJson(const chain::PayoutRecord& r) {
    json attempts = json::array();
    for (const auto& a : r.attempts)
        attempts.push_back(json{{"nonce", a.nonce},
                                {"hash", chain::ToString(a.hash)},
                                {"raw", chain::ToHexData(a.raw)},
                                {"signedAtBlock", a.signed_at_block}});
    return json{{"id", r.id},
                {"to", Lower(chain::ToString(r.to))},
                {"amount", r.amount.ToDecimal()},
                {"status", std::string(chain::ToString(r.status))},
                {"attempts", std::move(attempts)},
                {"minedHash", r.mined_hash ? json(chain::ToString(*r.mined_hash)) : json(nullptr)},
                {"minedBlock", r.mined_block}};
}

Result<chain::PayoutRecord> PayoutRecordFromJson(const json& j) {
    return Guarded<chain::PayoutRecord>(
        [&] {
            chain::PayoutRecord r;
            r.id = j.at("id").get<std::string>();
            r.to = Must(chain::ParseAddress(j.at("to").get<std::string>()), "to");
            r.amount = Must(chain::U256::ParseDecimal(j.at("amount").get<std::string>()), "amount");
            const auto status = j.at("status").get<std::string>();
            bool known = false;
            for (auto s : {chain::PayoutStatus::kPending, chain::PayoutStatus::kConfirmed,
                           chain::PayoutStatus::kFailed})
                if (chain::ToString(s) == status) {
                    r.status = s;
                    known = true;
                }
            if (!known) throw std::runtime_error("status: '" + status + "'");
            for (const auto& a : j.at("attempts")) {
                chain::PayoutAttempt attempt;
                attempt.nonce = a.at("nonce").get<std::uint64_t>();
                attempt.hash = Must(chain::ParseHash(a.at("hash").get<std::string>()), "hash");
                attempt.raw = Must(chain::ParseHexData(a.at("raw").get<std::string>()), "raw");
                // Absent in records journaled before it was kept.
                attempt.signed_at_block = a.value("signedAtBlock", std::uint64_t{0});
                r.attempts.push_back(std::move(attempt));
            }
            if (!j.at("minedHash").is_null())
                r.mined_hash =
                    Must(chain::ParseHash(j.at("minedHash").get<std::string>()), "minedHash");
            r.mined_block = j.at("minedBlock").get<std::uint64_t>();
            return r;
        },
        "payout journal");
}

Result<bool> PgChainRepository::WithLock(ports::ChainLock lock, const std::function<void()>& body) {
    return HoldingAdvisoryLock(
        pool_, lock == ports::ChainLock::kDeposits ? kDepositLockId : kPayoutLockId, body);
}

Result<std::optional<chain::DepositScanner::State>> PgChainRepository::LoadScannerState(
    const ports::DepositWatch& watch) {
    using Out = std::optional<chain::DepositScanner::State>;
    return InTransaction<Out>(pool_, [&](pqxx::work& tx) -> Result<Out> {
        const auto r = tx.exec_params(kLoadState, static_cast<long long>(watch.chain_id),
                                      watch.token, watch.deposit_address);
        if (r.empty()) return Out();
        auto parsed = Guarded<json>([&] { return json::parse(r[0][0].as<std::string>()); },
                                    "deposit scanner state");
        if (!parsed) return parsed.error();
        auto state = ScannerStateFromJson(*parsed);
        if (!state) return state.error();
        return Out(std::move(*state));
    });
}

common::Status PgChainRepository::SaveScannerState(const ports::DepositWatch& watch,
                                                   const chain::DepositScanner::State& state) {
    auto r = InTransaction<bool>(pool_, [&](pqxx::work& tx) -> Result<bool> {
        const auto chain_id = static_cast<long long>(watch.chain_id);
        tx.exec_params0(kSaveState, chain_id, watch.token, watch.deposit_address,
                        ScannerStateToJson(state).dump());
        tx.exec_params0(kClearPending, chain_id);
        for (const auto& d : state.pending)
            tx.exec_params0(kInsertPending, chain_id, chain::ToString(d.transaction_hash),
                            static_cast<long long>(d.log_index), Lower(chain::ToString(d.from)),
                            d.amount.ToDecimal(), static_cast<long long>(d.block_number));
        return true;
    });
    if (!r) return r.error();
    return common::Ok();
}

Result<std::vector<ports::PendingDeposit>> PgChainRepository::PendingDeposits(
    const std::string& wallet) {
    using Out = std::vector<ports::PendingDeposit>;
    return InTransaction<Out>(pool_, [&](pqxx::work& tx) -> Result<Out> {
        Out out;
        for (const auto& row : tx.exec_params(kPendingOf, Lower(wallet))) {
            ports::PendingDeposit d;
            d.tx_hash = row[0].as<std::string>();
            d.log_index = static_cast<std::uint64_t>(row[1].as<long long>());
            d.block_number = static_cast<std::uint64_t>(row[2].as<long long>());
            d.wallet = row[3].as<std::string>();
            auto amount = chain::U256::ParseDecimal(row[4].as<std::string>());
            if (!amount)
                return Error::Internal("pending deposit amount: " + amount.error().message);
            d.amount = *amount;
            out.push_back(std::move(d));
        }
        return out;
    });
}

Result<std::vector<ports::OperatorEarnings>> PgChainRepository::OperatorsWithEarnings(
    Amount minimum) {
    using Out = std::vector<ports::OperatorEarnings>;
    return InTransaction<Out>(pool_, [&](pqxx::work& tx) -> Result<Out> {
        Out out;
        for (const auto& row : tx.exec_params(kOperatorsWithEarnings, minimum.micros()))
            out.push_back({row[0].as<std::string>(), Amount::Micros(row[1].as<std::int64_t>())});
        return out;
    });
}

Result<std::vector<ports::OpenPayout>> PgChainRepository::OpenPayouts() {
    using Out = std::vector<ports::OpenPayout>;
    return InTransaction<Out>(pool_, [&](pqxx::work& tx) -> Result<Out> {
        Out out;
        for (const auto& row : tx.exec(kOpenPayouts)) {
            auto amount = domain::ParseAmount(row[2].as<std::string>(""));
            if (!amount) return Error::Internal("payout reserve without an amount");
            out.push_back({row[0].as<std::string>(""), row[1].as<std::string>(""), *amount});
        }
        return out;
    });
}

Result<ports::OperatorTotals> PgChainRepository::TotalsOf(const std::string& wallet) {
    return InTransaction<ports::OperatorTotals>(
        pool_, [&](pqxx::work& tx) -> Result<ports::OperatorTotals> {
            const auto row = tx.exec_params1(kTotalsOf, Lower(wallet));
            ports::OperatorTotals t;
            t.node_earnings = Amount::Micros(row[0].as<std::int64_t>());
            t.relay_earnings = Amount::Micros(row[1].as<std::int64_t>());
            t.in_flight = Amount::Micros(row[2].as<std::int64_t>());
            // Settles debit in flight: their entries there are negative.
            t.paid = Amount::Micros(-row[3].as<std::int64_t>());
            return t;
        });
}

Result<std::vector<ports::PayoutView>> PgChainRepository::PayoutsOf(const std::string& wallet,
                                                                    std::size_t limit) {
    using Out = std::vector<ports::PayoutView>;
    return InTransaction<Out>(pool_, [&](pqxx::work& tx) -> Result<Out> {
        Out out;
        for (const auto& row :
             tx.exec_params(kPayoutsOf, Lower(wallet), static_cast<long long>(limit))) {
            ports::PayoutView v;
            v.payout_id = row[0].as<std::string>("");
            auto amount = domain::ParseAmount(row[1].as<std::string>(""));
            if (!amount) return Error::Internal("payout reserve without an amount");
            v.amount = *amount;
            v.reserved_at = FromMicros(row[2].as<long long>());
            const auto final_kind = row[3].as<std::string>();
            v.state = final_kind == "payout_settle"   ? "settled"
                      : final_kind == "payout_cancel" ? "cancelled"
                                                      : "in_flight";
            v.chain_status = row[4].as<std::string>();
            v.tx_hash = row[5].as<std::string>();
            out.push_back(std::move(v));
        }
        return out;
    });
}

Result<std::optional<common::TimePoint>> PgChainRepository::LastPayoutBatch() {
    using Out = std::optional<common::TimePoint>;
    return InTransaction<Out>(pool_, [&](pqxx::work& tx) -> Result<Out> {
        const auto r = tx.exec(kLastBatch);
        if (r.empty()) return Out();
        return Out(FromMicros(r[0][0].as<long long>()));
    });
}

common::Status PgChainRepository::SetLastPayoutBatch(common::TimePoint at) {
    auto r = InTransaction<bool>(pool_, [&](pqxx::work& tx) -> Result<bool> {
        tx.exec_params0(kSetLastBatch, ToPgTime(at));
        return true;
    });
    if (!r) return r.error();
    return common::Ok();
}

Result<int> PgChainRepository::CountPayoutRefusal(const std::string& payout_id,
                                                  const std::string& error) {
    return InTransaction<int>(pool_, [&](pqxx::work& tx) -> Result<int> {
        return tx.exec_params1(kCountRefusal, payout_id, error)[0].as<int>();
    });
}

common::Status PgChainRepository::ForgetPayoutRefusals(const std::string& payout_id) {
    auto r = InTransaction<bool>(pool_, [&](pqxx::work& tx) -> Result<bool> {
        tx.exec_params0(kForgetRefusals, payout_id);
        return true;
    });
    if (!r) return r.error();
    return common::Ok();
}

Result<std::vector<chain::PayoutRecord>> PgPayoutJournal::Load(
    const std::vector<std::string>& also) {
    using Out = std::vector<chain::PayoutRecord>;
    std::string ids;
    for (const auto& id : also) {
        // Payout ids are ours ("batch-<seconds>-<wallet>"): a comma would split one in two.
        if (id.find(',') != std::string::npos)
            return Error::InvalidArgument("payout id with a comma: " + id);
        if (!ids.empty()) ids += ',';
        ids += id;
    }
    return InTransaction<Out>(pool_, [&](pqxx::work& tx) -> Result<Out> {
        Out out;
        for (const auto& row : tx.exec_params(kLoadJournal, ids)) {
            auto parsed = Guarded<json>([&] { return json::parse(row[0].as<std::string>()); },
                                        "payout journal");
            if (!parsed) return parsed.error();
            auto record = PayoutRecordFromJson(*parsed);
            if (!record) return record.error();
            out.push_back(std::move(*record));
        }
        return out;
    });
}

common::Status PgPayoutJournal::Save(const chain::PayoutRecord& record) {
    auto r = InTransaction<bool>(pool_, [&](pqxx::work& tx) -> Result<bool> {
        tx.exec_params0(kSaveJournal, record.id, Lower(chain::ToString(record.to)),
                        std::string(chain::ToString(record.status)), PayoutTxHash(record),
                        PayoutRecordToJson(record).dump());
        return true;
    });
    if (!r) return r.error();
    return common::Ok();
}

}  // namespace decloud::orchestrator::adapters::pg
