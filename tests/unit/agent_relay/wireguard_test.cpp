#include "agent/domain/relay/wireguard.hpp"

#include <gtest/gtest.h>

#include <set>

namespace decloud::agent::domain::relay {
namespace {

TEST(RelayInterfaceNameTest, IsShortStableAndDistinctPerRelayAndRole) {
    const auto a = RelayInterfaceName(RelayRole::kRelay, "relay-1");
    EXPECT_EQ(a.size(), 15u);
    EXPECT_TRUE(a.starts_with("dcr"));
    EXPECT_EQ(a, RelayInterfaceName(RelayRole::kRelay, "relay-1"));
    const auto c = RelayInterfaceName(RelayRole::kCgnat, "relay-1");
    EXPECT_TRUE(c.starts_with("dcc"));
    EXPECT_EQ(a.substr(3), c.substr(3));
    std::set<std::string> names;
    for (int i = 0; i < 1000; ++i)
        names.insert(RelayInterfaceName(RelayRole::kRelay, "relay-" + std::to_string(i)));
    EXPECT_EQ(names.size(), 1000u);
    for (const auto& n : names) {
        EXPECT_TRUE(IsValidInterfaceName(n));
        EXPECT_TRUE(IsRelayInterfaceName(n));
    }
    // SHA-256("") starts with e3b0c44298fc (printf "" | sha256sum).
    EXPECT_EQ(RelayInterfaceName(RelayRole::kRelay, ""), "dcre3b0c44298fc");
}

TEST(RelayInterfaceNameTest, RecognisesOnlyOurNames) {
    EXPECT_FALSE(IsRelayInterfaceName("eth0"));
    EXPECT_FALSE(IsRelayInterfaceName("dcr"));
    EXPECT_FALSE(IsRelayInterfaceName("dcrE3B0C44298FC"));
    EXPECT_FALSE(IsRelayInterfaceName("dcx0123456789ab"));
    EXPECT_FALSE(IsRelayInterfaceName("dcr0123456789abc"));
    EXPECT_TRUE(IsRelayInterfaceName("dcc0123456789ab"));
}

TEST(InterfaceNameTest, FollowsLinuxRules) {
    EXPECT_TRUE(IsValidInterfaceName("wg0"));
    EXPECT_TRUE(IsValidInterfaceName("a.b-c_d"));
    EXPECT_FALSE(IsValidInterfaceName(""));
    EXPECT_FALSE(IsValidInterfaceName("0123456789abcdef"));  // 16
    EXPECT_FALSE(IsValidInterfaceName("."));
    EXPECT_FALSE(IsValidInterfaceName("a/b"));
    EXPECT_FALSE(IsValidInterfaceName("a b"));
    EXPECT_FALSE(IsValidInterfaceName("wg0;rm"));
}

TEST(NormalizeTest, Cidr) {
    EXPECT_EQ(NormalizeCidr("10.99.0.1/24", false).value(), "10.99.0.1/24");
    EXPECT_EQ(NormalizeCidr("10.99.0.1/24", true).value(), "10.99.0.0/24");
    EXPECT_EQ(NormalizeCidr("10.99.0.255/25", true).value(), "10.99.0.128/25");
    EXPECT_EQ(NormalizeCidr("0.0.0.0/0", true).value(), "0.0.0.0/0");
    EXPECT_EQ(NormalizeCidr("FD00:0::1/64", true).value(), "fd00::/64");
    EXPECT_EQ(NormalizeCidr("fd00::1/128", true).value(), "fd00::1/128");
    EXPECT_FALSE(NormalizeCidr("10.0.0.1", false));
    EXPECT_FALSE(NormalizeCidr("10.0.0.1/33", false));
    EXPECT_FALSE(NormalizeCidr("10.0.0.1/024", false));
    EXPECT_FALSE(NormalizeCidr("fd00::/129", false));
    EXPECT_FALSE(NormalizeCidr("host/24", false));
    EXPECT_FALSE(NormalizeCidr("10.0.0.1/", false));
}

TEST(NormalizeTest, Endpoint) {
    EXPECT_EQ(NormalizeEndpoint("198.51.100.1:51820").value(), "198.51.100.1:51820");
    EXPECT_EQ(NormalizeEndpoint("[2001:DB8:0::1]:443").value(), "[2001:db8::1]:443");
    EXPECT_FALSE(NormalizeEndpoint("relay.example:51820"));  // no names on the UAPI
    EXPECT_FALSE(NormalizeEndpoint("198.51.100.1"));
    EXPECT_FALSE(NormalizeEndpoint("198.51.100.1:0"));
    EXPECT_FALSE(NormalizeEndpoint("198.51.100.1:65536"));
    EXPECT_FALSE(NormalizeEndpoint("2001:db8::1:443"));
    EXPECT_FALSE(NormalizeEndpoint("[2001:db8::1]"));
}

WireGuardConfig ValidConfig() {
    WireGuardConfig c;
    c.interface = "dcr0123456789ab";
    c.private_key = WireGuardKey::Generate();
    c.listen_port = 51820;
    c.addresses = {"10.99.0.1/24"};
    WireGuardPeer p;
    p.public_key = WireGuardKey::Generate().PublicKey();
    p.allowed_ips = {"10.99.0.2/32"};
    p.persistent_keepalive = kRelayKeepalive;
    c.peers.push_back(p);
    return c;
}

TEST(ValidateConfigTest, AcceptsAGoodConfigAndNamesTheFirstProblem) {
    EXPECT_TRUE(ValidateConfig(ValidConfig()));

    auto c = ValidConfig();
    c.interface = "this-name-is-too-long";
    EXPECT_EQ(ValidateConfig(c).error().code, common::ErrorCode::kInvalidArgument);

    c = ValidConfig();
    c.private_key = WireGuardKey();
    EXPECT_FALSE(ValidateConfig(c));

    c = ValidConfig();
    c.peers.push_back(c.peers[0]);
    c.peers[1].allowed_ips = {"10.99.0.3/32"};
    EXPECT_NE(ValidateConfig(c).error().message.find("twice"), std::string::npos);

    c = ValidConfig();
    auto second = c.peers[0];
    second.public_key = WireGuardKey::Generate().PublicKey();
    second.allowed_ips = {"10.99.0.2/32"};
    c.peers.push_back(second);
    EXPECT_NE(ValidateConfig(c).error().message.find("10.99.0.2/32"), std::string::npos);

    c = ValidConfig();
    c.peers[0].public_key = c.private_key.PublicKey();
    EXPECT_FALSE(ValidateConfig(c));

    c = ValidConfig();
    c.peers[0].endpoint = "relay.example:51820";
    EXPECT_FALSE(ValidateConfig(c));

    c = ValidConfig();
    c.addresses = {"10.99.0.1"};
    EXPECT_FALSE(ValidateConfig(c));

    c = ValidConfig();
    c.peers[0].allowed_ips.clear();  // allowed: a peer that only handshakes (key rotation)
    EXPECT_TRUE(ValidateConfig(c));
}

}  // namespace
}  // namespace decloud::agent::domain::relay
