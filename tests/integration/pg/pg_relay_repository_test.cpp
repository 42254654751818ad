// PgRelayRepository and migration 0006 against a real throwaway PostgreSQL: relay offers and
// candidates, tunnel and port allocation (also from many threads on two connection pools, as two
// orchestrator replicas would), state history, failover with mapping moves, release.

#include <gtest/gtest.h>

#include <pqxx/pqxx>

#include <algorithm>
#include <atomic>
#include <latch>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "decloud/common/ids.hpp"
#include "decloud/testing/temp_pg_cluster.hpp"
#include "orchestrator/adapters/pg/migrations.hpp"
#include "orchestrator/adapters/pg/pg_node_repository.hpp"
#include "orchestrator/adapters/pg/pg_relay_repository.hpp"

namespace decloud::orchestrator::adapters::pg {
namespace {

using namespace std::chrono;
using domain::PortProtocol;
using domain::RelayRole;
using domain::RelayState;

class PgRelayRepositoryTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() { cluster_ = new testing::TempPgCluster(); }
    static void TearDownTestSuite() {
        delete cluster_;
        cluster_ = nullptr;
    }

    void SetUp() override {
        const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
        url_ = cluster_->CreateDatabase(std::string("relay_") + info->name());
        pool_ = std::make_unique<PgPool>(url_, 8);
        ASSERT_TRUE(RunMigrations(*pool_));
        nodes_ = std::make_unique<PgNodeRepository>(*pool_);
        repo_ = std::make_unique<PgRelayRepository>(*pool_, options_);
    }

    // A registered node, online unless said otherwise. Public nodes are relays' material.
    std::string Node(const std::string& key, const std::string& ip, bool behind_cgnat,
                     const std::string& region = "eu-west", bool online = true) {
        domain::NodeRegistration r;
        r.public_key = key;
        r.operator_wallet = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";
        r.reported_ip = ip;
        r.observed_ip = ip;
        r.region = region;
        r.resources.cpu_cores = 4;
        r.resources.memory_bytes = 1ull << 34;
        r.compute = {400, 16000.5, 8};
        r.cgnat = {behind_cgnat, behind_cgnat, behind_cgnat ? "100.64.0.0/10" : "public"};
        r.credential_hash = "aa";
        auto reg = nodes_->Register(r, t0_);
        EXPECT_TRUE(reg) << reg.error().message;
        if (!reg) return {};
        if (online) {
            domain::BufferedHeartbeat hb;
            hb.node_id = reg->node.id;
            hb.first_at = hb.last_at = t0_;
            hb.count = 1;
            EXPECT_TRUE(nodes_->ApplyHeartbeats(std::vector{hb}, seconds{15}, t0_));
        }
        return reg->node.id;
    }

    std::string Relay(const std::string& key, const std::string& ip,
                      const std::string& region = "eu-west", std::uint32_t max_tunnels = 0) {
        const auto id = Node(key, ip, false, region);
        ports::RelayOffer offer;
        offer.node_id = id;
        offer.wireguard_public_key = "wg-" + key;
        offer.wireguard_port = 51820;
        offer.max_tunnels = max_tunnels;
        offer.bandwidth_mbps = 1000;
        EXPECT_TRUE(repo_->UpsertOffer(offer, t0_));
        return id;
    }

    std::string Cgnat(const std::string& key, const std::string& region = "eu-west") {
        static int n = 0;
        return Node(key, "100.64.0." + std::to_string(++n % 250 + 1), true, region);
    }

    ports::NewAssignment New(const std::string& cgnat, const std::string& relay,
                             RelayRole role = RelayRole::kPrimary) {
        ports::NewAssignment a;
        a.cgnat_node_id = cgnat;
        a.role = role;
        a.relay_node_id = relay;
        a.selection_reason = "chosen by the test";
        a.cgnat_public_key = "wg-cgnat-" + cgnat.substr(0, 8);
        return a;
    }

    domain::RelayAssignment Assign(const std::string& cgnat, const std::string& relay,
                                   RelayRole role = RelayRole::kPrimary) {
        auto a = repo_->Assign(New(cgnat, relay, role), t0_);
        EXPECT_TRUE(a) << a.error().message;
        return a ? *a : domain::RelayAssignment{};
    }

    std::string Vm(const std::string& node_id, const std::string& state = "running") {
        const auto id = common::NewUuid();
        pqxx::connection conn(url_);
        pqxx::work tx(conn);
        tx.exec_params0(
            "INSERT INTO users (wallet_address, created_at, last_sign_in_at) "
            "VALUES ('0xowner', to_timestamp($1), to_timestamp($1)) ON CONFLICT DO NOTHING",
            Epoch());
        tx.exec_params0(
            "INSERT INTO vms (id, owner_wallet, name, node_id, state, cores, memory_mib, "
            "disk_gib, tier, image, created_at, updated_at) VALUES ($1::uuid, '0xowner', 'vm', "
            "$2::uuid, $3, 1, 512, 10, 'standard', 'debian-12', to_timestamp($4), "
            "to_timestamp($4))",
            id, node_id, state, Epoch());
        tx.commit();
        return id;
    }

    long long Epoch() const { return duration_cast<seconds>(t0_.time_since_epoch()).count(); }

    long long Count(const std::string& sql) {
        pqxx::connection conn(url_);
        pqxx::work tx(conn);
        return tx.exec1(sql)[0].as<long long>();
    }

    std::string VmRelay(const std::string& vm_id) {
        pqxx::connection conn(url_);
        pqxx::work tx(conn);
        return tx
            .exec_params1("SELECT coalesce(relay_node_id::text, '') FROM vms WHERE id = $1::uuid",
                          vm_id)[0]
            .as<std::string>();
    }

    void UseOptions(PgRelayRepositoryOptions options) {
        options_ = std::move(options);
        repo_ = std::make_unique<PgRelayRepository>(*pool_, options_);
    }

    static testing::TempPgCluster* cluster_;
    std::string url_;
    PgRelayRepositoryOptions options_;
    std::unique_ptr<PgPool> pool_;
    std::unique_ptr<PgNodeRepository> nodes_;
    std::unique_ptr<PgRelayRepository> repo_;
    common::TimePoint t0_{seconds{1'800'000'000}};
};

testing::TempPgCluster* PgRelayRepositoryTest::cluster_ = nullptr;

TEST_F(PgRelayRepositoryTest, TheMonitorRunsOnOneReplicaAtATime) {
    // A second replica: its own pool, the same database.
    PgPool other_pool(url_, 2);
    PgRelayRepository other(other_pool, options_);
    bool other_ran = false;
    auto held = repo_->WithMonitorLock([&] {
        auto tried = other.WithMonitorLock([&] { other_ran = true; });
        ASSERT_TRUE(tried) << tried.error().message;
        EXPECT_FALSE(*tried) << "the lock is held by the first replica";
    });
    ASSERT_TRUE(held) << held.error().message;
    EXPECT_TRUE(*held);
    EXPECT_FALSE(other_ran);
    // Released when the body returns, also when it throws.
    EXPECT_THROW((void)repo_->WithMonitorLock([] { throw std::runtime_error("boom"); }),
                 std::runtime_error);
    auto later = other.WithMonitorLock([&] { other_ran = true; });
    ASSERT_TRUE(later) << later.error().message;
    EXPECT_TRUE(*later);
    EXPECT_TRUE(other_ran);
}

TEST_F(PgRelayRepositoryTest, OffersWithoutAKeyAreListedUntilTheKeyArrives) {
    const auto keyed = Relay("k1", "198.51.100.21");
    ports::RelayOffer keyless;
    keyless.node_id = Node("k2", "198.51.100.22", false);
    keyless.wireguard_port = 51820;
    ASSERT_TRUE(repo_->UpsertOffer(keyless, t0_));
    EXPECT_EQ(repo_->OffersWithoutKey().value(), std::vector<std::string>{keyless.node_id});
    keyless.wireguard_public_key = "wg-k2";
    ASSERT_TRUE(repo_->UpsertOffer(keyless, t0_));
    EXPECT_TRUE(repo_->OffersWithoutKey().value().empty()) << "and " << keyed << " has one";
}

TEST_F(PgRelayRepositoryTest, OffersBecomeCandidatesThatSelectionRanks) {
    ports::RelayOffer unknown;
    unknown.node_id = "00000000-0000-4000-8000-000000000000";
    EXPECT_EQ(repo_->UpsertOffer(unknown, t0_).error().code, common::ErrorCode::kNotFound);
    unknown.node_id = "not-a-uuid";
    EXPECT_EQ(repo_->UpsertOffer(unknown, t0_).error().code, common::ErrorCode::kNotFound);

    const auto near = Relay("near", "203.0.113.10", "eu-west");
    const auto far = Relay("far", "203.0.113.20", "us-east");
    const auto offline = Node("offline", "203.0.113.30", false, "eu-west", false);
    ports::RelayOffer off;
    off.node_id = offline;
    off.wireguard_port = 51821;
    off.endpoint_host = "relay.example.org";  // named explicitly: wins over the node's address
    off.bandwidth_mbps = 500;
    ASSERT_TRUE(repo_->UpsertOffer(off, t0_));
    ASSERT_TRUE(repo_->SetRelayHealth(far, {false, "wireguard-go exited", 40}, t0_));
    EXPECT_EQ(repo_->SetRelayHealth(Cgnat("c0"), {}, t0_).error().code,
              common::ErrorCode::kNotFound);

    auto candidates = repo_->Candidates(t0_ - hours{24 * 30}, t0_ + hours{1});
    ASSERT_TRUE(candidates) << candidates.error().message;
    ASSERT_EQ(candidates->size(), 3u);
    std::map<std::string, domain::RelayCandidate> by_id;
    for (const auto& c : *candidates) by_id[c.node_id] = c;
    EXPECT_TRUE(by_id[near].online);
    EXPECT_TRUE(by_id[near].healthy);
    EXPECT_TRUE(by_id[near].enabled);
    EXPECT_FALSE(by_id[near].requires_relay);
    EXPECT_EQ(by_id[near].public_address, "203.0.113.10");
    EXPECT_EQ(by_id[near].wireguard_public_key, "wg-near");
    EXPECT_EQ(by_id[near].wireguard_port, 51820);
    EXPECT_EQ(by_id[near].region, "eu-west");
    EXPECT_EQ(by_id[near].bandwidth_mbps, 1000u);
    EXPECT_NEAR(by_id[near].uptime_ratio, 1.0, 1e-9);  // online since registration
    EXPECT_FALSE(by_id[far].healthy);
    EXPECT_EQ(by_id[far].health_reason, "wireguard-go exited");
    EXPECT_EQ(by_id[far].bandwidth_used_mbps, 40u);
    EXPECT_FALSE(by_id[offline].online);
    EXPECT_EQ(by_id[offline].public_address, "relay.example.org");

    domain::RelayRequest request;
    request.cgnat_node_id = Cgnat("c1");
    request.region = "eu-west";
    const auto selection = domain::SelectRelays(request, *candidates, {}, true);
    ASSERT_TRUE(selection.primary);
    EXPECT_EQ(selection.primary->relay.node_id, near);
    EXPECT_FALSE(selection.standby);
    EXPECT_EQ(selection.ExcludedCount(domain::RelayExclusion::kOffline), 1u);
    EXPECT_EQ(selection.ExcludedCount(domain::RelayExclusion::kUnhealthy), 1u);

    // Tunnels on a relay count towards its load.
    const auto a = Assign(request.cgnat_node_id, near);
    candidates = repo_->Candidates(t0_ - hours{1}, t0_ + hours{1});
    for (const auto& c : *candidates) EXPECT_EQ(c.tunnels, c.node_id == near ? 1u : 0u);
}

TEST_F(PgRelayRepositoryTest, AssignAllocatesATunnelAndRecordsWhy) {
    const auto r1 = Relay("r1", "203.0.113.1");
    const auto r2 = Relay("r2", "203.0.113.2");
    const auto c1 = Cgnat("c1");
    ASSERT_TRUE(repo_->MarkAwaiting(c1, "no relay for node: none offers to relay", t0_));

    const auto p = Assign(c1, r1);
    EXPECT_TRUE(common::IsUuid(p.id));
    EXPECT_EQ(p.cgnat_node_id, c1);
    EXPECT_EQ(p.relay_node_id, r1);
    EXPECT_EQ(p.role, RelayRole::kPrimary);
    EXPECT_EQ(p.state, RelayState::kProvisioning);
    EXPECT_EQ(p.tunnel, (domain::TunnelAddresses{0, "10.200.0.0/30", "10.200.0.1", "10.200.0.2"}));
    EXPECT_EQ(p.interface_name, "dcc000000000000");
    EXPECT_EQ(p.relay_public_key, "wg-r1");
    EXPECT_EQ(p.cgnat_public_key, "wg-cgnat-" + c1.substr(0, 8));
    EXPECT_EQ(p.relay_endpoint, "203.0.113.1:51820");
    EXPECT_EQ(p.relay_listen_port, 51820);
    EXPECT_EQ(p.selection_reason, "chosen by the test");
    EXPECT_EQ(p.state_reason, "assigned as primary: chosen by the test");
    EXPECT_EQ(p.created_at, t0_);
    EXPECT_TRUE(repo_->Awaiting()->empty()) << "a primary ends the wait";

    const auto s = Assign(c1, r2, RelayRole::kStandby);
    EXPECT_EQ(s.tunnel.block, 1u);
    EXPECT_EQ(s.tunnel.cgnat_address, "10.200.0.6");
    EXPECT_EQ(s.interface_name, "dcc000000000001");

    // At most one live assignment per role, never two on one relay.
    auto dup = repo_->Assign(New(c1, r2), t0_);
    ASSERT_FALSE(dup);
    EXPECT_EQ(dup.error().code, common::ErrorCode::kConflict);
    EXPECT_NE(dup.error().message.find("already has a live primary"), std::string::npos);
    const auto c2 = Cgnat("c2");
    ASSERT_TRUE(repo_->Assign(New(c2, r1), t0_));
    auto same_relay = repo_->Assign(New(c2, r1, RelayRole::kStandby), t0_);
    ASSERT_FALSE(same_relay);
    EXPECT_NE(same_relay.error().message.find("already has a tunnel to relay"), std::string::npos);
    EXPECT_EQ(repo_->Assign(New(c2, c2), t0_).error().code, common::ErrorCode::kInvalidArgument);
    EXPECT_EQ(repo_->Assign(New(Cgnat("c3"), Cgnat("not-a-relay")), t0_).error().code,
              common::ErrorCode::kNotFound);
    EXPECT_EQ(repo_->Assign(New("00000000-0000-4000-8000-000000000000", r1), t0_).error().code,
              common::ErrorCode::kNotFound);

    const auto live = repo_->ForCgnatNode(c1);
    ASSERT_EQ(live->size(), 2u);
    EXPECT_EQ((*live)[0].role, RelayRole::kPrimary);
    EXPECT_EQ((*live)[1].role, RelayRole::kStandby);
    EXPECT_EQ(repo_->ForRelayNode(r1)->size(), 2u);
    EXPECT_EQ(repo_->Live()->size(), 3u);
    EXPECT_EQ(Count("SELECT count(*) FROM relay_assignments"), 3);

    const auto events = repo_->Events(p.id);
    ASSERT_EQ(events->size(), 1u);
    EXPECT_EQ((*events)[0],
              (domain::RelayEvent{t0_, std::nullopt, RelayState::kProvisioning, RelayRole::kPrimary,
                                  "assigned as primary: chosen by the test"}));
}

TEST_F(PgRelayRepositoryTest, RelayCapacityAndOfferAreRecheckedUnderTheLock) {
    const auto small = Relay("small", "203.0.113.5", "eu-west", 2);
    ASSERT_TRUE(repo_->Assign(New(Cgnat("a"), small), t0_));
    ASSERT_TRUE(repo_->Assign(New(Cgnat("b"), small), t0_));
    auto full = repo_->Assign(New(Cgnat("c"), small), t0_);
    ASSERT_FALSE(full);
    EXPECT_EQ(full.error().code, common::ErrorCode::kConflict);
    EXPECT_EQ(full.error().message, "relay " + small + " is full: 2 of 2 tunnels");

    UseOptions({.tunnel_pool = domain::TunnelAddressPool::Default(),
                .public_ports = {30000, 39999},
                .max_tunnels_per_relay = 1});
    const auto dflt = Relay("default-max", "203.0.113.6");
    ASSERT_TRUE(repo_->Assign(New(Cgnat("d"), dflt), t0_));
    EXPECT_EQ(repo_->Assign(New(Cgnat("e"), dflt), t0_).error().code, common::ErrorCode::kConflict);

    ports::RelayOffer withdrawn;
    withdrawn.node_id = Relay("withdrawn", "203.0.113.7");
    withdrawn.enabled = false;
    ASSERT_TRUE(repo_->UpsertOffer(withdrawn, t0_));
    auto refused = repo_->Assign(New(Cgnat("f"), withdrawn.node_id), t0_);
    ASSERT_FALSE(refused);
    EXPECT_NE(refused.error().message.find("no longer offers to relay"), std::string::npos);
    EXPECT_EQ(Count("SELECT count(*) FROM relay_assignments"), 3);
}

TEST_F(PgRelayRepositoryTest, StateChangesAreCheckedAndKeptWithTheirReasons) {
    const auto relay = Relay("r", "203.0.113.1");
    const auto c = Cgnat("c");
    const auto a = Assign(c, relay);
    const auto t = [&](RelayState to, const std::string& why, seconds at,
                       std::vector<RelayState> expected = {}) {
        return repo_->Transition(a.id, expected, to, why, t0_ + at);
    };
    auto up = t(RelayState::kActive, "handshake on both ends", seconds{20});
    ASSERT_TRUE(up) << up.error().message;
    EXPECT_EQ(up->state, RelayState::kActive);
    EXPECT_EQ(up->state_changed_at, t0_ + seconds{20});
    ASSERT_TRUE(t(RelayState::kDegraded, "no handshake for 180 s", seconds{400}));
    ASSERT_TRUE(t(RelayState::kRepairing, "attempt 1", seconds{500}));
    auto second = t(RelayState::kRepairing, "attempt 2", seconds{640});
    EXPECT_EQ(second->repair_attempts, 2u);

    // Refused: not allowed, or not in the expected state; nothing is written.
    auto illegal = t(RelayState::kDegraded, "?", seconds{700});
    ASSERT_FALSE(illegal);
    EXPECT_EQ(illegal.error().code, common::ErrorCode::kConflict);
    auto stale = t(RelayState::kActive, "repaired", seconds{700}, {RelayState::kDegraded});
    ASSERT_FALSE(stale);
    EXPECT_NE(stale.error().message.find("is repairing now"), std::string::npos);
    EXPECT_EQ(
        repo_->Transition("00000000-0000-4000-8000-000000000000", {}, RelayState::kActive, "x", t0_)
            .error()
            .code,
        common::ErrorCode::kNotFound);

    auto fixed = t(RelayState::kActive, "repaired", seconds{700}, {RelayState::kRepairing});
    EXPECT_EQ(fixed->repair_attempts, 0u);

    // A key rotation of the CGNAT end is recorded, a repeat of the same key is not.
    ASSERT_TRUE(repo_->SetCgnatKey(a.id, "wg-cgnat-rotated", t0_ + seconds{800}));
    ASSERT_TRUE(repo_->SetCgnatKey(a.id, "wg-cgnat-rotated", t0_ + seconds{801}));
    EXPECT_EQ(repo_->Get(a.id)->cgnat_public_key, "wg-cgnat-rotated");
    // An observation leaves the state as it is.
    ASSERT_TRUE(repo_->RecordEvent(a.id, "port audit: 0 of 1 forwards", t0_ + seconds{900}));
    EXPECT_EQ(repo_->Get(a.id)->state, RelayState::kActive);
    EXPECT_EQ(repo_->Get(a.id)->state_changed_at, t0_ + seconds{700});
    EXPECT_EQ(repo_->RecordEvent("00000000-0000-4000-8000-000000000000", "x", t0_).error().code,
              common::ErrorCode::kNotFound);

    const auto events = repo_->Events(a.id);
    ASSERT_TRUE(events);
    std::vector<std::string> summary;
    for (const auto& e : *events)
        summary.push_back((e.from ? std::string(domain::ToString(*e.from)) : "-") + ">" +
                          std::string(domain::ToString(e.to)) + " " + e.reason);
    EXPECT_EQ(summary, (std::vector<std::string>{
                           "->provisioning assigned as primary: chosen by the test",
                           "provisioning>active handshake on both ends",
                           "active>degraded no handshake for 180 s",
                           "degraded>repairing attempt 1",
                           "repairing>repairing attempt 2",
                           "repairing>active repaired",
                           "active>active the CGNAT node rotated its WireGuard key to "
                           "wg-cgnat-rotated",
                           "active>active port audit: 0 of 1 forwards",
                       }));
    EXPECT_EQ(events->back().at, t0_ + seconds{900});
}

TEST_F(PgRelayRepositoryTest, RelayKeyRotationReachesItsLiveAssignments) {
    const auto relay = Relay("r", "203.0.113.1");
    const auto a = Assign(Cgnat("c1"), relay);
    const auto b = Assign(Cgnat("c2"), relay);
    ASSERT_TRUE(repo_->Transition(b.id, {}, RelayState::kRemoved, "released", t0_));
    ports::RelayOffer rotated;
    rotated.node_id = relay;
    rotated.wireguard_public_key = "wg-r-new";
    rotated.wireguard_port = 51999;
    rotated.bandwidth_mbps = 1000;
    ASSERT_TRUE(repo_->UpsertOffer(rotated, t0_ + minutes{5}));
    const auto got = repo_->Get(a.id);
    EXPECT_EQ(got->relay_public_key, "wg-r-new");
    EXPECT_EQ(got->relay_endpoint, "203.0.113.1:51999");
    EXPECT_EQ(repo_->Events(a.id)->back().reason,
              "the relay's WireGuard key or port changed (key wg-r-new, port 51999)");
    EXPECT_EQ(repo_->Get(b.id)->relay_public_key, "wg-r") << "removed ones keep their history";
    // The same offer again changes nothing and records nothing.
    ASSERT_TRUE(repo_->UpsertOffer(rotated, t0_ + minutes{6}));
    EXPECT_EQ(repo_->Events(a.id)->size(), 2u);
}

TEST_F(PgRelayRepositoryTest, PortMappingsOnTheRelayOfTheVmsNode) {
    UseOptions({.tunnel_pool = domain::TunnelAddressPool::Default(),
                .public_ports = {30000, 30004},
                .max_tunnels_per_relay = 50});
    const auto relay = Relay("r", "203.0.113.9");
    const auto c = Cgnat("c");
    const auto vm = Vm(c);
    auto none = repo_->AllocatePortForVm(vm, 22, PortProtocol::kTcp, t0_);
    ASSERT_FALSE(none);
    EXPECT_EQ(none.error().code, common::ErrorCode::kUnprocessable);
    EXPECT_NE(none.error().message.find("has no relay yet"), std::string::npos);

    const auto a = Assign(c, relay);
    EXPECT_EQ(VmRelay(vm), relay) << "VMs already on the node count on its new relay";
    auto ssh = repo_->AllocatePortForVm(vm, 22, PortProtocol::kTcp, t0_);
    ASSERT_TRUE(ssh) << ssh.error().message;
    EXPECT_EQ(ssh->public_port, 30000);
    EXPECT_EQ(ssh->public_url, "203.0.113.9:30000");
    EXPECT_EQ(ssh->relay_node_id, relay);
    EXPECT_EQ(ssh->assignment_id, a.id);
    EXPECT_EQ(ssh->vm_port, 22);
    EXPECT_EQ(repo_->AllocatePortForVm(vm, 22, PortProtocol::kTcp, t0_)->id, ssh->id)
        << "idempotent";
    const auto dns = repo_->AllocatePortForVm(vm, 22, PortProtocol::kUdp, t0_);
    EXPECT_EQ(dns->public_port, 30001) << "one public port per mapping, whatever the protocol";
    const auto vm2 = Vm(c, "provisioning");
    EXPECT_EQ(repo_->AllocatePortForVm(vm2, 80, PortProtocol::kTcp, t0_)->public_port, 30002);
    EXPECT_EQ(VmRelay(vm2), relay);

    // Removed with the VM; the freed port is not the next one handed out.
    const auto removed = repo_->RemoveMappingsForVm(vm2);
    ASSERT_EQ(removed->size(), 1u);
    EXPECT_EQ(removed->front().public_url, "203.0.113.9:30002");
    EXPECT_EQ(repo_->AllocatePortForVm(vm2, 443, PortProtocol::kTcp, t0_)->public_port, 30003);
    EXPECT_EQ(repo_->AllocatePortForVm(vm2, 8080, PortProtocol::kTcp, t0_)->public_port, 30004);
    EXPECT_EQ(repo_->AllocatePortForVm(vm2, 8081, PortProtocol::kTcp, t0_)->public_port, 30002);
    auto exhausted = repo_->AllocatePortForVm(vm2, 8082, PortProtocol::kTcp, t0_);
    ASSERT_FALSE(exhausted);
    EXPECT_EQ(exhausted.error().code, common::ErrorCode::kUnprocessable);
    EXPECT_EQ(exhausted.error().message, "no public port free on relay " + relay +
                                             ": all 5 public ports of 30000-30004 are taken");

    const auto listed = repo_->MappingsForRelay(relay);
    ASSERT_EQ(listed->size(), 5u);
    for (std::size_t i = 1; i < listed->size(); ++i)
        EXPECT_LT((*listed)[i - 1].public_port, (*listed)[i].public_port);
    EXPECT_EQ(repo_->MappingsForVm(vm)->size(), 2u);

    // Refusals.
    const auto public_node = Relay("public", "203.0.113.10");
    EXPECT_NE(repo_->AllocatePortForVm(Vm(public_node), 22, PortProtocol::kTcp, t0_)
                  .error()
                  .message.find("publicly reachable"),
              std::string::npos);
    EXPECT_EQ(repo_->AllocatePortForVm(Vm(c, "deleted"), 22, PortProtocol::kTcp, t0_).error().code,
              common::ErrorCode::kConflict);
    EXPECT_EQ(repo_->AllocatePortForVm(common::NewUuid(), 22, PortProtocol::kTcp, t0_).error().code,
              common::ErrorCode::kNotFound);
    EXPECT_EQ(repo_->AllocatePortForVm(vm, 0, PortProtocol::kTcp, t0_).error().code,
              common::ErrorCode::kInvalidArgument);
    EXPECT_EQ(repo_->AttributeVm(vm).value(), relay);
}

TEST_F(PgRelayRepositoryTest, PortsOfGoneOrMovedVmsArePrunedAndOnePortCanBeRemoved) {
    const auto relay = Relay("r", "203.0.113.9");
    const auto c = Cgnat("c");
    const auto other = Relay("other", "203.0.113.10");
    Assign(c, relay);
    const auto kept = Vm(c);
    const auto deleted = Vm(c);
    const auto moved = Vm(c);
    for (const auto& vm : {kept, deleted, moved})
        ASSERT_TRUE(repo_->AllocatePortForVm(vm, 80, PortProtocol::kTcp, t0_));
    ASSERT_TRUE(repo_->AllocatePortForVm(kept, 22, PortProtocol::kTcp, t0_));
    {
        pqxx::connection conn(url_);
        pqxx::work tx(conn);
        tx.exec_params0("UPDATE vms SET state = 'deleted' WHERE id = $1::uuid", deleted);
        tx.exec_params0("UPDATE vms SET node_id = $2::uuid WHERE id = $1::uuid", moved, other);
        tx.commit();
    }
    const auto pruned = repo_->PruneMappings();
    ASSERT_TRUE(pruned) << pruned.error().message;
    std::set<std::string> gone;
    for (const auto& m : *pruned) gone.insert(m.vm_id);
    EXPECT_EQ(gone, (std::set<std::string>{deleted, moved}));
    EXPECT_EQ(repo_->MappingsForVm(kept)->size(), 2u);
    EXPECT_EQ(VmRelay(moved), "") << "a VM on a public node counts on no relay";
    EXPECT_EQ(VmRelay(kept), relay);
    EXPECT_TRUE(repo_->PruneMappings()->empty()) << "nothing left to prune";

    const auto removed = repo_->RemoveMapping(kept, 22, PortProtocol::kTcp);
    ASSERT_TRUE(removed);
    EXPECT_EQ(removed->vm_port, 22);
    EXPECT_EQ(repo_->MappingsForVm(kept)->size(), 1u);
    EXPECT_EQ(repo_->RemoveMapping(kept, 22, PortProtocol::kTcp).error().code,
              common::ErrorCode::kNotFound);
    EXPECT_EQ(repo_->RemoveMapping(kept, 80, PortProtocol::kUdp).error().code,
              common::ErrorCode::kNotFound);
    EXPECT_EQ(repo_->RemoveMapping("not-a-uuid", 80, PortProtocol::kTcp).error().code,
              common::ErrorCode::kNotFound);
}

TEST_F(PgRelayRepositoryTest, TrafficAddsUpAcrossCounterResetsAndSetsTheRelaysBandwidth) {
    const auto relay = Relay("r", "203.0.113.9");
    const auto a = Assign(Cgnat("c"), relay);
    ASSERT_TRUE(repo_->RecordTraffic(a.id, 0, 0, t0_));
    // 125 MB each way in 10 s: 200 Mbit/s.
    ASSERT_TRUE(repo_->RecordTraffic(a.id, 125'000'000, 125'000'000, t0_ + seconds{10}));
    EXPECT_EQ(repo_->TrafficTotals()->bytes_relayed, 250'000'000u);
    EXPECT_EQ(Count("SELECT bandwidth_used_mbps FROM relay_nodes WHERE node_id = '" + relay + "'"),
              200);
    // The interface was recreated: its counters start again.
    ASSERT_TRUE(repo_->RecordTraffic(a.id, 1000, 0, t0_ + seconds{20}));
    EXPECT_EQ(repo_->TrafficTotals()->bytes_relayed, 250'001'000u);
    EXPECT_EQ(repo_->RecordTraffic(common::NewUuid(), 1, 1, t0_).error().code,
              common::ErrorCode::kNotFound);
    EXPECT_EQ(repo_->TrafficTotals()->failovers, 0u);
}

TEST_F(PgRelayRepositoryTest, TheTunnelsRoundTripIsKeptWithItsTime) {
    const auto a = Assign(Cgnat("c"), Relay("r", "203.0.113.9"));
    auto fresh = repo_->Get(a.id);
    ASSERT_TRUE(fresh);
    EXPECT_FALSE(fresh->tunnel_rtt_us);
    EXPECT_FALSE(fresh->tunnel_rtt_at);
    ASSERT_TRUE(repo_->RecordLatency(a.id, 1850, t0_ + seconds{5}));
    ASSERT_TRUE(repo_->RecordLatency(a.id, 2210, t0_ + seconds{35}));
    auto measured = repo_->Get(a.id);
    ASSERT_TRUE(measured);
    EXPECT_EQ(measured->tunnel_rtt_us, 2210u);
    EXPECT_EQ(measured->tunnel_rtt_at, t0_ + seconds{35});
    EXPECT_EQ(repo_->RecordLatency(common::NewUuid(), 1, t0_).error().code,
              common::ErrorCode::kNotFound);
    EXPECT_EQ(repo_->RecordLatency("not-a-uuid", 1, t0_).error().code,
              common::ErrorCode::kNotFound);
}

TEST_F(PgRelayRepositoryTest, KeyRotationsAreOnePerNodeAndKeepTheirProgress) {
    const auto relay = Relay("r", "203.0.113.9");
    const auto a = Assign(Cgnat("c"), relay);
    auto first = repo_->RequestKeyRotation(relay, "yearly", t0_);
    ASSERT_TRUE(first) << first.error().message;
    EXPECT_FALSE(first->committing);
    EXPECT_TRUE(first->next_public_key.empty());
    EXPECT_TRUE(first->staged_on.empty());
    EXPECT_EQ(first->reason, "yearly");
    EXPECT_EQ(first->requested_at, t0_);
    EXPECT_EQ(repo_->RequestKeyRotation(relay, "again", t0_ + seconds{5})->reason, "yearly")
        << "the rotation in progress";
    EXPECT_EQ(repo_->RequestKeyRotation(common::NewUuid(), "x", t0_).error().code,
              common::ErrorCode::kNotFound);

    auto r = *first;
    r.next_public_key = "next-key";
    ASSERT_TRUE(repo_->SaveKeyRotation(r, t0_ + seconds{8})) << "nothing staged yet";
    EXPECT_EQ(repo_->KeyRotations()->front().next_public_key, "next-key");
    EXPECT_TRUE(repo_->KeyRotations()->front().staged_on.empty());
    r.staged_on = {a.id};
    r.committing = true;
    ASSERT_TRUE(repo_->SaveKeyRotation(r, t0_ + seconds{10}));
    const auto all = repo_->KeyRotations();
    ASSERT_EQ(all->size(), 1u);
    EXPECT_TRUE(all->front().committing);
    EXPECT_EQ(all->front().next_public_key, "next-key");
    EXPECT_EQ(all->front().staged_on, std::vector<std::string>{a.id});
    EXPECT_EQ(all->front().updated_at, t0_ + seconds{10});
    r.staged_on = {"not-an-id"};
    EXPECT_EQ(repo_->SaveKeyRotation(r, t0_).error().code, common::ErrorCode::kInvalidArgument);

    ASSERT_TRUE(repo_->FinishKeyRotation(relay));
    EXPECT_TRUE(repo_->KeyRotations()->empty());
    r.staged_on.clear();
    EXPECT_EQ(repo_->SaveKeyRotation(r, t0_).error().code, common::ErrorCode::kNotFound);
}

TEST_F(PgRelayRepositoryTest, TheRelaysWireGuardPortIsNeverAPublicPort) {
    UseOptions({.tunnel_pool = domain::TunnelAddressPool::Default(),
                .public_ports = {51819, 51821},
                .max_tunnels_per_relay = 50});
    const auto relay = Relay("r", "203.0.113.9");  // listens on 51820
    const auto c = Cgnat("c");
    Assign(c, relay);
    const auto vm = Vm(c);
    std::set<int> ports;
    for (std::uint16_t p : {22, 80})
        ports.insert(repo_->AllocatePortForVm(vm, p, PortProtocol::kTcp, t0_)->public_port);
    EXPECT_EQ(ports, (std::set<int>{51819, 51821}));
    EXPECT_FALSE(repo_->AllocatePortForVm(vm, 443, PortProtocol::kTcp, t0_));
}

TEST_F(PgRelayRepositoryTest, FailoverPromotesTheStandbyAndMovesTheMappings) {
    const auto r1 = Relay("r1", "203.0.113.1");
    const auto r2 = Relay("r2", "203.0.113.2");
    const auto c = Cgnat("c");
    const auto primary = Assign(c, r1);
    const auto standby = Assign(c, r2, RelayRole::kStandby);
    const auto vm = Vm(c);
    const auto m22 = repo_->AllocatePortForVm(vm, 22, PortProtocol::kTcp, t0_).value();
    const auto m80 = repo_->AllocatePortForVm(vm, 80, PortProtocol::kTcp, t0_).value();
    // Another node's mapping already holds m80's port number on r2.
    const auto other = Cgnat("other");
    Assign(other, r2);
    const auto other_vm = Vm(other);
    const auto clash = repo_->AllocatePortForVm(other_vm, 9000, PortProtocol::kTcp, t0_).value();
    ASSERT_EQ(clash.public_port, m22.public_port);

    ports::FailoverRequest req;
    req.cgnat_node_id = c;
    req.failed_assignment_id = primary.id;
    req.reason = "relay node r1 is offline";
    req.promote_assignment_id = standby.id;
    // The standby must be active first.
    auto early = repo_->Failover(req, t0_ + minutes{1});
    ASSERT_FALSE(early);
    EXPECT_EQ(early.error().code, common::ErrorCode::kConflict);
    EXPECT_EQ(repo_->Get(primary.id)->state, RelayState::kProvisioning) << "nothing changed";
    ASSERT_TRUE(repo_->Transition(standby.id, {}, RelayState::kActive, "up", t0_ + minutes{1}));

    auto out = repo_->Failover(req, t0_ + minutes{2});
    ASSERT_TRUE(out) << out.error().message;
    EXPECT_EQ(out->primary.id, standby.id);
    EXPECT_EQ(out->primary.role, RelayRole::kPrimary);
    EXPECT_EQ(out->primary.relay_node_id, r2);
    EXPECT_EQ(out->primary.state, RelayState::kActive);
    const auto old = repo_->Get(primary.id);
    EXPECT_EQ(old->state, RelayState::kRemoved);
    EXPECT_EQ(old->state_reason, "relay node r1 is offline");
    EXPECT_EQ(repo_->Events(standby.id)->back().reason,
              "promoted to primary: relay node r1 is offline");
    EXPECT_EQ(repo_->Events(standby.id)->back().role, RelayRole::kPrimary);

    ASSERT_EQ(out->moves.size(), 2u);
    std::map<int, domain::MappingMove> by_vm_port;
    for (const auto& m : out->moves) by_vm_port[m.from.vm_port] = m;
    EXPECT_EQ(by_vm_port[22].from.public_url, m22.public_url);
    EXPECT_NE(by_vm_port[22].to.public_port, clash.public_port) << "taken on r2: a new port";
    EXPECT_EQ(by_vm_port[80].to.public_port, m80.public_port) << "free on r2: kept";
    EXPECT_EQ(by_vm_port[80].to.public_url, "203.0.113.2:" + std::to_string(m80.public_port));
    const auto now_mapped = repo_->MappingsForVm(vm);
    ASSERT_EQ(now_mapped->size(), 2u);
    for (const auto& m : *now_mapped) {
        EXPECT_EQ(m.relay_node_id, r2);
        EXPECT_EQ(m.assignment_id, standby.id);
        EXPECT_TRUE(m.public_url.starts_with("203.0.113.2:"));
    }
    EXPECT_TRUE(repo_->MappingsForRelay(r1)->empty());
    EXPECT_EQ(VmRelay(vm), r2);
    EXPECT_EQ(repo_->TrafficTotals()->failovers, 1u);
    EXPECT_EQ(repo_->ForCgnatNode(c)->size(), 1u) << "no standby until a new one is assigned";
    // The freed slot takes a new standby.
    EXPECT_TRUE(repo_->Assign(New(c, r1, RelayRole::kStandby), t0_ + minutes{3}));
}

TEST_F(PgRelayRepositoryTest, FailoverToANewRelayIsAllOrNothing) {
    UseOptions({.tunnel_pool = domain::TunnelAddressPool::Default(),
                .public_ports = {30000, 30002},
                .max_tunnels_per_relay = 50});
    const auto r1 = Relay("r1", "203.0.113.1");
    const auto r2 = Relay("r2", "203.0.113.2");
    const auto c = Cgnat("c");
    const auto primary = Assign(c, r1);
    const auto vm = Vm(c);
    for (std::uint16_t p : {22, 80})
        ASSERT_TRUE(repo_->AllocatePortForVm(vm, p, PortProtocol::kTcp, t0_));
    // r2 has one port left: the two mappings cannot move there.
    const auto filler = Cgnat("filler");
    Assign(filler, r2);
    const auto filler_vm = Vm(filler);
    for (std::uint16_t p : {1, 2})
        ASSERT_TRUE(repo_->AllocatePortForVm(filler_vm, p, PortProtocol::kTcp, t0_));

    ports::FailoverRequest req;
    req.cgnat_node_id = c;
    req.failed_assignment_id = primary.id;
    req.reason = "repair failed 3 times";
    req.replacement = New(c, r2, RelayRole::kStandby);  // the role is forced to primary
    const auto before = Count("SELECT count(*) FROM relay_assignments");
    auto refused = repo_->Failover(req, t0_ + minutes{1});
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, common::ErrorCode::kUnprocessable);
    EXPECT_NE(refused.error().message.find("cannot move 2 port mappings"), std::string::npos)
        << refused.error().message;
    EXPECT_EQ(repo_->Get(primary.id)->state, RelayState::kProvisioning);
    EXPECT_EQ(Count("SELECT count(*) FROM relay_assignments"), before);
    EXPECT_EQ(repo_->MappingsForVm(vm)->size(), 2u);
    EXPECT_EQ(repo_->MappingsForVm(vm)->front().relay_node_id, r1);

    // With room on r2 it goes through: a new primary in provisioning with its own tunnel.
    ASSERT_EQ(repo_->RemoveMappingsForVm(filler_vm)->size(), 2u);
    auto out = repo_->Failover(req, t0_ + minutes{2});
    ASSERT_TRUE(out) << out.error().message;
    EXPECT_EQ(out->primary.relay_node_id, r2);
    EXPECT_EQ(out->primary.role, RelayRole::kPrimary);
    EXPECT_EQ(out->primary.state, RelayState::kProvisioning);
    EXPECT_NE(out->primary.tunnel.network, primary.tunnel.network);
    EXPECT_EQ(out->moves.size(), 2u);
    EXPECT_EQ(VmRelay(vm), r2);
    for (const auto& m : *repo_->MappingsForVm(vm)) EXPECT_EQ(m.assignment_id, out->primary.id);

    // Only the live primary can be failed over.
    req.failed_assignment_id = primary.id;
    EXPECT_EQ(repo_->Failover(req, t0_ + minutes{3}).error().code, common::ErrorCode::kConflict);
    req.promote_assignment_id = "x";
    EXPECT_EQ(repo_->Failover(req, t0_).error().code, common::ErrorCode::kInvalidArgument);
}

TEST_F(PgRelayRepositoryTest, ReleaseFreesEverything) {
    const auto r1 = Relay("r1", "203.0.113.1");
    const auto r2 = Relay("r2", "203.0.113.2");
    const auto c = Cgnat("c");
    const auto p = Assign(c, r1);
    Assign(c, r2, RelayRole::kStandby);
    const auto vm = Vm(c);
    ASSERT_TRUE(repo_->AllocatePortForVm(vm, 22, PortProtocol::kTcp, t0_));

    auto released = repo_->Release(c, "node deregistered", t0_ + hours{1});
    ASSERT_TRUE(released) << released.error().message;
    ASSERT_EQ(released->size(), 2u);
    for (const auto& a : *released) {
        EXPECT_EQ(a.state, RelayState::kRemoved);
        EXPECT_EQ(a.state_reason, "node deregistered");
        EXPECT_EQ(a.state_changed_at, t0_ + hours{1});
    }
    EXPECT_TRUE(repo_->ForCgnatNode(c)->empty());
    EXPECT_TRUE(repo_->MappingsForVm(vm)->empty());
    EXPECT_EQ(VmRelay(vm), "");
    EXPECT_EQ(repo_->Events(p.id)->back().reason, "node deregistered");
    // The tunnel blocks are free again: the next assignment takes the lowest.
    EXPECT_EQ(Assign(Cgnat("d"), r1).tunnel.block, 0u);
    EXPECT_TRUE(repo_->Release(c, "again", t0_)->empty()) << "idempotent";
}

TEST_F(PgRelayRepositoryTest, NodesWaitingForARelay) {
    const auto a = Cgnat("a");
    const auto b = Cgnat("b");
    ASSERT_TRUE(repo_->MarkAwaiting(a, "no node offers to relay", t0_));
    ASSERT_TRUE(repo_->MarkAwaiting(b, "no node offers to relay", t0_ + minutes{1}));
    ASSERT_TRUE(repo_->MarkAwaiting(a, "1 relay is at capacity", t0_ + minutes{5}));
    EXPECT_EQ(repo_->MarkAwaiting("00000000-0000-4000-8000-000000000000", "x", t0_).error().code,
              common::ErrorCode::kNotFound);
    auto waits = repo_->Awaiting();
    ASSERT_EQ(waits->size(), 2u);
    EXPECT_EQ((*waits)[0].cgnat_node_id, a);
    EXPECT_EQ((*waits)[0].since, t0_);
    EXPECT_EQ((*waits)[0].last_attempt_at, t0_ + minutes{5});
    EXPECT_EQ((*waits)[0].attempts, 2u);
    EXPECT_EQ((*waits)[0].reason, "1 relay is at capacity");
    // A standby does not end the wait; a primary does.
    const auto relay = Relay("r", "203.0.113.1");
    Assign(a, relay, RelayRole::kStandby);
    EXPECT_EQ(repo_->Awaiting()->size(), 2u);
    Assign(b, relay);
    ASSERT_EQ(repo_->Awaiting()->size(), 1u);
    EXPECT_EQ(repo_->Awaiting()->front().cgnat_node_id, a);
}

TEST_F(PgRelayRepositoryTest, SchemaRefusesCollisionsWhoeverWrites) {
    const auto r = Relay("r", "203.0.113.1");
    const auto a = Assign(Cgnat("a"), r);
    pqxx::connection conn(url_);
    const auto insert = [&](const std::string& cgnat, const std::string& network,
                            const std::string& relay_addr, const std::string& cgnat_addr) {
        pqxx::work tx(conn);
        tx.exec_params0(
            "INSERT INTO relay_assignments (id, cgnat_node_id, relay_node_id, role, "
            "interface_name, tunnel_block, tunnel_network, relay_address, cgnat_address, "
            "relay_listen_port, state, created_at, state_changed_at, updated_at) VALUES "
            "($1::uuid, $2::uuid, $3::uuid, 'primary', 'x', 0, $4::cidr, $5::inet, $6::inet, "
            "51820, 'provisioning', now(), now(), now())",
            common::NewUuid(), cgnat, r, network, relay_addr, cgnat_addr);
        tx.commit();
    };
    const auto b = Cgnat("b");
    EXPECT_THROW(insert(b, a.tunnel.network, "10.200.0.1", "10.200.0.2"), pqxx::unique_violation);
    EXPECT_THROW(insert(b, "10.200.9.0/30", "10.200.9.0", "10.200.9.1"), pqxx::check_violation)
        << "the network address is never used";
    EXPECT_THROW(insert(b, "10.200.9.0/30", "10.200.9.1", "10.200.9.3"), pqxx::check_violation)
        << "nor the broadcast address";
    EXPECT_THROW(insert(b, "10.200.9.0/29", "10.200.9.1", "10.200.9.2"), pqxx::check_violation);
    EXPECT_THROW(insert(b, "10.200.9.0/30", "10.200.8.1", "10.200.9.2"), pqxx::check_violation);
    EXPECT_THROW(insert(a.cgnat_node_id, "10.200.9.0/30", "10.200.9.1", "10.200.9.2"),
                 pqxx::unique_violation)
        << "one live primary per node";
    EXPECT_NO_THROW(insert(b, "10.200.9.0/30", "10.200.9.1", "10.200.9.2"));
}

// Threads on two connection pools stand for two orchestrator replicas.
class PgRelayConcurrencyTest : public PgRelayRepositoryTest {
  protected:
    template <class F>
    void RunTogether(int threads, F body) {
        std::latch start(threads);
        std::vector<std::thread> workers;
        for (int i = 0; i < threads; ++i) {
            workers.emplace_back([&, i] {
                start.arrive_and_wait();
                body(i);
            });
        }
        for (auto& w : workers) w.join();
    }
};

TEST_F(PgRelayConcurrencyTest, TunnelBlocksAreUniqueAndExhaustionIsClean) {
    PgRelayRepositoryOptions options;
    options.tunnel_pool = domain::TunnelAddressPool::Parse("10.200.0.0/27").value();  // 8 tunnels
    UseOptions(options);
    PgPool other_pool(url_, 8);
    PgRelayRepository replica_a(*pool_, options);
    PgRelayRepository replica_b(other_pool, options);
    std::vector<std::string> relays;
    for (int i = 0; i < 4; ++i)
        relays.push_back(Relay("r" + std::to_string(i), "203.0.113." + std::to_string(i + 1)));
    constexpr int kThreads = 20;
    std::vector<std::string> cgnats;
    for (int i = 0; i < kThreads; ++i) cgnats.push_back(Cgnat("c" + std::to_string(i)));

    std::vector<common::Result<domain::RelayAssignment>> results(
        kThreads, common::Error::Internal("not run"));
    RunTogether(kThreads, [&](int i) {
        auto& repo = i % 2 ? replica_a : replica_b;
        results[i] = repo.Assign(New(cgnats[i], relays[i % relays.size()]), t0_);
    });

    std::set<std::string> networks;
    std::set<std::string> addresses;
    int ok = 0;
    for (const auto& r : results) {
        if (!r) {
            EXPECT_EQ(r.error().code, common::ErrorCode::kUnprocessable) << r.error().message;
            EXPECT_EQ(r.error().message,
                      "tunnel address pool 10.200.0.0/27 is exhausted: all 8 tunnel blocks (/30) "
                      "are in use");
            continue;
        }
        ++ok;
        EXPECT_TRUE(networks.insert(r->tunnel.network).second) << r->tunnel.network;
        EXPECT_TRUE(addresses.insert(r->tunnel.relay_address).second);
        EXPECT_TRUE(addresses.insert(r->tunnel.cgnat_address).second);
    }
    EXPECT_EQ(ok, 8);
    EXPECT_EQ(networks.size(), 8u);
    // Nothing half-written by the losers.
    EXPECT_EQ(Count("SELECT count(*) FROM relay_assignments"), 8);
    EXPECT_EQ(Count("SELECT count(*) FROM relay_assignment_events"), 8);
    EXPECT_EQ(Count("SELECT count(DISTINCT tunnel_network) FROM relay_assignments"), 8);
}

TEST_F(PgRelayConcurrencyTest, ARelayNeverTakesMoreTunnelsThanItsCapacity) {
    PgPool other_pool(url_, 8);
    PgRelayRepository replica_b(other_pool, options_);
    const auto relay = Relay("small", "203.0.113.1", "eu-west", 5);
    constexpr int kThreads = 12;
    std::vector<std::string> cgnats;
    for (int i = 0; i < kThreads; ++i) cgnats.push_back(Cgnat("c" + std::to_string(i)));
    std::atomic<int> ok{0};
    std::atomic<int> full{0};
    RunTogether(kThreads, [&](int i) {
        auto r = (i % 2 ? *repo_ : replica_b).Assign(New(cgnats[i], relay), t0_);
        if (r) {
            ++ok;
        } else if (r.error().code == common::ErrorCode::kConflict &&
                   r.error().message.find("is full: 5 of 5") != std::string::npos) {
            ++full;
        } else {
            ADD_FAILURE() << r.error().message;
        }
    });
    EXPECT_EQ(ok.load(), 5);
    EXPECT_EQ(full.load(), kThreads - 5);
    EXPECT_EQ(Count("SELECT count(*) FROM relay_assignments WHERE state <> 'removed'"), 5);
}

TEST_F(PgRelayConcurrencyTest, PublicPortsAreUniquePerRelayAndExhaustionIsClean) {
    PgRelayRepositoryOptions options;
    options.public_ports = {31000, 31019};  // 20 ports
    UseOptions(options);
    PgPool other_pool(url_, 8);
    PgRelayRepository replica_b(other_pool, options);
    const auto relay = Relay("r", "203.0.113.1");
    // VMs on three CGNAT nodes behind the same relay.
    std::vector<std::string> vms;
    for (int n = 0; n < 3; ++n) {
        const auto c = Cgnat("c" + std::to_string(n));
        Assign(c, relay);
        for (int v = 0; v < 10; ++v) vms.push_back(Vm(c));
    }
    constexpr int kThreads = 16;
    std::mutex mutex;
    std::vector<domain::PortMapping> mappings;
    std::vector<common::Error> errors;
    RunTogether(kThreads, [&](int i) {
        auto& repo = i % 2 ? *repo_ : replica_b;
        // 30 VMs x 2 ports = 60 requests for 20 ports, spread over the threads.
        for (std::size_t k = static_cast<std::size_t>(i); k < vms.size() * 2; k += kThreads) {
            auto r = repo.AllocatePortForVm(vms[k / 2], k % 2 ? 80 : 22, PortProtocol::kTcp, t0_);
            std::lock_guard lock(mutex);
            if (r)
                mappings.push_back(*r);
            else
                errors.push_back(r.error());
        }
    });
    ASSERT_EQ(mappings.size(), 20u);
    ASSERT_EQ(errors.size(), 40u);
    std::set<int> ports;
    for (const auto& m : mappings) {
        EXPECT_TRUE(ports.insert(m.public_port).second) << m.public_port;
        EXPECT_TRUE(options.public_ports.Contains(m.public_port));
    }
    for (const auto& e : errors) {
        EXPECT_EQ(e.code, common::ErrorCode::kUnprocessable);
        EXPECT_EQ(e.message, "no public port free on relay " + relay +
                                 ": all 20 public ports of 31000-31019 are taken");
    }
    EXPECT_EQ(Count("SELECT count(*) FROM relay_port_mappings"), 20);
}

TEST_F(PgRelayConcurrencyTest, TheSamePortAskedForAtOnceIsMappedOnce) {
    PgPool other_pool(url_, 8);
    PgRelayRepository replica_b(other_pool, options_);
    const auto relay = Relay("r", "203.0.113.1");
    const auto c = Cgnat("c");
    Assign(c, relay);
    const auto vm = Vm(c);
    constexpr int kThreads = 8;
    std::vector<common::Result<domain::PortMapping>> results(kThreads,
                                                             common::Error::Internal("not run"));
    RunTogether(kThreads, [&](int i) {
        results[i] =
            (i % 2 ? *repo_ : replica_b).AllocatePortForVm(vm, 443, PortProtocol::kTcp, t0_);
    });
    for (const auto& r : results) {
        ASSERT_TRUE(r) << r.error().message;
        EXPECT_EQ(r->id, results[0]->id);
    }
    EXPECT_EQ(Count("SELECT count(*) FROM relay_port_mappings"), 1);
}

TEST_F(PgRelayConcurrencyTest, AllocationsDuringAFailoverAllEndOnTheNewPrimary) {
    PgPool other_pool(url_, 8);
    PgRelayRepository replica_b(other_pool, options_);
    const auto r1 = Relay("r1", "203.0.113.1");
    const auto r2 = Relay("r2", "203.0.113.2");
    const auto c = Cgnat("c");
    const auto primary = Assign(c, r1);
    const auto standby = Assign(c, r2, RelayRole::kStandby);
    ASSERT_TRUE(repo_->Transition(standby.id, {}, RelayState::kActive, "up", t0_));
    std::vector<std::string> vms;
    for (int v = 0; v < 24; ++v) vms.push_back(Vm(c));

    constexpr int kThreads = 6;
    std::atomic<int> allocated{0};
    common::Result<ports::FailoverOutcome> failover = common::Error::Internal("not run");
    RunTogether(kThreads + 1, [&](int i) {
        if (i == kThreads) {
            ports::FailoverRequest req;
            req.cgnat_node_id = c;
            req.failed_assignment_id = primary.id;
            req.reason = "relay node r1 is offline";
            req.promote_assignment_id = standby.id;
            failover = replica_b.Failover(req, t0_ + minutes{1});
            return;
        }
        for (std::size_t k = static_cast<std::size_t>(i); k < vms.size(); k += kThreads) {
            auto r =
                (i % 2 ? *repo_ : replica_b).AllocatePortForVm(vms[k], 22, PortProtocol::kTcp, t0_);
            if (r)
                ++allocated;
            else
                ADD_FAILURE() << r.error().message;
        }
    });
    ASSERT_TRUE(failover) << failover.error().message;
    EXPECT_EQ(allocated.load(), 24);
    // Whatever the interleaving: every mapping is on the live primary's relay, none was lost.
    EXPECT_EQ(Count("SELECT count(*) FROM relay_port_mappings"), 24);
    EXPECT_EQ(repo_->MappingsForRelay(r2)->size(), 24u);
    EXPECT_TRUE(repo_->MappingsForRelay(r1)->empty());
    EXPECT_EQ(Count("SELECT count(DISTINCT relay_node_id) FROM vms WHERE node_id = '" + c +
                    "'::uuid AND relay_node_id = '" + r2 + "'::uuid"),
              1);
    EXPECT_EQ(Count("SELECT count(*) FROM vms WHERE relay_node_id IS DISTINCT FROM '" + r2 +
                    "'::uuid AND node_id = '" + c + "'::uuid"),
              0);
}

}  // namespace
}  // namespace decloud::orchestrator::adapters::pg
