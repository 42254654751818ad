#include <gtest/gtest.h>

#include "decloud/chain/types.hpp"

namespace decloud::chain {
namespace {

TEST(U256Test, DecimalRoundTripsAtTheLimits) {
    const std::string max =
        "115792089237316195423570985008687907853269984665640564039457584007913129639935";
    auto v = U256::ParseDecimal(max);
    ASSERT_TRUE(v);
    EXPECT_EQ(v->ToDecimal(), max);
    EXPECT_EQ(v->ToQuantity(), "0x" + std::string(64, 'f'));
    EXPECT_FALSE(v->Add(U256(1)));
    EXPECT_FALSE(v->Mul(2));
    EXPECT_FALSE(U256::ParseDecimal(
        "115792089237316195423570985008687907853269984665640564039457584007913129639936"));
    EXPECT_EQ(U256().ToDecimal(), "0");
    EXPECT_EQ(U256(1'000'000).ToDecimal(), "1000000");
}

TEST(U256Test, RejectsMalformedDecimals) {
    EXPECT_FALSE(U256::ParseDecimal(""));
    EXPECT_FALSE(U256::ParseDecimal("01"));
    EXPECT_FALSE(U256::ParseDecimal("-1"));
    EXPECT_FALSE(U256::ParseDecimal("1.5"));
    EXPECT_FALSE(U256::ParseDecimal("1e6"));
    EXPECT_TRUE(U256::ParseDecimal("0"));
}

TEST(U256Test, QuantitiesAreStrict) {
    EXPECT_EQ(U256::ParseQuantity("0x0").value(), U256(0));
    EXPECT_EQ(U256::ParseQuantity("0x1e8e").value(), U256(7822));
    EXPECT_EQ(U256::ParseQuantity("0xDE0B6B3A7640000").value().ToDecimal(), "1000000000000000000");
    EXPECT_FALSE(U256::ParseQuantity("0x"));
    EXPECT_FALSE(U256::ParseQuantity("0x01"));
    EXPECT_FALSE(U256::ParseQuantity("12"));
    EXPECT_FALSE(U256::ParseQuantity("0xg"));
    EXPECT_FALSE(U256::ParseQuantity("0x1" + std::string(64, '0')));
    EXPECT_EQ(U256(0).ToQuantity(), "0x0");
    EXPECT_EQ(U256(255).ToQuantity(), "0xff");
    EXPECT_EQ(U256(256).ToQuantity(), "0x100");
    EXPECT_FALSE(ParseQuantityU64("0x10000000000000000"));
    EXPECT_EQ(ParseQuantityU64("0xffffffffffffffff").value(), UINT64_MAX);
}

TEST(U256Test, ArithmeticCarriesAcrossLimbs) {
    const U256 big = U256::ParseQuantity("0xffffffffffffffff").value();
    const U256 sum = big.Add(U256(1)).value();
    EXPECT_EQ(sum.ToQuantity(), "0x10000000000000000");
    EXPECT_EQ(sum.Sub(U256(1)).value(), big);
    EXPECT_FALSE(U256(1).Sub(U256(2)));
    EXPECT_EQ(sum.Mul(1'000'000).value().ToDecimal(), "18446744073709551616000000");
    auto [q, r] = U256::ParseDecimal("18446744073709551616000007").value().DivMod(1'000'000);
    EXPECT_EQ(q, sum);
    EXPECT_EQ(r, 7u);
    EXPECT_LT(big, sum);
    EXPECT_EQ(U256::FromBigEndian(sum.ToBigEndian()).value(), sum);
    EXPECT_FALSE(U256::FromBigEndian(Bytes(33, 1)));
}

TEST(AddressTest, ParsesAndChecksums) {
    auto a = ParseAddress("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed");
    ASSERT_TRUE(a);
    EXPECT_EQ(ToString(*a), "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed");
    EXPECT_FALSE(ParseAddress("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD"));
    EXPECT_FALSE(ParseAddress("0x1234"));
    EXPECT_FALSE(ParseHash("0x12"));
    EXPECT_TRUE(ParseHexData("0x"));
    EXPECT_FALSE(ParseHexData("abcd"));
}

}  // namespace
}  // namespace decloud::chain
