// RelayService on the in-memory repositories and a manual clock.

#include "orchestrator/app/relay_service.hpp"

#include <gtest/gtest.h>

#include <set>

#include "decloud/common/ids.hpp"
#include "decloud/fakes/in_memory_node_repository.hpp"
#include "decloud/fakes/in_memory_relay_repository.hpp"

namespace decloud::orchestrator::app {
namespace {

using namespace std::chrono_literals;
using common::ErrorCode;
using domain::RelayRole;
using domain::RelayState;

constexpr const char* kRelayWallet = "0x1111111111111111111111111111111111111111";
constexpr const char* kCgnatWallet = "0x2222222222222222222222222222222222222222";
constexpr const char* kStranger = "0x3333333333333333333333333333333333333333";

class RelayServiceTest : public ::testing::Test {
  protected:
    RelayServiceTest() : relays_(nodes_), service_(relays_, nodes_, clock_, Options()) {}

    static RelayServiceOptions Options() {
        RelayServiceOptions o;
        o.release_after_offline = 10min;
        return o;
    }

    std::string AddNode(const std::string& wallet, const std::string& reported_ip, bool cgnat,
                        const std::string& region = "eu-west", std::string public_key = {}) {
        domain::NodeRegistration reg;
        // The node key identifies the node: the same key registers the same node again.
        reg.public_key = public_key.empty() ? common::NewUuid() : public_key;
        reg.operator_wallet = wallet;
        reg.reported_ip = reported_ip;
        reg.observed_ip = reported_ip;
        reg.region = region;
        reg.cgnat = cgnat ? domain::CgnatAssessment{true, true, "reported address is CGNAT"}
                          : domain::CgnatAssessment{false, false, "publicly routable"};
        auto r = nodes_.Register(reg, clock_.Now());
        EXPECT_TRUE(r);
        return r ? r->node.id : std::string();
    }

    void Online(const std::vector<std::string>& ids) {
        std::vector<domain::BufferedHeartbeat> batch;
        for (const auto& id : ids) {
            domain::BufferedHeartbeat hb;
            hb.node_id = id;
            hb.first_at = hb.last_at = clock_.Now();
            hb.count = 1;
            batch.push_back(hb);
        }
        ASSERT_TRUE(nodes_.ApplyHeartbeats(batch, 15s, clock_.Now()));
    }

    std::string PublicRelay(const std::string& ip) {
        auto id = AddNode(kRelayWallet, ip, false);
        Online({id});
        return id;
    }

    std::vector<domain::RelayAssignment> Live() {
        auto r = relays_.Live();
        EXPECT_TRUE(r);
        return r ? *r : std::vector<domain::RelayAssignment>{};
    }

    common::ManualClock clock_;
    fakes::InMemoryNodeRepository nodes_;
    fakes::InMemoryRelayRepository relays_;
    RelayService service_;
};

TEST_F(RelayServiceTest, NodeWithoutCandidatesAwaitsWithTheReason) {
    const auto cgnat = AddNode(kCgnatWallet, "100.64.1.2", true);
    auto r = service_.AssignRelays(cgnat);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_FALSE(r->primary);
    EXPECT_FALSE(r->standby);
    EXPECT_FALSE(r->awaiting_reason.empty());
    auto waiting = relays_.Awaiting();
    ASSERT_TRUE(waiting);
    ASSERT_EQ(waiting->size(), 1u);
    EXPECT_EQ((*waiting)[0].cgnat_node_id, cgnat);
    EXPECT_EQ((*waiting)[0].reason, r->awaiting_reason);
    auto stats = service_.Stats();
    ASSERT_TRUE(stats);
    EXPECT_EQ(stats->awaiting, 1u);
    EXPECT_EQ(stats->assignments, 0u);
}

TEST_F(RelayServiceTest, PublicNodeNeedsNoRelayAndUnknownNodeIsNotFound) {
    const auto pub = PublicRelay("198.51.100.7");
    auto r = service_.AssignRelays(pub);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ErrorCode::kUnprocessable);
    auto unknown = service_.AssignRelays(common::NewUuid());
    ASSERT_FALSE(unknown);
    EXPECT_EQ(unknown.error().code, ErrorCode::kNotFound);
}

TEST_F(RelayServiceTest, ReconcileOffersPublicNodesAndAssignsPrimaryAndStandby) {
    const auto r1 = PublicRelay("198.51.100.7");
    const auto r2 = PublicRelay("198.51.100.8");
    const auto cgnat = AddNode(kCgnatWallet, "100.64.1.2", true);
    auto pass = service_.Reconcile();
    ASSERT_TRUE(pass) << pass.error().message;
    EXPECT_EQ(pass->offered, 2u);
    EXPECT_EQ(pass->assigned, 2u);
    EXPECT_EQ(pass->awaiting, 0u);
    const auto live = Live();
    ASSERT_EQ(live.size(), 2u);
    std::set<std::string> relay_ids;
    for (const auto& a : live) {
        EXPECT_EQ(a.cgnat_node_id, cgnat);
        EXPECT_EQ(a.state, RelayState::kProvisioning);
        relay_ids.insert(a.relay_node_id);
    }
    EXPECT_EQ(relay_ids, (std::set<std::string>{r1, r2}));
    auto stats = service_.Stats();
    ASSERT_TRUE(stats);
    EXPECT_EQ(stats->relays, 2u);
    EXPECT_EQ(stats->offers, 2u);
    EXPECT_EQ(stats->cgnat_nodes_served, 1u);
    EXPECT_EQ(stats->primaries, 1u);
    EXPECT_EQ(stats->standbys, 1u);
    EXPECT_EQ(stats->provisioning, 2u);

    // A second pass changes nothing: offers are not repeated, nothing is missing.
    auto again = service_.Reconcile();
    ASSERT_TRUE(again);
    EXPECT_EQ(again->offered + again->assigned + again->released, 0u);
    EXPECT_EQ(Live().size(), 2u);
}

TEST_F(RelayServiceTest, OfflineRelayIsNotChosenAndStandbyIsAddedWhenASecondRelayAppears) {
    const auto cgnat = AddNode(kCgnatWallet, "100.64.1.2", true);
    const auto offline = AddNode(kRelayWallet, "198.51.100.9", false);
    ASSERT_TRUE(service_.Reconcile());  // offers `offline`, which cannot relay yet
    auto waiting = relays_.Awaiting();
    ASSERT_TRUE(waiting);
    ASSERT_EQ(waiting->size(), 1u);
    EXPECT_NE((*waiting)[0].reason.find("offline"), std::string::npos) << (*waiting)[0].reason;

    const auto r1 = PublicRelay("198.51.100.7");
    auto retried = service_.Reconcile();
    ASSERT_TRUE(retried);
    auto live = Live();
    ASSERT_EQ(live.size(), 1u);  // a primary; no second relay for a standby
    EXPECT_EQ(live[0].role, RelayRole::kPrimary);
    EXPECT_EQ(live[0].relay_node_id, r1);
    EXPECT_EQ(live[0].relay_endpoint, "198.51.100.7:51820");
    EXPECT_TRUE(relays_.Awaiting()->empty());

    // The same machine under another node id (same address) is no standby.
    const auto twin = PublicRelay("198.51.100.7");
    ASSERT_TRUE(service_.Reconcile());
    EXPECT_EQ(Live().size(), 1u);

    Online({offline});
    auto topped = service_.AssignRelays(cgnat);
    ASSERT_TRUE(topped) << topped.error().message;
    EXPECT_FALSE(topped->primary);
    ASSERT_TRUE(topped->standby);
    EXPECT_EQ(topped->standby->relay_node_id, offline);
    EXPECT_EQ(topped->standby->role, RelayRole::kStandby);
    (void)twin;
}

TEST_F(RelayServiceTest, RetryAwaitingAssignsOnceARelayAppears) {
    const auto a = AddNode(kCgnatWallet, "100.64.1.2", true);
    const auto b = AddNode(kCgnatWallet, "100.64.1.3", true);
    ASSERT_TRUE(service_.AssignRelays(a));
    ASSERT_TRUE(service_.AssignRelays(b));
    auto none = service_.RetryAwaiting();
    ASSERT_TRUE(none);
    EXPECT_EQ(*none, 0u);
    EXPECT_EQ(relays_.Awaiting()->size(), 2u);
    EXPECT_EQ(relays_.Awaiting()->front().attempts, 2u);

    const auto relay = PublicRelay("198.51.100.7");
    ports::RelayOffer offer;
    offer.node_id = relay;
    offer.bandwidth_mbps = 100;
    ASSERT_TRUE(relays_.UpsertOffer(offer, clock_.Now()));
    auto assigned = service_.RetryAwaiting();
    ASSERT_TRUE(assigned);
    EXPECT_EQ(*assigned, 2u);
    EXPECT_TRUE(relays_.Awaiting()->empty());
}

TEST_F(RelayServiceTest, PortsForVmsOnTheRelayAndTheirRelease) {
    PublicRelay("198.51.100.7");
    const auto cgnat = AddNode(kCgnatWallet, "100.64.1.2", true);
    ASSERT_TRUE(service_.Reconcile());
    const auto vm = common::NewUuid();
    relays_.AddVm(vm, cgnat);
    auto relay = relays_.VmRelay(vm);
    ASSERT_TRUE(relay);
    EXPECT_FALSE(relay->empty());  // revenue attribution

    auto ssh = service_.AllocatePortForVm(vm, 22, domain::PortProtocol::kTcp);
    ASSERT_TRUE(ssh) << ssh.error().message;
    EXPECT_EQ(ssh->public_url, "198.51.100.7:" + std::to_string(ssh->public_port));
    auto again = service_.AllocatePortForVm(vm, 22, domain::PortProtocol::kTcp);
    ASSERT_TRUE(again);
    EXPECT_EQ(again->id, ssh->id);
    auto web = service_.AllocatePortForVm(vm, 80, domain::PortProtocol::kTcp);
    ASSERT_TRUE(web);
    EXPECT_NE(web->public_port, ssh->public_port);
    EXPECT_EQ(service_.Stats()->port_mappings, 2u);
    auto bad = service_.AllocatePortForVm(vm, 0, domain::PortProtocol::kTcp);
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);

    auto released = service_.ReleaseVm(vm);
    ASSERT_TRUE(released);
    EXPECT_EQ(released->size(), 2u);
    EXPECT_EQ(service_.Stats()->port_mappings, 0u);
}

TEST_F(RelayServiceTest, RepairNeedsAReasonCountsAttemptsAndRefusesRemoved) {
    PublicRelay("198.51.100.7");
    const auto cgnat = AddNode(kCgnatWallet, "100.64.1.2", true);
    ASSERT_TRUE(service_.Reconcile());
    const auto id = Live().at(0).id;

    auto empty = service_.Repair(id, "");
    ASSERT_FALSE(empty);
    EXPECT_EQ(empty.error().code, ErrorCode::kInvalidArgument);
    auto unknown = service_.Repair(common::NewUuid(), "why");
    ASSERT_FALSE(unknown);
    EXPECT_EQ(unknown.error().code, ErrorCode::kNotFound);

    clock_.Advance(1min);
    auto first = service_.Repair(id, "handshake stale");
    ASSERT_TRUE(first) << first.error().message;
    EXPECT_EQ(first->state, RelayState::kRepairing);
    EXPECT_EQ(first->repair_attempts, 1u);
    EXPECT_EQ(first->state_changed_at, clock_.Now());
    auto second = service_.Repair(id, "still stale");
    ASSERT_TRUE(second);
    EXPECT_EQ(second->repair_attempts, 2u);
    auto detail = service_.Get(id, RelayViewer{"", true});
    ASSERT_TRUE(detail);
    ASSERT_EQ(detail->events.size(), 3u);
    EXPECT_EQ(detail->events.back().reason, "repair requested: still stale");

    ASSERT_TRUE(service_.Release(cgnat, "node deregistered"));
    auto removed = service_.Repair(id, "too late");
    ASSERT_FALSE(removed);
    EXPECT_EQ(removed.error().code, ErrorCode::kConflict);
}

TEST_F(RelayServiceTest, OperatorsSeeOnlyAssignmentsInvolvingTheirNodes) {
    PublicRelay("198.51.100.7");
    const auto cgnat = AddNode(kCgnatWallet, "100.64.1.2", true);
    AddNode(kStranger, "100.64.1.9", true, "us-east");  // a node of the stranger's, no relay
    ASSERT_TRUE(service_.Reconcile());
    // The stranger's CGNAT node got the only relay's second tunnel: count what is whose.
    const auto all = service_.List(RelayViewer{"", true});
    ASSERT_TRUE(all);
    ASSERT_EQ(all->size(), 2u);
    std::string cgnat_assignment;
    for (const auto& a : *all)
        if (a.cgnat_node_id == cgnat) cgnat_assignment = a.id;
    ASSERT_FALSE(cgnat_assignment.empty());

    EXPECT_EQ(service_.List(RelayViewer{kRelayWallet, false})->size(), 2u);
    auto mine = service_.List(RelayViewer{kCgnatWallet, false});
    ASSERT_TRUE(mine);
    ASSERT_EQ(mine->size(), 1u);
    EXPECT_EQ((*mine)[0].id, cgnat_assignment);
    EXPECT_EQ(
        service_.List(RelayViewer{"0x4444444444444444444444444444444444444444", false})->size(),
        0u);

    EXPECT_TRUE(service_.Get(cgnat_assignment, RelayViewer{kCgnatWallet, false}));
    EXPECT_TRUE(service_.Get(cgnat_assignment, RelayViewer{kRelayWallet, false}));
    auto hidden = service_.Get(cgnat_assignment, RelayViewer{kStranger, false});
    ASSERT_FALSE(hidden);
    EXPECT_EQ(hidden.error().code, ErrorCode::kNotFound);
}

TEST_F(RelayServiceTest, ReconcileReleasesNodesOfflinePastTheGraceAndPublicOnes) {
    PublicRelay("198.51.100.7");
    PublicRelay("198.51.100.8");
    const auto gone = AddNode(kCgnatWallet, "100.64.1.2", true);
    const auto stays = AddNode(kCgnatWallet, "100.64.1.3", true);
    Online({gone, stays});
    ASSERT_TRUE(service_.Reconcile());
    ASSERT_EQ(Live().size(), 4u);

    // Only `stays` and the relays keep heartbeating.
    clock_.Advance(5min);
    auto relays = relays_.Candidates(clock_.Now(), clock_.Now());
    ASSERT_TRUE(relays);
    std::vector<std::string> beating{stays};
    for (const auto& c : *relays) beating.push_back(c.node_id);
    Online(beating);
    ASSERT_TRUE(nodes_.MarkStaleOffline(clock_.Now() - 2min, clock_.Now()));
    auto early = service_.Reconcile();
    ASSERT_TRUE(early);
    EXPECT_EQ(early->released, 0u);  // offline, but within the grace
    EXPECT_EQ(Live().size(), 4u);

    clock_.Advance(6min);  // 11 minutes since its last heartbeat
    auto late = service_.Reconcile();
    ASSERT_TRUE(late);
    EXPECT_EQ(late->released, 1u);
    const auto live = Live();
    ASSERT_EQ(live.size(), 2u);
    for (const auto& a : live) EXPECT_EQ(a.cgnat_node_id, stays);
    auto history = relays_.ForCgnatNode(gone);
    ASSERT_TRUE(history);
    EXPECT_TRUE(history->empty());
}

TEST_F(RelayServiceTest, NodeRegisteredAgainAsPublicGivesUpItsRelaysAndItsWait) {
    const auto relay = PublicRelay("198.51.100.7");
    ports::RelayOffer one_tunnel;  // the only relay takes one tunnel: `waits` has to wait
    one_tunnel.node_id = relay;
    one_tunnel.bandwidth_mbps = 100;
    one_tunnel.max_tunnels = 1;
    ASSERT_TRUE(relays_.UpsertOffer(one_tunnel, clock_.Now()));
    const auto moved = AddNode(kCgnatWallet, "100.64.1.2", true, "eu-west", "key-moved");
    const auto waits = AddNode(kCgnatWallet, "100.64.1.3", true, "eu-west", "key-waits");
    ASSERT_TRUE(service_.AssignRelays(moved));
    ASSERT_EQ(Live().size(), 1u);
    auto r = service_.AssignRelays(waits);
    ASSERT_TRUE(r);
    EXPECT_NE(r->awaiting_reason.find("capacity"), std::string::npos) << r->awaiting_reason;

    EXPECT_EQ(AddNode(kCgnatWallet, "203.0.113.50", false, "eu-west", "key-moved"), moved);
    EXPECT_EQ(AddNode(kCgnatWallet, "203.0.113.51", false, "eu-west", "key-waits"), waits);
    auto pass = service_.Reconcile();
    ASSERT_TRUE(pass);
    EXPECT_EQ(pass->released, 2u);
    EXPECT_TRUE(Live().empty());
    EXPECT_TRUE(relays_.Awaiting()->empty());
}

TEST_F(RelayServiceTest, RepositoryFailuresAreReturned) {
    const auto cgnat = AddNode(kCgnatWallet, "100.64.1.2", true);
    relays_.FailNext();
    auto r = service_.AssignRelays(cgnat);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
    relays_.FailNext();
    auto pass = service_.Reconcile();
    ASSERT_FALSE(pass);
    EXPECT_EQ(pass.error().code, ErrorCode::kUnavailable);
}

}  // namespace
}  // namespace decloud::orchestrator::app

namespace decloud::orchestrator::app {
namespace {

std::string Key(char c) { return std::string(43, c) + "="; }

proto::RelayReport Report(const std::string& key, const std::string& interface = {},
                          const std::string& peer = {}, common::TimePoint handshake = {}) {
    proto::RelayReport report;
    report.public_key = key;
    if (!interface.empty()) {
        proto::RelayInterfaceReport i;
        i.interface = interface;
        i.up = true;
        if (!peer.empty()) {
            proto::RelayPeerReport p;
            p.public_key = peer;
            p.endpoint = "198.51.100.200:40000";
            p.latest_handshake_unix = static_cast<std::uint64_t>(
                std::chrono::duration_cast<std::chrono::seconds>(handshake.time_since_epoch())
                    .count());
            i.peers.push_back(p);
        }
        report.interfaces.push_back(i);
    }
    return report;
}

class RelayExchangeTest : public RelayServiceTest {
  protected:
    void SetUp() override {
        clock_.Set(common::TimePoint{} + std::chrono::hours{24 * 20000});
        r1_ = PublicRelay("198.51.100.7");
        r2_ = PublicRelay("198.51.100.8");
        cgnat_ = AddNode(kCgnatWallet, "100.64.1.2", true);
        Online({cgnat_});
        ASSERT_TRUE(service_.Reconcile());
        ASSERT_TRUE(service_.RecordReport(r1_, Report(Key('R'))));
        ASSERT_TRUE(service_.RecordReport(r2_, Report(Key('S'))));
        ASSERT_TRUE(service_.RecordReport(cgnat_, Report(Key('C'))));
        for (const auto& a : Live()) (a.role == RelayRole::kPrimary ? primary_ : standby_) = a;
    }

    // The CGNAT node reports a handshake on both tunnels at `at`.
    void HandshakesAt(common::TimePoint at) {
        auto report = Report(Key('C'), primary_.interface_name, primary_.relay_public_key, at);
        auto standby = Report(Key('C'), standby_.interface_name, standby_.relay_public_key, at);
        report.interfaces.push_back(standby.interfaces[0]);
        ASSERT_TRUE(service_.RecordReport(cgnat_, report));
    }

    domain::RelayAssignment Current(const std::string& id) { return *relays_.Get(id); }
    std::string KeyOf(const std::string& relay) const { return relay == r1_ ? Key('R') : Key('S'); }
    std::string AddVm(const std::string& node) {
        auto vm = common::NewUuid();
        relays_.AddVm(vm, node);
        return vm;
    }

    std::string r1_, r2_, cgnat_;
    domain::RelayAssignment primary_, standby_;
};

TEST_F(RelayExchangeTest, KeysAreRecordedAndEachSideGetsItsWholeRelayState) {
    EXPECT_EQ(Current(primary_.id).cgnat_public_key, Key('C'));
    EXPECT_FALSE(primary_.relay_public_key.empty());
    EXPECT_TRUE(service_.NeedsRelayExchange(cgnat_, Report(Key('C'))))
        << "a node in a live assignment exchanges on every heartbeat";
    const auto stranger = PublicRelay("198.51.100.9");
    EXPECT_TRUE(service_.NeedsRelayExchange(stranger, Report(Key('X'))));
    ASSERT_TRUE(service_.RecordReport(stranger, Report(Key('X'))));
    EXPECT_FALSE(service_.NeedsRelayExchange(stranger, Report(Key('X'))))
        << "a recorded key of an uninvolved node needs no database";
    EXPECT_FALSE(service_.RecordReport(cgnat_, Report("not-a-key")));
    // A key reported before the node had an offer reaches the offer once it is made.
    const auto late = AddNode(kRelayWallet, "198.51.100.10", false);
    Online({late});
    ASSERT_TRUE(service_.RecordReport(late, Report(Key('L'))));
    EXPECT_FALSE(service_.NeedsRelayExchange(late, Report(Key('L'))));
    ASSERT_TRUE(service_.Reconcile());
    EXPECT_TRUE(service_.NeedsRelayExchange(late, Report(Key('L'))));
    ASSERT_TRUE(service_.RecordReport(late, Report(Key('L'))));
    EXPECT_EQ(relays_.Offer(late)->wireguard_public_key, Key('L'));

    // The relay: one interface, the CGNAT node as peer, the VM's port towards the tunnel.
    const auto vm = AddVm(cgnat_);
    auto mapping = service_.AllocatePortForVm(vm, 8080, domain::PortProtocol::kTcp);
    ASSERT_TRUE(mapping) << mapping.error().message;
    auto relay = service_.DesiredState(primary_.relay_node_id);
    ASSERT_TRUE(relay) << relay.error().message;
    ASSERT_EQ(relay->interfaces.size(), 1u);
    const auto& spec = relay->interfaces[0];
    EXPECT_EQ(spec.interface, domain::RelayInterfaceName(primary_.relay_node_id));
    EXPECT_EQ(spec.listen_port, 51820);
    EXPECT_EQ(spec.addresses, std::vector<std::string>{primary_.tunnel.relay_address + "/30"});
    ASSERT_EQ(spec.peers.size(), 1u);
    EXPECT_EQ(spec.peers[0].public_key, Key('C'));
    EXPECT_EQ(spec.peers[0].allowed_ips,
              std::vector<std::string>{primary_.tunnel.cgnat_address + "/32"});
    ASSERT_EQ(relay->forwards.size(), 1u);
    EXPECT_EQ(relay->forwards[0].public_port, mapping->public_port);
    EXPECT_EQ(relay->forwards[0].target_address, primary_.tunnel.cgnat_address);
    EXPECT_EQ(relay->forwards[0].target_port, mapping->public_port);

    // The CGNAT node: both tunnels, dialling their relays with keepalives.
    auto cgnat = service_.DesiredState(cgnat_);
    ASSERT_TRUE(cgnat);
    ASSERT_EQ(cgnat->interfaces.size(), 2u);
    for (const auto& i : cgnat->interfaces) {
        ASSERT_EQ(i.peers.size(), 1u);
        EXPECT_EQ(i.peers[0].keepalive_seconds, 25u);
        EXPECT_TRUE(i.peers[0].endpoint.ends_with(":51820")) << i.peers[0].endpoint;
    }
}

TEST_F(RelayExchangeTest, AReplicaWithoutTheMonitorLockStillKnowsWhoTakesPart) {
    // A second replica, on the same database, while the first one holds the monitor's lock.
    RelayService other(relays_, nodes_, clock_, Options());
    relays_.monitor_held_elsewhere = true;
    const auto late_cgnat = AddNode(kCgnatWallet, "100.64.1.9", true);
    Online({late_cgnat});
    ASSERT_TRUE(other.RecordReport(late_cgnat, Report(Key('D'))));
    EXPECT_FALSE(other.NeedsRelayExchange(late_cgnat, Report(Key('D'))));
    auto idle = other.Reconcile();
    ASSERT_TRUE(idle) << idle.error().message;
    EXPECT_FALSE(idle->ran);
    EXPECT_EQ(idle->assigned, 0u) << "the pass is the lock holder's";
    EXPECT_TRUE(relays_.ForCgnatNode(late_cgnat)->empty());

    // The holder's pass assigns relays; the other replica's next pass (still without the lock)
    // learns that the node takes part, so its heartbeats there exchange relay state again.
    relays_.monitor_held_elsewhere = false;
    auto ran = service_.Reconcile();
    ASSERT_TRUE(ran) << ran.error().message;
    EXPECT_TRUE(ran->ran);
    EXPECT_GT(ran->assigned, 0u);
    relays_.monitor_held_elsewhere = true;
    ASSERT_TRUE(other.Reconcile());
    EXPECT_TRUE(other.NeedsRelayExchange(late_cgnat, Report(Key('D'))));

    // A public node whose key this replica recorded before the holder offered it as a relay:
    // its next report here brings the key to the offer.
    const auto late_relay = AddNode(kRelayWallet, "198.51.100.11", false);
    Online({late_relay});
    ASSERT_TRUE(other.RecordReport(late_relay, Report(Key('E'))));
    EXPECT_FALSE(other.NeedsRelayExchange(late_relay, Report(Key('E'))));
    relays_.monitor_held_elsewhere = false;
    ASSERT_TRUE(service_.Reconcile());
    ASSERT_TRUE(relays_.Offer(late_relay));
    EXPECT_EQ(relays_.Offer(late_relay)->wireguard_public_key, "");
    relays_.monitor_held_elsewhere = true;
    ASSERT_TRUE(other.Reconcile());
    EXPECT_TRUE(other.NeedsRelayExchange(late_relay, Report(Key('E'))));
    ASSERT_TRUE(other.RecordReport(late_relay, Report(Key('E'))));
    EXPECT_EQ(relays_.Offer(late_relay)->wireguard_public_key, Key('E'));
    EXPECT_FALSE(other.NeedsRelayExchange(late_relay, Report(Key('E'))));
}

TEST_F(RelayExchangeTest, HandshakesMakeTunnelsActiveAndStaleOnesDegradeThem) {
    clock_.Advance(5s);
    HandshakesAt(clock_.Now() - 1s);
    EXPECT_EQ(Current(primary_.id).state, RelayState::kActive);
    EXPECT_EQ(Current(standby_.id).state, RelayState::kActive);

    // The relay lost its interface: degraded, and an old handshake seen by the other end does
    // not bring it back; a new one does.
    clock_.Advance(5s);
    ASSERT_TRUE(
        service_.RecordReport(primary_.relay_node_id, Report(KeyOf(primary_.relay_node_id))));
    EXPECT_EQ(Current(primary_.id).state, RelayState::kDegraded);
    EXPECT_NE(Current(primary_.id).state_reason.find("interface missing"), std::string::npos);
    HandshakesAt(clock_.Now() - 3s);
    EXPECT_EQ(Current(primary_.id).state, RelayState::kDegraded);
    // Reported in whole seconds: a handshake in the second of the change counts.
    clock_.Advance(1s);
    HandshakesAt(clock_.Now() - 1s);
    EXPECT_EQ(Current(primary_.id).state, RelayState::kActive);

    // No handshake for longer than handshake_stale_after.
    clock_.Advance(4min);
    Online({r1_, r2_, cgnat_});
    HandshakesAt(clock_.Now() - 4min);
    EXPECT_EQ(Current(primary_.id).state, RelayState::kDegraded);
}

TEST_F(RelayExchangeTest, ProbesRecordTheRoundTripAndSilenceDegradesAFreshTunnel) {
    clock_.Advance(5s);
    HandshakesAt(clock_.Now() - 1s);
    ASSERT_EQ(Current(primary_.id).state, RelayState::kActive);
    EXPECT_FALSE(Current(primary_.id).tunnel_rtt_us) << "not measured yet";
    const auto probed = [&](std::optional<std::uint32_t> rtt, std::uint32_t unanswered) {
        auto report =
            Report(Key('C'), primary_.interface_name, primary_.relay_public_key, clock_.Now() - 1s);
        report.interfaces[0].peers[0].rtt_us = rtt;
        report.interfaces[0].peers[0].unanswered_probe_rounds = unanswered;
        // The standby tunnel, healthy all along.
        report.interfaces.push_back(
            Report(Key('C'), standby_.interface_name, standby_.relay_public_key, clock_.Now() - 1s)
                .interfaces[0]);
        return report;
    };
    ASSERT_TRUE(service_.RecordReport(cgnat_, probed(1850, 0)));
    EXPECT_EQ(Current(primary_.id).tunnel_rtt_us, 1850u);
    EXPECT_EQ(Current(primary_.id).tunnel_rtt_at, clock_.Now());
    // Recorded at most once per traffic_interval.
    clock_.Advance(10s);
    ASSERT_TRUE(service_.RecordReport(cgnat_, probed(2500, 0)));
    EXPECT_EQ(Current(primary_.id).tunnel_rtt_us, 1850u);
    clock_.Advance(25s);
    ASSERT_TRUE(service_.RecordReport(cgnat_, probed(2500, 0)));
    EXPECT_EQ(Current(primary_.id).tunnel_rtt_us, 2500u);

    // Handshakes go on but echoes stopped: below the limit nothing happens, at it the tunnel
    // is degraded with the reason (the monitor then repairs it).
    clock_.Advance(10s);
    ASSERT_TRUE(service_.RecordReport(cgnat_, probed(2500, 2)));
    EXPECT_EQ(Current(primary_.id).state, RelayState::kActive);
    clock_.Advance(10s);
    ASSERT_TRUE(service_.RecordReport(cgnat_, probed(2500, 3)));
    EXPECT_EQ(Current(primary_.id).state, RelayState::kDegraded);
    EXPECT_NE(Current(primary_.id).state_reason.find("no echo over"), std::string::npos)
        << Current(primary_.id).state_reason;
    // A fresh handshake alone does not bring it back while echoes are missing; echoes do.
    clock_.Advance(2s);
    ASSERT_TRUE(service_.RecordReport(cgnat_, probed(2500, 4)));
    EXPECT_EQ(Current(primary_.id).state, RelayState::kDegraded);
    ASSERT_TRUE(service_.RecordReport(cgnat_, probed(2100, 0)));
    EXPECT_EQ(Current(primary_.id).state, RelayState::kActive);
    EXPECT_EQ(Current(standby_.id).state, RelayState::kActive) << "the other tunnel untouched";
}

TEST_F(RelayExchangeTest, OfflineRelayFailsOverToTheWarmStandbyAndTheMappingMoves) {
    clock_.Advance(5s);
    HandshakesAt(clock_.Now());
    const auto vm = AddVm(cgnat_);
    ASSERT_TRUE(service_.AllocatePortForVm(vm, 8080, domain::PortProtocol::kTcp));
    // Only the standby's relay and the CGNAT node keep heartbeating.
    clock_.Advance(10min);
    Online({standby_.relay_node_id, cgnat_});
    ASSERT_TRUE(nodes_.MarkStaleOffline(clock_.Now() - 1min, clock_.Now()));
    auto pass = service_.Reconcile();
    ASSERT_TRUE(pass) << pass.error().message;
    EXPECT_EQ(pass->failovers, 1u);
    EXPECT_EQ(service_.Stats()->failovers, 1u);
    EXPECT_EQ(Current(primary_.id).state, RelayState::kRemoved);
    const auto promoted = Current(standby_.id);
    EXPECT_EQ(promoted.role, RelayRole::kPrimary);
    auto moved = relays_.MappingsForVm(vm);
    ASSERT_TRUE(moved);
    ASSERT_EQ(moved->size(), 1u);
    EXPECT_EQ((*moved)[0].relay_node_id, standby_.relay_node_id);
    auto relay = service_.DesiredState(standby_.relay_node_id);
    ASSERT_TRUE(relay);
    EXPECT_EQ(relay->forwards.size(), 1u);
    auto gone = service_.DesiredState(primary_.relay_node_id);
    ASSERT_TRUE(gone);
    EXPECT_TRUE(gone->interfaces.empty()) << "the abandoned relay is told to remove its tunnel";
}

TEST_F(RelayExchangeTest, RelayCountersAddUpToBytesRelayedAcrossResets) {
    auto with_counters = [&](std::uint64_t rx, std::uint64_t tx) {
        auto report =
            Report(KeyOf(primary_.relay_node_id),
                   domain::RelayInterfaceName(primary_.relay_node_id), Key('C'), clock_.Now());
        report.interfaces[0].peers[0].rx_bytes = rx;
        report.interfaces[0].peers[0].tx_bytes = tx;
        return report;
    };
    ASSERT_TRUE(service_.RecordReport(primary_.relay_node_id, with_counters(1000, 500)));
    // Counters are read once per traffic_interval (30 s), not at every heartbeat.
    clock_.Advance(10s);
    ASSERT_TRUE(service_.RecordReport(primary_.relay_node_id, with_counters(2000, 600)));
    EXPECT_EQ(service_.Stats()->bytes_relayed, 1500u);
    clock_.Advance(20s);
    ASSERT_TRUE(service_.RecordReport(primary_.relay_node_id, with_counters(3000, 700)));
    EXPECT_EQ(service_.Stats()->bytes_relayed, 3700u);
    // The interface was recreated: its counters start again from zero.
    clock_.Advance(30s);
    ASSERT_TRUE(service_.RecordReport(primary_.relay_node_id, with_counters(100, 50)));
    EXPECT_EQ(service_.Stats()->bytes_relayed, 3850u);
    EXPECT_EQ(service_.Stats()->failovers, 0u);
}

TEST_F(RelayExchangeTest, PortAuditRecordsADifferenceAndRepairsOneThatStays) {
    const auto vm = AddVm(cgnat_);
    ASSERT_TRUE(service_.AllocatePortForVm(vm, 8080, domain::PortProtocol::kTcp));
    const auto relay = primary_.relay_node_id;
    auto reporting = [&](std::uint32_t forwards) {
        auto report =
            Report(KeyOf(relay), domain::RelayInterfaceName(relay), Key('C'), clock_.Now());
        report.interfaces[0].forwards = forwards;
        return service_.RecordReport(relay, report);
    };
    auto audit_events = [&] {
        std::size_t n = 0;
        for (const auto& e : *relays_.Events(primary_.id))
            n += e.reason.find("port audit") != std::string::npos ? 1 : 0;
        return n;
    };
    clock_.Advance(5min);  // the set-up's reports audited nodes without tunnels up yet
    ASSERT_TRUE(reporting(0));
    EXPECT_EQ(Current(primary_.id).state, RelayState::kActive);
    ASSERT_EQ(audit_events(), 1u);
    EXPECT_NE(relays_.Events(primary_.id)->back().reason.find("0 of 1 forwards installed"),
              std::string::npos)
        << relays_.Events(primary_.id)->back().reason;

    // Not audited again before port_audit_interval.
    clock_.Advance(1min);
    ASSERT_TRUE(reporting(0));
    EXPECT_EQ(audit_events(), 1u);
    EXPECT_EQ(Current(primary_.id).state, RelayState::kActive);

    // Still missing five minutes later: repaired.
    clock_.Advance(4min);
    ASSERT_TRUE(reporting(0));
    EXPECT_EQ(Current(primary_.id).state, RelayState::kRepairing);
    EXPECT_NE(Current(primary_.id).state_reason.find("two audits in a row"), std::string::npos);

    // Healed: the next audit records nothing.
    clock_.Advance(5min);
    ASSERT_TRUE(reporting(1));
    EXPECT_EQ(audit_events(), 2u);  // the first difference and the repair
}

TEST_F(RelayExchangeTest, PortsOfDeletedOrMovedVmsArePrunedAndVmsFollowTheirNodesRelay) {
    const auto kept = AddVm(cgnat_);
    const auto deleted = AddVm(cgnat_);
    const auto moved = AddVm(cgnat_);
    for (const auto& vm : {kept, deleted, moved})
        ASSERT_TRUE(service_.AllocatePortForVm(vm, 80, domain::PortProtocol::kTcp));
    relays_.DeleteVm(deleted);
    relays_.MoveVm(moved, r2_);
    auto pass = service_.Reconcile();
    ASSERT_TRUE(pass);
    EXPECT_EQ(pass->mappings_pruned, 2u);
    EXPECT_EQ(service_.MappingsForVm(kept)->size(), 1u);
    EXPECT_TRUE(service_.MappingsForVm(deleted)->empty());
    EXPECT_TRUE(service_.MappingsForVm(moved)->empty());
    EXPECT_EQ(*relays_.VmRelay(moved), "") << "a VM on a public node counts on no relay";
    EXPECT_EQ(*relays_.VmRelay(kept), primary_.relay_node_id);

    auto removed = service_.RemoveVmPort(kept, 80, domain::PortProtocol::kTcp);
    ASSERT_TRUE(removed);
    EXPECT_EQ(removed->vm_id, kept);
    auto again = service_.RemoveVmPort(kept, 80, domain::PortProtocol::kTcp);
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().code, ErrorCode::kNotFound);
}

TEST_F(RelayExchangeTest, KeyRotationStagesTheNextKeyAtEveryPeerBeforeTheSwitch) {
    EXPECT_EQ(service_.RequestKeyRotation(cgnat_, {kRelayWallet, false}, "").error().code,
              ErrorCode::kNotFound)
        << "only the node's operator or an admin";
    auto requested = service_.RequestKeyRotation(cgnat_, {kCgnatWallet, false}, "yearly");
    ASSERT_TRUE(requested) << requested.error().message;
    EXPECT_FALSE(requested->committing);
    EXPECT_EQ(service_.RequestKeyRotation(cgnat_, {"0xadmin", true}, "again")->reason, "yearly")
        << "one rotation at a time";
    EXPECT_EQ(service_.DesiredState(cgnat_)->key_rotation, "stage");
    EXPECT_TRUE(service_.DesiredState(r1_)->key_rotation.empty());

    // The agent stages a next key; both relays get it as a successor of the current one.
    auto staged = Report(Key('C'));
    staged.next_public_key = Key('N');
    EXPECT_TRUE(service_.NeedsRelayExchange(cgnat_, staged));
    ASSERT_TRUE(service_.RecordReport(cgnat_, staged));
    for (const auto& relay : {r1_, r2_}) {
        auto desired = service_.DesiredState(relay);
        ASSERT_TRUE(desired);
        const auto& peers = desired->interfaces.at(0).peers;
        ASSERT_EQ(peers.size(), 2u) << relay;
        EXPECT_EQ(peers[0].public_key, Key('C'));
        EXPECT_EQ(peers[1].public_key, Key('N'));
        EXPECT_EQ(peers[1].replaces, Key('C'));
        EXPECT_EQ(peers[1].allowed_ips, peers[0].allowed_ips);
    }

    // Each relay reports the successor; once both have it, the node is told to switch.
    auto relay_has_successor = [&](const std::string& relay) {
        auto report =
            Report(KeyOf(relay), domain::RelayInterfaceName(relay), Key('C'), clock_.Now());
        auto successor = report.interfaces[0].peers[0];
        successor.public_key = Key('N');
        successor.latest_handshake_unix = 0;
        report.interfaces[0].peers.push_back(successor);
        return report;
    };
    ASSERT_TRUE(service_.RecordReport(r1_, relay_has_successor(r1_)));
    EXPECT_EQ(service_.DesiredState(cgnat_)->key_rotation, "stage");
    ASSERT_TRUE(service_.RecordReport(r2_, relay_has_successor(r2_)));
    auto commit = service_.DesiredState(cgnat_);
    EXPECT_EQ(commit->key_rotation, "commit");
    EXPECT_EQ(commit->next_public_key, Key('N'));
    EXPECT_TRUE(service_.KeyRotationOf(cgnat_, {kCgnatWallet, false}).value()->committing);

    // The node reports its new key: the tunnels carry it and the successor is just the peer.
    ASSERT_TRUE(service_.RecordReport(cgnat_, Report(Key('N'))));
    EXPECT_FALSE(service_.KeyRotationOf(cgnat_, {kCgnatWallet, false}).value());
    EXPECT_EQ(Current(primary_.id).cgnat_public_key, Key('N'));
    const auto after = service_.DesiredState(r1_);
    ASSERT_EQ(after->interfaces.at(0).peers.size(), 1u);
    EXPECT_EQ(after->interfaces[0].peers[0].public_key, Key('N'));
    EXPECT_TRUE(after->interfaces[0].peers[0].replaces.empty());
    EXPECT_TRUE(service_.DesiredState(cgnat_)->key_rotation.empty());
}

TEST_F(RelayExchangeTest, ARelayWithoutTunnelsCommitsAsSoonAsItsNextKeyIsKnown) {
    const auto lone = PublicRelay("198.51.100.9");
    ASSERT_TRUE(service_.Reconcile());
    ASSERT_TRUE(service_.RequestKeyRotation(lone, {"0xadmin", true}, "compromised host"));
    auto report = Report(Key('L'));
    report.next_public_key = Key('M');
    ASSERT_TRUE(service_.RecordReport(lone, report));
    EXPECT_EQ(service_.DesiredState(lone)->key_rotation, "commit");
    ASSERT_TRUE(service_.RecordReport(lone, Report(Key('M'))));
    EXPECT_EQ(relays_.Offer(lone)->wireguard_public_key, Key('M'));
    EXPECT_FALSE(service_.KeyRotationOf(lone, {"0xadmin", true}).value());
    EXPECT_EQ(service_.RequestKeyRotation(common::NewUuid(), {"0xadmin", true}, "").error().code,
              ErrorCode::kNotFound);
}

TEST_F(RelayExchangeTest, EachRelayDialsTheNatMappingOfItsOwnTunnel) {
    // Primary and standby tunnels share the CGNAT node's key but leave the carrier NAT through
    // different public ports; each relay must be given back the one it saw.
    auto seen_from = [&](const std::string& relay, const std::string& endpoint) {
        auto report =
            Report(KeyOf(relay), domain::RelayInterfaceName(relay), Key('C'), clock_.Now());
        report.interfaces[0].peers[0].endpoint = endpoint;
        return report;
    };
    ASSERT_TRUE(service_.RecordReport(r1_, seen_from(r1_, "198.51.100.2:46177")));
    ASSERT_TRUE(service_.RecordReport(r2_, seen_from(r2_, "198.51.100.2:34634")));
    EXPECT_EQ(service_.DesiredState(r1_)->interfaces.at(0).peers.at(0).endpoint,
              "198.51.100.2:46177");
    EXPECT_EQ(service_.DesiredState(r2_)->interfaces.at(0).peers.at(0).endpoint,
              "198.51.100.2:34634");
}

}  // namespace
}  // namespace decloud::orchestrator::app
