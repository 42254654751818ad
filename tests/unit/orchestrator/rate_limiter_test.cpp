#include "orchestrator/domain/rate_limiter.hpp"

#include <gtest/gtest.h>

#include "decloud/common/clock.hpp"

namespace decloud::orchestrator::domain {
namespace {

using namespace std::chrono_literals;

TEST(RateLimiterTest, BurstPassesThenTheNextRequestWaitsForOneToken) {
    common::ManualClock clock;
    RateLimiter limiter({.per_minute = 6, .burst = 3});
    for (int i = 0; i < 3; ++i) EXPECT_FALSE(limiter.Acquire("10.0.0.1", clock.Now())) << i;
    const auto wait = limiter.Acquire("10.0.0.1", clock.Now());
    ASSERT_TRUE(wait);
    // 6 per minute: one token every 10 s.
    EXPECT_EQ(std::chrono::duration_cast<std::chrono::seconds>(*wait), 10s);
    EXPECT_EQ(RetryAfterSeconds(*wait), 10);

    clock.Advance(9s);
    EXPECT_TRUE(limiter.Acquire("10.0.0.1", clock.Now())) << "a refused request must not refill";
    clock.Advance(1s);
    EXPECT_FALSE(limiter.Acquire("10.0.0.1", clock.Now()));
    EXPECT_TRUE(limiter.Acquire("10.0.0.1", clock.Now()));
}

TEST(RateLimiterTest, ClientsHaveSeparateBuckets) {
    common::ManualClock clock;
    RateLimiter limiter({.per_minute = 1, .burst = 1});
    EXPECT_FALSE(limiter.Acquire("a", clock.Now()));
    EXPECT_TRUE(limiter.Acquire("a", clock.Now()));
    EXPECT_FALSE(limiter.Acquire("b", clock.Now()));
}

TEST(RateLimiterTest, RefillIsCappedAtTheBurst) {
    common::ManualClock clock;
    RateLimiter limiter({.per_minute = 60, .burst = 2});
    EXPECT_FALSE(limiter.Acquire("a", clock.Now()));
    clock.Advance(1h);
    EXPECT_FALSE(limiter.Acquire("a", clock.Now()));
    EXPECT_FALSE(limiter.Acquire("a", clock.Now()));
    EXPECT_TRUE(limiter.Acquire("a", clock.Now()));
}

TEST(RateLimiterTest, ClockGoingBackwardsGrantsNothingExtra) {
    common::ManualClock clock;
    RateLimiter limiter({.per_minute = 60, .burst = 1});
    EXPECT_FALSE(limiter.Acquire("a", clock.Now()));
    clock.Advance(-30s);
    EXPECT_TRUE(limiter.Acquire("a", clock.Now()));
    clock.Advance(30s);
    EXPECT_TRUE(limiter.Acquire("a", clock.Now()));
    clock.Advance(1s);
    EXPECT_FALSE(limiter.Acquire("a", clock.Now()));
}

TEST(RateLimiterTest, MemoryStaysBoundedUnderManyAddresses) {
    common::ManualClock clock;
    RateLimiter limiter({.per_minute = 1, .burst = 5}, /*max_clients=*/100);
    for (int i = 0; i < 10'000; ++i) limiter.Acquire("client-" + std::to_string(i), clock.Now());
    EXPECT_LE(limiter.TrackedClients(), 100u);
}

TEST(RateLimiterTest, IdleClientsAreEvictedBeforeBusyOnes) {
    common::ManualClock clock;
    RateLimiter limiter({.per_minute = 60, .burst = 2}, /*max_clients=*/3);
    // "busy" is out of tokens; the others are idle and refill completely.
    EXPECT_FALSE(limiter.Acquire("busy", clock.Now()));
    EXPECT_FALSE(limiter.Acquire("busy", clock.Now()));
    clock.Advance(100ms);
    EXPECT_FALSE(limiter.Acquire("idle-1", clock.Now()));
    EXPECT_FALSE(limiter.Acquire("idle-2", clock.Now()));
    clock.Advance(1s);  // idle buckets full again; busy has only ~1.1 tokens
    EXPECT_FALSE(limiter.Acquire("new", clock.Now()));
    EXPECT_EQ(limiter.TrackedClients(), 2u) << "busy kept, idle ones dropped, new added";
}

TEST(RateLimiterTest, RetryAfterRoundsUpToWholeSeconds) {
    EXPECT_EQ(RetryAfterSeconds(0ms), 1);
    EXPECT_EQ(RetryAfterSeconds(1ms), 1);
    EXPECT_EQ(RetryAfterSeconds(1001ms), 2);
    EXPECT_EQ(RetryAfterSeconds(60s), 60);
}

}  // namespace
}  // namespace decloud::orchestrator::domain
