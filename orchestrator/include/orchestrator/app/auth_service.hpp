#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "decloud/common/clock.hpp"
#include "decloud/common/result.hpp"
#include "decloud/crypto/jwt.hpp"
#include "orchestrator/ports/auth_repository.hpp"

namespace decloud::orchestrator::app {

struct AuthOptions {
    std::string domain = "127.0.0.1:8080";      // the SIWE domain (RFC 3986 authority) of this API
    std::string uri = "http://127.0.0.1:8080";  // messages' URI must start with this origin
    std::vector<std::uint64_t> chain_ids{137, 31337};
    std::string audience = "decloud-api";
    common::Duration nonce_ttl = std::chrono::minutes{5};
    common::Duration access_token_ttl = std::chrono::minutes{15};
    common::Duration refresh_token_ttl = std::chrono::hours{24 * 7};
    common::Duration clock_skew = std::chrono::seconds{60};
    std::vector<std::string> admin_wallets;  // EIP-55 form; may run platform operations
};

struct IssuedNonce {
    std::string nonce;
    common::TimePoint expires_at{};
};

struct SignedIn {
    std::string wallet_address;
    std::string access_token;
    std::string refresh_token;
    common::TimePoint access_expires_at{};
    common::TimePoint refresh_expires_at{};
};

struct Principal {
    std::string wallet_address;
    std::string session_id;
    common::TimePoint expires_at{};
    bool admin = false;
};

// Sign-In with Ethereum and sessions. Every method may touch the repository: run it off the I/O
// threads. Failures of authentication are kUnauthenticated with the reason.
class AuthService {
  public:
    AuthService(ports::AuthRepository& repository, const common::Clock& clock,
                const crypto::JwtKeyRing& keys, AuthOptions options);

    common::Result<IssuedNonce> IssueNonce();
    // Checks the message strictly and the personal_sign signature, binds it to this
    // orchestrator (domain, URI, chain), spends the nonce and opens a session.
    common::Result<SignedIn> Verify(std::string_view message, std::string_view signature);
    // A new access token for the session of a valid refresh token.
    common::Result<SignedIn> Refresh(std::string_view refresh_token);
    common::Status Logout(std::string_view access_token);
    common::Result<Principal> Authenticate(std::string_view access_token);
    // Admin operation: ends every session of `wallet` (a stolen token stops working at once).
    common::Result<std::size_t> RevokeAllSessions(std::string_view wallet);

    const AuthOptions& options() const { return options_; }

  private:
    common::Result<crypto::JwtClaims> CheckToken(std::string_view token, std::string_view kind);
    std::string Mint(const std::string& wallet, const std::string& session, std::string_view kind,
                     common::TimePoint now, common::TimePoint expires_at) const;

    ports::AuthRepository& repository_;
    const common::Clock& clock_;
    const crypto::JwtKeyRing& keys_;
    AuthOptions options_;
};

}  // namespace decloud::orchestrator::app
