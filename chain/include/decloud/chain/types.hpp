#pragma once

// Value types of the EVM world: byte strings, 20-byte addresses, 32-byte hashes and uint256
// amounts. Pure; no I/O. Amounts are integers in the token's smallest unit, never doubles.

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "decloud/common/result.hpp"

namespace decloud::chain {

using Bytes = std::vector<std::uint8_t>;
using Address = std::array<std::uint8_t, 20>;
using Hash = std::array<std::uint8_t, 32>;

// "0x" + 40 hex digits; mixed case must carry a valid EIP-55 checksum.
common::Result<Address> ParseAddress(std::string_view text);
// EIP-55 checksummed.
std::string ToString(const Address& address);
// "0x" + 64 hex digits, any case.
common::Result<Hash> ParseHash(std::string_view text);
// "0x" + 64 lowercase hex digits.
std::string ToString(const Hash& hash);
// "0x" + lowercase hex of any length.
std::string ToHexData(std::span<const std::uint8_t> bytes);
// "0x" + an even number of hex digits (empty allowed).
common::Result<Bytes> ParseHexData(std::string_view text);

// Unsigned 256-bit integer with checked arithmetic (overflow is reported, never wraps).
class U256 {
  public:
    constexpr U256() = default;
    constexpr U256(std::uint64_t v) : limbs_{v, 0, 0, 0} {}  // NOLINT: implicit by design

    // At most 32 big-endian bytes (leading zeros allowed).
    static common::Result<U256> FromBigEndian(std::span<const std::uint8_t> bytes);
    // Decimal digits only, no sign, no leading '+', no leading zeros (except "0").
    static common::Result<U256> ParseDecimal(std::string_view text);
    // JSON-RPC quantity: "0x" followed by hex digits without leading zeros ("0x0" for zero).
    static common::Result<U256> ParseQuantity(std::string_view text);

    std::array<std::uint8_t, 32> ToBigEndian() const;
    // Big-endian without leading zero bytes (empty for zero): RLP's integer form.
    Bytes ToMinimalBytes() const;
    std::string ToDecimal() const;
    std::string ToQuantity() const;

    bool IsZero() const {
        return limbs_[0] == 0 && limbs_[1] == 0 && limbs_[2] == 0 && limbs_[3] == 0;
    }
    // The value if it fits in 64 bits.
    std::optional<std::uint64_t> ToU64() const;

    // Checked arithmetic: empty on overflow (or underflow for Sub).
    std::optional<U256> Add(const U256& other) const;
    std::optional<U256> Sub(const U256& other) const;
    std::optional<U256> Mul(std::uint64_t factor) const;
    // Quotient and remainder of a division by a non-zero 64-bit divisor.
    std::pair<U256, std::uint64_t> DivMod(std::uint64_t divisor) const;

    friend std::strong_ordering operator<=>(const U256& a, const U256& b);
    friend bool operator==(const U256& a, const U256& b) = default;

  private:
    std::array<std::uint64_t, 4> limbs_{};  // little-endian limbs
};

// JSON-RPC quantity that must fit 64 bits (block numbers, nonces, gas).
common::Result<std::uint64_t> ParseQuantityU64(std::string_view text);
std::string ToQuantity(std::uint64_t value);

}  // namespace decloud::chain
