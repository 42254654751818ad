#pragma once

#include <array>
#include <cstdint>
#include <span>

#include "decloud/common/result.hpp"
#include "decloud/crypto/crypto.hpp"

namespace decloud::crypto {

// ECIES over secp256k1, byte-compatible with the default configuration of the eciesjs npm
// package (and its Python and Rust siblings):
//   payload = ephemeral public key (65 bytes, uncompressed) || nonce (16) || tag (16) || ciphertext
//   key     = HKDF-SHA256(ikm = ephemeral public key || shared point, both uncompressed;
//                         no salt, no info; 32 bytes)
//   cipher  = AES-256-GCM with the 16-byte nonce, no associated data.
// Used for VM passwords: clients encrypt to the user's key, servers store only ciphertext.

inline constexpr std::size_t kEciesOverhead = 65 + 16 + 16;

using Secp256k1PublicKey = std::array<std::uint8_t, 65>;

// A point on secp256k1, compressed (33 bytes) or uncompressed (65 bytes); returns the
// uncompressed form. kInvalidArgument for anything else.
common::Result<Secp256k1PublicKey> ParseSecp256k1PublicKey(std::span<const std::uint8_t> bytes);
// The same from hex (optional 0x).
common::Result<Secp256k1PublicKey> ParseSecp256k1PublicKeyHex(std::string_view hex);

common::Result<Bytes> EciesEncrypt(std::span<const std::uint8_t> receiver_public_key,
                                   std::span<const std::uint8_t> plaintext);
// Deterministic variant for test vectors: the caller supplies the ephemeral secret and nonce.
common::Result<Bytes> EciesEncryptWith(std::span<const std::uint8_t> receiver_public_key,
                                       std::span<const std::uint8_t> plaintext,
                                       std::span<const std::uint8_t, 32> ephemeral_secret,
                                       std::span<const std::uint8_t, 16> nonce);
// kInvalidArgument for a payload too short or with an invalid ephemeral key; kUnauthenticated when
// the tag does not verify (wrong key or tampered payload).
common::Result<Bytes> EciesDecrypt(std::span<const std::uint8_t, 32> receiver_secret,
                                   std::span<const std::uint8_t> payload);

}  // namespace decloud::crypto
