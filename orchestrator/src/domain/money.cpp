#include "orchestrator/domain/money.hpp"

#include <limits>

namespace decloud::orchestrator::domain {

using common::Error;
using common::Result;

namespace {
__extension__ typedef unsigned __int128 Uint128;
}  // namespace

Result<Amount> Amount::Plus(Amount other) const {
    std::int64_t out = 0;
    if (__builtin_add_overflow(micros_, other.micros_, &out))
        return Error::InvalidArgument("amount overflow");
    return Amount(out);
}

Result<Amount> Amount::Minus(Amount other) const {
    std::int64_t out = 0;
    if (__builtin_sub_overflow(micros_, other.micros_, &out))
        return Error::InvalidArgument("amount overflow");
    return Amount(out);
}

Result<Amount> Amount::Negated() const {
    if (micros_ == std::numeric_limits<std::int64_t>::min())
        return Error::InvalidArgument("amount overflow");
    return Amount(-micros_);
}

std::string FormatAmount(Amount amount) {
    const bool negative = amount.IsNegative();
    // Unsigned magnitude, so the most negative value formats too.
    const std::uint64_t magnitude =
        negative ? std::uint64_t{0} - static_cast<std::uint64_t>(amount.micros())
                 : static_cast<std::uint64_t>(amount.micros());
    const auto per_unit = static_cast<std::uint64_t>(kMicrosPerUnit);
    std::string fraction = std::to_string(magnitude % per_unit);
    fraction.insert(0, static_cast<std::size_t>(kUsdcDecimals) - fraction.size(), '0');
    return (negative ? "-" : "") + std::to_string(magnitude / per_unit) + "." + fraction;
}

Result<Amount> ParseAmount(std::string_view text) {
    const auto bad = [&] {
        return Error::InvalidArgument(
            "amount: a decimal string with at most 6 decimals, like \"12.345678\"");
    };
    if (text.empty() || text.size() > 40) return bad();
    const auto dot = text.find('.');
    const std::string_view whole = text.substr(0, dot);
    const std::string_view fraction =
        dot == std::string_view::npos ? std::string_view() : text.substr(dot + 1);
    if (whole.empty()) return bad();
    if (dot != std::string_view::npos && (fraction.empty() || fraction.size() > kUsdcDecimals))
        return bad();
    std::int64_t micros = 0;
    const auto append = [&](char c) {
        return !__builtin_mul_overflow(micros, 10, &micros) &&
               !__builtin_add_overflow(micros, c - '0', &micros);
    };
    for (const char c : whole)
        if (c < '0' || c > '9' || !append(c)) return bad();
    for (std::size_t i = 0; i < static_cast<std::size_t>(kUsdcDecimals); ++i) {
        const char c = i < fraction.size() ? fraction[i] : '0';
        if (c < '0' || c > '9' || !append(c)) return bad();
    }
    return Amount::Micros(micros);
}

Amount MulDivFloor(Amount amount, std::uint64_t numerator, std::uint64_t denominator) {
    const auto product = static_cast<Uint128>(amount.micros()) * numerator;
    return Amount::Micros(static_cast<std::int64_t>(product / denominator));
}

}  // namespace decloud::orchestrator::domain
