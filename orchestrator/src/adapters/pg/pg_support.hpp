#pragma once

// Private helpers of the PostgreSQL adapter: running a transaction with errors mapped to
// Result values, and time conversions (timestamps cross the wire as text and epoch micros).

#include <pqxx/pqxx>

#include <functional>
#include <string>

#include "decloud/common/clock.hpp"
#include "decloud/common/result.hpp"
#include "orchestrator/adapters/pg/pg_pool.hpp"

namespace decloud::orchestrator::adapters::pg {

// "YYYY-MM-DD HH:MM:SS.ffffff+00", which timestamptz input accepts exactly.
std::string ToPgTime(common::TimePoint t);
common::TimePoint FromMicros(long long micros);

// Runs `body` in one read-write transaction on a pooled connection and commits if it returns a
// value. Database failures become errors: unreachable -> kUnavailable, unique violation ->
// kConflict, anything else -> kInternal (with the server's message).
template <class T>
common::Result<T> InTransaction(PgPool& pool,
                                const std::function<common::Result<T>(pqxx::work&)>& body) {
    auto lease = pool.Acquire();
    if (!lease) return lease.error();
    try {
        pqxx::work tx(lease->conn());
        auto result = body(tx);
        if (result) tx.commit();
        return result;
    } catch (const pqxx::broken_connection& e) {
        lease->MarkBroken();
        return common::Error::Unavailable(std::string("database connection lost: ") + e.what());
    } catch (const pqxx::unique_violation& e) {
        return common::Error::Conflict(e.what());
    } catch (const pqxx::in_doubt_error& e) {
        lease->MarkBroken();
        return common::Error::Unavailable(std::string("commit outcome unknown: ") + e.what());
    } catch (const std::exception& e) {
        return common::Error::Internal(std::string("database: ") + e.what());
    }
}

// Runs `body` while holding the session advisory lock `id` on a pooled connection; false, without
// running it, when another session holds the lock (another replica does the work). A body that
// throws leaves the connection broken, so the lock dies with it.
common::Result<bool> HoldingAdvisoryLock(PgPool& pool, long long id,
                                         const std::function<void()>& body);

}  // namespace decloud::orchestrator::adapters::pg
