#pragma once

#include <string>

#include "decloud/common/clock.hpp"
#include "decloud/common/result.hpp"

namespace decloud::orchestrator::ports {

// Sign-in state shared by every replica. Blocking, thread-safe; times come from the caller.
class AuthRepository {
  public:
    virtual ~AuthRepository() = default;

    // Stores a freshly issued nonce (and purges nonces that expired a day ago).
    virtual common::Status StoreNonce(const std::string& nonce, common::TimePoint issued_at,
                                      common::TimePoint expires_at) = 0;
    // Marks the nonce used, once: kNotFound if we never issued it, kConflict if it was used,
    // kTimeout if it expired.
    virtual common::Status ConsumeNonce(const std::string& nonce, common::TimePoint now) = 0;

    // Records the user (first sign-in or again, with the public key recovered from the
    // signature) and a new session.
    virtual common::Status CreateSession(const std::string& session_id, const std::string& wallet,
                                         const std::string& wallet_public_key_hex,
                                         common::TimePoint now, common::TimePoint expires_at) = 0;
    // True while the session exists, is not revoked and has not expired.
    virtual common::Result<bool> SessionActive(const std::string& session_id,
                                               common::TimePoint now) = 0;
    virtual common::Status RevokeSession(const std::string& session_id, common::TimePoint now) = 0;
    // Revokes every active session of a wallet; returns how many there were.
    virtual common::Result<std::size_t> RevokeAllSessions(const std::string& wallet,
                                                          common::TimePoint now) = 0;
};

}  // namespace decloud::orchestrator::ports
