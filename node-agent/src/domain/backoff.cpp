#include "agent/domain/backoff.hpp"

#include <algorithm>
#include <cmath>

namespace decloud::agent::domain {

namespace {

// A uniform double in [0, 1) from 53 random bits.
double Unit(std::uint64_t word) {
    return static_cast<double>(word >> 11) * (1.0 / 9007199254740992.0);
}

}  // namespace

Backoff::Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max,
                 double multiplier)
    : initial_(std::max(initial, std::chrono::milliseconds{1})),
      max_(std::max(max, initial_)),
      multiplier_(multiplier < 1 ? 1 : multiplier) {}

std::chrono::milliseconds Backoff::Next(std::uint64_t random_word) {
    const double grown = static_cast<double>(initial_.count()) * std::pow(multiplier_, attempt_);
    const double cap = std::min(grown, static_cast<double>(max_.count()));
    if (grown < static_cast<double>(max_.count())) ++attempt_;
    const auto delay = static_cast<std::int64_t>(cap * Unit(random_word));
    return std::chrono::milliseconds{std::max<std::int64_t>(1, delay)};
}

std::chrono::milliseconds Jittered(std::chrono::milliseconds base, double fraction,
                                   std::uint64_t random_word) {
    fraction = std::clamp(fraction, 0.0, 1.0);
    const double factor = 1.0 + fraction * (2.0 * Unit(random_word) - 1.0);
    return std::chrono::milliseconds{
        std::max<std::int64_t>(1, std::llround(static_cast<double>(base.count()) * factor))};
}

}  // namespace decloud::agent::domain
