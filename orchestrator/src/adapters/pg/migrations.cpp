#include "orchestrator/adapters/pg/migrations.hpp"

#include <spdlog/spdlog.h>
#include <pqxx/pqxx>

#include <map>

#include "decloud/crypto/crypto.hpp"
#include "pg_support.hpp"

namespace decloud::orchestrator::adapters::pg {

using common::Error;

namespace {

// Arbitrary but fixed: every orchestrator takes this session lock to migrate.
constexpr long long kMigrationLockId = 0x6465636c6f7564;  // "decloud"

constexpr const char* kCreateMigrationsTable = R"sql(
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT clock_timestamp()
))sql";

}  // namespace

common::Status RunMigrations(PgPool& pool) {
    auto lease = pool.Acquire();
    if (!lease) return lease.error();
    auto& conn = lease->conn();
    bool locked = false;
    try {
        {
            pqxx::nontransaction lock_tx(conn);
            lock_tx.exec_params("SELECT pg_advisory_lock($1)", kMigrationLockId);
        }
        locked = true;
        std::map<int, std::string> applied;
        {
            pqxx::work tx(conn);
            tx.exec0(kCreateMigrationsTable);
            for (const auto& row : tx.exec("SELECT version, checksum FROM schema_migrations"))
                applied[row[0].as<int>()] = row[1].as<std::string>();
            tx.commit();
        }
        for (const auto& m : EmbeddedMigrations()) {
            const auto checksum = crypto::HexEncode(crypto::Sha256(m.sql));
            if (const auto it = applied.find(m.version); it != applied.end()) {
                if (it->second != checksum)
                    throw std::runtime_error(
                        "migration " + std::to_string(m.version) + " (" + m.name +
                        ") was changed after it was applied; add a new migration instead");
                continue;
            }
            pqxx::work tx(conn);
            tx.exec0(m.sql);
            tx.exec_params0(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                m.version, m.name, checksum);
            tx.commit();
            spdlog::info("applied migration {:04d} {}", m.version, m.name);
        }
        {
            pqxx::nontransaction unlock_tx(conn);
            unlock_tx.exec_params("SELECT pg_advisory_unlock($1)", kMigrationLockId);
        }
        return common::Ok();
    } catch (const pqxx::broken_connection& e) {
        lease->MarkBroken();
        return Error::Unavailable(std::string("database unreachable: ") + e.what());
    } catch (const std::exception& e) {
        // The session lock dies with the connection: do not hand it back to the pool.
        if (locked) lease->MarkBroken();
        return Error::Internal(std::string("migration failed: ") + e.what());
    }
}

}  // namespace decloud::orchestrator::adapters::pg
