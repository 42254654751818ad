#include "agent/domain/relay/port_forwarding.hpp"

#include <gtest/gtest.h>

#include <ostream>
#include <string>

namespace decloud::agent::domain::relay {

// Readable failure messages (found by ADL, so outside the anonymous namespace).
void PrintTo(const PortMapping& m, std::ostream* os) {
    *os << ToString(m.protocol) << "/" << m.public_port << "->" << m.tunnel_address << ":"
        << m.vm_port;
}

namespace {

PortMapping Tcp(std::uint16_t public_port, std::string address, std::uint16_t vm_port) {
    return {public_port, Protocol::kTcp, std::move(address), vm_port};
}
PortMapping Udp(std::uint16_t public_port, std::string address, std::uint16_t vm_port) {
    return {public_port, Protocol::kUdp, std::move(address), vm_port};
}

constexpr const char* kA = "dcr000000000001";
constexpr const char* kB = "dcr000000000002";

NftTableState TwoInterfaces() {
    NftTableState s;
    s.exists = true;
    s.interfaces = {kA, kB};
    s.mappings[kA] = {Tcp(8080, "10.99.0.2", 80), Udp(5353, "10.99.0.2", 53)};
    s.mappings[kB] = {Tcp(2222, "10.98.0.2", 22)};
    return s;
}

TEST(ValidateMappingsTest, RejectsBadMappings) {
    EXPECT_TRUE(ValidateMappings({Tcp(80, "10.99.0.2", 80), Udp(80, "10.99.0.2", 80)}));
    EXPECT_FALSE(ValidateMappings({Tcp(0, "10.99.0.2", 80)}));
    EXPECT_FALSE(ValidateMappings({Tcp(80, "10.99.0.2", 0)}));
    EXPECT_FALSE(ValidateMappings({Tcp(80, "10.99.0", 80)}));
    EXPECT_FALSE(ValidateMappings({Tcp(80, "010.99.0.2", 80)}));
    EXPECT_FALSE(ValidateMappings({Tcp(80, "fd00::2", 80)}));
    EXPECT_FALSE(ValidateMappings({Tcp(80, "10.99.0.2 } ; flush ruleset", 80)}));
    const auto dup = ValidateMappings({Tcp(80, "10.99.0.2", 80), Tcp(80, "10.99.0.3", 81)});
    ASSERT_FALSE(dup);
    EXPECT_NE(dup.error().message.find("tcp/80"), std::string::npos);
}

TEST(DiffMappingsTest, FromEmptyAddsEverythingAndTheInterface) {
    const auto diff = DiffMappings(kA, {Tcp(8080, "10.99.0.2", 80)}, NftTableState{});
    ASSERT_TRUE(diff);
    EXPECT_TRUE(diff->add_interface);
    EXPECT_TRUE(diff->remove.empty());
    EXPECT_EQ(diff->add, (std::vector<PortMapping>{Tcp(8080, "10.99.0.2", 80)}));
}

TEST(DiffMappingsTest, SameStateIsEmpty) {
    const auto s = TwoInterfaces();
    const auto diff = DiffMappings(kA, {Udp(5353, "10.99.0.2", 53), Tcp(8080, "10.99.0.2", 80)}, s);
    ASSERT_TRUE(diff);
    EXPECT_TRUE(diff->Empty());
}

TEST(DiffMappingsTest, MinimalAddsAndDeletesOnlyForItsInterface) {
    const auto s = TwoInterfaces();
    const auto diff =
        DiffMappings(kA, {Tcp(8080, "10.99.0.2", 8081), Tcp(9000, "10.99.0.3", 9000)}, s);
    ASSERT_TRUE(diff);
    EXPECT_FALSE(diff->add_interface);
    // 8080 changed target: delete + add of the same key; 5353 is gone; 2222 (kB) untouched.
    EXPECT_EQ(diff->remove,
              (std::vector<PortMapping>{Udp(5353, "10.99.0.2", 53), Tcp(8080, "10.99.0.2", 80)}));
    EXPECT_EQ(diff->add, (std::vector<PortMapping>{Tcp(8080, "10.99.0.2", 8081),
                                                   Tcp(9000, "10.99.0.3", 9000)}));
    auto after = s;
    ApplyDiff(after, kA, *diff);
    EXPECT_EQ(after.mappings.at(kA), (std::vector<PortMapping>{Tcp(8080, "10.99.0.2", 8081),
                                                               Tcp(9000, "10.99.0.3", 9000)}));
    EXPECT_EQ(after.mappings.at(kB), s.mappings.at(kB));
    const auto again =
        DiffMappings(kA, {Tcp(8080, "10.99.0.2", 8081), Tcp(9000, "10.99.0.3", 9000)}, after);
    ASSERT_TRUE(again);
    EXPECT_TRUE(again->Empty());
}

TEST(DiffMappingsTest, APortHeldByAnotherInterfaceIsAConflict) {
    const auto s = TwoInterfaces();
    const auto diff = DiffMappings(kA, {Tcp(2222, "10.99.0.2", 22)}, s);
    ASSERT_FALSE(diff);
    EXPECT_EQ(diff.error().code, common::ErrorCode::kConflict);
    EXPECT_NE(diff.error().message.find(kB), std::string::npos);
    // The same number on the other protocol is free.
    EXPECT_TRUE(DiffMappings(kA, {Udp(2222, "10.99.0.2", 22)}, s));
    auto orphan = s;
    orphan.mappings[""] = {Tcp(7000, "10.1.1.1", 7000)};
    EXPECT_FALSE(DiffMappings(kA, {Tcp(7000, "10.99.0.2", 7000)}, orphan));
}

TEST(DiffMappingsTest, ATakeOverMovesThePortInOneDiff) {
    const auto s = TwoInterfaces();
    // A failover: kB's port 2222 now belongs to kA, with kA's own tunnel address.
    const auto diff = DiffMappings(
        kA, {Tcp(8080, "10.99.0.2", 80), Udp(5353, "10.99.0.2", 53), Tcp(2222, "10.99.0.2", 22)}, s,
        HeldElsewhere::kTakeOver);
    ASSERT_TRUE(diff);
    EXPECT_EQ(diff->remove, (std::vector<PortMapping>{Tcp(2222, "10.98.0.2", 22)}));
    EXPECT_EQ(diff->add, (std::vector<PortMapping>{Tcp(2222, "10.99.0.2", 22)}));
    auto after = s;
    ApplyDiff(after, kA, *diff);
    EXPECT_FALSE(after.mappings.contains(kB)) << "the port left the interface that held it";
    EXPECT_EQ(after.mappings.at(kA).size(), 3u);
    const auto again = DiffMappings(
        kA, {Tcp(8080, "10.99.0.2", 80), Udp(5353, "10.99.0.2", 53), Tcp(2222, "10.99.0.2", 22)},
        after, HeldElsewhere::kTakeOver);
    ASSERT_TRUE(again);
    EXPECT_TRUE(again->Empty());
    // The interface that lost it now holds nothing to remove.
    const auto loser = DiffMappings(kB, {}, after);
    ASSERT_TRUE(loser);
    EXPECT_TRUE(loser->Empty());
}

TEST(DiffMappingsTest, RemovalTakesTheInterfaceOut) {
    auto s = TwoInterfaces();
    const auto diff = RemovalDiff(kA, s);
    EXPECT_TRUE(diff.remove_interface);
    EXPECT_EQ(diff.remove.size(), 2u);
    ApplyDiff(s, kA, diff);
    EXPECT_EQ(s.interfaces, (std::vector<std::string>{kB}));
    EXPECT_EQ(s.mappings.count(kA), 0u);
    EXPECT_TRUE(RemovalDiff(kA, s).Empty());
}

TEST(RenderTest, OneCommandPerKindOfChange) {
    MappingDiff diff;
    diff.remove = {Tcp(8080, "10.99.0.2", 80), Udp(5353, "10.99.0.2", 53)};
    diff.add = {Tcp(8080, "10.99.0.2", 8081)};
    diff.add_interface = true;
    EXPECT_EQ(RenderDiff("decloud_relay", kA, diff),
              "delete element inet decloud_relay ports { tcp . 8080, udp . 5353 }\n"
              "add element inet decloud_relay relay_ifaces { \"dcr000000000001\" }\n"
              "add element inet decloud_relay ports { tcp . 8080 comment \"dcr000000000001\" : "
              "10.99.0.2 . 8081 }\n");
    EXPECT_EQ(RenderDiff("decloud_relay", kA, MappingDiff{}), "");
    MappingDiff removal;
    removal.remove_interface = true;
    EXPECT_EQ(RenderDiff("t", kA, removal),
              "delete element inet t relay_ifaces { \"dcr000000000001\" }\n");
    EXPECT_EQ(RenderDeleteTable("t"), "delete table inet t\n");
}

TEST(RenderTest, SkeletonFlushesAndRewritesTheChains) {
    const auto s = RenderSkeleton("decloud_relay");
    EXPECT_NE(s.find("add table inet decloud_relay\n"), std::string::npos);
    EXPECT_NE(s.find("type inet_proto . inet_service : ipv4_addr . inet_service"),
              std::string::npos);
    EXPECT_NE(s.find("flush chain inet decloud_relay prerouting\n"), std::string::npos);
    EXPECT_NE(s.find("fib daddr type local dnat ip to meta l4proto . th dport map @ports"),
              std::string::npos);
    EXPECT_NE(s.find("oifname @relay_ifaces ct status dnat masquerade"), std::string::npos);
    // Rules come after the flushes, so applying the skeleton twice leaves one copy.
    EXPECT_LT(s.rfind("flush chain"), s.find("add rule"));
}

TEST(NftNamesTest, Validity) {
    EXPECT_TRUE(IsValidNftName("decloud_relay"));
    EXPECT_FALSE(IsValidNftName(""));
    EXPECT_FALSE(IsValidNftName("1abc"));
    EXPECT_FALSE(IsValidNftName("a-b"));
    EXPECT_FALSE(IsValidNftName("a b"));
}

// What libnftables 1.0.6 printed for `list table inet decloud_relay` with NFT_CTX_OUTPUT_JSON.
constexpr const char* kListing = R"({"nftables": [
 {"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}},
 {"table": {"family": "inet", "name": "decloud_relay", "handle": 1}},
 {"set": {"family": "inet", "name": "relay_ifaces", "table": "decloud_relay", "type": "ifname",
          "handle": 2, "elem": ["dcr000000000002", "dcr000000000001"]}},
 {"map": {"family": "inet", "name": "ports", "table": "decloud_relay",
          "type": ["inet_proto", "inet_service"], "handle": 5, "map": "ipv4_addr . inet_service",
          "elem": [[{"concat": ["udp", 53]}, {"concat": ["10.200.0.3", 5353]}],
                   [{"elem": {"val": {"concat": ["tcp", 8080]}, "comment": "dcr000000000001"}},
                    {"concat": ["10.200.0.2", 80]}],
                   [{"elem": {"val": {"concat": ["udp", 5353]}, "comment": "dcr000000000001"}},
                    {"concat": ["10.200.0.2", 53]}]]}},
 {"chain": {"family": "inet", "table": "decloud_relay", "name": "prerouting", "handle": 3,
            "type": "nat", "hook": "prerouting", "prio": -100, "policy": "accept"}}
]})";

TEST(ParseNftTableJsonTest, ReadsInterfacesAndOwnedMappings) {
    const auto state = ParseNftTableJson(kListing);
    ASSERT_TRUE(state) << state.error().message;
    EXPECT_TRUE(state->exists);
    EXPECT_EQ(state->interfaces, (std::vector<std::string>{kA, kB}));
    EXPECT_EQ(state->mappings.at(kA),
              (std::vector<PortMapping>{Udp(5353, "10.200.0.2", 53), Tcp(8080, "10.200.0.2", 80)}));
    EXPECT_EQ(state->mappings.at(""), (std::vector<PortMapping>{Udp(53, "10.200.0.3", 5353)}));
}

TEST(ParseNftTableJsonTest, EmptyMapsAndBadShapes) {
    const auto empty = ParseNftTableJson(
        R"({"nftables": [{"table": {"family": "inet", "name": "t", "handle": 1}},
            {"map": {"family": "inet", "name": "ports", "table": "t", "handle": 5}}]})");
    ASSERT_TRUE(empty);
    EXPECT_TRUE(empty->exists);
    EXPECT_TRUE(empty->mappings.empty());
    EXPECT_FALSE(ParseNftTableJson("not json"));
    EXPECT_FALSE(ParseNftTableJson(R"({"other": []})"));
    EXPECT_FALSE(ParseNftTableJson(
        R"({"nftables": [{"map": {"name": "ports", "elem": [[{"concat": ["sctp", 1]},
            {"concat": ["10.0.0.1", 1]}]]}}]})"));
    EXPECT_FALSE(ParseNftTableJson(
        R"({"nftables": [{"map": {"name": "ports", "elem": [[{"concat": ["tcp", 70000]},
            {"concat": ["10.0.0.1", 1]}]]}}]})"));
}

}  // namespace
}  // namespace decloud::agent::domain::relay
