#include "orchestrator/app/auth_service.hpp"

#include <algorithm>

#include "decloud/common/ids.hpp"
#include "decloud/crypto/ethereum.hpp"
#include "decloud/proto/siwe.hpp"

namespace decloud::orchestrator::app {

using common::Error;
using common::ErrorCode;
using common::Result;

namespace {

constexpr char kNonceAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

// 20 letters and digits (about 119 bits), without modulo bias.
std::string NewNonce() {
    std::string nonce;
    while (nonce.size() < 20) {
        for (auto b : crypto::RandomBytes(32)) {
            if (b < 248 && nonce.size() < 20) nonce.push_back(kNonceAlphabet[b % 62]);
        }
    }
    return nonce;
}

// "http://a:8080" admits itself and "http://a:8080/login", never "http://a:80801" or
// "http://a:8080.evil.example".
bool UriWithinOrigin(std::string_view uri, std::string_view origin) {
    while (!origin.empty() && origin.back() == '/') origin.remove_suffix(1);
    if (!uri.starts_with(origin)) return false;
    const auto rest = uri.substr(origin.size());
    return rest.empty() || rest.front() == '/' || rest.front() == '?' || rest.front() == '#';
}

Error Refused(std::string why) {
    return Error::Unauthenticated("sign-in refused: " + std::move(why));
}

}  // namespace

AuthService::AuthService(ports::AuthRepository& repository, const common::Clock& clock,
                         const crypto::JwtKeyRing& keys, AuthOptions options)
    : repository_(repository), clock_(clock), keys_(keys), options_(std::move(options)) {}

Result<IssuedNonce> AuthService::IssueNonce() {
    const auto now = clock_.Now();
    IssuedNonce issued{NewNonce(), now + options_.nonce_ttl};
    if (auto st = repository_.StoreNonce(issued.nonce, now, issued.expires_at); !st)
        return st.error();
    return issued;
}

Result<SignedIn> AuthService::Verify(std::string_view message, std::string_view signature) {
    auto m = proto::ParseSiweMessage(message);
    if (!m) return m.error();
    auto checksummed = crypto::NormalizeEthereumAddress(m->address);
    if (!checksummed || *checksummed != m->address)
        return Error::InvalidArgument(
            "SIWE message: address must be written in its EIP-55 checksum form");
    auto signer_key = crypto::RecoverPersonalSignPublicKey(message, signature);
    if (!signer_key) return signer_key.error();
    const auto signer = crypto::AddressFromPublicKey(*signer_key);
    if (signer != m->address)
        return Refused("the signature was made by " + signer + ", not by " + m->address);

    if (m->domain != options_.domain)
        return Refused("the message is for domain '" + m->domain + "', this is '" +
                       options_.domain + "'");
    if (!UriWithinOrigin(m->uri, options_.uri))
        return Refused("the message URI must be " + options_.uri + " or a path below it");
    if (std::find(options_.chain_ids.begin(), options_.chain_ids.end(), m->chain_id) ==
        options_.chain_ids.end())
        return Refused("chain id " + std::to_string(m->chain_id) + " is not accepted here");

    const auto now = clock_.Now();
    common::TimePoint issued_at, t;
    common::ParseRfc3339(m->issued_at, issued_at);
    if (issued_at > now + options_.clock_skew)
        return Refused("the message was issued in the future");
    if (m->expiration_time && common::ParseRfc3339(*m->expiration_time, t) &&
        t <= now - options_.clock_skew)
        return Refused("the message expired at " + *m->expiration_time);
    if (m->not_before && common::ParseRfc3339(*m->not_before, t) && t > now + options_.clock_skew)
        return Refused("the message is not valid before " + *m->not_before);

    if (auto st = repository_.ConsumeNonce(m->nonce, now); !st) {
        switch (st.error().code) {
            case ErrorCode::kNotFound:
                return Refused("the nonce was not issued by this service");
            case ErrorCode::kConflict:
                return Refused("the nonce was already used; request a new one");
            case ErrorCode::kTimeout:
                return Refused("the nonce expired; request a new one");
            default:
                return st.error();
        }
    }

    SignedIn out;
    out.wallet_address = m->address;
    const auto session = common::NewUuid();
    out.refresh_expires_at = now + options_.refresh_token_ttl;
    if (m->expiration_time && common::ParseRfc3339(*m->expiration_time, t))
        out.refresh_expires_at = std::min(out.refresh_expires_at, t);
    out.access_expires_at = std::min(now + options_.access_token_ttl, out.refresh_expires_at);
    if (auto st = repository_.CreateSession(session, m->address, crypto::HexEncode(*signer_key),
                                            now, out.refresh_expires_at);
        !st)
        return st.error();
    out.access_token = Mint(m->address, session, "access", now, out.access_expires_at);
    out.refresh_token = Mint(m->address, session, "refresh", now, out.refresh_expires_at);
    return out;
}

std::string AuthService::Mint(const std::string& wallet, const std::string& session,
                              std::string_view kind, common::TimePoint now,
                              common::TimePoint expires_at) const {
    crypto::JwtClaims c;
    c.subject = wallet;
    c.issuer = options_.uri;
    c.audience = options_.audience;
    c.token_id = session;
    c.kind = kind;
    c.issued_at = now;
    c.expires_at = expires_at;
    return crypto::SignJwt(c, keys_);
}

Result<crypto::JwtClaims> AuthService::CheckToken(std::string_view token, std::string_view kind) {
    const auto now = clock_.Now();
    auto claims = crypto::VerifyJwt(
        token, keys_,
        {options_.uri, options_.audience, std::string(kind), now, options_.clock_skew});
    if (!claims) return claims.error();
    auto active = repository_.SessionActive(claims->token_id, now);
    if (!active) return active.error();
    if (!*active) return Error::Unauthenticated("the session has ended; sign in again");
    return claims;
}

Result<SignedIn> AuthService::Refresh(std::string_view refresh_token) {
    auto claims = CheckToken(refresh_token, "refresh");
    if (!claims) return claims.error();
    const auto now = clock_.Now();
    SignedIn out;
    out.wallet_address = claims->subject;
    out.refresh_expires_at = claims->expires_at;
    out.access_expires_at = std::min(now + options_.access_token_ttl, claims->expires_at);
    out.access_token =
        Mint(claims->subject, claims->token_id, "access", now, out.access_expires_at);
    out.refresh_token = std::string(refresh_token);
    return out;
}

common::Status AuthService::Logout(std::string_view access_token) {
    auto claims = CheckToken(access_token, "access");
    if (!claims) return claims.error();
    return repository_.RevokeSession(claims->token_id, clock_.Now());
}

Result<Principal> AuthService::Authenticate(std::string_view access_token) {
    auto claims = CheckToken(access_token, "access");
    if (!claims) return claims.error();
    const bool admin = std::find(options_.admin_wallets.begin(), options_.admin_wallets.end(),
                                 claims->subject) != options_.admin_wallets.end();
    return Principal{claims->subject, claims->token_id, claims->expires_at, admin};
}

Result<std::size_t> AuthService::RevokeAllSessions(std::string_view wallet) {
    auto normalized = crypto::NormalizeEthereumAddress(wallet);
    if (!normalized) return normalized.error();
    return repository_.RevokeAllSessions(*normalized, clock_.Now());
}

}  // namespace decloud::orchestrator::app
