#include "decloud/common/clock.hpp"

#include <gtest/gtest.h>

namespace decloud::common {
namespace {

using namespace std::chrono;

TEST(Rfc3339, FormatsUtcWithMilliseconds) {
    const TimePoint t{seconds{1'700'000'000} + milliseconds{42}};
    EXPECT_EQ(FormatRfc3339(t), "2023-11-14T22:13:20.042Z");
}

TEST(Rfc3339, RoundTrips) {
    const TimePoint t{seconds{1'800'000'123} + milliseconds{7}};
    TimePoint parsed;
    ASSERT_TRUE(ParseRfc3339(FormatRfc3339(t), parsed));
    EXPECT_EQ(parsed, t);
}

TEST(Rfc3339, AcceptsOffsetsAndFractions) {
    TimePoint a, b;
    ASSERT_TRUE(ParseRfc3339("2026-11-24T21:07:31Z", a));
    ASSERT_TRUE(ParseRfc3339("2026-11-24T22:07:31.000000+01:00", b));
    EXPECT_EQ(a, b);
    ASSERT_TRUE(ParseRfc3339("2026-11-24T21:07:31.5z", b));
    EXPECT_EQ(b - a, milliseconds{500});
}

TEST(Rfc3339, RejectsMalformed) {
    TimePoint t;
    for (const char* bad :
         {"", "2026-11-24", "2026-11-24T21:07:31", "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z",
          "2026-11-24T25:00:00Z", "2026-11-24T21:07:31.Z", "2026-11-24T21:07:31Zjunk",
          "2026-11-24 21:07:31Z", "x026-11-24T21:07:31Z"}) {
        EXPECT_FALSE(ParseRfc3339(bad, t)) << bad;
    }
}

TEST(ManualClock, AdvancesOnlyWhenTold) {
    ManualClock clock;
    const auto start = clock.Now();
    EXPECT_EQ(clock.Now(), start);
    clock.Advance(minutes{2});
    EXPECT_EQ(clock.Now() - start, minutes{2});
    clock.Set(start);
    EXPECT_EQ(clock.Now(), start);
}

}  // namespace
}  // namespace decloud::common
