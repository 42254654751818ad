// The whole relay path with the agent's adapters, in four namespaces the test builds:
//
//   client 203.0.113.2 --- 203.0.113.1 relay 198.51.100.1 --- 198.51.100.2 carrier 100.64.0.1
//                                                                 (masquerade)      |
//                                                                      100.64.0.2 cgnat
//
// The CGNAT node sits behind a carrier NAT (100.64.0.0/10, outbound only) and dials the relay
// over WireGuard (keepalive 25 s); the relay forwards its public ports through the tunnel with
// NftPortForwarder. A client connecting to the relay's public address reaches a server on the
// CGNAT node, which sees the relay's tunnel address as the peer (masquerade), so replies go back
// through the tunnel.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <vector>

#include "agent/adapters/nftables/nft_port_forwarder.hpp"
#include "agent/adapters/wireguard/uapi_wireguard.hpp"
#include "agent/domain/relay/wireguard.hpp"
#include "decloud/testing/netns.hpp"
#include "decloud/testing/process.hpp"

namespace decloud::agent::adapters {
namespace {

using namespace std::chrono_literals;
using domain::relay::PortMapping;
using domain::relay::Protocol;
using domain::relay::RelayInterfaceName;
using domain::relay::RelayRole;
using domain::relay::WireGuardConfig;
using domain::relay::WireGuardKey;
using domain::relay::WireGuardPeer;
using testing::NetNamespace;
using testing::Transport;

constexpr const char* kRelayPublic = "203.0.113.1";
constexpr const char* kClient = "203.0.113.2";
constexpr const char* kRelayTunnel = "10.99.0.1";
constexpr const char* kCgnatTunnel = "10.99.0.2";
constexpr std::uint16_t kWireGuardPort = 51820;

class RelayPathTest : public ::testing::Test {
  protected:
    RelayPathTest() : client_("client"), relay_("relay"), carrier_("carrier"), cgnat_("cgnat") {
        testing::ConnectVeth(client_, "up0", relay_, "pub0");
        client_.AddAddress("up0", std::string(kClient) + "/24");
        relay_.AddAddress("pub0", std::string(kRelayPublic) + "/24");

        testing::ConnectVeth(relay_, "car0", carrier_, "wan0");
        relay_.AddAddress("car0", "198.51.100.1/24");
        carrier_.AddAddress("wan0", "198.51.100.2/24");

        testing::ConnectVeth(carrier_, "lan0", cgnat_, "up0");
        carrier_.AddAddress("lan0", "100.64.0.1/24");
        cgnat_.AddAddress("up0", "100.64.0.2/24");
        cgnat_.AddRoute("default", "100.64.0.1");
        carrier_.EnableForwarding();
        carrier_.ApplyNft(
            "table ip carrier_nat {\n"
            "  chain postrouting { type nat hook postrouting priority srcnat; policy accept;\n"
            "    oifname \"wan0\" masquerade\n"
            "  }\n"
            "  chain forward { type filter hook forward priority filter; policy drop;\n"
            "    iifname \"lan0\" oifname \"wan0\" accept\n"
            "    ct state established,related accept\n"
            "  }\n"
            "}\n");

        static std::atomic<int> n{0};
        const auto relay_id = "path-" + std::to_string(::getpid()) + "-" + std::to_string(n++);
        relay_if_ = RelayInterfaceName(RelayRole::kRelay, relay_id);
        cgnat_if_ = RelayInterfaceName(RelayRole::kCgnat, relay_id);
        UapiWireGuardOptions relay_options;
        relay_options.netns = relay_.name();
        relay_options.log_dir = logs_.path();
        relay_wg_ = std::make_unique<UapiWireGuard>(relay_options);
        UapiWireGuardOptions cgnat_options;
        cgnat_options.netns = cgnat_.name();
        cgnat_options.log_dir = logs_.path();
        cgnat_wg_ = std::make_unique<UapiWireGuard>(cgnat_options);
        NftPortForwarderOptions nft_options;
        nft_options.netns = relay_.name();
        forwarder_ = std::make_unique<NftPortForwarder>(nft_options);
    }

    ~RelayPathTest() override {
        [[maybe_unused]] auto a = forwarder_->RemoveAll();
        [[maybe_unused]] auto b = relay_wg_->Remove(relay_if_);
        [[maybe_unused]] auto c = cgnat_wg_->Remove(cgnat_if_);
    }

    void BuildTunnel() {
        WireGuardConfig relay;
        relay.interface = relay_if_;
        relay.private_key = relay_key_;
        relay.listen_port = kWireGuardPort;
        relay.addresses = {std::string(kRelayTunnel) + "/24"};
        WireGuardPeer cgnat_peer;
        cgnat_peer.public_key = cgnat_key_.PublicKey();
        cgnat_peer.allowed_ips = {std::string(kCgnatTunnel) + "/32"};
        cgnat_peer.persistent_keepalive = domain::relay::kRelayKeepalive;
        relay.peers.push_back(cgnat_peer);
        ASSERT_TRUE(relay_wg_->Ensure(relay));

        WireGuardConfig cgnat;
        cgnat.interface = cgnat_if_;
        cgnat.private_key = cgnat_key_;
        cgnat.addresses = {std::string(kCgnatTunnel) + "/24"};
        WireGuardPeer relay_peer;
        relay_peer.public_key = relay_key_.PublicKey();
        relay_peer.endpoint = "198.51.100.1:" + std::to_string(kWireGuardPort);
        relay_peer.allowed_ips = {std::string(kRelayTunnel) + "/32"};
        relay_peer.persistent_keepalive = domain::relay::kRelayKeepalive;
        cgnat.peers.push_back(relay_peer);
        ASSERT_TRUE(cgnat_wg_->Ensure(cgnat));

        // The keepalive sent when the peer was configured opens the NAT mapping and completes
        // the handshake: the relay learns the carrier's address as the endpoint.
        ASSERT_TRUE(testing::WaitUntil(
            [&] {
                auto s = relay_wg_->Read(relay_if_);
                return s && !s->peers.empty() && s->peers[0].latest_handshake.has_value();
            },
            15s, 50ms));
        const auto state = relay_wg_->Read(relay_if_);
        ASSERT_TRUE(state);
        EXPECT_TRUE(state->peers[0].endpoint.starts_with("198.51.100.2:"))
            << state->peers[0].endpoint;
    }

    testing::TempDir logs_{"decloud-relay-path"};
    NetNamespace client_;
    NetNamespace relay_;
    NetNamespace carrier_;
    NetNamespace cgnat_;
    WireGuardKey relay_key_ = WireGuardKey::Generate();
    WireGuardKey cgnat_key_ = WireGuardKey::Generate();
    std::string relay_if_;
    std::string cgnat_if_;
    std::unique_ptr<UapiWireGuard> relay_wg_;
    std::unique_ptr<UapiWireGuard> cgnat_wg_;
    std::unique_ptr<NftPortForwarder> forwarder_;
};

TEST_F(RelayPathTest, APublicPortOnTheRelayReachesAServerBehindCgnat) {
    // Without the tunnel the relay cannot reach the CGNAT node at all.
    EXPECT_FALSE(testing::Ping(relay_, "100.64.0.2", 300ms));
    BuildTunnel();

    testing::EchoServer tcp_server(cgnat_, Transport::kTcp, kCgnatTunnel, 80);
    testing::EchoServer udp_server(cgnat_, Transport::kUdp, kCgnatTunnel, 5300);
    ASSERT_TRUE(forwarder_->Apply(relay_if_, {{8080, Protocol::kTcp, kCgnatTunnel, 80},
                                              {5353, Protocol::kUdp, kCgnatTunnel, 5300}}));

    const std::string payload = "GET / through the relay\n" + std::string(100000, 'x');
    const auto tcp = testing::TcpExchange(client_, kRelayPublic, 8080, payload, 10s);
    ASSERT_TRUE(tcp.has_value()) << "no TCP answer through the relay";
    EXPECT_EQ(*tcp, payload);
    // Masqueraded into the tunnel: the server sees the relay's tunnel address.
    EXPECT_EQ(tcp_server.Peers(), (std::vector<std::string>{kRelayTunnel}));

    const auto udp = testing::UdpExchange(client_, kRelayPublic, 5353, "dns?");
    ASSERT_TRUE(udp.has_value()) << "no UDP answer through the relay";
    EXPECT_EQ(*udp, "dns?");
    EXPECT_EQ(udp_server.Peers(), (std::vector<std::string>{kRelayTunnel}));

    // Ports that are not mapped are not forwarded; a removed mapping stops forwarding.
    EXPECT_FALSE(testing::TcpExchange(client_, kRelayPublic, 8081, "x", 1s).has_value());
    ASSERT_TRUE(forwarder_->Apply(relay_if_, {{5353, Protocol::kUdp, kCgnatTunnel, 5300}}));
    EXPECT_FALSE(testing::TcpExchange(client_, kRelayPublic, 8080, "x", 1s).has_value());
    // And a mapping added again works at once.
    ASSERT_TRUE(forwarder_->Apply(relay_if_, {{5353, Protocol::kUdp, kCgnatTunnel, 5300},
                                              {8080, Protocol::kTcp, kCgnatTunnel, 80}}));
    EXPECT_EQ(testing::TcpExchange(client_, kRelayPublic, 8080, "again", 5s),
              std::optional<std::string>("again"));

    // The tunnel's counters moved with the traffic.
    const auto state = relay_wg_->Read(relay_if_);
    ASSERT_TRUE(state);
    EXPECT_GT(state->peers.at(0).tx_bytes, payload.size());
    EXPECT_GT(state->peers.at(0).rx_bytes, payload.size());
}

// A CGNAT node may not use the relay as a router to the internet: only DNATed connections cross
// a relay interface. The control (forward rules flushed behind the agent's back) shows the
// traffic would otherwise flow, and Reconcile restores the rules.
TEST_F(RelayPathTest, TheTunnelIsNotARouterForTheCgnatNode) {
    BuildTunnel();
    ASSERT_TRUE(forwarder_->Apply(relay_if_, {{8080, Protocol::kTcp, kCgnatTunnel, 80}}));
    testing::EchoServer outside(client_, Transport::kTcp, kClient, 9000);
    // Route the client's network into the tunnel on the CGNAT side, and let the client answer
    // to the tunnel subnet, so only the relay's rules stand in the way.
    WireGuardConfig widened;
    widened.interface = cgnat_if_;
    widened.private_key = cgnat_key_;
    widened.addresses = {std::string(kCgnatTunnel) + "/24"};
    WireGuardPeer relay_peer;
    relay_peer.public_key = relay_key_.PublicKey();
    relay_peer.endpoint = "198.51.100.1:" + std::to_string(kWireGuardPort);
    relay_peer.allowed_ips = {std::string(kRelayTunnel) + "/32", "203.0.113.0/24"};
    relay_peer.persistent_keepalive = domain::relay::kRelayKeepalive;
    widened.peers.push_back(relay_peer);
    ASSERT_TRUE(cgnat_wg_->Ensure(widened));
    cgnat_.Run({"ip", "route", "add", "203.0.113.0/24", "dev", cgnat_if_});
    client_.AddRoute("10.99.0.0/24", kRelayPublic);

    EXPECT_FALSE(testing::TcpExchange(cgnat_, kClient, 9000, "out", 1s).has_value());

    relay_.Run({"nft", "flush chain inet decloud_relay forward"});
    EXPECT_EQ(testing::TcpExchange(cgnat_, kClient, 9000, "out", 5s),
              std::optional<std::string>("out"))
        << "control: with the forward rules gone the relay routes";

    ASSERT_TRUE(forwarder_->Reconcile(relay_if_, {{8080, Protocol::kTcp, kCgnatTunnel, 80}}));
    EXPECT_FALSE(testing::TcpExchange(cgnat_, kClient, 9000, "out", 1s).has_value());
}

}  // namespace
}  // namespace decloud::agent::adapters
