#include "orchestrator/domain/node_health.hpp"

#include <gtest/gtest.h>

namespace decloud::orchestrator::domain {
namespace {

using namespace std::chrono;
const common::TimePoint kT0{seconds{1'800'000'000}};

TEST(MissedHeartbeats, CountsSkippedSlots) {
    EXPECT_EQ(MissedHeartbeats(std::nullopt, kT0, seconds{15}), 0u);
    EXPECT_EQ(MissedHeartbeats(kT0, kT0 + seconds{15}, seconds{15}), 0u);
    EXPECT_EQ(MissedHeartbeats(kT0, kT0 + seconds{29}, seconds{15}), 0u);
    EXPECT_EQ(MissedHeartbeats(kT0, kT0 + seconds{30}, seconds{15}), 1u);
    EXPECT_EQ(MissedHeartbeats(kT0, kT0 + seconds{61}, seconds{15}), 3u);
    EXPECT_EQ(MissedHeartbeats(kT0, kT0 + hours{1}, seconds{15}), 239u);
    EXPECT_EQ(MissedHeartbeats(kT0, kT0 - seconds{60}, seconds{15}), 0u) << "clock went back";
    EXPECT_EQ(MissedHeartbeats(kT0, kT0 + hours{1}, seconds{0}), 0u);
}

TEST(IsStale, OfflineOnlyAfterTheTimeout) {
    EXPECT_TRUE(IsStale(std::nullopt, kT0, minutes{2}));
    EXPECT_FALSE(IsStale(kT0, kT0 + minutes{2}, minutes{2}));
    EXPECT_TRUE(IsStale(kT0, kT0 + minutes{2} + milliseconds{1}, minutes{2}));
}

TEST(UptimeRatio, FullyOnlineIsOne) {
    const AvailabilityInterval iv{kT0 - days{40}, std::nullopt};
    EXPECT_DOUBLE_EQ(UptimeRatio({&iv, 1}, kT0 - days{30}, kT0, kT0 - days{40}), 1.0);
}

TEST(UptimeRatio, CountsOnlyTheWindowAndSinceRegistration) {
    // Registered 10 days ago, online for the first 5 days, offline since.
    const AvailabilityInterval iv{kT0 - days{10}, kT0 - days{5}};
    EXPECT_DOUBLE_EQ(UptimeRatio({&iv, 1}, kT0 - days{30}, kT0, kT0 - days{10}), 0.5);
}

TEST(UptimeRatio, ClipsIntervalsAndMergesOverlaps) {
    const std::vector<AvailabilityInterval> ivs{
        {kT0 - days{45}, kT0 - days{25}},  // 5 days inside the window
        {kT0 - days{20}, kT0 - days{14}},  // 6 days
        {kT0 - days{16}, kT0 - days{12}},  // overlaps the previous by 2 days: 2 more
        {kT0 - days{3}, std::nullopt},     // open: 3 days up to now
        {kT0 + days{1}, std::nullopt},     // in the future: ignored
    };
    const double r = UptimeRatio(ivs, kT0 - days{30}, kT0, kT0 - days{60});
    EXPECT_NEAR(r, 16.0 / 30.0, 1e-12);
}

TEST(UptimeRatio, EmptyOrDegenerateWindows) {
    EXPECT_DOUBLE_EQ(UptimeRatio({}, kT0 - days{30}, kT0, kT0 - days{60}), 0.0);
    EXPECT_DOUBLE_EQ(UptimeRatio({}, kT0 - days{30}, kT0, kT0), 0.0);
    EXPECT_DOUBLE_EQ(UptimeRatio({}, kT0 - days{30}, kT0, kT0 + days{1}), 0.0);
}

TEST(UptimeRatio, ThirtyDaysOfHeartbeatsWithOutages) {
    // A simulated month: online except one 2-hour outage a day.
    std::vector<AvailabilityInterval> ivs;
    const auto start = kT0 - days{30};
    for (int d = 0; d < 30; ++d) {
        const auto day = start + days{d};
        ivs.push_back({day, day + hours{22}});
    }
    EXPECT_NEAR(UptimeRatio(ivs, start, kT0, start), 22.0 / 24.0, 1e-12);
}

TEST(UtcDay, FormatsTheCalendarDay) {
    EXPECT_EQ(UtcDay(common::TimePoint{seconds{0}}), "1970-01-01");
    EXPECT_EQ(UtcDay(common::TimePoint{seconds{1'800'000'000}}), "2027-01-15");
    EXPECT_EQ(UtcDay(common::TimePoint{seconds{86'399}}), "1970-01-01");
    EXPECT_EQ(UtcDay(common::TimePoint{seconds{86'400}}), "1970-01-02");
}

}  // namespace
}  // namespace decloud::orchestrator::domain
