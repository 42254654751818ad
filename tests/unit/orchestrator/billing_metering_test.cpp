#include <gtest/gtest.h>

#include "orchestrator/domain/metering.hpp"

namespace decloud::orchestrator::domain {
namespace {

using namespace std::chrono;
using common::TimePoint;

const TimePoint kH0{hours{500'000}};  // an hour boundary

TEST(BillingMeteringTest, WholeHoursOfARunningVm) {
    const std::vector<StateChange> h{{kH0 - minutes{10}, VmState::kProvisioning},
                                     {kH0 - minutes{5}, VmState::kRunning}};
    const auto slices = RunningSecondsByHour(h, kH0 - hours{1}, kH0 + hours{2});
    ASSERT_EQ(slices.size(), 3u);
    EXPECT_EQ(slices[0], (MeterSlice{kH0 - hours{1}, 300}));
    EXPECT_EQ(slices[1], (MeterSlice{kH0, 3600}));
    EXPECT_EQ(slices[2], (MeterSlice{kH0 + hours{1}, 3600}));
}

TEST(BillingMeteringTest, StopAndStartWithinAnHourCountsRunningSecondsOnly) {
    const std::vector<StateChange> h{
        {kH0 + minutes{10}, VmState::kRunning},
        {kH0 + minutes{20}, VmState::kStopping},
        {kH0 + minutes{21}, VmState::kStopped},
        {kH0 + minutes{40} + milliseconds{700}, VmState::kRunning},  // 40:00.7
        {kH0 + minutes{50} + milliseconds{300}, VmState::kStopping}};
    const auto slices = RunningSecondsByHour(h, kH0, kH0 + hours{1});
    ASSERT_EQ(slices.size(), 1u);
    // 600 s, then 40:00 .. 50:00 in whole seconds (fractions truncated at both ends).
    EXPECT_EQ(slices[0].running_seconds, 600 + 600);
}

TEST(BillingMeteringTest, WindowsTileWithoutDoubleCounting) {
    const std::vector<StateChange> h{{kH0 + seconds{1234}, VmState::kRunning},
                                     {kH0 + hours{30} + seconds{77}, VmState::kStopped}};
    std::int64_t by_hour = 0;
    for (int i = 0; i < 40; ++i)
        for (const auto& s : RunningSecondsByHour(h, kH0 + hours{i}, kH0 + hours{i + 1})) {
            EXPECT_LE(s.running_seconds, 3600);
            by_hour += s.running_seconds;
        }
    std::int64_t whole = 0;
    const auto all = RunningSecondsByHour(h, kH0, kH0 + hours{40});
    for (const auto& s : all) whole += s.running_seconds;
    EXPECT_EQ(all.size(), 31u);
    EXPECT_EQ(by_hour, whole);
    EXPECT_EQ(whole, 30 * 3600 + 77 - 1234);
}

TEST(BillingMeteringTest, UnorderedHistoryAndNoRunning) {
    const std::vector<StateChange> h{{kH0 + minutes{30}, VmState::kStopped},
                                     {kH0, VmState::kRunning}};
    const auto slices = RunningSecondsByHour(h, kH0, kH0 + hours{1});
    ASSERT_EQ(slices.size(), 1u);
    EXPECT_EQ(slices[0].running_seconds, 1800);
    EXPECT_TRUE(RunningSecondsByHour({{kH0, VmState::kStopped}}, kH0, kH0 + hours{3}).empty());
    EXPECT_TRUE(RunningSecondsByHour({}, kH0, kH0 + hours{3}).empty());
}

TEST(BillingMeteringTest, ChargesRoundDown) {
    EXPECT_EQ(ChargeForSeconds(Amount::Micros(3600), 1), Amount::Micros(1));
    EXPECT_EQ(ChargeForSeconds(Amount::Micros(1'000'000), 3600), Amount::Micros(1'000'000));
    EXPECT_EQ(ChargeForSeconds(Amount::Micros(1'000'000), 1), Amount::Micros(277));
    EXPECT_EQ(ChargeForSeconds(Amount::Micros(1'000'000), 1800), Amount::Micros(500'000));
    EXPECT_EQ(ChargeForSeconds(Amount::Micros(0), 3600), Amount::Micros(0));
    EXPECT_EQ(ChargeForSeconds(Amount::Micros(100), 0), Amount::Micros(0));
}

TEST(BillingMeteringTest, HourFloor) {
    EXPECT_EQ(HourFloor(kH0 + minutes{59} + seconds{59}), kH0);
    EXPECT_EQ(HourFloor(kH0), kH0);
    EXPECT_EQ(HourFloor(kH0 - milliseconds{1}), kH0 - hours{1});
}

}  // namespace
}  // namespace decloud::orchestrator::domain
