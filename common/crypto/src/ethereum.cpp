#include "decloud/crypto/ethereum.hpp"

#include <secp256k1.h>
#include <secp256k1_recovery.h>

#include <stdexcept>

#include "secp256k1_context.hpp"

namespace decloud::crypto {

using common::Error;
using common::Result;

namespace {

const secp256k1_context* Context() { return Secp256k1Context(); }

}  // namespace

Hash256 PersonalMessageHash(std::string_view message) {
    std::string prefixed =
        "\x19"
        "Ethereum Signed Message:\n" +
        std::to_string(message.size());
    prefixed.append(message);
    return Keccak256(std::string_view(prefixed));
}

std::string AddressFromPublicKey(std::span<const std::uint8_t, 65> uncompressed) {
    const auto hash = Keccak256(uncompressed.subspan(1));
    std::array<std::uint8_t, 20> address{};
    std::copy(hash.begin() + 12, hash.end(), address.begin());
    return ToChecksumAddress(address);
}

Result<std::array<std::uint8_t, 65>> RecoverPersonalSignPublicKey(std::string_view message,
                                                                  std::string_view signature_hex) {
    if (!signature_hex.starts_with("0x") && !signature_hex.starts_with("0X"))
        return Error::InvalidArgument("signature: must be 0x-prefixed hex");
    auto sig = HexDecode(signature_hex);
    if (!sig || sig->size() != 65)
        return Error::InvalidArgument("signature: must be 65 bytes (r, s, v)");
    int v = (*sig)[64];
    if (v >= 27) v -= 27;
    if (v != 0 && v != 1) return Error::InvalidArgument("signature: v must be 27, 28, 0 or 1");
    secp256k1_ecdsa_recoverable_signature recoverable;
    if (!secp256k1_ecdsa_recoverable_signature_parse_compact(Context(), &recoverable, sig->data(),
                                                             v))
        return Error::InvalidArgument("signature: r or s out of range");
    const auto hash = PersonalMessageHash(message);
    secp256k1_pubkey pubkey;
    if (!secp256k1_ecdsa_recover(Context(), &pubkey, &recoverable, hash.data()))
        return Error::Unauthenticated("signature: no public key can be recovered from it");
    std::array<std::uint8_t, 65> uncompressed{};
    std::size_t len = uncompressed.size();
    secp256k1_ec_pubkey_serialize(Context(), uncompressed.data(), &len, &pubkey,
                                  SECP256K1_EC_UNCOMPRESSED);
    return uncompressed;
}

Result<std::string> RecoverPersonalSignAddress(std::string_view message,
                                               std::string_view signature_hex) {
    auto key = RecoverPersonalSignPublicKey(message, signature_hex);
    if (!key) return key.error();
    return AddressFromPublicKey(*key);
}

Result<EthereumKey> EthereumKey::FromPrivateKey(std::span<const std::uint8_t> secret32) {
    if (secret32.size() != 32) return Error::InvalidArgument("private key must be 32 bytes");
    if (!secp256k1_ec_seckey_verify(Context(), secret32.data()))
        return Error::InvalidArgument("private key is not a valid secp256k1 scalar");
    EthereumKey key;
    std::copy(secret32.begin(), secret32.end(), key.secret_.begin());
    secp256k1_pubkey pubkey;
    if (!secp256k1_ec_pubkey_create(Context(), &pubkey, key.secret_.data()))
        return Error::Internal("secp256k1 public key derivation failed");
    std::size_t len = key.public_key_.size();
    secp256k1_ec_pubkey_serialize(Context(), key.public_key_.data(), &len, &pubkey,
                                  SECP256K1_EC_UNCOMPRESSED);
    key.address_ = AddressFromPublicKey(key.public_key_);
    return key;
}

EthereumKey EthereumKey::Generate() {
    for (;;) {
        const auto secret = RandomBytes(32);
        if (auto key = FromPrivateKey(secret)) return *key;
    }
}

std::string EthereumKey::SignPersonalMessage(std::string_view message) const {
    const auto hash = PersonalMessageHash(message);
    secp256k1_ecdsa_recoverable_signature sig;
    if (!secp256k1_ecdsa_sign_recoverable(Context(), &sig, hash.data(), secret_.data(), nullptr,
                                          nullptr))
        throw std::runtime_error("secp256k1 signing failed");
    std::array<std::uint8_t, 65> out{};
    int recid = 0;
    secp256k1_ecdsa_recoverable_signature_serialize_compact(Context(), out.data(), &recid, &sig);
    out[64] = static_cast<std::uint8_t>(27 + recid);
    return "0x" + HexEncode(out);
}

Result<EthereumKey> DeriveEncryptionKey(std::string_view signature_hex) {
    auto sig = HexDecode(signature_hex);
    if (!sig || sig->size() != 65)
        return Error::InvalidArgument("signature must be 0x followed by 130 hex digits");
    const auto secret = Keccak256(std::span<const std::uint8_t>(*sig));
    return EthereumKey::FromPrivateKey(secret);
}

EthereumKey DeriveEncryptionKey(const EthereumKey& wallet) {
    auto key = DeriveEncryptionKey(wallet.SignPersonalMessage(kEncryptionKeyMessage));
    // A Keccak-256 output outside the secp256k1 scalar range has probability ~2^-128.
    if (!key) throw std::runtime_error("derived encryption key: " + key.error().message);
    return *key;
}

}  // namespace decloud::crypto
