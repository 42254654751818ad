// NetlinkWireGuard against the kernel's WireGuard, in network namespaces the test creates, with
// `wg` as the judge. Where the kernel cannot create WireGuard links (`ip link add ... type
// wireguard` fails: no module) the tunnel tests report themselves skipped with the reason, and
// only the test of that very situation runs.
#include "agent/adapters/wireguard/netlink_wireguard.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <sstream>
#include <string>
#include <vector>

#include "agent/adapters/wireguard/uapi_wireguard.hpp"
#include "agent/domain/relay/wireguard.hpp"
#include "decloud/testing/netns.hpp"
#include "decloud/testing/process.hpp"

namespace decloud::agent::adapters {
namespace {

using namespace std::chrono_literals;
using domain::relay::RelayInterfaceName;
using domain::relay::RelayRole;
using domain::relay::WireGuardConfig;
using domain::relay::WireGuardKey;
using domain::relay::WireGuardPeer;
using testing::NetNamespace;

std::string Trim(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
}

std::vector<std::string> Split(const std::string& s, char sep) {
    std::vector<std::string> out;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, sep)) out.push_back(item);
    return out;
}

class NetlinkWireGuardTest : public ::testing::Test {
  protected:
    NetlinkWireGuardTest() : relay_ns_("kwgrelay"), cgnat_ns_("kwgcgnat") {
        testing::ConnectVeth(relay_ns_, "up0", cgnat_ns_, "up0");
        relay_ns_.AddAddress("up0", "198.51.100.1/24");
        cgnat_ns_.AddAddress("up0", "198.51.100.2/24");
        static std::atomic<int> n{0};
        const auto id = "kernel-" + std::to_string(::getpid()) + "-" + std::to_string(n++);
        relay_if_ = RelayInterfaceName(RelayRole::kRelay, id);
        cgnat_if_ = RelayInterfaceName(RelayRole::kCgnat, id);
        NetlinkWireGuardOptions relay_options;
        relay_options.netns = relay_ns_.name();
        relay_wg_ = std::make_unique<NetlinkWireGuard>(relay_options);
        NetlinkWireGuardOptions cgnat_options;
        cgnat_options.netns = cgnat_ns_.name();
        cgnat_wg_ = std::make_unique<NetlinkWireGuard>(cgnat_options);
        const auto probe = relay_ns_.Exec({"ip", "link", "add", "wgprobe0", "type", "wireguard"});
        kernel_has_wireguard_ = probe.exit_code == 0;
        probe_error_ = Trim(probe.err);
        if (kernel_has_wireguard_) relay_ns_.Run({"ip", "link", "del", "wgprobe0"});
    }

    ~NetlinkWireGuardTest() override {
        [[maybe_unused]] auto a = relay_wg_->Remove(relay_if_);
        [[maybe_unused]] auto b = cgnat_wg_->Remove(cgnat_if_);
    }

    WireGuardConfig RelayConfig() const {
        WireGuardConfig c;
        c.interface = relay_if_;
        c.private_key = relay_key_;
        c.listen_port = 51820;
        c.addresses = {"10.99.0.1/24"};
        WireGuardPeer peer;
        peer.public_key = cgnat_key_.PublicKey();
        peer.allowed_ips = {"10.99.0.2/32"};
        peer.persistent_keepalive = domain::relay::kRelayKeepalive;
        c.peers.push_back(peer);
        return c;
    }

    WireGuardConfig CgnatConfig() const {
        WireGuardConfig c;
        c.interface = cgnat_if_;
        c.private_key = cgnat_key_;
        c.addresses = {"10.99.0.2/24"};
        WireGuardPeer peer;
        peer.public_key = relay_key_.PublicKey();
        peer.endpoint = "198.51.100.1:51820";
        peer.allowed_ips = {"10.99.0.1/32"};
        peer.persistent_keepalive = domain::relay::kRelayKeepalive;
        c.peers.push_back(peer);
        return c;
    }

    NetNamespace relay_ns_;
    NetNamespace cgnat_ns_;
    std::unique_ptr<NetlinkWireGuard> relay_wg_;
    std::unique_ptr<NetlinkWireGuard> cgnat_wg_;
    WireGuardKey relay_key_ = WireGuardKey::Generate();
    WireGuardKey cgnat_key_ = WireGuardKey::Generate();
    std::string relay_if_;
    std::string cgnat_if_;
    bool kernel_has_wireguard_ = false;
    std::string probe_error_;
};

// The tunnel tests: skipped, with the reason, where the kernel cannot create WireGuard links.
class KernelWireGuardTest : public NetlinkWireGuardTest {
  protected:
    void SetUp() override {
        if (!kernel_has_wireguard_)
            GTEST_SKIP() << "this kernel cannot create WireGuard links (`ip link add ... type "
                            "wireguard`: "
                         << probe_error_ << ")";
    }
};

TEST_F(NetlinkWireGuardTest, WithoutTheModuleEnsureFailsWithTheKernelsReason) {
    if (kernel_has_wireguard_) GTEST_SKIP() << "this kernel has WireGuard";
    const auto probe = NetlinkWireGuard::Probe(relay_ns_.name());
    ASSERT_FALSE(probe);
    EXPECT_EQ(probe.error().code, common::ErrorCode::kUnavailable);
    const auto r = relay_wg_->Ensure(RelayConfig());
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, common::ErrorCode::kUnavailable);
    // The extended ack carries what `ip` printed.
    EXPECT_NE(r.error().message.find("Unknown device type"), std::string::npos)
        << r.error().message << " / ip said: " << probe_error_;
    EXPECT_TRUE(relay_wg_->List()->empty());
}

TEST_F(KernelWireGuardTest, TunnelCarriesTrafficAndWgAgrees) {
    ASSERT_TRUE(NetlinkWireGuard::Probe(relay_ns_.name()));
    ASSERT_TRUE(relay_wg_->Ensure(RelayConfig()));
    ASSERT_TRUE(cgnat_wg_->Ensure(CgnatConfig()));
    ASSERT_TRUE(
        testing::WaitUntil([&] { return testing::Ping(cgnat_ns_, "10.99.0.1"); }, 15s, 50ms));
    testing::EchoServer server(relay_ns_, testing::Transport::kTcp, "10.99.0.1", 7000);
    const std::string payload(64 * 1024, 'k');
    EXPECT_EQ(testing::TcpExchange(cgnat_ns_, "10.99.0.1", 7000, payload, 10s),
              std::optional<std::string>(payload));

    const auto state = relay_wg_->Read(relay_if_);
    ASSERT_TRUE(state) << state.error().message;
    EXPECT_EQ(state->public_key, relay_key_.PublicKey());
    EXPECT_EQ(state->listen_port, 51820);
    EXPECT_TRUE(state->up);
    EXPECT_EQ(state->addresses, (std::vector<std::string>{"10.99.0.1/24"}));
    ASSERT_EQ(state->peers.size(), 1u);
    const auto& peer = state->peers[0];
    EXPECT_EQ(peer.public_key, cgnat_key_.PublicKey());
    EXPECT_TRUE(peer.latest_handshake.has_value());
    EXPECT_GT(peer.rx_bytes, payload.size());

    const auto dump = relay_ns_.Exec({"wg", "show", relay_if_, "dump"});
    ASSERT_EQ(dump.exit_code, 0) << dump.err;
    const auto lines = Split(dump.out, '\n');
    ASSERT_GE(lines.size(), 2u);
    const auto p = Split(lines[1], '\t');
    ASSERT_EQ(p.size(), 8u);
    EXPECT_EQ(p[0], peer.public_key.ToBase64());
    EXPECT_EQ(p[2], peer.endpoint);
    EXPECT_EQ(p[3], "10.99.0.2/32");
    EXPECT_EQ(p[7], "25");

    // Idempotent, sessions kept; List and Remove.
    ASSERT_TRUE(relay_wg_->Ensure(RelayConfig()));
    const auto again = relay_wg_->Read(relay_if_);
    ASSERT_TRUE(again);
    EXPECT_EQ(again->peers.at(0).latest_handshake, peer.latest_handshake);
    EXPECT_EQ(again->peers.at(0).endpoint, peer.endpoint);
    EXPECT_EQ(*relay_wg_->List(), (std::vector<std::string>{relay_if_}));
    ASSERT_TRUE(relay_wg_->Remove(relay_if_));
    EXPECT_EQ(relay_wg_->Read(relay_if_).error().code, common::ErrorCode::kNotFound);
}

TEST_F(KernelWireGuardTest, KernelRelayServesAUserspaceCgnatNode) {
    testing::TempDir logs("decloud-kwg-logs");
    UapiWireGuardOptions options;
    options.netns = cgnat_ns_.name();
    options.log_dir = logs.path();
    UapiWireGuard userspace(options);
    ASSERT_TRUE(relay_wg_->Ensure(RelayConfig()));
    ASSERT_TRUE(userspace.Ensure(CgnatConfig()));
    EXPECT_TRUE(
        testing::WaitUntil([&] { return testing::Ping(cgnat_ns_, "10.99.0.1"); }, 15s, 50ms));
    EXPECT_TRUE(testing::Ping(relay_ns_, "10.99.0.2"));
    EXPECT_TRUE(userspace.Remove(cgnat_if_));
}

}  // namespace
}  // namespace decloud::agent::adapters
