#include "decloud/common/money.hpp"

#include <gtest/gtest.h>

#include <limits>
#include <random>

namespace decloud::common {
namespace {

TEST(Money, FormatsWithoutTrailingZeros) {
    EXPECT_EQ(FormatUsdc(0), "0");
    EXPECT_EQ(FormatUsdc(5), "0.000005");
    EXPECT_EQ(FormatUsdc(1'500'000), "1.5");
    EXPECT_EQ(FormatUsdc(1'234'567), "1.234567");
    EXPECT_EQ(FormatUsdc(12'000'000), "12");
}

TEST(Money, ParsesDecimalStrings) {
    EXPECT_EQ(ParseUsdc("0").value(), 0U);
    EXPECT_EQ(ParseUsdc("1.5").value(), 1'500'000U);
    EXPECT_EQ(ParseUsdc("0.000001").value(), 1U);
    EXPECT_EQ(ParseUsdc("12").value(), 12'000'000U);
}

TEST(Money, RefusesWhatIsNotAnAmount) {
    for (const char* bad : {"", ".5", "1.", "1.1234567", "-1", "+1", "1e6", "1,5", " 1", "0x10",
                            "99999999999999999999"})
        EXPECT_FALSE(ParseUsdc(bad)) << bad;
}

TEST(Money, FormatAndParseRoundTrip) {
    std::mt19937_64 random(7);
    for (int i = 0; i < 10'000; ++i) {
        const auto v = random() % (std::numeric_limits<std::uint64_t>::max() / 2);
        EXPECT_EQ(ParseUsdc(FormatUsdc(v)).value(), v);
    }
}

}  // namespace
}  // namespace decloud::common
