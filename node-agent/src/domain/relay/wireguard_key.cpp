#include "agent/domain/relay/wireguard_key.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <memory>
#include <stdexcept>

#include "decloud/crypto/crypto.hpp"

namespace decloud::agent::domain::relay {

using common::Error;
using common::Result;

namespace {

struct PkeyFree {
    void operator()(EVP_PKEY* key) const noexcept { EVP_PKEY_free(key); }
};
struct PkeyCtxFree {
    void operator()(EVP_PKEY_CTX* ctx) const noexcept { EVP_PKEY_CTX_free(ctx); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree>;

// RFC 7748 clamping; X25519 applies it anyway, `wg genkey` stores the clamped form and so do we.
void Clamp(WireGuardKey::Bytes& key) {
    key[0] &= 248;
    key[31] &= 127;
    key[31] |= 64;
}

}  // namespace

WireGuardKey::~WireGuardKey() { OPENSSL_cleanse(bytes_.data(), bytes_.size()); }

WireGuardKey WireGuardKey::Generate() {
    PkeyCtxPtr ctx(EVP_PKEY_CTX_new_id(EVP_PKEY_X25519, nullptr));
    EVP_PKEY* raw = nullptr;
    if (!ctx || EVP_PKEY_keygen_init(ctx.get()) != 1 || EVP_PKEY_keygen(ctx.get(), &raw) != 1)
        throw std::runtime_error("X25519 key generation failed");
    PkeyPtr key(raw);
    Bytes bytes{};
    std::size_t len = bytes.size();
    if (EVP_PKEY_get_raw_private_key(key.get(), bytes.data(), &len) != 1 || len != bytes.size())
        throw std::runtime_error("X25519 private key export failed");
    Clamp(bytes);
    WireGuardKey out(bytes);
    OPENSSL_cleanse(bytes.data(), bytes.size());
    return out;
}

Result<WireGuardKey> WireGuardKey::FromBase64(std::string_view text) {
    if (text.size() != 44 || text[43] != '=' || text[42] == '=')
        return Error::InvalidArgument("a WireGuard key is 44 characters of base64");
    auto decoded = crypto::Base64Decode(text);
    if (!decoded || decoded->size() != kSize)
        return Error::InvalidArgument("a WireGuard key is 44 characters of base64");
    Bytes bytes{};
    std::copy(decoded->begin(), decoded->end(), bytes.begin());
    OPENSSL_cleanse(decoded->data(), decoded->size());
    return WireGuardKey(bytes);
}

Result<WireGuardKey> WireGuardKey::FromHex(std::string_view text) {
    if (text.size() != 2 * kSize || text.starts_with("0x") || text.starts_with("0X"))
        return Error::InvalidArgument("a WireGuard key in hex is 64 hex digits");
    auto decoded = crypto::HexDecode(text);
    if (!decoded) return Error::InvalidArgument("a WireGuard key in hex is 64 hex digits");
    Bytes bytes{};
    std::copy(decoded->begin(), decoded->end(), bytes.begin());
    OPENSSL_cleanse(decoded->data(), decoded->size());
    return WireGuardKey(bytes);
}

WireGuardKey WireGuardKey::PublicKey() const {
    PkeyPtr key(EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr, bytes_.data(), kSize));
    Bytes pub{};
    std::size_t len = pub.size();
    // Any 32 bytes are a valid X25519 private key, so this fails only without memory.
    if (!key || EVP_PKEY_get_raw_public_key(key.get(), pub.data(), &len) != 1 || len != kSize)
        throw std::runtime_error("X25519 public key derivation failed");
    return WireGuardKey(pub);
}

std::string WireGuardKey::ToBase64() const { return crypto::Base64Encode(bytes_); }

std::string WireGuardKey::ToHex() const { return crypto::HexEncode(bytes_); }

bool WireGuardKey::IsZero() const {
    std::uint8_t acc = 0;
    for (const auto b : bytes_) acc |= b;
    return acc == 0;
}

}  // namespace decloud::agent::domain::relay
