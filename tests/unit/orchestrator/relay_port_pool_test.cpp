#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <vector>

#include "orchestrator/domain/port_pool.hpp"

namespace decloud::orchestrator::domain {
namespace {

TEST(RelayPortPoolTest, RangeValidation) {
    EXPECT_EQ(PortRange::Make(30000, 39999)->size(), 10000u);
    EXPECT_EQ(PortRange::Make(1, 65535)->size(), 65535u);
    EXPECT_EQ(PortRange::Make(5, 5)->size(), 1u);
    for (const auto& [first, last] :
         {std::pair{0u, 10u}, std::pair{10u, 9u}, std::pair{1u, 65536u}}) {
        const auto r = PortRange::Make(first, last);
        ASSERT_FALSE(r) << first << "-" << last;
        EXPECT_EQ(r.error().code, common::ErrorCode::kInvalidArgument);
    }
    EXPECT_EQ(*PortRange::Parse("30000-39999"), (PortRange{30000, 39999}));
    EXPECT_EQ(*PortRange::Parse("8080"), (PortRange{8080, 8080}));
    EXPECT_EQ(PortRange::Parse("30000-39999")->ToString(), "30000-39999");
    for (const char* bad : {"", "-", "1-", "-5", "a-b", "100-50", "1-2-3", " 1-2"})
        EXPECT_FALSE(PortRange::Parse(bad)) << bad;
}

TEST(RelayPortPoolTest, AllocatesFromTheHintUpwardsAndWraps) {
    const PortRange range{100, 109};
    EXPECT_EQ(*AllocatePort(range, {}, 0), 100);  // a hint outside starts at the bottom
    EXPECT_EQ(*AllocatePort(range, {}, 104), 104);
    const std::vector<std::uint16_t> taken = {104, 105, 109};
    EXPECT_EQ(*AllocatePort(range, taken, 104), 106);
    EXPECT_EQ(*AllocatePort(range, taken, 109), 100);                // wraps around
    EXPECT_EQ(*AllocatePort(range, taken, 110), 100);                // past the top: the bottom
    const std::vector<std::uint16_t> outside = {99, 110, 0, 65535};  // ignored
    EXPECT_EQ(*AllocatePort(range, outside, 100), 100);
}

TEST(RelayPortPoolTest, ExhaustionSaysSo) {
    const PortRange range{100, 102};
    const std::vector<std::uint16_t> taken = {102, 100, 101};
    const auto r = AllocatePort(range, taken, 101);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, common::ErrorCode::kUnprocessable);
    EXPECT_EQ(r.error().message, "all 3 public ports of 100-102 are taken");
    const auto many = AllocatePorts(range, std::vector<std::uint16_t>{101}, 100, 3);
    ASSERT_FALSE(many);
    EXPECT_EQ(many.error().message, "needs 3 public ports of 100-102, only 2 free");
}

TEST(RelayPortPoolTest, AllocatingEveryPortOneByOneNeverRepeats) {
    const PortRange range{40000, 40999};
    std::vector<std::uint16_t> taken;
    std::uint32_t hint = 40500;
    for (std::uint32_t i = 0; i < range.size(); ++i) {
        const auto p = AllocatePort(range, taken, hint);
        ASSERT_TRUE(p) << i;
        ASSERT_TRUE(range.Contains(*p));
        ASSERT_EQ(std::find(taken.begin(), taken.end(), *p), taken.end()) << *p;
        taken.push_back(*p);
        hint = *p + 1u;
    }
    EXPECT_FALSE(AllocatePort(range, taken, hint));
}

TEST(RelayPortPoolTest, AReleasedPortIsNotHandedOutAgainAtOnce) {
    const PortRange range{100, 109};
    std::vector<std::uint16_t> taken = {100, 101, 102};
    // The cursor sits after the last allocation (102); 101 is released.
    taken.erase(taken.begin() + 1);
    EXPECT_EQ(*AllocatePort(range, taken, 103), 103);
}

TEST(RelayPortPoolTest, ManyAtOnceAreDistinctAndSkipTaken) {
    const PortRange range{100, 109};
    const std::vector<std::uint16_t> taken = {101, 103};
    const auto ports = AllocatePorts(range, taken, 100, 5);
    ASSERT_TRUE(ports);
    EXPECT_EQ(*ports, (std::vector<std::uint16_t>{100, 102, 104, 105, 106}));
    const auto wrap = AllocatePorts(range, taken, 108, 4);
    ASSERT_TRUE(wrap);
    EXPECT_EQ(*wrap, (std::vector<std::uint16_t>{108, 109, 100, 102}));
    const auto all = AllocatePorts(range, taken, 105, 8);
    ASSERT_TRUE(all);
    EXPECT_EQ(std::set<std::uint16_t>(all->begin(), all->end()).size(), 8u);
}

}  // namespace
}  // namespace decloud::orchestrator::domain
