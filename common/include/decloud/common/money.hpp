#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "decloud/common/result.hpp"

namespace decloud::common {

// Money is an integer count of the token's smallest unit; USDC has 6 decimals, so 1 USDC is
// 1,000,000 micro-USDC. It never passes through floating point, and travels in JSON as a
// decimal string.
inline constexpr std::uint64_t kMicroUsdcPerUsdc = 1'000'000;

// 1234567 -> "1.234567"; 5 -> "0.000005"; 0 -> "0".
std::string FormatUsdc(std::uint64_t micro_usdc);
// "1.5" -> 1500000; at most 6 decimals, no sign, no exponent; kInvalidArgument otherwise.
Result<std::uint64_t> ParseUsdc(std::string_view text);

}  // namespace decloud::common
