#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "decloud/common/result.hpp"
#include "decloud/crypto/crypto.hpp"

namespace decloud::crypto {

// EIP-191 version 0x45 ("personal_sign"): Keccak-256 of
// "\x19Ethereum Signed Message:\n" + decimal length + message.
Hash256 PersonalMessageHash(std::string_view message);

// Recovers the signer of a personal_sign signature (0x + 130 hex digits: r, s, v with v in
// {27, 28} or {0, 1}) over `message`; returns the EIP-55 checksummed address. kInvalidArgument
// for a malformed signature, kUnauthenticated if no key can be recovered from it.
// The same, returning the signer's 65-byte uncompressed public key.
common::Result<std::array<std::uint8_t, 65>> RecoverPersonalSignPublicKey(
    std::string_view message, std::string_view signature_hex);
common::Result<std::string> RecoverPersonalSignAddress(std::string_view message,
                                                       std::string_view signature_hex);

// A secp256k1 account key (libsecp256k1), for the CLI and tests.
class EthereumKey {
  public:
    static common::Result<EthereumKey> FromPrivateKey(std::span<const std::uint8_t> secret32);
    static EthereumKey Generate();
    // The checksummed address derived from the uncompressed public key.
    const std::string& Address() const { return address_; }
    // 65-byte uncompressed public key (0x04 || X || Y).
    const std::array<std::uint8_t, 65>& PublicKey() const { return public_key_; }
    // The 32-byte secret, for decrypting ECIES payloads addressed to this account.
    std::span<const std::uint8_t, 32> Secret() const { return secret_; }
    // personal_sign: 0x-prefixed r || s || v, v in {27, 28}.
    std::string SignPersonalMessage(std::string_view message) const;

  private:
    std::array<std::uint8_t, 32> secret_{};
    std::array<std::uint8_t, 65> public_key_{};
    std::string address_;
};

// Browser wallets sign but do not decrypt with the account key, so a user may encrypt VM
// passwords to a key derived from a deterministic signature instead: the secret is Keccak-256 of
// the 65 signature bytes of personal_sign(kEncryptionKeyMessage). RFC 6979 signatures (every
// mainstream wallet, and libsecp256k1) make the derivation repeatable; the console and the CLI
// both use this exact message.
inline constexpr std::string_view kEncryptionKeyMessage =
    "DeCloud encryption key v1\n\n"
    "Signing this message creates the key that decrypts your VM passwords. "
    "Sign it only in the DeCloud console or CLI.";

// The encryption key for a personal_sign signature (0x + 130 hex digits) of kEncryptionKeyMessage.
common::Result<EthereumKey> DeriveEncryptionKey(std::string_view signature_hex);
// The same, signing with `wallet` directly.
EthereumKey DeriveEncryptionKey(const EthereumKey& wallet);

// EIP-55 address of a 65-byte uncompressed secp256k1 public key.
std::string AddressFromPublicKey(std::span<const std::uint8_t, 65> uncompressed);

}  // namespace decloud::crypto
