#include "decloud/crypto/ecies.hpp"

#include <cryptopp/aes.h>
#include <cryptopp/gcm.h>
#include <cryptopp/hkdf.h>
#include <cryptopp/sha.h>
#include <secp256k1.h>

#include <algorithm>

#include "secp256k1_context.hpp"

namespace decloud::crypto {

using common::Error;
using common::Result;

namespace {

constexpr std::size_t kNonceSize = 16;
constexpr std::size_t kTagSize = 16;

Result<secp256k1_pubkey> ParsePoint(std::span<const std::uint8_t> bytes) {
    if (bytes.size() != 33 && bytes.size() != 65)
        return Error::InvalidArgument("public key: expected 33 (compressed) or 65 bytes");
    secp256k1_pubkey point;
    if (!secp256k1_ec_pubkey_parse(Secp256k1Context(), &point, bytes.data(), bytes.size()))
        return Error::InvalidArgument("public key: not a point on secp256k1");
    return point;
}

Secp256k1PublicKey Serialize(const secp256k1_pubkey& point) {
    Secp256k1PublicKey out{};
    std::size_t len = out.size();
    secp256k1_ec_pubkey_serialize(Secp256k1Context(), out.data(), &len, &point,
                                  SECP256K1_EC_UNCOMPRESSED);
    return out;
}

// HKDF-SHA256 over (ephemeral public key || secret * point), as eciesjs derives its key.
Result<std::array<std::uint8_t, 32>> SharedKey(const Secp256k1PublicKey& ephemeral_public,
                                               secp256k1_pubkey point,
                                               std::span<const std::uint8_t, 32> secret) {
    if (!secp256k1_ec_pubkey_tweak_mul(Secp256k1Context(), &point, secret.data()))
        return Error::InvalidArgument("ECDH failed: invalid secret");
    const auto shared = Serialize(point);
    std::array<std::uint8_t, 130> master{};
    std::copy(ephemeral_public.begin(), ephemeral_public.end(), master.begin());
    std::copy(shared.begin(), shared.end(), master.begin() + 65);
    std::array<std::uint8_t, 32> key{};
    CryptoPP::HKDF<CryptoPP::SHA256> hkdf;
    hkdf.DeriveKey(key.data(), key.size(), master.data(), master.size(), nullptr, 0, nullptr, 0);
    return key;
}

}  // namespace

Result<Secp256k1PublicKey> ParseSecp256k1PublicKey(std::span<const std::uint8_t> bytes) {
    auto point = ParsePoint(bytes);
    if (!point) return point.error();
    return Serialize(*point);
}

Result<Secp256k1PublicKey> ParseSecp256k1PublicKeyHex(std::string_view hex) {
    auto bytes = HexDecode(hex);
    if (!bytes) return Error::InvalidArgument("public key: must be hex");
    return ParseSecp256k1PublicKey(*bytes);
}

Result<Bytes> EciesEncryptWith(std::span<const std::uint8_t> receiver_public_key,
                               std::span<const std::uint8_t> plaintext,
                               std::span<const std::uint8_t, 32> ephemeral_secret,
                               std::span<const std::uint8_t, 16> nonce) {
    auto receiver = ParsePoint(receiver_public_key);
    if (!receiver) return receiver.error();
    secp256k1_pubkey ephemeral;
    if (!secp256k1_ec_pubkey_create(Secp256k1Context(), &ephemeral, ephemeral_secret.data()))
        return Error::InvalidArgument("ephemeral secret is not a valid secp256k1 scalar");
    const auto ephemeral_public = Serialize(ephemeral);
    auto key = SharedKey(ephemeral_public, *receiver, ephemeral_secret);
    if (!key) return key.error();

    Bytes out(kEciesOverhead + plaintext.size());
    std::copy(ephemeral_public.begin(), ephemeral_public.end(), out.begin());
    std::copy(nonce.begin(), nonce.end(), out.begin() + 65);
    CryptoPP::GCM<CryptoPP::AES>::Encryption gcm;
    gcm.SetKeyWithIV(key->data(), key->size(), nonce.data(), nonce.size());
    gcm.EncryptAndAuthenticate(out.data() + kEciesOverhead, out.data() + 65 + kNonceSize, kTagSize,
                               nonce.data(), static_cast<int>(nonce.size()), nullptr, 0,
                               plaintext.data(), plaintext.size());
    return out;
}

Result<Bytes> EciesEncrypt(std::span<const std::uint8_t> receiver_public_key,
                           std::span<const std::uint8_t> plaintext) {
    for (;;) {
        const auto secret = RandomBytes(32);
        const auto nonce = RandomBytes(kNonceSize);
        auto out = EciesEncryptWith(receiver_public_key, plaintext,
                                    std::span<const std::uint8_t, 32>(secret.data(), 32),
                                    std::span<const std::uint8_t, 16>(nonce.data(), 16));
        // Only an out-of-range random scalar (probability ~2^-128) is worth another draw.
        if (out || ParsePoint(receiver_public_key).has_error()) return out;
    }
}

Result<Bytes> EciesDecrypt(std::span<const std::uint8_t, 32> receiver_secret,
                           std::span<const std::uint8_t> payload) {
    if (payload.size() < kEciesOverhead)
        return Error::InvalidArgument("ciphertext: shorter than the " +
                                      std::to_string(kEciesOverhead) + "-byte ECIES header");
    auto ephemeral = ParsePoint(payload.first(65));
    if (!ephemeral)
        return Error::InvalidArgument("ciphertext: does not start with an uncompressed point");
    auto key = SharedKey(Serialize(*ephemeral), *ephemeral, receiver_secret);
    if (!key) return key.error();
    const auto nonce = payload.subspan(65, kNonceSize);
    const auto tag = payload.subspan(65 + kNonceSize, kTagSize);
    const auto body = payload.subspan(kEciesOverhead);
    Bytes plain(body.size());
    CryptoPP::GCM<CryptoPP::AES>::Decryption gcm;
    gcm.SetKeyWithIV(key->data(), key->size(), nonce.data(), nonce.size());
    if (!gcm.DecryptAndVerify(plain.data(), tag.data(), kTagSize, nonce.data(),
                              static_cast<int>(nonce.size()), nullptr, 0, body.data(), body.size()))
        return Error::Unauthenticated(
            "ciphertext: authentication failed (wrong key, or the data was altered)");
    return plain;
}

}  // namespace decloud::crypto
