#include "decloud/crypto/jwt.hpp"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "decloud/common/ids.hpp"

namespace decloud::crypto {

using common::Error;
using common::Result;
using nlohmann::json;

namespace {

std::string Base64Url(std::string_view data) {
    auto text =
        Base64Encode(std::span(reinterpret_cast<const std::uint8_t*>(data.data()), data.size()));
    for (auto& c : text) {
        if (c == '+') c = '-';
        if (c == '/') c = '_';
    }
    while (!text.empty() && text.back() == '=') text.pop_back();
    return text;
}

Result<std::string> FromBase64Url(std::string_view text) {
    for (char c : text) {
        if (c == '+' || c == '/' || c == '=')
            return Error::Unauthenticated("token is not base64url");
    }
    auto bytes = Base64Decode(text);
    if (!bytes) return Error::Unauthenticated("token is not base64url");
    return std::string(bytes->begin(), bytes->end());
}

std::string Hmac(const Bytes& secret, std::string_view data) {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
         reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
    return std::string(reinterpret_cast<const char*>(out), len);
}

std::int64_t Seconds(common::TimePoint t) {
    return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

JwtKeyRing::Key NewKey() { return {common::RandomHex(8), RandomBytes(32)}; }

}  // namespace

JwtKeyRing JwtKeyRing::Generate() {
    JwtKeyRing ring;
    ring.keys_.push_back(NewKey());
    return ring;
}

const JwtKeyRing::Key* JwtKeyRing::Find(std::string_view id) const {
    for (const auto& k : keys_) {
        if (k.id == id) return &k;
    }
    return nullptr;
}

common::Status JwtKeyRing::Save(const std::string& path) const {
    std::string text;
    for (const auto& k : keys_) text += k.id + " " + Base64Encode(k.secret) + "\n";
    const std::string tmp = path + ".tmp." + std::to_string(::getpid());
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return Error::Unavailable("cannot write " + tmp);
    const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                    ::fsync(fd) == 0;
    ::close(fd);
    if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
        ::unlink(tmp.c_str());
        return Error::Unavailable("cannot write " + path);
    }
    return common::Ok();
}

Result<JwtKeyRing> JwtKeyRing::LoadOrCreate(const std::string& path) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) {
        auto ring = Generate();
        if (auto st = ring.Save(path); !st) return st.error();
        return ring;
    }
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return Error::Unavailable("cannot stat " + path);
    if ((st.st_mode & 077) != 0)
        return Error::PermissionDenied("token signing keys " + path +
                                       " are readable by others; run: chmod 600 " + path);
    std::ifstream in(path);
    JwtKeyRing ring;
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty()) continue;
        std::istringstream fields(line);
        std::string id, secret;
        fields >> id >> secret;
        auto bytes = Base64Decode(secret);
        if (id.empty() || !bytes || bytes->size() < 32)
            return Error::InvalidArgument(path +
                                          ": each line must be 'key-id base64-secret' (32+ bytes)");
        ring.keys_.push_back({id, std::move(*bytes)});
    }
    if (ring.keys_.empty()) return Error::InvalidArgument(path + " holds no keys");
    return ring;
}

common::Status JwtKeyRing::Rotate(const std::string& path, std::size_t keep) {
    keys_.insert(keys_.begin(), NewKey());
    if (keys_.size() > std::max<std::size_t>(1, keep)) keys_.resize(std::max<std::size_t>(1, keep));
    if (!path.empty()) return Save(path);
    return common::Ok();
}

std::string SignJwt(const JwtClaims& claims, const JwtKeyRing& keys) {
    const auto& key = keys.signing_key();
    const json header{{"alg", "HS256"}, {"typ", "JWT"}, {"kid", key.id}};
    const json payload{{"sub", claims.subject},
                       {"iss", claims.issuer},
                       {"aud", claims.audience},
                       {"jti", claims.token_id},
                       {"typ", claims.kind},
                       {"iat", Seconds(claims.issued_at)},
                       {"exp", Seconds(claims.expires_at)}};
    const auto signing_input = Base64Url(header.dump()) + "." + Base64Url(payload.dump());
    return signing_input + "." + Base64Url(Hmac(key.secret, signing_input));
}

Result<JwtClaims> VerifyJwt(std::string_view token, const JwtKeyRing& keys,
                            const JwtExpectations& expected) {
    const auto dot1 = token.find('.');
    const auto dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
    if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos)
        return Error::Unauthenticated("token is not a compact JWS");
    auto header_text = FromBase64Url(token.substr(0, dot1));
    auto payload_text = FromBase64Url(token.substr(dot1 + 1, dot2 - dot1 - 1));
    auto signature = FromBase64Url(token.substr(dot2 + 1));
    if (!header_text || !payload_text || !signature)
        return Error::Unauthenticated("token is not base64url");
    const auto header = json::parse(*header_text, nullptr, false);
    if (!header.is_object() || header.value("alg", "") != "HS256")
        return Error::Unauthenticated("token algorithm must be HS256");
    const auto* key = keys.Find(header.value("kid", ""));
    if (!key) return Error::Unauthenticated("token signed with an unknown key");
    const auto expected_sig = Hmac(key->secret, token.substr(0, dot2));
    if (!ConstantTimeEquals(expected_sig, *signature))
        return Error::Unauthenticated("token signature is invalid");

    const auto payload = json::parse(*payload_text, nullptr, false);
    if (!payload.is_object()) return Error::Unauthenticated("token payload is not a JSON object");
    auto str = [&](const char* k) {
        return payload.contains(k) && payload[k].is_string() ? payload[k].get<std::string>()
                                                             : std::string();
    };
    auto num = [&](const char* k) -> std::optional<std::int64_t> {
        if (!payload.contains(k) || !payload[k].is_number_integer()) return std::nullopt;
        return payload[k].get<std::int64_t>();
    };
    JwtClaims c;
    c.subject = str("sub");
    c.issuer = str("iss");
    c.audience = str("aud");
    c.token_id = str("jti");
    c.kind = str("typ");
    const auto iat = num("iat"), exp = num("exp");
    if (c.subject.empty() || c.token_id.empty() || !iat || !exp)
        return Error::Unauthenticated("token lacks claims");
    c.issued_at = common::TimePoint{std::chrono::seconds{*iat}};
    c.expires_at = common::TimePoint{std::chrono::seconds{*exp}};
    if (c.issuer != expected.issuer) return Error::Unauthenticated("token issued by someone else");
    if (c.audience != expected.audience)
        return Error::Unauthenticated("token meant for another audience");
    if (!expected.kind.empty() && c.kind != expected.kind)
        return Error::Unauthenticated("token is a " + c.kind + " token, not " + expected.kind);
    if (expected.now >= c.expires_at + expected.leeway)
        return Error::Unauthenticated("token expired");
    if (c.issued_at > expected.now + expected.leeway)
        return Error::Unauthenticated("token not valid yet");
    return c;
}

}  // namespace decloud::crypto
