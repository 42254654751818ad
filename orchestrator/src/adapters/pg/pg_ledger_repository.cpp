#include "orchestrator/adapters/pg/pg_ledger_repository.hpp"

#include <algorithm>
#include <map>

#include "pg_support.hpp"

namespace decloud::orchestrator::adapters::pg {

using common::Error;
using common::Result;
using domain::Amount;
using nlohmann::json;

namespace {

// Arbitrary but fixed: one replica meters at a time ("billing").
constexpr long long kMeteringLockId = 0x62696c6c696e67;

constexpr const char* kInsertTransaction = R"sql(
INSERT INTO ledger_transactions (idempotency_key, kind, metadata, created_at)
VALUES ($1, $2, $3::jsonb, $4::timestamptz)
ON CONFLICT (idempotency_key) DO NOTHING RETURNING id)sql";

// Two statements on purpose: the SELECT must see an account another transaction just created.
constexpr const char* kEnsureAccount = R"sql(
INSERT INTO ledger_accounts (kind, owner, currency) VALUES ($1, $2, $3)
ON CONFLICT (kind, owner, currency) DO NOTHING)sql";
constexpr const char* kAccountId =
    "SELECT id FROM ledger_accounts WHERE kind = $1 AND owner = $2 AND currency = $3";

constexpr const char* kInsertEntry =
    "INSERT INTO ledger_entries (transaction_id, account_id, amount) VALUES ($1, $2, $3)";

constexpr const char* kTransactionColumns = R"sql(
SELECT id, idempotency_key, kind, metadata::text, (extract(epoch FROM created_at) * 1000000)::bigint
FROM ledger_transactions )sql";

constexpr const char* kEntriesOf = R"sql(
SELECT e.transaction_id, a.kind, a.owner, a.currency, e.amount
FROM ledger_entries e JOIN ledger_accounts a ON a.id = e.account_id
WHERE e.transaction_id = ANY (ARRAY(SELECT jsonb_array_elements_text($1::jsonb))::bigint[])
ORDER BY e.transaction_id, e.amount, a.id)sql";

constexpr const char* kTransactionsOf = R"sql(
WHERE id IN (SELECT e.transaction_id FROM ledger_entries e
             JOIN ledger_accounts a ON a.id = e.account_id WHERE a.owner = $1)
  AND ($2::bigint = 0 OR id < $2::bigint)
ORDER BY id DESC LIMIT $3)sql";

constexpr const char* kBalance =
    "SELECT balance FROM ledger_accounts WHERE kind = $1 AND owner = $2 AND currency = $3";
constexpr const char* kBalancesOf =
    "SELECT kind, owner, balance FROM ledger_accounts WHERE owner = $1 ORDER BY kind";

constexpr const char* kCountTransactions = "SELECT count(*) FROM ledger_transactions";
constexpr const char* kCountEntries = "SELECT count(*) FROM ledger_entries";
constexpr const char* kSumPerCurrency = R"sql(
SELECT a.currency, sum(e.amount)::text FROM ledger_entries e
JOIN ledger_accounts a ON a.id = e.account_id GROUP BY a.currency HAVING sum(e.amount) <> 0)sql";
constexpr const char* kUnbalancedTransactions = R"sql(
SELECT t.id, count(e.amount), coalesce(sum(e.amount), 0)::text FROM ledger_transactions t
LEFT JOIN ledger_entries e ON e.transaction_id = t.id
GROUP BY t.id HAVING coalesce(sum(e.amount), 0) <> 0 OR count(e.amount) < 2
ORDER BY t.id LIMIT 20)sql";
constexpr const char* kBadAccounts = R"sql(
SELECT a.kind, a.owner, a.balance, coalesce(sum(e.amount), 0)::text,
       a.balance::numeric <> coalesce(sum(e.amount), 0)
FROM ledger_accounts a LEFT JOIN ledger_entries e ON e.account_id = a.id
GROUP BY a.id
HAVING (a.kind <> 'treasury_in' AND coalesce(sum(e.amount), 0) < 0)
    OR a.balance::numeric <> coalesce(sum(e.amount), 0)
ORDER BY a.id LIMIT 20)sql";

constexpr const char* kMeteredUntil =
    "SELECT (extract(epoch FROM metered_until) * 1000000)::bigint FROM billing_metering";
constexpr const char* kSetMeteredUntil = R"sql(
INSERT INTO billing_metering (singleton, metered_until) VALUES (true, $1::timestamptz)
ON CONFLICT (singleton) DO UPDATE
SET metered_until = greatest(billing_metering.metered_until, EXCLUDED.metered_until))sql";
constexpr const char* kFirstVmEvent =
    "SELECT (extract(epoch FROM min(at)) * 1000000)::bigint FROM vm_events";

// VMs that ran at some point of [$1, $2): a state change inside, or running when it began.
constexpr const char* kMeterableVms = R"sql(
SELECT v.id::text, lower(v.owner_wallet), lower(coalesce(n.operator_wallet, '')),
       lower(coalesce(r.operator_wallet, '')), v.hourly_rate_micro_usdc
FROM vms v
LEFT JOIN nodes n ON n.id = v.node_id
LEFT JOIN nodes r ON r.id = v.relay_node_id
WHERE EXISTS (SELECT 1 FROM vm_events e
              WHERE e.vm_id = v.id AND e.at >= $1::timestamptz AND e.at < $2::timestamptz)
   OR (SELECT e.to_state FROM vm_events e WHERE e.vm_id = v.id AND e.at < $1::timestamptz
       ORDER BY e.at DESC, e.seq DESC LIMIT 1) = 'running'
ORDER BY v.id)sql";
constexpr const char* kHistories = R"sql(
SELECT vm_id::text, (extract(epoch FROM at) * 1000000)::bigint, to_state FROM vm_events
WHERE vm_id = ANY (ARRAY(SELECT jsonb_array_elements_text($1::jsonb))::uuid[])
  AND at < $2::timestamptz
ORDER BY vm_id, at, seq)sql";

constexpr const char* kRunningVms =
    "SELECT id::text, owner_wallet, hourly_rate_micro_usdc FROM vms WHERE state = 'running' "
    "ORDER BY owner_wallet, id";

constexpr const char* kInsertEvent = R"sql(
INSERT INTO billing_account_events (wallet, kind, dedupe_key, detail, at)
VALUES ($1, $2, $3, $4::jsonb, $5::timestamptz) ON CONFLICT (dedupe_key) DO NOTHING RETURNING id)sql";
constexpr const char* kAccountEvents = R"sql(
SELECT id, wallet, kind, detail::text, (extract(epoch FROM at) * 1000000)::bigint
FROM billing_account_events WHERE wallet = $1 ORDER BY id DESC LIMIT $2)sql";

domain::AccountRef AccountFrom(const pqxx::field& kind, const pqxx::field& owner) {
    const auto k = domain::ParseAccountKind(kind.as<std::string>());
    if (!k)
        throw std::runtime_error("unknown account kind in the ledger: " + kind.as<std::string>());
    return domain::AccountRef{*k, owner.as<std::string>()};
}

// Transactions by their rows (kTransactionColumns), with their entries.
std::vector<ports::PostedTransaction> LoadTransactions(pqxx::work& tx, const pqxx::result& rows) {
    std::vector<ports::PostedTransaction> out;
    json ids = json::array();
    std::map<std::int64_t, std::size_t> index;
    for (const auto& r : rows) {
        ports::PostedTransaction p;
        p.id = r[0].as<std::int64_t>();
        p.transaction.idempotency_key = r[1].as<std::string>();
        const auto kind = domain::ParseTransactionKind(r[2].as<std::string>());
        if (!kind) throw std::runtime_error("unknown transaction kind: " + r[2].as<std::string>());
        p.transaction.kind = *kind;
        p.transaction.metadata = json::parse(r[3].as<std::string>());
        p.transaction.created_at = FromMicros(r[4].as<long long>());
        index[p.id] = out.size();
        ids.push_back(std::to_string(p.id));
        out.push_back(std::move(p));
    }
    if (out.empty()) return out;
    for (const auto& r : tx.exec_params(kEntriesOf, ids.dump())) {
        auto& p = out[index.at(r[0].as<std::int64_t>())];
        p.transaction.currency = r[3].as<std::string>();
        p.transaction.entries.push_back(
            {AccountFrom(r[1], r[2]), Amount::Micros(r[4].as<std::int64_t>())});
    }
    return out;
}

std::optional<ports::PostedTransaction> LoadByKey(pqxx::work& tx, const std::string& key) {
    auto loaded = LoadTransactions(
        tx, tx.exec_params(std::string(kTransactionColumns) + "WHERE idempotency_key = $1", key));
    if (loaded.empty()) return std::nullopt;
    return std::move(loaded.front());
}

}  // namespace

Result<ports::PostedTransaction> PgLedgerRepository::Post(const domain::LedgerTransaction& ltx) {
    // Accounts are locked (by their balance update) in one global order, so two movements over
    // the same accounts never deadlock.
    std::vector<domain::Entry> ordered = ltx.entries;
    std::sort(ordered.begin(), ordered.end(), [](const domain::Entry& a, const domain::Entry& b) {
        return std::pair(static_cast<int>(a.account.kind), a.account.owner) <
               std::pair(static_cast<int>(b.account.kind), b.account.owner);
    });
    const auto body = [&](pqxx::work& tx) -> Result<ports::PostedTransaction> {
        const auto inserted = tx.exec_params(kInsertTransaction, ltx.idempotency_key,
                                             std::string(domain::ToString(ltx.kind)),
                                             ltx.metadata.dump(), ToPgTime(ltx.created_at));
        if (inserted.empty()) {
            auto existing = LoadByKey(tx, ltx.idempotency_key);
            if (!existing) return Error::Internal("ledger: idempotency key vanished");
            existing->replayed = true;
            return *existing;
        }
        ports::PostedTransaction posted;
        posted.id = inserted[0][0].as<std::int64_t>();
        posted.transaction = ltx;
        try {
            for (const auto& e : ordered) {
                const std::string kind(domain::ToString(e.account.kind));
                tx.exec_params0(kEnsureAccount, kind, e.account.owner, ltx.currency);
                const auto account =
                    tx.exec_params1(kAccountId, kind, e.account.owner, ltx.currency)[0]
                        .as<std::int64_t>();
                tx.exec_params0(kInsertEntry, posted.id, account, e.amount.micros());
            }
        } catch (const pqxx::check_violation& e) {
            return Error::Unprocessable(std::string("insufficient funds: ") + e.what());
        }
        return posted;
    };
    for (int attempt = 0;; ++attempt) {
        auto result = InTransaction<ports::PostedTransaction>(pool_, [&](pqxx::work& tx) {
            try {
                return body(tx);
            } catch (const pqxx::deadlock_detected& e) {
                return Result<ports::PostedTransaction>(
                    Error::Unavailable(std::string("deadlock: ") + e.what()));
            }
        });
        if (result || result.error().code != common::ErrorCode::kUnavailable ||
            result.error().message.rfind("deadlock", 0) != 0 || attempt >= 3)
            return result;
    }
}

Result<std::optional<ports::PostedTransaction>> PgLedgerRepository::FindByKey(
    const std::string& key) {
    return InTransaction<std::optional<ports::PostedTransaction>>(
        pool_, [&](pqxx::work& tx) -> Result<std::optional<ports::PostedTransaction>> {
            return LoadByKey(tx, key);
        });
}

Result<Amount> PgLedgerRepository::Balance(const domain::AccountRef& account) {
    return InTransaction<Amount>(pool_, [&](pqxx::work& tx) -> Result<Amount> {
        const auto r = tx.exec_params(kBalance, std::string(domain::ToString(account.kind)),
                                      account.owner, std::string(domain::kUsdc));
        if (r.empty()) return Amount::Micros(0);
        return Amount::Micros(r[0][0].as<std::int64_t>());
    });
}

Result<std::vector<ports::AccountBalance>> PgLedgerRepository::BalancesOf(
    const std::string& wallet) {
    return InTransaction<std::vector<ports::AccountBalance>>(
        pool_, [&](pqxx::work& tx) -> Result<std::vector<ports::AccountBalance>> {
            std::vector<ports::AccountBalance> out;
            for (const auto& r : tx.exec_params(kBalancesOf, wallet))
                out.push_back({AccountFrom(r[0], r[1]), Amount::Micros(r[2].as<std::int64_t>())});
            return out;
        });
}

Result<std::vector<ports::PostedTransaction>> PgLedgerRepository::TransactionsOf(
    const std::string& wallet, std::size_t limit, std::int64_t before_id) {
    return InTransaction<std::vector<ports::PostedTransaction>>(
        pool_, [&](pqxx::work& tx) -> Result<std::vector<ports::PostedTransaction>> {
            return LoadTransactions(
                tx, tx.exec_params(std::string(kTransactionColumns) + kTransactionsOf, wallet,
                                   before_id, static_cast<long long>(limit)));
        });
}

Result<ports::InvariantReport> PgLedgerRepository::CheckInvariants() {
    return InTransaction<ports::InvariantReport>(
        pool_, [&](pqxx::work& tx) -> Result<ports::InvariantReport> {
            ports::InvariantReport report;
            report.transactions = tx.exec1(kCountTransactions)[0].as<std::int64_t>();
            report.entries = tx.exec1(kCountEntries)[0].as<std::int64_t>();
            for (const auto& r : tx.exec(kSumPerCurrency))
                report.violations.push_back("entries in " + r[0].as<std::string>() + " sum to " +
                                            r[1].as<std::string>() + ", not 0");
            for (const auto& r : tx.exec(kUnbalancedTransactions))
                report.violations.push_back("transaction " + r[0].as<std::string>() + " has " +
                                            r[1].as<std::string>() + " entries summing to " +
                                            r[2].as<std::string>());
            for (const auto& r : tx.exec(kBadAccounts)) {
                const std::string name = domain::AccountName(AccountFrom(r[0], r[1]));
                if (r[4].as<bool>())
                    report.violations.push_back(
                        "account " + name + " caches " + r[2].as<std::string>() +
                        " but its entries sum to " + r[3].as<std::string>());
                else
                    report.violations.push_back("account " + name +
                                                " is overdrawn: " + r[3].as<std::string>());
            }
            return report;
        });
}

Result<bool> PgLedgerRepository::WithMeteringLock(const std::function<void()>& body) {
    return HoldingAdvisoryLock(pool_, kMeteringLockId, body);
}

Result<std::optional<common::TimePoint>> PgLedgerRepository::MeteredUntil() {
    return InTransaction<std::optional<common::TimePoint>>(
        pool_, [&](pqxx::work& tx) -> Result<std::optional<common::TimePoint>> {
            const auto r = tx.exec(kMeteredUntil);
            if (r.empty()) return std::optional<common::TimePoint>();
            return std::optional(FromMicros(r[0][0].as<long long>()));
        });
}

common::Status PgLedgerRepository::SetMeteredUntil(common::TimePoint until) {
    auto r = InTransaction<bool>(pool_, [&](pqxx::work& tx) -> Result<bool> {
        tx.exec_params0(kSetMeteredUntil, ToPgTime(until));
        return true;
    });
    if (!r) return r.error();
    return common::Ok();
}

Result<std::optional<common::TimePoint>> PgLedgerRepository::FirstVmEvent() {
    return InTransaction<std::optional<common::TimePoint>>(
        pool_, [&](pqxx::work& tx) -> Result<std::optional<common::TimePoint>> {
            const auto r = tx.exec1(kFirstVmEvent);
            if (r[0].is_null()) return std::optional<common::TimePoint>();
            return std::optional(FromMicros(r[0].as<long long>()));
        });
}

Result<std::vector<ports::MeterableVm>> PgLedgerRepository::MeterableVms(common::TimePoint from,
                                                                         common::TimePoint to) {
    return InTransaction<std::vector<ports::MeterableVm>>(
        pool_, [&](pqxx::work& tx) -> Result<std::vector<ports::MeterableVm>> {
            std::vector<ports::MeterableVm> out;
            std::map<std::string, std::size_t> index;
            json ids = json::array();
            for (const auto& r : tx.exec_params(kMeterableVms, ToPgTime(from), ToPgTime(to))) {
                ports::MeterableVm vm;
                vm.vm_id = r[0].as<std::string>();
                vm.owner_wallet = r[1].as<std::string>();
                vm.node_operator = r[2].as<std::string>();
                vm.relay_operator = r[3].as<std::string>();
                vm.hourly_rate = Amount::Micros(r[4].as<std::int64_t>());
                index[vm.vm_id] = out.size();
                ids.push_back(vm.vm_id);
                out.push_back(std::move(vm));
            }
            if (out.empty()) return out;
            for (const auto& r : tx.exec_params(kHistories, ids.dump(), ToPgTime(to))) {
                const auto state = domain::ParseVmState(r[2].as<std::string>());
                if (!state) continue;
                out[index.at(r[0].as<std::string>())].history.push_back(
                    {FromMicros(r[1].as<long long>()), *state});
            }
            return out;
        });
}

Result<std::vector<ports::RunningVm>> PgLedgerRepository::RunningVms() {
    return InTransaction<std::vector<ports::RunningVm>>(
        pool_, [&](pqxx::work& tx) -> Result<std::vector<ports::RunningVm>> {
            std::vector<ports::RunningVm> out;
            for (const auto& r : tx.exec(kRunningVms))
                out.push_back({r[0].as<std::string>(), r[1].as<std::string>(),
                               Amount::Micros(r[2].as<std::int64_t>())});
            return out;
        });
}

Result<bool> PgLedgerRepository::AddAccountEvent(const ports::AccountEvent& event,
                                                 const std::string& dedupe_key) {
    return InTransaction<bool>(pool_, [&](pqxx::work& tx) -> Result<bool> {
        return !tx.exec_params(kInsertEvent, event.wallet, event.kind, dedupe_key,
                               event.detail.dump(), ToPgTime(event.at))
                    .empty();
    });
}

Result<std::vector<ports::AccountEvent>> PgLedgerRepository::AccountEvents(
    const std::string& wallet, std::size_t limit) {
    return InTransaction<std::vector<ports::AccountEvent>>(
        pool_, [&](pqxx::work& tx) -> Result<std::vector<ports::AccountEvent>> {
            std::vector<ports::AccountEvent> out;
            for (const auto& r :
                 tx.exec_params(kAccountEvents, wallet, static_cast<long long>(limit))) {
                ports::AccountEvent e;
                e.id = r[0].as<std::int64_t>();
                e.wallet = r[1].as<std::string>();
                e.kind = r[2].as<std::string>();
                e.detail = json::parse(r[3].as<std::string>());
                e.at = FromMicros(r[4].as<long long>());
                out.push_back(std::move(e));
            }
            return out;
        });
}

}  // namespace decloud::orchestrator::adapters::pg
