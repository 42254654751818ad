#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "orchestrator/domain/address_pool.hpp"

namespace decloud::orchestrator::domain {
namespace {

TunnelAddressPool Pool(const std::string& cidr) {
    auto pool = TunnelAddressPool::Parse(cidr);
    EXPECT_TRUE(pool) << cidr << ": " << (pool ? "" : pool.error().message);
    return pool ? *pool : TunnelAddressPool::Default();
}

TEST(RelayAddressPoolTest, DefaultIs10200Slash16) {
    const auto pool = TunnelAddressPool::Default();
    EXPECT_EQ(pool.ToString(), "10.200.0.0/16");
    EXPECT_EQ(pool.capacity(), 16384u);
    EXPECT_EQ(Pool("10.200.0.0/16").ToString(), pool.ToString());
}

TEST(RelayAddressPoolTest, ParsesPrivateRanges) {
    EXPECT_EQ(Pool("10.0.0.0/8").capacity(), 1u << 22);
    EXPECT_EQ(Pool("172.16.0.0/12").capacity(), 1u << 18);
    EXPECT_EQ(Pool("192.168.7.0/24").capacity(), 64u);
    EXPECT_EQ(Pool("192.168.7.4/30").capacity(), 1u);
}

TEST(RelayAddressPoolTest, RefusesWhatIsNotAPrivateIpv4Network) {
    struct Case {
        const char* text;
        const char* message_part;
    };
    for (const Case& c : {
             Case{"10.200.0.0", "not a CIDR"},
             Case{"10.200.0.0/", "not an IPv4 CIDR"},
             Case{"10.200.0.0/16x", "not an IPv4 CIDR"},
             Case{"fd00::/64", "not an IPv4 CIDR"},
             Case{"10.200.0.0/31", "between /8 and /30"},
             Case{"10.0.0.0/7", "between /8 and /30"},
             Case{"10.200.1.0/16", "host bits set; did you mean 10.200.0.0/16"},
             Case{"100.64.0.0/16", "private space"},  // the CGNAT nodes' own addresses
             Case{"8.8.0.0/16", "private space"},
             Case{"192.168.0.0/15", "private space"},  // spills out of 192.168.0.0/16
             Case{"172.0.0.0/11", "private space"},
             Case{"", "not a CIDR"},
         }) {
        const auto pool = TunnelAddressPool::Parse(c.text);
        ASSERT_FALSE(pool) << c.text;
        EXPECT_EQ(pool.error().code, common::ErrorCode::kInvalidArgument) << c.text;
        EXPECT_NE(pool.error().message.find(c.message_part), std::string::npos)
            << c.text << ": " << pool.error().message;
    }
}

TEST(RelayAddressPoolTest, BlocksAreSlash30WithRelayFirstAndCgnatSecond) {
    const auto pool = TunnelAddressPool::Default();
    EXPECT_EQ(pool.Block(0), (TunnelAddresses{0, "10.200.0.0/30", "10.200.0.1", "10.200.0.2"}));
    EXPECT_EQ(pool.Block(1), (TunnelAddresses{1, "10.200.0.4/30", "10.200.0.5", "10.200.0.6"}));
    EXPECT_EQ(pool.Block(64), (TunnelAddresses{64, "10.200.1.0/30", "10.200.1.1", "10.200.1.2"}));
    EXPECT_EQ(pool.Block(16383),
              (TunnelAddresses{16383, "10.200.255.252/30", "10.200.255.253", "10.200.255.254"}));
}

TEST(RelayAddressPoolTest, BlockOfFindsAnyAddressOfTheBlockInsideThePoolOnly) {
    const auto pool = Pool("10.200.0.0/16");
    EXPECT_EQ(pool.BlockOf("10.200.0.4"), 1u);
    EXPECT_EQ(pool.BlockOf("10.200.0.5"), 1u);
    EXPECT_EQ(pool.BlockOf("10.200.0.7"), 1u);
    EXPECT_EQ(pool.BlockOf("10.200.0.4/30"), 1u);
    EXPECT_EQ(pool.BlockOf("10.200.255.254"), 16383u);
    EXPECT_EQ(pool.BlockOf("10.201.0.4"), std::nullopt);
    EXPECT_EQ(pool.BlockOf("10.200.0.4/24"), std::nullopt);
    EXPECT_EQ(pool.BlockOf("not an address"), std::nullopt);
    EXPECT_EQ(pool.BlockOf("::1"), std::nullopt);
    for (std::uint32_t i : {0u, 7u, 999u, 16383u})
        EXPECT_EQ(pool.BlockOf(pool.Block(i).network), i);
}

TEST(RelayAddressPoolTest, AllocatesTheLowestFreeBlock) {
    const auto pool = TunnelAddressPool::Default();
    EXPECT_EQ(pool.AllocateLowest({})->block, 0u);
    const std::vector<std::uint32_t> used = {3, 0, 1, 1, 5, 999999};  // any order, dups, junk
    EXPECT_EQ(pool.AllocateLowest(used)->block, 2u);
    const std::vector<std::uint32_t> dense = {2, 0, 1, 3};
    EXPECT_EQ(pool.AllocateLowest(dense)->block, 4u);
    const std::vector<std::uint32_t> without_zero = {1, 2};
    EXPECT_EQ(pool.AllocateLowest(without_zero)->block, 0u);
}

TEST(RelayAddressPoolTest, AllocatingAWholePoolNeverRepeatsAnAddressNorUsesNetworkOrBroadcast) {
    const auto pool = Pool("192.168.50.0/24");
    std::vector<std::uint32_t> used;
    std::set<std::string> addresses;
    for (std::uint32_t i = 0; i < pool.capacity(); ++i) {
        const auto t = pool.AllocateLowest(used);
        ASSERT_TRUE(t) << i;
        used.push_back(t->block);
        EXPECT_TRUE(addresses.insert(t->relay_address).second) << t->relay_address;
        EXPECT_TRUE(addresses.insert(t->cgnat_address).second) << t->cgnat_address;
        // .0 and .3 of every /30 are the network and broadcast addresses.
        for (const auto& a : {t->relay_address, t->cgnat_address}) {
            const int last = std::stoi(a.substr(a.rfind('.') + 1));
            EXPECT_NE(last % 4, 0) << a;
            EXPECT_NE(last % 4, 3) << a;
        }
    }
    EXPECT_EQ(addresses.size(), 2u * 64u);
    const auto full = pool.AllocateLowest(used);
    ASSERT_FALSE(full);
    EXPECT_EQ(full.error().code, common::ErrorCode::kUnprocessable);
    EXPECT_EQ(full.error().message,
              "tunnel address pool 192.168.50.0/24 is exhausted: all 64 tunnel blocks (/30) are "
              "in use");
    // Releasing one makes exactly that one available again.
    used.erase(used.begin() + 17);
    EXPECT_EQ(pool.AllocateLowest(used)->block, 17u);
}

TEST(RelayAddressPoolTest, InterfaceNamesFitLinux) {
    EXPECT_EQ(TunnelInterfaceName(0), "dcc000000000000");
    EXPECT_EQ(TunnelInterfaceName(16383), "dcc000000003fff");
    // The largest block of the largest pool (/8).
    EXPECT_LE(TunnelInterfaceName((1u << 22) - 1).size(), 15u);
    // A relay's interface: from its node id, the same on every call, distinct per node.
    EXPECT_EQ(RelayInterfaceName("5f0c2a9e-1b2d-4c3e-8f9a-0b1c2d3e4f50"), "dcr5f0c2a9e1b2d");
    EXPECT_NE(RelayInterfaceName("5f0c2a9e-1b2d-4c3e-8f9a-0b1c2d3e4f50"),
              RelayInterfaceName("6f0c2a9e-1b2d-4c3e-8f9a-0b1c2d3e4f50"));
}

}  // namespace
}  // namespace decloud::orchestrator::domain
