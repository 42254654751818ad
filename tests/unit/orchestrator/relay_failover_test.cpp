#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <string>
#include <vector>

#include "orchestrator/domain/relay_failover.hpp"

namespace decloud::orchestrator::domain {
namespace {

using namespace std::chrono_literals;

const common::TimePoint kT0{std::chrono::seconds{1'800'000'000}};

RelayCandidate Relay(const std::string& id, const std::string& address,
                     const std::string& region = "eu-west", std::uint32_t tunnels = 0) {
    RelayCandidate c;
    c.node_id = id;
    c.enabled = c.online = c.healthy = true;
    c.public_address = address;
    c.wireguard_port = 51820;
    c.region = region;
    c.uptime_ratio = 0.99;
    c.tunnels = tunnels;
    c.bandwidth_mbps = 1000;
    return c;
}

AssignmentHealth Assignment(const std::string& id, const std::string& relay, RelayRole role,
                            RelayState state, common::TimePoint since = kT0,
                            std::uint32_t attempts = 0, bool relay_online = true) {
    AssignmentHealth h;
    h.assignment.id = id;
    h.assignment.cgnat_node_id = "cgnat";
    h.assignment.relay_node_id = relay;
    h.assignment.role = role;
    h.assignment.state = state;
    h.assignment.state_changed_at = since;
    h.assignment.repair_attempts = attempts;
    h.relay_online = relay_online;
    return h;
}

RelayRequest Request() {
    RelayRequest r;
    r.cgnat_node_id = "cgnat";
    r.region = "eu-west";
    return r;
}

bool Has(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

class RelayFailoverTest : public ::testing::Test {
  protected:
    RelayPolicy policy_;  // 3 attempts, 3 min provisioning, 1 min degraded grace, 2 min a repair
    std::vector<RelayCandidate> relays_ = {
        Relay("r1", "192.0.2.1"), Relay("r2", "192.0.2.2", "eu-west", 3),
        Relay("r3", "192.0.2.3", "us-east", 0),
        Relay("r1-twin", "192.0.2.1"),  // same machine as r1
    };
};

TEST_F(RelayFailoverTest, HealthyOrRemovedNeedsNothing) {
    const auto active = Assignment("a", "r1", RelayRole::kPrimary, RelayState::kActive);
    EXPECT_EQ(DecideRecovery(active, std::nullopt, Request(), relays_, policy_, kT0 + 1h).action,
              RecoveryAction::kNone);
    auto removed = Assignment("a", "r1", RelayRole::kPrimary, RelayState::kRemoved);
    removed.relay_online = false;
    EXPECT_EQ(DecideRecovery(removed, std::nullopt, Request(), relays_, policy_, kT0 + 1h).action,
              RecoveryAction::kNone);
}

TEST_F(RelayFailoverTest, GivesEachStepItsTimeThenRepairs) {
    const auto deg = Assignment("a", "r1", RelayRole::kPrimary, RelayState::kDegraded, kT0);
    EXPECT_EQ(DecideRecovery(deg, std::nullopt, Request(), relays_, policy_, kT0 + 59s).action,
              RecoveryAction::kNone);
    const auto repair = DecideRecovery(deg, std::nullopt, Request(), relays_, policy_, kT0 + 60s);
    EXPECT_EQ(repair.action, RecoveryAction::kRepair);
    EXPECT_EQ(repair.reason, "degraded for 60 s; repair attempt 1 of 3");

    const auto prov = Assignment("a", "r1", RelayRole::kStandby, RelayState::kProvisioning, kT0);
    EXPECT_EQ(DecideRecovery(prov, std::nullopt, Request(), relays_, policy_, kT0 + 179s).action,
              RecoveryAction::kNone);
    const auto stuck = DecideRecovery(prov, std::nullopt, Request(), relays_, policy_, kT0 + 3min);
    EXPECT_EQ(stuck.action, RecoveryAction::kRepair);
    EXPECT_TRUE(Has(stuck.reason, "still provisioning after 180 s")) << stuck.reason;

    const auto rep = Assignment("a", "r1", RelayRole::kPrimary, RelayState::kRepairing, kT0, 1);
    EXPECT_EQ(DecideRecovery(rep, std::nullopt, Request(), relays_, policy_, kT0 + 119s).action,
              RecoveryAction::kNone);
    const auto again = DecideRecovery(rep, std::nullopt, Request(), relays_, policy_, kT0 + 2min);
    EXPECT_EQ(again.action, RecoveryAction::kRepair);
    EXPECT_EQ(again.reason,
              "repair attempt 1 did not bring the tunnel up within 120 s; repair attempt 2 of 3");
}

TEST_F(RelayFailoverTest, NFailedRepairsFailOverToTheActiveStandby) {
    const auto primary = Assignment("p", "r1", RelayRole::kPrimary, RelayState::kRepairing, kT0, 3);
    const auto standby = Assignment("s", "r2", RelayRole::kStandby, RelayState::kActive);
    EXPECT_EQ(DecideRecovery(primary, standby, Request(), relays_, policy_, kT0 + 1min).action,
              RecoveryAction::kNone);  // the third attempt still has time
    const auto d = DecideRecovery(primary, standby, Request(), relays_, policy_, kT0 + 2min);
    EXPECT_EQ(d.action, RecoveryAction::kPromoteStandby);
    EXPECT_EQ(d.promote_assignment_id, "s");
    EXPECT_EQ(d.reason,
              "primary relay r1 lost (repair failed 3 times); standby relay r2 takes over");
}

TEST_F(RelayFailoverTest, OfflineRelayFailsOverAtOnceWhateverTheState) {
    for (const RelayState state : {RelayState::kActive, RelayState::kProvisioning,
                                   RelayState::kDegraded, RelayState::kRepairing}) {
        const auto primary = Assignment("p", "r1", RelayRole::kPrimary, state, kT0 + 1h, 0, false);
        const auto d = DecideRecovery(primary, std::nullopt, Request(), relays_, policy_, kT0 + 1h);
        EXPECT_EQ(d.action, RecoveryAction::kReplacePrimary) << ToString(state);
        ASSERT_TRUE(d.replacement);
        // Not r1, nor r1-twin on the same address; r3 has load 0 (r2 has 3).
        EXPECT_EQ(d.replacement->relay.node_id, "r3");
        EXPECT_TRUE(Has(d.reason, "relay node r1 is offline")) << d.reason;
        EXPECT_TRUE(Has(d.reason, "failing over to relay r3")) << d.reason;
    }
}

TEST_F(RelayFailoverTest, ANonActiveStandbyIsNotPromotedNorReused) {
    const auto primary =
        Assignment("p", "r1", RelayRole::kPrimary, RelayState::kActive, kT0, 0, false);
    for (const auto& standby :
         {Assignment("s", "r3", RelayRole::kStandby, RelayState::kProvisioning),
          Assignment("s", "r3", RelayRole::kStandby, RelayState::kActive, kT0, 0, false)}) {
        const auto d = DecideRecovery(primary, standby, Request(), relays_, policy_, kT0);
        EXPECT_EQ(d.action, RecoveryAction::kReplacePrimary);
        ASSERT_TRUE(d.replacement);
        EXPECT_EQ(d.replacement->relay.node_id, "r2");  // r3 is the standby's relay
    }
}

TEST_F(RelayFailoverTest, NothingToFailOverToMeansWait) {
    const auto primary =
        Assignment("p", "r1", RelayRole::kPrimary, RelayState::kActive, kT0, 0, false);
    const std::vector<RelayCandidate> only_r1 = {relays_[0], relays_[3]};
    const auto d = DecideRecovery(primary, std::nullopt, Request(), only_r1, policy_, kT0);
    EXPECT_EQ(d.action, RecoveryAction::kWait);
    EXPECT_FALSE(d.replacement);
    EXPECT_EQ(d.reason,
              "primary relay r1 lost (relay node r1 is offline), nothing to fail over to: no relay "
              "for node cgnat: 2 relays are ruled out");
}

TEST_F(RelayFailoverTest, ALostStandbyIsReplacedAwayFromThePrimary) {
    const auto primary = Assignment("p", "r2", RelayRole::kPrimary, RelayState::kActive);
    const auto standby = Assignment("s", "r1", RelayRole::kStandby, RelayState::kRepairing, kT0, 3);
    const auto d = DecideRecovery(standby, primary, Request(), relays_, policy_, kT0 + 2min);
    EXPECT_EQ(d.action, RecoveryAction::kReplaceStandby);
    ASSERT_TRUE(d.replacement);
    EXPECT_EQ(d.replacement->relay.node_id, "r3");
    EXPECT_TRUE(Has(d.reason, "standby relay r1 lost (repair failed 3 times); replaced by"))
        << d.reason;

    const std::vector<RelayCandidate> no_spare = {relays_[0], relays_[1]};
    const auto none = DecideRecovery(standby, primary, Request(), no_spare, policy_, kT0 + 2min);
    EXPECT_EQ(none.action, RecoveryAction::kReplaceStandby);
    EXPECT_FALSE(none.replacement);
    EXPECT_TRUE(Has(none.reason, "no replacement")) << none.reason;
}

PortMapping Mapping(const std::string& vm, std::uint16_t public_port, std::uint16_t vm_port) {
    PortMapping m;
    m.id = "m-" + vm + "-" + std::to_string(vm_port);
    m.relay_node_id = "r1";
    m.assignment_id = "p";
    m.public_port = public_port;
    m.protocol = PortProtocol::kTcp;
    m.vm_id = vm;
    m.vm_port = vm_port;
    m.public_url = PublicUrl("192.0.2.1", public_port);
    return m;
}

TEST(RelayMappingMovesTest, PortsAreKeptWhereFreeAndAllocatedOtherwise) {
    const PortRange range{30000, 30009};
    const std::vector<PortMapping> mappings = {Mapping("vm1", 30000, 22), Mapping("vm1", 30001, 80),
                                               Mapping("vm2", 30005, 8080),
                                               Mapping("vm3", 20000, 443)};  // outside the range
    const std::vector<std::uint16_t> taken = {30001, 30002};                 // on the new relay
    const auto moves = PlanMappingMoves(mappings, "r2", "s", "192.0.2.2", range, taken, 30002);
    ASSERT_TRUE(moves) << moves.error().message;
    ASSERT_EQ(moves->size(), 4u);
    std::set<std::uint16_t> ports;
    for (std::size_t i = 0; i < moves->size(); ++i) {
        const auto& [from, to] = (*moves)[i];
        EXPECT_EQ(from.id, mappings[i].id);
        EXPECT_TRUE(to.id.empty());
        EXPECT_EQ(to.relay_node_id, "r2");
        EXPECT_EQ(to.assignment_id, "s");
        EXPECT_EQ(to.vm_id, from.vm_id);
        EXPECT_EQ(to.vm_port, from.vm_port);
        EXPECT_EQ(to.protocol, from.protocol);
        EXPECT_EQ(to.public_url, "192.0.2.2:" + std::to_string(to.public_port));
        EXPECT_TRUE(range.Contains(to.public_port));
        EXPECT_FALSE(to.public_port == 30001 || to.public_port == 30002);
        EXPECT_TRUE(ports.insert(to.public_port).second);
    }
    EXPECT_EQ((*moves)[0].to.public_port, 30000);  // kept
    EXPECT_EQ((*moves)[2].to.public_port, 30005);  // kept
    EXPECT_EQ((*moves)[1].to.public_port, 30003);  // taken there: the next free from the hint
    EXPECT_EQ((*moves)[3].to.public_port, 30004);
}

TEST(RelayMappingMovesTest, AllOrNothingWhenTheNewRelayIsTooFull) {
    const PortRange range{30000, 30002};
    const std::vector<PortMapping> mappings = {Mapping("vm1", 30000, 22), Mapping("vm1", 30001, 80),
                                               Mapping("vm2", 30002, 8080)};
    const std::vector<std::uint16_t> taken = {30000, 30001};
    const auto moves = PlanMappingMoves(mappings, "r2", "s", "192.0.2.2", range, taken, 0);
    ASSERT_FALSE(moves);
    EXPECT_EQ(moves.error().code, common::ErrorCode::kUnprocessable);
    EXPECT_EQ(moves.error().message,
              "cannot move 3 port mappings to relay r2: needs 2 public ports of 30000-30002, only "
              "0 free");
    EXPECT_TRUE(PlanMappingMoves({}, "r2", "s", "192.0.2.2", range, taken, 0)->empty());
}

}  // namespace
}  // namespace decloud::orchestrator::domain
