#include <gtest/gtest.h>

#include <random>

#include "decloud/chain/payout_sender.hpp"

namespace decloud::chain {
namespace {

constexpr std::uint64_t kGwei = 1'000'000'000;

TEST(ReplacementFees, BumpsBothFeesByAnEighthRoundedUp) {
    // The chain asks less than before: the bump alone decides.
    const auto fees = ReplacementFees({U256(80 * kGwei), U256(9)}, {U256(kGwei), U256(1)},
                                      U256(1'000 * kGwei), U256(100 * kGwei));
    ASSERT_TRUE(fees);
    EXPECT_EQ(fees->max_fee, U256(90 * kGwei));
    EXPECT_EQ(fees->priority_fee, U256(11));  // 9 + ceil(9 / 8)
}

TEST(ReplacementFees, FollowsTheChainWhenItAsksMoreThanTheBump) {
    // Base fee rose to 50 gwei: 2 * 50 + tip 3 gwei.
    const auto fees =
        ReplacementFees({U256(20 * kGwei), U256(2 * kGwei)}, {U256(50 * kGwei), U256(3 * kGwei)},
                        U256(1'000 * kGwei), U256(100 * kGwei));
    ASSERT_TRUE(fees);
    EXPECT_EQ(fees->priority_fee, U256(3 * kGwei));
    EXPECT_EQ(fees->max_fee, U256(103 * kGwei));
}

TEST(ReplacementFees, StaysWithinTheCapsOrGivesUp) {
    // The chain asks more than the fee cap: capped, still a valid bump.
    auto fees = ReplacementFees({U256(80 * kGwei), U256(kGwei)}, {U256(500 * kGwei), U256(kGwei)},
                                U256(95 * kGwei), U256(10 * kGwei));
    ASSERT_TRUE(fees);
    EXPECT_EQ(fees->max_fee, U256(95 * kGwei));
    // No room for 12.5% more under the fee cap, or under the tip cap: the old one keeps waiting.
    EXPECT_FALSE(ReplacementFees({U256(90 * kGwei), U256(kGwei)}, {U256(kGwei), U256(kGwei)},
                                 U256(100 * kGwei), U256(10 * kGwei)));
    EXPECT_FALSE(ReplacementFees({U256(10 * kGwei), U256(9 * kGwei)}, {U256(kGwei), U256(kGwei)},
                                 U256(100 * kGwei), U256(10 * kGwei)));
    // A fee cap below the bumped tip would make an invalid transaction.
    EXPECT_FALSE(ReplacementFees({U256(1), U256(1)}, {U256(0), U256(200)}, U256(150), U256(300)));
}

TEST(ReplacementFees, NeverOverflows) {
    const auto max = U256::ParseDecimal(
                         "115792089237316195423570985008687907853269984665640564039457584007913129"
                         "639935")
                         .value();
    EXPECT_FALSE(ReplacementFees({max, U256(1)}, {U256(1), U256(1)}, max, max));
    EXPECT_FALSE(ReplacementFees({U256(1), max}, {U256(1), U256(1)}, max, max));
}

// Property: whatever the old fees, the chain's ask and the caps, a replacement offered is a
// valid transaction within the caps that every node accepts as a replacement (both fees >= 112.5%
// of the old ones), and one is offered whenever the caps leave room for the bump.
TEST(ReplacementFees, AnyReplacementIsValidWithinTheCapsAndBumpsBothFees) {
    std::mt19937_64 random(20261126);
    auto draw = [&](std::uint64_t limit) { return random() % limit; };
    for (int i = 0; i < 20'000; ++i) {
        const std::uint64_t old_fee = 1 + draw(1'000 * kGwei);
        const std::uint64_t old_tip = draw(old_fee + 1);
        const std::uint64_t base = draw(600 * kGwei);
        const std::uint64_t tip_now = draw(50 * kGwei);
        const std::uint64_t fee_cap = 1 + draw(2'000 * kGwei);
        const std::uint64_t tip_cap = draw(fee_cap + 1);
        const auto fees =
            ReplacementFees({U256(old_fee), U256(old_tip)}, {U256(base), U256(tip_now)},
                            U256(fee_cap), U256(tip_cap));
        // 8 * new >= 9 * old is the 12.5% bump without rounding (all values here < 2^42).
        const auto bumped = [](std::uint64_t v) { return (v * 9 + 7) / 8; };
        const bool room =
            bumped(old_fee) <= fee_cap && bumped(old_tip) <= tip_cap && bumped(old_tip) <= fee_cap;
        ASSERT_EQ(fees.has_value(), room) << "old " << old_fee << "/" << old_tip;
        if (!fees) continue;
        const auto fee = fees->max_fee.ToU64().value();
        const auto tip = fees->priority_fee.ToU64().value();
        EXPECT_LE(fee, fee_cap);
        EXPECT_LE(tip, tip_cap);
        EXPECT_LE(tip, fee);
        EXPECT_GE(fee * 8, old_fee * 9);
        EXPECT_GE(tip * 8, old_tip * 9);
    }
}

}  // namespace
}  // namespace decloud::chain
