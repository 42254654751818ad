#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "decloud/common/result.hpp"

namespace decloud::crypto {

using Bytes = std::vector<std::uint8_t>;
using Hash256 = std::array<std::uint8_t, 32>;

// Cryptographically secure random bytes (OpenSSL RAND_bytes); throws only if the CSPRNG fails.
Bytes RandomBytes(std::size_t n);
// A random token of `n` bytes, base64url without padding: for credentials and nonces.
std::string RandomToken(std::size_t n = 32);

Hash256 Sha256(std::string_view data);
// SHA-256 of a file's contents, read in chunks (for disk images of many GiB).
common::Result<Hash256> Sha256File(const std::string& path);
// Original Keccak-256 as Ethereum uses it (not the standardised SHA3-256 padding).
Hash256 Keccak256(std::string_view data);
Hash256 Keccak256(std::span<const std::uint8_t> data);

std::string HexEncode(std::span<const std::uint8_t> data);  // lowercase, no 0x
common::Result<Bytes> HexDecode(std::string_view hex);      // optional 0x, even length
std::string Base64Encode(std::span<const std::uint8_t> data);
common::Result<Bytes> Base64Decode(std::string_view text);

// Constant-time comparison of two byte strings (length may leak, content does not).
bool ConstantTimeEquals(std::string_view a, std::string_view b);

// Ethereum addresses (EIP-55). Parses "0x" + 40 hex digits: all-lowercase or all-uppercase is
// accepted as unchecksummed; mixed case must carry a valid checksum. Returns the checksummed form.
common::Result<std::string> NormalizeEthereumAddress(std::string_view address);
std::string ToChecksumAddress(std::span<const std::uint8_t, 20> address);

// Ed25519 node identity keys (OpenSSL). Public keys and signatures travel as standard base64.
class Ed25519KeyPair {
  public:
    static Ed25519KeyPair Generate();
    static common::Result<Ed25519KeyPair> FromPrivateKey(std::span<const std::uint8_t> seed32);

    std::string PublicKeyBase64() const;
    const std::array<std::uint8_t, 32>& PrivateSeed() const { return seed_; }
    std::string SignBase64(std::string_view message) const;

  private:
    std::array<std::uint8_t, 32> seed_{};
    std::array<std::uint8_t, 32> public_key_{};
};

// Verifies a base64 Ed25519 signature of `message` by a base64 public key.
bool VerifyEd25519(std::string_view public_key_base64, std::string_view message,
                   std::string_view signature_base64);

}  // namespace decloud::crypto
