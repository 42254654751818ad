#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <string>
#include <vector>

#include "orchestrator/domain/relay_selection.hpp"

namespace decloud::orchestrator::domain {
namespace {

RelayCandidate Relay(const std::string& id, const std::string& region = "eu-west",
                     std::uint32_t tunnels = 0) {
    RelayCandidate c;
    c.node_id = id;
    c.enabled = true;
    c.online = true;
    c.healthy = true;
    static int next_address = 1;  // every relay its own machine unless a test says otherwise
    c.public_address = "198.51.100." + std::to_string(next_address++ % 250 + 1);
    c.wireguard_port = 51820;
    c.wireguard_public_key = "key-" + id;
    c.region = region;
    c.uptime_ratio = 0.99;
    c.tunnels = tunnels;
    c.bandwidth_mbps = 1000;
    return c;
}

RelayRequest Request(const std::string& region = "eu-west") {
    RelayRequest r;
    r.cgnat_node_id = "cgnat";
    r.region = region;
    return r;
}

bool Has(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

TEST(RelaySelectionTest, EachExclusionHasItsReasonAndDetail) {
    const RelayPolicy policy;  // 50 tunnels, 10 Mbps a tunnel
    RelayRequest request = Request();
    request.exclude_node_ids = {"failed"};
    request.exclude_addresses = {"192.0.2.9"};

    struct Case {
        RelayCandidate candidate;
        RelayExclusion reason;
        std::string detail_part;
    };
    std::vector<Case> cases;
    auto add = [&](RelayCandidate c, RelayExclusion r, std::string part) {
        cases.push_back({std::move(c), r, std::move(part)});
    };
    add(Relay("cgnat"), RelayExclusion::kSelf, "the CGNAT node itself");
    add(Relay("failed"), RelayExclusion::kExcluded, "ruled out");
    {
        auto c = Relay("twin");
        c.public_address = "192.0.2.9";
        add(c, RelayExclusion::kExcluded, "shares public address 192.0.2.9");
    }
    {
        auto c = Relay("off");
        c.enabled = false;
        add(c, RelayExclusion::kDisabled, "does not offer to relay");
    }
    {
        auto c = Relay("down");
        c.online = false;
        add(c, RelayExclusion::kOffline, "offline");
    }
    {
        auto c = Relay("natted");
        c.behind_cgnat = true;
        c.requires_relay = true;
        add(c, RelayExclusion::kBehindCgnat, "behind CGNAT itself");
    }
    {
        auto c = Relay("private");
        c.requires_relay = true;
        add(c, RelayExclusion::kNotPublic, "not reachable from the Internet");
    }
    {
        auto c = Relay("noaddr");
        c.public_address.clear();
        add(c, RelayExclusion::kNotPublic, "no known public address");
    }
    {
        auto c = Relay("noport");
        c.wireguard_port = 0;
        add(c, RelayExclusion::kNotPublic, "WireGuard port");
    }
    {
        auto c = Relay("sick");
        c.healthy = false;
        c.health_reason = "wireguard-go exited";
        add(c, RelayExclusion::kUnhealthy, "unhealthy: wireguard-go exited");
    }
    add(Relay("full", "eu-west", 50), RelayExclusion::kFull, "at capacity: 50 of 50 tunnels");
    {
        auto c = Relay("ownmax", "eu-west", 3);
        c.max_tunnels = 3;  // its own limit wins over the policy's
        add(c, RelayExclusion::kFull, "3 of 3 tunnels");
    }
    {
        auto c = Relay("narrow", "eu-west", 4);
        c.bandwidth_mbps = 45;  // 4 tunnels reserve 40 Mbps, 5 free < 10
        add(c, RelayExclusion::kBandwidth, "needs 10 Mbps spare, 5 of 45 Mbps free");
    }
    {
        auto c = Relay("busy");
        c.bandwidth_mbps = 100;
        c.bandwidth_used_mbps = 95;  // measured use counts when above the reservation
        add(c, RelayExclusion::kBandwidth, "5 of 100 Mbps free");
    }
    {
        auto c = Relay("unmeasured");
        c.bandwidth_mbps = 0;
        add(c, RelayExclusion::kBandwidth, "none reported");
    }
    for (const Case& c : cases) {
        const auto check = CheckRelayCandidate(request, c.candidate, policy);
        EXPECT_EQ(check.reason, c.reason) << c.candidate.node_id << ": " << check.detail;
        EXPECT_TRUE(Has(check.detail, c.detail_part))
            << c.candidate.node_id << ": " << check.detail;
    }
    const auto ok = CheckRelayCandidate(request, Relay("fine"), policy);
    EXPECT_TRUE(ok.ok());
    EXPECT_TRUE(ok.detail.empty());

    std::vector<RelayCandidate> all;
    for (const Case& c : cases) all.push_back(c.candidate);
    const auto selection = SelectRelays(request, all, policy, true);
    EXPECT_FALSE(selection.primary);
    EXPECT_FALSE(selection.standby);
    EXPECT_EQ(selection.candidates_considered, cases.size());
    EXPECT_EQ(selection.qualified, 0u);
    ASSERT_EQ(selection.exclusions.size(), cases.size());
    // Most relevant first: bandwidth, then capacity, ..., then self; node id within a reason.
    EXPECT_EQ(selection.exclusions.front().reason, RelayExclusion::kBandwidth);
    EXPECT_EQ(selection.exclusions.front().node_id, "busy");
    EXPECT_EQ(selection.exclusions.back().reason, RelayExclusion::kSelf);
    for (std::size_t i = 1; i < selection.exclusions.size(); ++i)
        EXPECT_GE(selection.exclusions[i - 1].reason, selection.exclusions[i].reason);
    EXPECT_EQ(selection.ExcludedCount(RelayExclusion::kBandwidth), 3u);
    EXPECT_EQ(selection.ExcludedCount(RelayExclusion::kNotPublic), 3u);
    EXPECT_EQ(selection.ExcludedCount(RelayExclusion::kFull), 2u);

    const auto text = ExplainNoRelay(request, selection);
    EXPECT_EQ(text,
              "no relay for node cgnat: 3 relays lack spare bandwidth, 2 relays are at capacity, "
              "1 relay is unhealthy, 3 relays are not publicly reachable, 1 relay is behind "
              "CGNAT, 1 relay is offline, 1 relay does not offer to relay, 2 relays are ruled "
              "out, 1 relay is the node itself");
    EXPECT_EQ(ExplainNoRelay(request, SelectRelays(request, {}, policy, false)),
              "no relay for node cgnat: no node offers to relay");
}

TEST(RelaySelectionTest, LoadComesFirstAsAnExactFraction) {
    const RelayPolicy policy;
    auto small = Relay("small", "us-east", 1);
    small.max_tunnels = 4;  // 1/4 = 25%
    auto big = Relay("big", "eu-west", 10);
    big.max_tunnels = 50;  // 10/50 = 20%: less loaded, although it carries more tunnels
    auto local = Relay("local", "eu-west", 11);
    local.max_tunnels = 50;  // 22%
    const std::vector<RelayCandidate> relays = {small, local, big};
    const auto s = SelectRelays(Request(), relays, policy, false);
    ASSERT_TRUE(s.primary);
    EXPECT_EQ(s.primary->relay.node_id, "big");
    EXPECT_EQ(s.qualified, 3u);
    EXPECT_EQ(s.primary->reason,
              "relay big at " + big.public_address +
                  ": load 10/50 tunnels, best of 3 qualified relays, same region eu-west, uptime "
                  "99.0%");
}

TEST(RelaySelectionTest, ThenRegionThenUptimeThenNodeId) {
    const RelayPolicy policy;
    auto far = Relay("a-far", "us-east", 2);
    far.uptime_ratio = 1.0;
    auto near = Relay("z-near", "eu-west", 2);
    near.uptime_ratio = 0.5;
    {
        const std::vector<RelayCandidate> relays = {far, near};
        EXPECT_EQ(SelectRelays(Request(), relays, policy, false).primary->relay.node_id, "z-near");
    }
    auto steadier = Relay("m-steady", "eu-west", 2);
    steadier.uptime_ratio = 0.9;
    {
        const std::vector<RelayCandidate> relays = {far, near, steadier};
        EXPECT_EQ(SelectRelays(Request(), relays, policy, false).primary->relay.node_id,
                  "m-steady");
    }
    {
        auto twin = steadier;
        twin.node_id = "b-twin";
        twin.public_address = "192.0.2.77";
        const std::vector<RelayCandidate> relays = {steadier, twin};
        EXPECT_EQ(SelectRelays(Request(), relays, policy, false).primary->relay.node_id, "b-twin");
    }
    {
        // NaN uptime counts as 0, not as a winner.
        auto nan = Relay("0-nan", "eu-west", 2);
        nan.uptime_ratio = std::numeric_limits<double>::quiet_NaN();
        const std::vector<RelayCandidate> relays = {nan, near};
        EXPECT_EQ(SelectRelays(Request(), relays, policy, false).primary->relay.node_id, "z-near");
    }
    {
        // A node without a region prefers nobody by region.
        const std::vector<RelayCandidate> relays = {near, far};
        const auto s = SelectRelays(Request(""), relays, policy, false);
        EXPECT_EQ(s.primary->relay.node_id, "a-far");
        EXPECT_TRUE(Has(s.primary->reason, "region us-east"));
        EXPECT_FALSE(Has(s.primary->reason, "node is in"));
    }
    {
        const std::vector<RelayCandidate> relays = {far};
        const auto s = SelectRelays(Request(), relays, policy, false);
        EXPECT_TRUE(Has(s.primary->reason, "the only qualified relay"));
        EXPECT_TRUE(Has(s.primary->reason, "region us-east (node is in eu-west)"));
        EXPECT_TRUE(Has(s.primary->reason, "uptime 100.0%"));
    }
}

TEST(RelaySelectionTest, StandbyIsAnotherMachine) {
    const RelayPolicy policy;
    auto best = Relay("best", "eu-west", 0);
    auto same_box = Relay("same-box", "eu-west", 0);
    same_box.public_address = best.public_address;  // one machine, two node ids
    auto second = Relay("second", "eu-west", 1);
    auto other_region = Relay("other", "us-east", 1);
    const std::vector<RelayCandidate> relays = {same_box, second, best, other_region};
    const auto s = SelectRelays(Request(), relays, policy, true);
    ASSERT_TRUE(s.primary);
    ASSERT_TRUE(s.standby);
    EXPECT_EQ(s.primary->relay.node_id, "best");
    EXPECT_EQ(s.standby->relay.node_id, "second");
    EXPECT_TRUE(Has(s.standby->reason, "standby relay second"));
    EXPECT_TRUE(Has(s.standby->reason, "best of 2 qualified relays"));
    EXPECT_TRUE(s.standby_reason.empty());

    RelayPolicy spread = policy;
    spread.standby_prefers_other_region = true;
    const auto s2 = SelectRelays(Request(), relays, spread, true);
    EXPECT_EQ(s2.primary->relay.node_id, "best");
    EXPECT_EQ(s2.standby->relay.node_id, "other");
}

TEST(RelaySelectionTest, NoStandbyIsExplained) {
    const RelayPolicy policy;
    const std::vector<RelayCandidate> one = {Relay("only")};
    const auto s = SelectRelays(Request(), one, policy, true);
    ASSERT_TRUE(s.primary);
    EXPECT_FALSE(s.standby);
    EXPECT_TRUE(Has(s.standby_reason, "no second relay qualifies")) << s.standby_reason;
    const auto none = SelectRelays(Request(), {}, policy, true);
    EXPECT_EQ(none.standby_reason, "no relay qualifies");
    // Without a standby wanted, nothing is said about it.
    EXPECT_TRUE(SelectRelays(Request(), one, policy, false).standby_reason.empty());
}

TEST(RelaySelectionTest, StandbyAfterTheFactAvoidsThePrimary) {
    RelayPolicy policy;
    policy.standby_prefers_other_region = true;
    auto primary = Relay("primary", "eu-west", 0);
    auto local = Relay("local", "eu-west", 0);
    auto remote = Relay("remote", "ap-south", 5);
    RelayRequest request = Request();
    request.exclude_node_ids = {primary.node_id};
    request.exclude_addresses = {primary.public_address};
    const std::vector<RelayCandidate> relays = {primary, local, remote};
    const auto s = SelectStandby(request, relays, policy, "eu-west");
    EXPECT_FALSE(s.primary);
    ASSERT_TRUE(s.standby);
    EXPECT_EQ(s.standby->relay.node_id, "remote");
    policy.standby_prefers_other_region = false;
    EXPECT_EQ(SelectStandby(request, relays, policy, "eu-west").standby->relay.node_id, "local");
    const std::vector<RelayCandidate> just_primary = {primary};
    const auto none = SelectStandby(request, just_primary, policy, "eu-west");
    EXPECT_FALSE(none.standby);
    EXPECT_FALSE(none.standby_reason.empty());
}

TEST(RelaySelectionTest, DeterministicWhateverTheInputOrder) {
    const RelayPolicy policy;
    std::vector<RelayCandidate> relays;
    for (int i = 0; i < 20; ++i) {
        auto c = Relay("n" + std::to_string(i), i % 2 ? "eu-west" : "us-east", i % 3);
        c.public_address = "192.0.2." + std::to_string(i + 1);
        relays.push_back(c);
    }
    const auto first = SelectRelays(Request(), relays, policy, true);
    std::reverse(relays.begin(), relays.end());
    const auto second = SelectRelays(Request(), relays, policy, true);
    EXPECT_EQ(first.primary->relay.node_id, second.primary->relay.node_id);
    EXPECT_EQ(first.standby->relay.node_id, second.standby->relay.node_id);
    // Load 0 in eu-west: n3, n9, n15 (i % 3 == 0, odd); same uptime: lowest id.
    EXPECT_EQ(first.primary->relay.node_id, "n15");
    EXPECT_EQ(first.standby->relay.node_id, "n3");
}

}  // namespace
}  // namespace decloud::orchestrator::domain
