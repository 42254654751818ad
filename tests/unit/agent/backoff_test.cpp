#include "agent/domain/backoff.hpp"

#include <gtest/gtest.h>

namespace decloud::agent::domain {
namespace {

using namespace std::chrono_literals;
constexpr std::uint64_t kMaxWord = ~std::uint64_t{0};

TEST(Backoff, GrowsToTheCapAndResets) {
    Backoff b(1s, 60s, 2.0);
    // The largest random word gives (almost) the ceiling of each step.
    EXPECT_NEAR(b.Next(kMaxWord).count(), 1000, 1);
    EXPECT_NEAR(b.Next(kMaxWord).count(), 2000, 1);
    EXPECT_NEAR(b.Next(kMaxWord).count(), 4000, 1);
    for (int i = 0; i < 20; ++i) b.Next(kMaxWord);
    EXPECT_NEAR(b.Next(kMaxWord).count(), 60000, 1);
    b.Reset();
    EXPECT_NEAR(b.Next(kMaxWord).count(), 1000, 1);
}

TEST(Backoff, FullJitterStaysWithinBounds) {
    Backoff b(100ms, 1s, 2.0);
    for (std::uint64_t w : {std::uint64_t{0}, std::uint64_t{12345}, kMaxWord / 2, kMaxWord}) {
        const auto d = b.Next(w);
        EXPECT_GE(d.count(), 1);
        EXPECT_LE(d.count(), 1000);
    }
}

TEST(Jittered, SpreadsAroundTheBase) {
    EXPECT_EQ(Jittered(15s, 0.1, kMaxWord / 2 + 1).count(), 15000);
    EXPECT_NEAR(Jittered(15s, 0.1, 0).count(), 13500, 1);
    EXPECT_NEAR(Jittered(15s, 0.1, kMaxWord).count(), 16500, 1);
    EXPECT_EQ(Jittered(15s, 0, 0).count(), 15000);
    EXPECT_GE(Jittered(1ms, 1.0, 0).count(), 1);
}

}  // namespace
}  // namespace decloud::agent::domain
