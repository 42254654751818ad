#pragma once

#include <chrono>
#include <cstdint>

namespace decloud::agent::domain {

// Exponential back-off with full jitter: the n-th delay is uniform in [0, min(max, initial *
// multiplier^n)] (but at least 1 ms). Pure: the randomness is passed in.
class Backoff {
  public:
    Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max, double multiplier);
    std::chrono::milliseconds Next(std::uint64_t random_word);
    void Reset() { attempt_ = 0; }
    std::uint32_t attempts() const { return attempt_; }

  private:
    std::chrono::milliseconds initial_;
    std::chrono::milliseconds max_;
    double multiplier_;
    std::uint32_t attempt_ = 0;
};

// `base` spread uniformly by ±fraction (heartbeats of many agents do not line up).
std::chrono::milliseconds Jittered(std::chrono::milliseconds base, double fraction,
                                   std::uint64_t random_word);

}  // namespace decloud::agent::domain
