#include <gtest/gtest.h>

#include <limits>

#include "orchestrator/domain/money.hpp"

namespace decloud::orchestrator::domain {
namespace {

constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();

TEST(BillingMoneyTest, FormatsSixDecimalsAlways) {
    EXPECT_EQ(FormatAmount(Amount::Micros(12'345'678)), "12.345678");
    EXPECT_EQ(FormatAmount(Amount::Micros(0)), "0.000000");
    EXPECT_EQ(FormatAmount(Amount::Micros(5)), "0.000005");
    EXPECT_EQ(FormatAmount(Amount::Micros(1'000'000)), "1.000000");
    EXPECT_EQ(FormatAmount(Amount::Micros(-1'500'000)), "-1.500000");
    EXPECT_EQ(FormatAmount(Amount::Micros(kMax)), "9223372036854.775807");
    EXPECT_EQ(FormatAmount(Amount::Micros(kMin)), "-9223372036854.775808");
}

TEST(BillingMoneyTest, ParsesPlainDecimalsOnly) {
    EXPECT_EQ(ParseAmount("12.345678").value(), Amount::Micros(12'345'678));
    EXPECT_EQ(ParseAmount("12").value(), Amount::Micros(12'000'000));
    EXPECT_EQ(ParseAmount("0.5").value(), Amount::Micros(500'000));
    EXPECT_EQ(ParseAmount("0.000001").value(), Amount::Micros(1));
    EXPECT_EQ(ParseAmount("9223372036854.775807").value(), Amount::Micros(kMax));
    for (const char* bad :
         {"", "-1", "+1", "1e6", "1E6", "1.", ".5", "1.0000001", " 1", "1 ", "0x10", "1,5", "1.2.3",
          "NaN", "inf", "9223372036854.775808", "99999999999999999999"})
        EXPECT_FALSE(ParseAmount(bad)) << bad;
}

TEST(BillingMoneyTest, RoundTrips) {
    for (std::int64_t m :
         std::initializer_list<std::int64_t>{0, 1, 999'999, 1'000'000, 123'456'789'012, kMax})
        EXPECT_EQ(ParseAmount(FormatAmount(Amount::Micros(m))).value(), Amount::Micros(m));
}

TEST(BillingMoneyTest, ArithmeticIsChecked) {
    EXPECT_EQ(Amount::Micros(2).Plus(Amount::Micros(3)).value(), Amount::Micros(5));
    EXPECT_EQ(Amount::Micros(2).Minus(Amount::Micros(3)).value(), Amount::Micros(-1));
    EXPECT_FALSE(Amount::Micros(kMax).Plus(Amount::Micros(1)));
    EXPECT_FALSE(Amount::Micros(kMin).Minus(Amount::Micros(1)));
    EXPECT_FALSE(Amount::Micros(kMin).Negated());
    EXPECT_EQ(Amount::Micros(kMax).Negated().value(), Amount::Micros(-kMax));
}

TEST(BillingMoneyTest, MulDivFloorUses128Bits) {
    // kMax x 9999 overflows 64 bits; the exact quotient is kMax - ceil(kMax / 10000).
    EXPECT_EQ(MulDivFloor(Amount::Micros(kMax), 9999, 10'000).micros(), kMax - (kMax / 10'000 + 1));
    EXPECT_EQ(MulDivFloor(Amount::Micros(7), 1, 3), Amount::Micros(2));
    EXPECT_EQ(MulDivFloor(Amount::Micros(kMax), 1, 1), Amount::Micros(kMax));
}

}  // namespace
}  // namespace decloud::orchestrator::domain
