#include <gtest/gtest.h>

#include <limits>

#include "decloud/common/money.hpp"
#include "orchestrator/domain/relay.hpp"

namespace decloud::orchestrator::domain {
namespace {

constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();

TEST(RelayRevenueTest, EightyTwentyOfRoundAmounts) {
    EXPECT_EQ(SplitRelayRevenue(common::kMicroUsdcPerUsdc), (RevenueSplit{800'000, 200'000}));
    EXPECT_EQ(SplitRelayRevenue(0), (RevenueSplit{0, 0}));
    EXPECT_EQ(SplitRelayRevenue(5), (RevenueSplit{4, 1}));
}

TEST(RelayRevenueTest, PartsAlwaysAddUpAndTheRelayNeverGetsMoreThanItsShare) {
    for (std::uint64_t amount :
         std::initializer_list<std::uint64_t>{1ull, 2ull, 3ull, 4ull, 6ull, 7ull, 9ull, 123'457ull,
                                              999'999'999ull, kMax - 1, kMax}) {
        const auto s = SplitRelayRevenue(amount);
        EXPECT_EQ(s.node_micro_usdc + s.relay_micro_usdc, amount) << amount;
        // relay = floor(amount / 5): 5 x relay <= amount < 5 x (relay + 1).
        EXPECT_EQ(s.relay_micro_usdc, amount / 5) << amount;
    }
    EXPECT_EQ(SplitRelayRevenue(kMax).relay_micro_usdc, kMax / 5);  // no overflow on the way
}

TEST(RelayRevenueTest, OtherShares) {
    EXPECT_EQ(SplitRelayRevenue(1000, 0), (RevenueSplit{1000, 0}));
    EXPECT_EQ(SplitRelayRevenue(1000, 10'000), (RevenueSplit{0, 1000}));
    EXPECT_EQ(SplitRelayRevenue(1000, 99'999), (RevenueSplit{0, 1000}));  // capped at 100%
    EXPECT_EQ(SplitRelayRevenue(1000, 1), (RevenueSplit{1000, 0}));
    EXPECT_EQ(SplitRelayRevenue(10'001, 5000), (RevenueSplit{5001, 5000}));
}

TEST(RelayRevenueTest, IncrementalSplitsDoNotLoseTheRelaysShareToRounding) {
    // A VM charged 1 micro-USDC an hour: per-charge rounding would pay the relay nothing ever.
    std::uint64_t total = 0;
    std::uint64_t relay = 0;
    std::uint64_t node = 0;
    for (int hour = 0; hour < 1000; ++hour) {
        const auto s = SplitRelayRevenueIncrement(total, 1);
        EXPECT_EQ(s.node_micro_usdc + s.relay_micro_usdc, 1u);
        total += 1;
        relay += s.relay_micro_usdc;
        node += s.node_micro_usdc;
        EXPECT_EQ(relay, total / 5) << hour;
    }
    EXPECT_EQ(relay, 200u);
    EXPECT_EQ(node, 800u);

    // Uneven charges too: the running totals always equal one split of the whole.
    total = relay = 0;
    for (std::uint64_t amount : std::initializer_list<std::uint64_t>{7ull, 13ull, 1ull, 999ull,
                                                                     4ull, 3ull, 1'000'001ull}) {
        const auto s = SplitRelayRevenueIncrement(total, amount);
        EXPECT_EQ(s.node_micro_usdc + s.relay_micro_usdc, amount);
        total += amount;
        relay += s.relay_micro_usdc;
        EXPECT_EQ(relay, SplitRelayRevenue(total).relay_micro_usdc);
    }
    // Near the top of the range the sum of both inputs exceeds 64 bits and still splits.
    const auto top = SplitRelayRevenueIncrement(kMax, kMax);
    EXPECT_EQ(top.node_micro_usdc + top.relay_micro_usdc, kMax);
}

}  // namespace
}  // namespace decloud::orchestrator::domain
