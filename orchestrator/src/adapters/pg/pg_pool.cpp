#include "orchestrator/adapters/pg/pg_pool.hpp"

#include <pqxx/pqxx>

#include <cstdio>
#include <ctime>

#include "pg_support.hpp"

namespace decloud::orchestrator::adapters::pg {

using common::Error;
using common::Result;

std::string ToPgTime(common::TimePoint t) {
    using namespace std::chrono;
    const auto us = duration_cast<microseconds>(t.time_since_epoch()).count();
    auto secs = us / 1'000'000;
    auto frac = us % 1'000'000;
    if (frac < 0) {
        frac += 1'000'000;
        --secs;
    }
    const std::time_t tt = static_cast<std::time_t>(secs);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02d %02d:%02d:%02d.%06lld+00", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<long long>(frac));
    return buf;
}

common::TimePoint FromMicros(long long micros) {
    return common::TimePoint{
        std::chrono::duration_cast<common::Duration>(std::chrono::microseconds{micros})};
}

PgPool::PgPool(std::string conninfo, std::size_t size)
    : conninfo_(std::move(conninfo)), size_(size) {}

PgPool::~PgPool() = default;

PgPool::Lease::Lease(PgPool* pool, std::unique_ptr<pqxx::connection> conn)
    : pool_(pool), conn_(std::move(conn)) {}

PgPool::Lease::Lease(Lease&& other) noexcept
    : pool_(other.pool_), conn_(std::move(other.conn_)), broken_(other.broken_) {
    other.pool_ = nullptr;
}

PgPool::Lease::~Lease() {
    if (pool_ && conn_) pool_->Return(std::move(conn_), broken_);
}

Result<PgPool::Lease> PgPool::Acquire(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (!idle_.empty()) {
            auto conn = std::move(idle_.back());
            idle_.pop_back();
            return Lease(this, std::move(conn));
        }
        if (open_ < size_) {
            ++open_;
            lock.unlock();
            try {
                auto conn = std::make_unique<pqxx::connection>(conninfo_);
                return Lease(this, std::move(conn));
            } catch (const std::exception& e) {
                lock.lock();
                --open_;
                available_.notify_one();
                return Error::Unavailable(std::string("cannot connect to PostgreSQL: ") + e.what());
            }
        }
        if (available_.wait_until(lock, deadline) == std::cv_status::timeout && idle_.empty() &&
            open_ >= size_)
            return Error::Unavailable("no database connection became free in time");
    }
}

void PgPool::Return(std::unique_ptr<pqxx::connection> conn, bool broken) {
    std::lock_guard lock(mutex_);
    if (broken || !conn->is_open()) {
        --open_;
        conn.reset();
    } else {
        idle_.push_back(std::move(conn));
    }
    available_.notify_one();
}

common::Status PgPool::Check() {
    auto r = InTransaction<bool>(*this, [](pqxx::work& tx) -> Result<bool> {
        tx.exec1("SELECT 1");
        return true;
    });
    if (!r) return r.error();
    return common::Ok();
}

Result<bool> HoldingAdvisoryLock(PgPool& pool, long long id, const std::function<void()>& body) {
    auto lease = pool.Acquire();
    if (!lease) return lease.error();
    try {
        {
            pqxx::nontransaction lock(lease->conn());
            if (!lock.exec_params1("SELECT pg_try_advisory_lock($1)", id)[0].as<bool>())
                return false;
        }
        try {
            body();
        } catch (...) {
            // The session lock dies with the connection.
            lease->MarkBroken();
            throw;
        }
        pqxx::nontransaction unlock(lease->conn());
        unlock.exec_params("SELECT pg_advisory_unlock($1)", id);
        return true;
    } catch (const pqxx::broken_connection& e) {
        lease->MarkBroken();
        return Error::Unavailable(std::string("database connection lost: ") + e.what());
    }
}

}  // namespace decloud::orchestrator::adapters::pg
