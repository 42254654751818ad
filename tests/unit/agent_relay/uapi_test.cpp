#include "agent/domain/relay/uapi.hpp"

#include <gtest/gtest.h>

#include <string>

namespace decloud::agent::domain::relay {
namespace {

using std::chrono::seconds;

WireGuardKey Key(char fill) {
    WireGuardKey::Bytes b{};
    b.fill(static_cast<std::uint8_t>(fill));
    return WireGuardKey(b);
}

// A reply as wireguard-go 0.0.20220316 writes it (`wg show` reads the same lines).
std::string SampleReply() {
    return "private_key=" + Key(1).ToHex() +
           "\n"
           "listen_port=51820\n"
           "fwmark=7\n"
           "public_key=" +
           Key(2).ToHex() +
           "\n"
           "preshared_key=0000000000000000000000000000000000000000000000000000000000000000\n"
           "protocol_version=1\n"
           "endpoint=198.51.100.2:40000\n"
           "last_handshake_time_sec=1700000000\n"
           "last_handshake_time_nsec=500\n"
           "tx_bytes=1234\n"
           "rx_bytes=5678\n"
           "persistent_keepalive_interval=25\n"
           "allowed_ip=10.99.0.2/32\n"
           "allowed_ip=fd99::2/128\n"
           "public_key=" +
           Key(3).ToHex() +
           "\n"
           "preshared_key=0000000000000000000000000000000000000000000000000000000000000000\n"
           "protocol_version=1\n"
           "last_handshake_time_sec=0\n"
           "last_handshake_time_nsec=0\n"
           "tx_bytes=0\n"
           "rx_bytes=0\n"
           "persistent_keepalive_interval=0\n"
           "errno=0\n"
           "\n";
}

TEST(UapiDecodeTest, ReadsDeviceAndPeers) {
    const auto device = DecodeUapiGet(SampleReply());
    ASSERT_TRUE(device) << device.error().message;
    ASSERT_TRUE(device->private_key);
    EXPECT_EQ(*device->private_key, Key(1));
    EXPECT_EQ(device->listen_port, 51820);
    EXPECT_EQ(device->fwmark, 7u);
    ASSERT_EQ(device->peers.size(), 2u);
    const auto& p = device->peers[0];
    EXPECT_EQ(p.public_key, Key(2));
    EXPECT_FALSE(p.has_preshared_key);
    EXPECT_EQ(p.endpoint, "198.51.100.2:40000");
    EXPECT_EQ(p.last_handshake_time_sec, 1700000000);
    EXPECT_EQ(p.last_handshake_time_nsec, 500);
    EXPECT_EQ(p.tx_bytes, 1234u);
    EXPECT_EQ(p.rx_bytes, 5678u);
    EXPECT_EQ(p.persistent_keepalive_interval, 25u);
    EXPECT_EQ(p.allowed_ips, (std::vector<std::string>{"10.99.0.2/32", "fd99::2/128"}));
    EXPECT_EQ(device->peers[1].endpoint, "");
    EXPECT_TRUE(device->peers[1].allowed_ips.empty());

    const auto states = ToPeerStates(*device);
    ASSERT_EQ(states.size(), 2u);
    ASSERT_TRUE(states[0].latest_handshake);
    EXPECT_EQ(std::chrono::duration_cast<std::chrono::nanoseconds>(
                  states[0].latest_handshake->time_since_epoch())
                  .count(),
              1700000000LL * 1000000000LL + 500);
    EXPECT_EQ(states[0].persistent_keepalive, seconds{25});
    EXPECT_FALSE(states[1].latest_handshake);
}

TEST(UapiDecodeTest, AFreshDeviceHasNoKey) {
    const auto device = DecodeUapiGet("listen_port=39000\nerrno=0\n\n");
    ASSERT_TRUE(device);
    EXPECT_FALSE(device->private_key);
    EXPECT_EQ(device->listen_port, 39000);
    EXPECT_TRUE(device->peers.empty());
}

TEST(UapiDecodeTest, ErrnoAndMalformedRepliesAreErrors) {
    auto r = DecodeUapiGet("errno=5\n\n");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, common::ErrorCode::kUnavailable);
    EXPECT_NE(r.error().message.find("errno 5"), std::string::npos);
    EXPECT_FALSE(DecodeUapiGet("listen_port=1\n"));  // truncated: no errno
    EXPECT_FALSE(DecodeUapiGet("listen_port=x\nerrno=0\n\n"));
    EXPECT_FALSE(DecodeUapiGet("listen_port=70000\nerrno=0\n\n"));
    EXPECT_FALSE(DecodeUapiGet("bogus_device_key=1\nerrno=0\n\n"));
    EXPECT_FALSE(DecodeUapiGet("public_key=zz\nerrno=0\n\n"));
    EXPECT_FALSE(DecodeUapiGet("public_key=" + Key(2).ToHex() + "\nrx_bytes=-1\nerrno=0\n\n"));
    EXPECT_FALSE(DecodeUapiGet("no equals sign\nerrno=0\n\n"));
    // Unknown peer keys from newer daemons are skipped.
    EXPECT_TRUE(DecodeUapiGet("public_key=" + Key(2).ToHex() + "\nfuture_key=1\nerrno=0\n\n"));
}

TEST(UapiDecodeTest, SetReplies) {
    EXPECT_TRUE(DecodeUapiSetReply("errno=0\n\n"));
    EXPECT_EQ(DecodeUapiSetReply("errno=22\n\n").error().code, common::ErrorCode::kInvalidArgument);
    EXPECT_EQ(DecodeUapiSetReply("errno=-22\n\n").error().code,
              common::ErrorCode::kInvalidArgument);
    EXPECT_EQ(DecodeUapiSetReply("errno=98\n\n").error().code, common::ErrorCode::kConflict);
    EXPECT_EQ(DecodeUapiSetReply("errno=5\n\n").error().code, common::ErrorCode::kUnavailable);
    EXPECT_FALSE(DecodeUapiSetReply(""));
}

TEST(UapiEncodeTest, WritesTheProtocolLines) {
    UapiSet set;
    set.private_key = Key(1);
    set.listen_port = 51820;
    set.replace_peers = true;
    UapiPeerUpdate add;
    add.public_key = Key(2);
    add.endpoint = "198.51.100.1:51820";
    add.persistent_keepalive_interval = 25;
    add.replace_allowed_ips = true;
    add.allowed_ips = {"10.99.0.1/32", "10.99.1.0/24"};
    UapiPeerUpdate remove;
    remove.public_key = Key(3);
    remove.remove = true;
    remove.endpoint = "ignored:1";  // nothing else is written for a removal
    UapiPeerUpdate update;
    update.public_key = Key(4);
    update.update_only = true;
    update.persistent_keepalive_interval = 0;
    set.peers = {add, remove, update};
    EXPECT_EQ(EncodeUapiSet(set),
              "set=1\n"
              "private_key=" +
                  Key(1).ToHex() +
                  "\n"
                  "listen_port=51820\n"
                  "replace_peers=true\n"
                  "public_key=" +
                  Key(2).ToHex() +
                  "\n"
                  "endpoint=198.51.100.1:51820\n"
                  "persistent_keepalive_interval=25\n"
                  "replace_allowed_ips=true\n"
                  "allowed_ip=10.99.0.1/32\n"
                  "allowed_ip=10.99.1.0/24\n"
                  "public_key=" +
                  Key(3).ToHex() +
                  "\n"
                  "remove=true\n"
                  "public_key=" +
                  Key(4).ToHex() +
                  "\n"
                  "update_only=true\n"
                  "persistent_keepalive_interval=0\n"
                  "\n");
    EXPECT_EQ(EncodeUapiSet(UapiSet{}), "set=1\n\n");
}

WireGuardConfig Desired() {
    WireGuardConfig c;
    c.interface = "dcc0123456789ab";
    c.private_key = Key(1);
    c.listen_port = 51820;
    WireGuardPeer relay;
    relay.public_key = Key(2);
    relay.endpoint = "198.51.100.2:40000";
    relay.allowed_ips = {"10.99.0.2/32", "fd99::2/128"};
    relay.persistent_keepalive = seconds{25};
    c.peers.push_back(relay);
    return c;
}

TEST(UapiPlanTest, NothingToDoWhenTheDeviceMatches) {
    auto device = DecodeUapiGet(SampleReply()).value();
    device.peers.pop_back();  // Key(3) is not desired
    EXPECT_TRUE(PlanUapiSet(Desired(), device).Empty());
    // A desired prefix with host bits and a different order is still the same set.
    auto d = Desired();
    d.peers[0].allowed_ips = {"fd99::2/128", "10.99.0.2/32"};
    EXPECT_TRUE(PlanUapiSet(d, device).Empty());
}

TEST(UapiPlanTest, RemovesUndesiredPeersAndTouchesOnlyWhatDiffers) {
    const auto device = DecodeUapiGet(SampleReply()).value();
    auto d = Desired();
    d.peers[0].allowed_ips = {"10.99.0.0/24"};
    WireGuardPeer fresh;
    fresh.public_key = Key(5);
    fresh.allowed_ips = {"10.99.1.7/24"};
    d.peers.push_back(fresh);
    const auto set = PlanUapiSet(d, device);
    EXPECT_FALSE(set.private_key);
    EXPECT_FALSE(set.listen_port);
    EXPECT_FALSE(set.replace_peers);
    ASSERT_EQ(set.peers.size(), 3u);
    EXPECT_EQ(set.peers[0].public_key, Key(3));
    EXPECT_TRUE(set.peers[0].remove);
    EXPECT_EQ(set.peers[1].public_key, Key(2));
    EXPECT_TRUE(set.peers[1].update_only);
    EXPECT_FALSE(set.peers[1].endpoint);
    EXPECT_FALSE(set.peers[1].persistent_keepalive_interval);
    EXPECT_TRUE(set.peers[1].replace_allowed_ips);
    EXPECT_EQ(set.peers[1].allowed_ips, (std::vector<std::string>{"10.99.0.0/24"}));
    EXPECT_EQ(set.peers[2].public_key, Key(5));
    EXPECT_FALSE(set.peers[2].update_only);
    EXPECT_TRUE(set.peers[2].replace_allowed_ips);
    EXPECT_EQ(set.peers[2].allowed_ips, (std::vector<std::string>{"10.99.1.0/24"}));
}

TEST(UapiPlanTest, KeyPortEndpointAndKeepaliveChanges) {
    const auto device = DecodeUapiGet(SampleReply()).value();
    auto d = Desired();
    d.private_key = Key(9);
    d.listen_port = 51821;
    d.peers[0].endpoint = "198.51.100.9:40000";
    d.peers[0].persistent_keepalive = seconds{0};
    const auto set = PlanUapiSet(d, device);
    ASSERT_TRUE(set.private_key);
    EXPECT_EQ(*set.private_key, Key(9));
    EXPECT_EQ(set.listen_port, std::optional<std::uint16_t>(51821));
    ASSERT_EQ(set.peers.size(), 2u);  // Key(3) removed, Key(2) updated
    EXPECT_EQ(set.peers[1].endpoint, std::optional<std::string>("198.51.100.9:40000"));
    EXPECT_EQ(set.peers[1].persistent_keepalive_interval, std::optional<std::uint32_t>(0));
    EXPECT_FALSE(set.peers[1].replace_allowed_ips);
}

TEST(UapiPlanTest, LearnedEndpointsAreKeptAndPortZeroKeepsThePort) {
    const auto device = DecodeUapiGet(SampleReply()).value();
    auto d = Desired();
    d.listen_port = 0;
    d.peers[0].endpoint.clear();  // relay side: learned from handshakes
    const auto set = PlanUapiSet(d, device);
    EXPECT_FALSE(set.listen_port);
    ASSERT_EQ(set.peers.size(), 1u);
    EXPECT_TRUE(set.peers[0].remove);
}

TEST(UapiPlanTest, AKeylessDeviceGetsEverything) {
    const auto device = DecodeUapiGet("listen_port=39000\nerrno=0\n\n").value();
    const auto set = PlanUapiSet(Desired(), device);
    ASSERT_TRUE(set.private_key);
    EXPECT_EQ(set.listen_port, std::optional<std::uint16_t>(51820));
    ASSERT_EQ(set.peers.size(), 1u);
    EXPECT_EQ(set.peers[0].endpoint, std::optional<std::string>("198.51.100.2:40000"));
    EXPECT_EQ(set.peers[0].persistent_keepalive_interval, std::optional<std::uint32_t>(25));

    const auto full = FullUapiSet(Desired());
    EXPECT_TRUE(full.replace_peers);
    EXPECT_EQ(full.peers, set.peers);
}

}  // namespace
}  // namespace decloud::agent::domain::relay
