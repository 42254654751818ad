#include "decloud/common/money.hpp"

#include <limits>

namespace decloud::common {

std::string FormatUsdc(std::uint64_t micro_usdc) {
    std::string out = std::to_string(micro_usdc / kMicroUsdcPerUsdc);
    auto fraction = micro_usdc % kMicroUsdcPerUsdc;
    if (fraction == 0) return out;
    std::string digits = std::to_string(fraction);
    digits.insert(0, 6 - digits.size(), '0');
    while (digits.back() == '0') digits.pop_back();
    return out + "." + digits;
}

Result<std::uint64_t> ParseUsdc(std::string_view text) {
    const auto bad = [&] {
        return Error::InvalidArgument("'" + std::string(text.substr(0, 40)) +
                                      "' is not an amount of USDC (digits, at most 6 decimals)");
    };
    const auto dot = text.find('.');
    const auto whole = text.substr(0, dot);
    const auto fraction = dot == std::string_view::npos ? std::string_view{} : text.substr(dot + 1);
    if (whole.empty() || fraction.size() > 6 || (dot != std::string_view::npos && fraction.empty()))
        return bad();
    std::uint64_t units = 0;
    constexpr auto kMax = std::numeric_limits<std::uint64_t>::max();
    for (char c : whole) {
        if (c < '0' || c > '9') return bad();
        if (units > (kMax - 9) / 10) return bad();
        units = units * 10 + static_cast<std::uint64_t>(c - '0');
    }
    if (units > kMax / kMicroUsdcPerUsdc) return bad();
    units *= kMicroUsdcPerUsdc;
    std::uint64_t scale = kMicroUsdcPerUsdc / 10;
    for (char c : fraction) {
        if (c < '0' || c > '9') return bad();
        units += static_cast<std::uint64_t>(c - '0') * scale;
        scale /= 10;
    }
    return units;
}

}  // namespace decloud::common
