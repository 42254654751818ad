#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

#include "decloud/common/result.hpp"

namespace decloud::agent::domain::relay {

// A WireGuard (Curve25519) key: 32 bytes, written as standard base64 like `wg` does, and as
// lowercase hex on the UAPI socket. The same type holds private and public keys; which one it is
// follows from where it came from. A private key never leaves the agent: nothing here logs or
// prints one. The bytes are wiped when the object goes away. Value type; thread-compatible.
class WireGuardKey {
  public:
    static constexpr std::size_t kSize = 32;
    using Bytes = std::array<std::uint8_t, kSize>;

    WireGuardKey() = default;  // all zeros: "no key" for WireGuard
    explicit WireGuardKey(const Bytes& bytes) : bytes_(bytes) {}
    WireGuardKey(const WireGuardKey&) = default;
    WireGuardKey& operator=(const WireGuardKey&) = default;
    ~WireGuardKey();

    // A fresh private key from OpenSSL's X25519 key generation, clamped as `wg genkey` does.
    // Throws std::runtime_error only if OpenSSL cannot produce one.
    static WireGuardKey Generate();
    // 44 characters of base64 (with the one '=' of padding); kInvalidArgument otherwise.
    static common::Result<WireGuardKey> FromBase64(std::string_view text);
    // 64 hex digits; kInvalidArgument otherwise.
    static common::Result<WireGuardKey> FromHex(std::string_view text);

    // The public key of this key taken as a private key (X25519 with the base point), as
    // `wg pubkey` computes it.
    WireGuardKey PublicKey() const;

    std::string ToBase64() const;
    std::string ToHex() const;
    bool IsZero() const;
    const Bytes& bytes() const { return bytes_; }

    friend bool operator==(const WireGuardKey&, const WireGuardKey&) = default;
    friend auto operator<=>(const WireGuardKey&, const WireGuardKey&) = default;

  private:
    Bytes bytes_{};
};

}  // namespace decloud::agent::domain::relay
