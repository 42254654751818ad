#pragma once

#include "orchestrator/adapters/pg/pg_pool.hpp"
#include "orchestrator/ports/auth_repository.hpp"

namespace decloud::orchestrator::adapters::pg {

// AuthRepository on PostgreSQL: nonces and sessions visible to every replica.
class PgAuthRepository final : public ports::AuthRepository {
  public:
    explicit PgAuthRepository(PgPool& pool) : pool_(pool) {}

    // ports::AuthRepository
    common::Status StoreNonce(const std::string& nonce, common::TimePoint issued_at,
                              common::TimePoint expires_at) override;
    common::Status ConsumeNonce(const std::string& nonce, common::TimePoint now) override;
    common::Status CreateSession(const std::string& session_id, const std::string& wallet,
                                 const std::string& wallet_public_key_hex, common::TimePoint now,
                                 common::TimePoint expires_at) override;
    common::Result<bool> SessionActive(const std::string& session_id,
                                       common::TimePoint now) override;
    common::Status RevokeSession(const std::string& session_id, common::TimePoint now) override;
    common::Result<std::size_t> RevokeAllSessions(const std::string& wallet,
                                                  common::TimePoint now) override;

  private:
    PgPool& pool_;
};

}  // namespace decloud::orchestrator::adapters::pg
