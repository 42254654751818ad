#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "decloud/common/result.hpp"

#include <pqxx/connection>

namespace decloud::orchestrator::adapters::pg {

// A fixed-size pool of libpq connections, opened lazily. Blocking and thread-safe: use it from
// the blocking thread pool, never from an I/O thread.
class PgPool {
  public:
    PgPool(std::string conninfo, std::size_t size);
    ~PgPool();
    PgPool(const PgPool&) = delete;
    PgPool& operator=(const PgPool&) = delete;

    // A connection on loan; returned to the pool when destroyed. MarkBroken() drops it instead.
    class Lease {
      public:
        Lease(PgPool* pool, std::unique_ptr<pqxx::connection> conn);
        Lease(Lease&& other) noexcept;
        Lease& operator=(Lease&&) = delete;
        ~Lease();
        pqxx::connection& conn() { return *conn_; }
        void MarkBroken() { broken_ = true; }

      private:
        PgPool* pool_;
        std::unique_ptr<pqxx::connection> conn_;
        bool broken_ = false;
    };

    // kUnavailable if no connection frees up within `timeout` or the database cannot be reached.
    common::Result<Lease> Acquire(std::chrono::milliseconds timeout = std::chrono::seconds{10});
    // SELECT 1 on a pooled connection (readiness).
    common::Status Check();
    const std::string& conninfo() const { return conninfo_; }

  private:
    void Return(std::unique_ptr<pqxx::connection> conn, bool broken);

    std::string conninfo_;
    std::size_t size_;
    std::mutex mutex_;
    std::condition_variable available_;
    std::vector<std::unique_ptr<pqxx::connection>> idle_;
    std::size_t open_ = 0;  // connections in existence (idle or leased)
};

}  // namespace decloud::orchestrator::adapters::pg
