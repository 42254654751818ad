#include "decloud/fakes/in_memory_auth_repository.hpp"

namespace decloud::fakes {

using common::Error;

common::Status InMemoryAuthRepository::StoreNonce(const std::string& nonce,
                                                  common::TimePoint /*issued_at*/,
                                                  common::TimePoint expires_at) {
    std::lock_guard lock(mutex_);
    if (!nonces_.emplace(nonce, Nonce{expires_at}).second)
        return Error::Conflict("nonce issued twice");
    return common::Ok();
}

common::Status InMemoryAuthRepository::ConsumeNonce(const std::string& nonce,
                                                    common::TimePoint now) {
    std::lock_guard lock(mutex_);
    const auto it = nonces_.find(nonce);
    if (it == nonces_.end()) return Error::NotFound("nonce not issued");
    if (it->second.used) return Error::Conflict("nonce already used");
    if (now >= it->second.expires_at) return Error::Timeout("nonce expired");
    it->second.used = true;
    return common::Ok();
}

common::Status InMemoryAuthRepository::CreateSession(const std::string& session_id,
                                                     const std::string& wallet,
                                                     const std::string& wallet_public_key_hex,
                                                     common::TimePoint /*now*/,
                                                     common::TimePoint expires_at) {
    std::lock_guard lock(mutex_);
    wallet_public_keys_[wallet] = wallet_public_key_hex;
    if (!sessions_.emplace(session_id, Session{wallet, expires_at, std::nullopt}).second)
        return Error::Conflict("session id reused");
    return common::Ok();
}

common::Result<bool> InMemoryAuthRepository::SessionActive(const std::string& session_id,
                                                           common::TimePoint now) {
    std::lock_guard lock(mutex_);
    const auto it = sessions_.find(session_id);
    return it != sessions_.end() && !it->second.revoked_at && now < it->second.expires_at;
}

common::Status InMemoryAuthRepository::RevokeSession(const std::string& session_id,
                                                     common::TimePoint now) {
    std::lock_guard lock(mutex_);
    const auto it = sessions_.find(session_id);
    if (it == sessions_.end()) return Error::NotFound("no session " + session_id);
    if (!it->second.revoked_at) it->second.revoked_at = now;
    return common::Ok();
}

common::Result<std::size_t> InMemoryAuthRepository::RevokeAllSessions(const std::string& wallet,
                                                                      common::TimePoint now) {
    std::lock_guard lock(mutex_);
    std::size_t n = 0;
    for (auto& [id, s] : sessions_) {
        if (s.wallet != wallet || s.revoked_at || now >= s.expires_at) continue;
        s.revoked_at = now;
        ++n;
    }
    return n;
}

std::size_t InMemoryAuthRepository::nonce_count() const {
    std::lock_guard lock(mutex_);
    return nonces_.size();
}

std::size_t InMemoryAuthRepository::session_count() const {
    std::lock_guard lock(mutex_);
    return sessions_.size();
}

std::optional<std::string> InMemoryAuthRepository::wallet_public_key(
    const std::string& wallet) const {
    std::lock_guard lock(mutex_);
    const auto it = wallet_public_keys_.find(wallet);
    if (it == wallet_public_keys_.end()) return std::nullopt;
    return it->second;
}

}  // namespace decloud::fakes
