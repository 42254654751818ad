// RelayAgent on in-memory WireGuard and port forwarding (the real adapters have their own
// integration tests; this checks the convergence rules).
#include "agent/app/relay_agent.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>

#include "agent/domain/relay/wireguard.hpp"

namespace decloud::agent::app {
namespace {

namespace relay = domain::relay;

class MemoryWireGuard : public ports::WireGuardControl {
  public:
    common::Status Ensure(const relay::WireGuardConfig& config) override {
        if (config.interface == fail_) return common::Error::Unavailable("wireguard-go died");
        configs[config.interface] = config;
        return common::Ok();
    }
    common::Status Remove(const std::string& interface) override {
        configs.erase(interface);
        return common::Ok();
    }
    common::Result<relay::WireGuardState> Read(const std::string& interface) override {
        const auto it = configs.find(interface);
        if (it == configs.end()) return common::Error::NotFound(interface);
        relay::WireGuardState state;
        state.interface = interface;
        state.up = true;
        state.listen_port = it->second.listen_port;
        for (const auto& p : it->second.peers) {
            relay::WireGuardPeerState peer;
            peer.public_key = p.public_key;
            peer.allowed_ips = p.allowed_ips;
            if (!silent.contains(p.public_key.ToBase64()))
                peer.latest_handshake =
                    std::chrono::system_clock::time_point{} + std::chrono::seconds{1700000000};
            peer.rx_bytes = 10;
            peer.tx_bytes = 20;
            state.peers.push_back(peer);
        }
        return state;
    }
    common::Result<std::vector<std::string>> List() override {
        std::vector<std::string> names;
        for (const auto& [name, config] : configs) names.push_back(name);
        return names;
    }
    void FailOn(std::string interface) { fail_ = std::move(interface); }

    std::map<std::string, relay::WireGuardConfig> configs;
    std::set<std::string> silent;  // peers (base64 keys) that never completed a handshake

  private:
    std::string fail_;
};

class MemoryForwarder : public ports::PortForwarder {
  public:
    common::Status Apply(const std::string& interface,
                         const std::vector<relay::PortMapping>& mappings) override {
        if (auto st = relay::ValidateMappings(mappings); !st) return st;
        table[interface] = mappings;
        return common::Ok();
    }
    common::Status Claim(const std::string& interface,
                         const std::vector<relay::PortMapping>& mappings) override {
        if (auto st = relay::ValidateMappings(mappings); !st) return st;
        for (auto& [other, list] : table) {
            if (other == interface) continue;
            std::erase_if(list, [&](const relay::PortMapping& held) {
                return std::any_of(mappings.begin(), mappings.end(), [&](const auto& m) {
                    return m.protocol == held.protocol && m.public_port == held.public_port;
                });
            });
        }
        table[interface] = mappings;
        Snapshot();
        return common::Ok();
    }
    common::Status Reconcile(const std::string& interface,
                             const std::vector<relay::PortMapping>& mappings) override {
        return Apply(interface, mappings);
    }
    common::Result<std::vector<relay::PortMapping>> Read(const std::string& interface) override {
        return table[interface];
    }
    common::Status Remove(const std::string& interface) override {
        table.erase(interface);
        Snapshot();
        return common::Ok();
    }
    common::Status RemoveAll() override {
        table.clear();
        return common::Ok();
    }
    // The public ports mapped after each Claim or Remove, on any interface.
    void Snapshot() {
        std::set<std::uint16_t> ports;
        for (const auto& [name, list] : table)
            for (const auto& m : list) ports.insert(m.public_port);
        history.push_back(std::move(ports));
    }
    std::map<std::string, std::vector<relay::PortMapping>> table;
    std::vector<std::set<std::uint16_t>> history;
};

class MemoryKeyStore : public ports::WireGuardKeyStore {
  public:
    common::Result<std::optional<relay::WireGuardKey>> Staged() override { return staged; }
    common::Result<relay::WireGuardKey> StageNext() override {
        if (!staged) staged = relay::WireGuardKey::Generate();
        return *staged;
    }
    common::Status CommitNext() override {
        if (!staged) return common::Error::Conflict("nothing staged");
        current = *staged;
        staged.reset();
        return common::Ok();
    }
    std::optional<relay::WireGuardKey> staged;
    std::optional<relay::WireGuardKey> current;
};

// Latencies set by the test; Watch records what the agent asked for.
class MemoryLatency : public ports::TunnelLatency {
  public:
    void Watch(const std::vector<std::string>& addresses) override { watched = addresses; }
    std::optional<relay::PeerLatency> Latency(const std::string& address) const override {
        const auto it = known.find(address);
        if (it == known.end()) return std::nullopt;
        return it->second;
    }
    std::vector<std::string> watched;
    std::map<std::string, relay::PeerLatency> known;
};

// Records what the agent asked of the host firewall; fails when told to.
class MemoryForwardException : public ports::ForwardException {
  public:
    common::Status Ensure(bool wanted) override {
        calls.push_back(wanted);
        if (fail) return common::Error::Internal("iptables: not found");
        return common::Ok();
    }
    std::vector<bool> calls;
    bool fail = false;
};

const std::string kRelayIf = "dcr5f0c2a9e1b2d";
const std::string kCgnatIf = "dcc000000000007";

proto::RelayDesiredState Desired(const std::string& peer_key) {
    proto::RelayDesiredState d;
    d.interfaces.push_back(
        {kRelayIf, 51820, {"10.200.0.29/30"}, {{peer_key, "", {"10.200.0.30/32"}, 0, ""}}});
    d.interfaces.push_back({kCgnatIf,
                            0,
                            {"10.200.0.6/30"},
                            {{peer_key, "203.0.113.2:51820", {"10.200.0.5/32"}, 25, ""}}});
    d.forwards.push_back({kRelayIf, 30001, "tcp", "10.200.0.30", 30001});
    d.forwards.push_back({kCgnatIf, 30007, "tcp", "10.77.0.2", 8080});
    return d;
}

class RelayAgentTest : public ::testing::Test {
  protected:
    MemoryWireGuard wireguard_;
    MemoryForwarder relay_table_, cgnat_table_;
    relay::WireGuardKey key_ = relay::WireGuardKey::Generate();
    MemoryKeyStore keys_;
    RelayAgent agent_{wireguard_, relay_table_, cgnat_table_, keys_, key_};
    std::string peer_ = relay::WireGuardKey::Generate().PublicKey().ToBase64();
};

TEST_F(RelayAgentTest, ConvergesOnTheDesiredStateWithItsOwnKey) {
    ASSERT_TRUE(agent_.Apply(Desired(peer_)));
    ASSERT_EQ(wireguard_.configs.size(), 2u);
    EXPECT_EQ(wireguard_.configs[kRelayIf].private_key, key_);
    EXPECT_EQ(wireguard_.configs[kCgnatIf].peers[0].persistent_keepalive, std::chrono::seconds{25});
    // Relay forwards and CGNAT forwards go to their own tables.
    ASSERT_EQ(relay_table_.table[kRelayIf].size(), 1u);
    EXPECT_EQ(relay_table_.table[kRelayIf][0].tunnel_address, "10.200.0.30");
    ASSERT_EQ(cgnat_table_.table[kCgnatIf].size(), 1u);
    EXPECT_EQ(cgnat_table_.table[kCgnatIf][0].vm_port, 8080);
    EXPECT_FALSE(relay_table_.table.contains(kCgnatIf));

    const auto report = agent_.Report();
    EXPECT_EQ(report.public_key, key_.PublicKey().ToBase64());
    ASSERT_EQ(report.interfaces.size(), 2u);
    EXPECT_EQ(report.interfaces[0].peers[0].latest_handshake_unix, 1700000000u);
    EXPECT_EQ(report.interfaces[0].forwards, 1u);

    // An empty state removes everything, forwards included.
    ASSERT_TRUE(agent_.Apply({}));
    EXPECT_TRUE(wireguard_.configs.empty());
    EXPECT_TRUE(relay_table_.table.empty());
    EXPECT_TRUE(cgnat_table_.table.empty());
}

TEST_F(RelayAgentTest, OneFailingInterfaceIsReportedAndTheOthersStillConverge) {
    wireguard_.FailOn(kCgnatIf);
    const auto st = agent_.Apply(Desired(peer_));
    ASSERT_FALSE(st);
    EXPECT_NE(st.error().message.find("wireguard-go died"), std::string::npos);
    EXPECT_TRUE(wireguard_.configs.contains(kRelayIf));
    const auto report = agent_.Report();
    ASSERT_EQ(report.interfaces.size(), 2u);
    bool reported = false;
    for (const auto& i : report.interfaces)
        if (i.interface == kCgnatIf) reported = i.error == "wireguard-go died" && !i.up;
    EXPECT_TRUE(reported);

    wireguard_.FailOn("");
    ASSERT_TRUE(agent_.Apply(Desired(peer_)));
    for (const auto& i : agent_.Report().interfaces) EXPECT_TRUE(i.error.empty()) << i.interface;
}

TEST_F(RelayAgentTest, BadStateIsRefusedWithoutTouchingTheRest) {
    auto bad = Desired("not-a-key");
    EXPECT_FALSE(agent_.Apply(bad));
    EXPECT_TRUE(wireguard_.configs.empty());
    auto foreign = Desired(peer_);
    foreign.interfaces[0].interface = "eth0";
    foreign.forwards.clear();
    EXPECT_FALSE(agent_.Apply(foreign));
    EXPECT_FALSE(wireguard_.configs.contains("eth0"));
    EXPECT_TRUE(wireguard_.configs.contains(kCgnatIf));
}

TEST_F(RelayAgentTest, AFailoverMovesTheVmPortsWithoutAMomentUnmapped) {
    const std::string standby_if = "dcc000000000008";
    auto desired = Desired(peer_);
    desired.interfaces.push_back({standby_if,
                                  0,
                                  {"10.200.0.10/30"},
                                  {{peer_, "203.0.113.6:51820", {"10.200.0.9/32"}, 25, ""}}});
    ASSERT_TRUE(agent_.Apply(desired));
    ASSERT_EQ(cgnat_table_.table[kCgnatIf].size(), 1u);
    cgnat_table_.history.clear();

    // The standby becomes the primary: the VM's port moves to its interface, which the desired
    // state lists after the old primary's.
    desired.forwards.back().interface = standby_if;
    ASSERT_TRUE(agent_.Apply(desired));
    EXPECT_TRUE(cgnat_table_.table[kCgnatIf].empty());
    ASSERT_EQ(cgnat_table_.table[standby_if].size(), 1u);
    EXPECT_EQ(cgnat_table_.table[standby_if][0].public_port, 30007);
    ASSERT_FALSE(cgnat_table_.history.empty());
    for (const auto& ports : cgnat_table_.history)
        EXPECT_TRUE(ports.contains(30007)) << "the port was unmapped between two changes";

    // One port on two interfaces of the same role would move back and forth: refused.
    auto twice = desired;
    twice.forwards.push_back({kCgnatIf, 30007, "tcp", "10.77.0.2", 8080});
    const auto refused = agent_.Apply(twice);
    ASSERT_FALSE(refused);
    EXPECT_NE(refused.error().message.find("30007"), std::string::npos);
    EXPECT_EQ(cgnat_table_.table[standby_if].size(), 1u);
}

TEST_F(RelayAgentTest, KeyRotationStagesThenCommitsTheSameKey) {
    auto desired = Desired(peer_);
    desired.key_rotation = "stage";
    ASSERT_TRUE(agent_.Apply(desired));
    const auto next = agent_.Report().next_public_key;
    ASSERT_FALSE(next.empty());
    EXPECT_NE(next, key_.PublicKey().ToBase64());
    EXPECT_EQ(wireguard_.configs[kRelayIf].private_key, key_) << "staging changes nothing yet";
    ASSERT_TRUE(agent_.Apply(desired));
    EXPECT_EQ(agent_.Report().next_public_key, next) << "staged once";

    // A commit of some other key is ignored; of the staged one, switches every interface.
    desired.key_rotation = "commit";
    desired.next_public_key = peer_;
    ASSERT_TRUE(agent_.Apply(desired));
    EXPECT_EQ(agent_.PublicKey(), key_.PublicKey().ToBase64());
    desired.next_public_key = next;
    ASSERT_TRUE(agent_.Apply(desired));
    EXPECT_EQ(agent_.PublicKey(), next);
    EXPECT_EQ(wireguard_.configs[kRelayIf].private_key.PublicKey().ToBase64(), next);
    EXPECT_EQ(wireguard_.configs[kCgnatIf].private_key.PublicKey().ToBase64(), next);
    EXPECT_EQ(keys_.current->PublicKey().ToBase64(), next) << "kept for the next start";
    const auto report = agent_.Report();
    EXPECT_EQ(report.public_key, next);
    EXPECT_TRUE(report.next_public_key.empty());
}

TEST_F(RelayAgentTest, ASuccessorPeerTakesTheAddressesOnlyAfterItsFirstHandshake) {
    const auto successor = relay::WireGuardKey::Generate().PublicKey().ToBase64();
    auto desired = Desired(peer_);
    auto next = desired.interfaces[1].peers[0];
    next.public_key = successor;
    next.replaces = peer_;
    desired.interfaces[1].peers.push_back(next);
    wireguard_.silent.insert(successor);
    ASSERT_TRUE(agent_.Apply(desired));
    auto peers = wireguard_.configs[kCgnatIf].peers;
    ASSERT_EQ(peers.size(), 2u);
    EXPECT_EQ(peers[0].allowed_ips, std::vector<std::string>{"10.200.0.5/32"});
    EXPECT_TRUE(peers[1].allowed_ips.empty()) << "no handshake yet: the old key keeps the tunnel";
    EXPECT_EQ(peers[1].endpoint, "203.0.113.2:51820");
    EXPECT_TRUE(agent_.HasPendingSuccessors());
    ASSERT_TRUE(agent_.PromoteSuccessors());
    EXPECT_TRUE(agent_.HasPendingSuccessors());

    // The other end switched keys and shook hands: the successor takes over.
    wireguard_.silent.clear();
    ASSERT_TRUE(agent_.PromoteSuccessors());
    EXPECT_FALSE(agent_.HasPendingSuccessors());
    peers = wireguard_.configs[kCgnatIf].peers;
    EXPECT_TRUE(peers[0].allowed_ips.empty());
    EXPECT_EQ(peers[1].allowed_ips, std::vector<std::string>{"10.200.0.5/32"});
    EXPECT_EQ(wireguard_.configs[kRelayIf].peers.size(), 1u) << "other interfaces untouched";
}

TEST_F(RelayAgentTest, EachPeerIsProbedAtItsTunnelAddressAndItsLatencyReported) {
    MemoryLatency latency;
    RelayAgent agent{wireguard_, relay_table_, cgnat_table_, keys_, key_, &latency};
    ASSERT_TRUE(agent.Apply(Desired(peer_)));
    EXPECT_EQ(latency.watched, (std::vector<std::string>{"10.200.0.30", "10.200.0.5"}));
    latency.known["10.200.0.5"] = relay::PeerLatency{std::chrono::microseconds{1234}, 0};
    latency.known["10.200.0.30"] = relay::PeerLatency{std::chrono::microseconds{800}, 4};
    for (const auto& i : agent.Report().interfaces) {
        ASSERT_EQ(i.peers.size(), 1u);
        if (i.interface == kCgnatIf) {
            EXPECT_EQ(i.peers[0].rtt_us, 1234u);
            EXPECT_EQ(i.peers[0].unanswered_probe_rounds, 0u);
        } else {
            EXPECT_EQ(i.peers[0].rtt_us, 800u);
            EXPECT_EQ(i.peers[0].unanswered_probe_rounds, 4u);
        }
    }
    // Not measured yet: no latency in the report.
    latency.known.clear();
    for (const auto& i : agent.Report().interfaces) EXPECT_FALSE(i.peers[0].rtt_us);
    ASSERT_TRUE(agent.Apply({}));
    EXPECT_TRUE(latency.watched.empty());
}

TEST_F(RelayAgentTest, TheForwardExceptionFollowsTheCgnatTunnels) {
    MemoryForwardException exception;
    RelayAgent agent{wireguard_, relay_table_, cgnat_table_, keys_, key_, nullptr, &exception};
    // A relay only: never asked (a host without iptables is not bothered).
    auto relay_only = Desired(peer_);
    relay_only.interfaces.pop_back();
    relay_only.forwards.pop_back();
    ASSERT_TRUE(agent.Apply(relay_only));
    EXPECT_TRUE(exception.calls.empty());
    // A CGNAT tunnel: wanted, at every heartbeat (the adapter decides when to look again).
    ASSERT_TRUE(agent.Apply(Desired(peer_)));
    ASSERT_TRUE(agent.Apply(Desired(peer_)));
    EXPECT_EQ(exception.calls, (std::vector<bool>{true, true}));
    // The tunnel goes: removed once, then left alone.
    ASSERT_TRUE(agent.Apply(relay_only));
    ASSERT_TRUE(agent.Apply(relay_only));
    EXPECT_EQ(exception.calls, (std::vector<bool>{true, true, false}));
    // A failure is the Apply's failure, and the tunnels are still set up.
    exception.fail = true;
    const auto st = agent.Apply(Desired(peer_));
    ASSERT_FALSE(st);
    EXPECT_NE(st.error().message.find("iptables"), std::string::npos);
    EXPECT_TRUE(wireguard_.configs.contains(kCgnatIf));
}

}  // namespace
}  // namespace decloud::agent::app
