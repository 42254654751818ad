#pragma once

#include <map>
#include <mutex>
#include <optional>

#include "orchestrator/ports/auth_repository.hpp"

namespace decloud::fakes {

// AuthRepository in memory, for unit tests of sign-in logic; follows the port's semantics.
class InMemoryAuthRepository final : public orchestrator::ports::AuthRepository {
  public:
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

    std::size_t nonce_count() const;
    std::size_t session_count() const;
    std::optional<std::string> wallet_public_key(const std::string& wallet) const;

  private:
    struct Nonce {
        common::TimePoint expires_at;
        bool used = false;
    };
    struct Session {
        std::string wallet;
        common::TimePoint expires_at;
        std::optional<common::TimePoint> revoked_at;
    };
    mutable std::mutex mutex_;
    std::map<std::string, Nonce> nonces_;
    std::map<std::string, Session> sessions_;
    std::map<std::string, std::string> wallet_public_keys_;
};

}  // namespace decloud::fakes
