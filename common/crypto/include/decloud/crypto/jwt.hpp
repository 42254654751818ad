#pragma once

// Session tokens: compact JWS with HMAC-SHA256 ("HS256" only; the algorithm is pinned, so
// "none" or anything else in a header is refused), with a key id so keys can be rotated while
// tokens signed with the previous key stay valid until they expire.

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "decloud/common/clock.hpp"
#include "decloud/common/result.hpp"
#include "decloud/crypto/crypto.hpp"

namespace decloud::crypto {

struct JwtClaims {
    std::string subject;   // sub: the wallet address
    std::string issuer;    // iss
    std::string audience;  // aud
    std::string token_id;  // jti: the session, for revocation
    std::string kind;      // "access" or "refresh"
    common::TimePoint issued_at{};
    common::TimePoint expires_at{};
    friend bool operator==(const JwtClaims&, const JwtClaims&) = default;
};

// Signing keys, newest first. Thread-safe to read once built.
class JwtKeyRing {
  public:
    struct Key {
        std::string id;
        Bytes secret;  // 32 random bytes
    };

    // A ring holding one fresh key.
    static JwtKeyRing Generate();
    // Loads "kid base64secret" lines (newest first) from a file that must be mode 0600;
    // creates it with one key if it does not exist.
    static common::Result<JwtKeyRing> LoadOrCreate(const std::string& path);
    // Adds a new signing key in front and keeps at most `keep` keys; writes the file atomically
    // (mode 0600) when `path` is given.
    common::Status Rotate(const std::string& path = {}, std::size_t keep = 2);

    const Key& signing_key() const { return keys_.front(); }
    const Key* Find(std::string_view id) const;
    std::size_t size() const { return keys_.size(); }

  private:
    common::Status Save(const std::string& path) const;
    std::vector<Key> keys_;
};

std::string SignJwt(const JwtClaims& claims, const JwtKeyRing& keys);

struct JwtExpectations {
    std::string issuer;
    std::string audience;
    std::string kind;
    common::TimePoint now{};
    common::Duration leeway = std::chrono::seconds{30};
};

// kUnauthenticated with the reason for any token that is malformed, not HS256, signed with an
// unknown key or wrongly, expired, not yet valid, or meant for another issuer, audience or kind.
common::Result<JwtClaims> VerifyJwt(std::string_view token, const JwtKeyRing& keys,
                                    const JwtExpectations& expected);

}  // namespace decloud::crypto
