#pragma once

#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

#include "decloud/common/result.hpp"

namespace decloud::orchestrator::domain {

// The ledger's only currency so far: USDC on Polygon, 6 decimals.
inline constexpr std::string_view kUsdc = "USDC";
inline constexpr int kUsdcDecimals = 6;
inline constexpr std::int64_t kMicrosPerUnit = 1'000'000;

// A signed amount of a token's smallest unit (micro-USDC). Never a floating point value:
// arithmetic is checked and reports overflow as an error instead of wrapping. Value type.
class Amount {
  public:
    constexpr Amount() = default;
    static constexpr Amount Micros(std::int64_t micros) { return Amount(micros); }
    constexpr std::int64_t micros() const { return micros_; }
    constexpr bool IsZero() const { return micros_ == 0; }
    constexpr bool IsNegative() const { return micros_ < 0; }

    common::Result<Amount> Plus(Amount other) const;
    common::Result<Amount> Minus(Amount other) const;
    common::Result<Amount> Negated() const;

    friend constexpr auto operator<=>(Amount, Amount) = default;

  private:
    constexpr explicit Amount(std::int64_t micros) : micros_(micros) {}
    std::int64_t micros_ = 0;
};

// "12.345678": always all 6 decimals, a leading '-' for negative amounts.
std::string FormatAmount(Amount amount);
// A non-negative decimal string with at most 6 decimals ("12", "12.5", "0.000001"). Rejects
// signs, exponents, spaces, empty parts ("1.", ".5"), more decimals and values beyond int64.
common::Result<Amount> ParseAmount(std::string_view text);

// floor(amount x numerator / denominator) for a non-negative amount, computed in 128 bits
// (never overflows for numerator <= denominator). Precondition: denominator > 0.
Amount MulDivFloor(Amount amount, std::uint64_t numerator, std::uint64_t denominator);

}  // namespace decloud::orchestrator::domain
