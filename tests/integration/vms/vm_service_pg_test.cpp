// The VM service on the real PostgreSQL adapter with an injected clock: placement and capacity
// reservation (also under concurrent creates), the command queue with redelivery and
// acknowledgement, the state machine through start/stop/reboot/delete, idempotent creates,
// owner scoping, reconciliation with the node's report, and nodes going offline.

#include <gtest/gtest.h>

#include <atomic>
#include <pqxx/pqxx>
#include <thread>

#include "decloud/common/ids.hpp"
#include "decloud/testing/temp_pg_cluster.hpp"
#include "orchestrator/adapters/pg/migrations.hpp"
#include "orchestrator/adapters/pg/pg_auth_repository.hpp"
#include "orchestrator/adapters/pg/pg_node_repository.hpp"
#include "orchestrator/adapters/pg/pg_pool.hpp"
#include "orchestrator/adapters/pg/pg_user_repository.hpp"
#include "orchestrator/adapters/pg/pg_vm_repository.hpp"
#include "orchestrator/adapters/templates/template_catalog.hpp"
#include "orchestrator/app/node_service.hpp"
#include "orchestrator/app/vm_service.hpp"

namespace decloud::orchestrator {
namespace {

using namespace std::chrono;
using domain::VmAction;
using domain::VmState;
namespace pg = adapters::pg;

constexpr const char* kAlice = "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB";
constexpr const char* kBob = "0x52908400098527886E0F7030069857D2E4169EE7";
constexpr const char* kOperator = "0x8617E340B3D01FA5F11F306F4090FD50E238070D";

struct NodeSpec {
    std::uint32_t cores = 4;
    std::uint32_t points = 400;
    std::uint64_t memory_gib = 16;
    std::uint64_t disk_free_gib = 100;
    std::uint64_t price = 0;  // micro-USDC per point-hour; 0: platform default
    std::string region = "eu-west";
    bool vms = true;  // the agent's vms.enabled
};

class VmServicePgTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() { cluster_ = new testing::TempPgCluster(); }
    static void TearDownTestSuite() { delete cluster_; }

    void SetUp() override {
        const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
        url_ = cluster_->CreateDatabase(std::string("vms_") + info->name());
        pool_ = std::make_unique<pg::PgPool>(url_, 6);
        ASSERT_TRUE(pg::RunMigrations(*pool_));
        node_repository_ = std::make_unique<pg::PgNodeRepository>(*pool_);
        user_repository_ = std::make_unique<pg::PgUserRepository>(*pool_);
        vm_repository_ = std::make_unique<pg::PgVmRepository>(*pool_);
        nodes_ = std::make_unique<app::NodeService>(*node_repository_, clock_,
                                                    app::NodeServiceOptions{});
        app::VmServiceOptions options;
        options.images = {"debian-12", "tiny"};
        options.max_vms_per_user = 20;
        vms_ =
            std::make_unique<app::VmService>(*vm_repository_, *user_repository_, clock_, options);
        auto catalog = adapters::templates::TemplateCatalog::Load(std::string(DECLOUD_SOURCE_DIR) +
                                                                  "/templates");
        ASSERT_TRUE(catalog) << catalog.error().message;
        vms_->SetTemplates(catalog->All());
        pg::PgAuthRepository auth(*pool_);
        for (const char* wallet : {kAlice, kBob})
            ASSERT_TRUE(auth.CreateSession(common::NewUuid(), wallet, "", clock_.Now(),
                                           clock_.Now() + hours{1}));
    }

    // Registers a node and brings it online (one heartbeat, flushed).
    std::string AddNode(const NodeSpec& spec = {}) {
        const auto key = crypto::Ed25519KeyPair::Generate();
        proto::RegisterNodeRequest r;
        r.node_public_key = key.PublicKeyBase64();
        r.operator_wallet = kOperator;
        r.public_ip = "203.0.113.10";
        r.region = spec.region;
        r.resources.cpu_model = "CPU";
        r.resources.cpu_cores = spec.cores;
        r.resources.cpu_threads = spec.cores * 2;
        r.resources.memory_bytes = spec.memory_gib << 30;
        r.resources.storage_total_bytes = 500ull << 30;
        r.resources.storage_free_bytes = spec.disk_free_gib << 30;
        r.resources.vms_enabled = spec.vms;
        r.compute = {spec.points, 4000, spec.cores};
        r.price_per_point_micro_usdc = spec.price;
        r.timestamp = common::FormatRfc3339(clock_.Now());
        const auto body = proto::ToJson(r).dump();
        auto reg = nodes_->Register(body, key.SignBase64(body), "203.0.113.10");
        EXPECT_TRUE(reg) << reg.error().message;
        const proto::HeartbeatRequest hb{{5, 1 << 30, 1ull << 30, 0}, "0.1.0"};
        EXPECT_EQ(nodes_->TryHeartbeat(reg->node_id, reg->node_token, hb),
                  app::FastAuth::kAccepted);
        EXPECT_TRUE(nodes_->FlushHeartbeats());
        return reg->node_id;
    }

    static app::CreateVmRequest Request(std::uint32_t cores = 2, std::uint64_t memory_mib = 2048,
                                        std::uint64_t disk_gib = 20) {
        app::CreateVmRequest r;
        r.name = "web <1> & 'quotes'";
        r.requirements.cores = cores;
        r.requirements.memory_mib = memory_mib;
        r.requirements.disk_gib = disk_gib;
        r.requirements.tier = domain::QualityTier::kStandard;
        r.image = "debian-12";
        return r;
    }

    ports::VmRecord Create(const std::string& owner, app::CreateVmRequest r) {
        auto created = vms_->Create(owner, std::move(r));
        EXPECT_TRUE(created) << created.error().message;
        return created->vm;
    }

    std::vector<proto::Command> Take(const std::string& node_id) {
        auto taken = vms_->TakeCommands(node_id);
        EXPECT_TRUE(taken) << taken.error().message;
        return *taken;
    }

    void Ack(const std::string& node_id, const proto::Command& c, bool success = true,
             std::vector<std::string> addresses = {}) {
        proto::CommandResult r;
        r.command_id = c.id;
        r.success = success;
        r.message = success ? "" : "libvirt: out of disk";
        r.data = {{"addresses", addresses}};
        ASSERT_TRUE(vms_->CompleteCommand(node_id, r));
    }

    VmState StateOf(const std::string& owner, const std::string& id) {
        auto vm = vms_->Get(owner, id);
        EXPECT_TRUE(vm) << vm.error().message;
        return vm ? vm->state : VmState::kPending;
    }

    static testing::TempPgCluster* cluster_;
    std::string url_;
    common::ManualClock clock_{common::TimePoint{seconds{1'800'000'000}}};
    std::unique_ptr<pg::PgPool> pool_;
    std::unique_ptr<pg::PgNodeRepository> node_repository_;
    std::unique_ptr<pg::PgUserRepository> user_repository_;
    std::unique_ptr<pg::PgVmRepository> vm_repository_;
    std::unique_ptr<app::NodeService> nodes_;
    std::unique_ptr<app::VmService> vms_;
};

testing::TempPgCluster* VmServicePgTest::cluster_ = nullptr;

TEST_F(VmServicePgTest, CreatePlacesReservesAndQueuesTheCreateCommand) {
    NodeSpec priced;
    priced.price = 25;
    const auto node = AddNode(priced);
    const auto vm = Create(kAlice, Request());
    EXPECT_EQ(vm.node_id, node);
    EXPECT_EQ(vm.state, VmState::kProvisioning);
    EXPECT_EQ(vm.name, "web <1> & 'quotes'");
    // 400 points on 4 cores = 100 per core; 2 cores at standard (1.5:1) = ceil(200 / 1.5).
    EXPECT_EQ(vm.points, 134U);
    EXPECT_EQ(vm.hourly_rate_micro_usdc, 134U * 25U);

    auto capacity = vm_repository_->SchedulableNodes(clock_.Now() - days{30}, clock_.Now());
    ASSERT_TRUE(capacity);
    ASSERT_EQ(capacity->size(), 1U);
    EXPECT_EQ((*capacity)[0].reserved_points, 134U);
    EXPECT_EQ((*capacity)[0].reserved_memory_mib, 2048U);
    EXPECT_EQ((*capacity)[0].reserved_disk_gib, 20U);
    EXPECT_EQ((*capacity)[0].memory_mib, 16U * 1024 - 1024);

    EXPECT_TRUE(vms_->HasCommands(node));
    const auto commands = Take(node);
    ASSERT_EQ(commands.size(), 1U);
    EXPECT_EQ(commands[0].type, "create_vm");
    EXPECT_EQ(commands[0].payload.at("vmId"), vm.id);
    EXPECT_EQ(commands[0].payload.at("hostname"), "web-1-quotes");
    EXPECT_EQ(commands[0].payload.at("cpuCores"), 2);
    const auto user_data = commands[0].payload.at("userData").get<std::string>();
    EXPECT_TRUE(user_data.starts_with("#cloud-config\n")) << user_data;
    EXPECT_FALSE(vms_->HasCommands(node));

    // Delivered but not acknowledged: not again at once, but again after the redelivery delay.
    EXPECT_TRUE(Take(node).empty());
    clock_.Advance(seconds{61});
    const auto again = Take(node);
    ASSERT_EQ(again.size(), 1U);
    EXPECT_EQ(again[0].id, commands[0].id);

    Ack(node, again[0], true, {"192.168.122.50"});
    auto running = vms_->Get(kAlice, vm.id);
    ASSERT_TRUE(running);
    EXPECT_EQ(running->state, VmState::kRunning);
    EXPECT_EQ(running->addresses, std::vector<std::string>{"192.168.122.50"});
    // The same result again (at-least-once) changes nothing; nothing is redelivered.
    Ack(node, again[0], true);
    EXPECT_EQ(StateOf(kAlice, vm.id), VmState::kRunning);
    clock_.Advance(minutes{5});
    EXPECT_TRUE(Take(node).empty());
}

TEST_F(VmServicePgTest, LifecycleStopStartRebootDeleteFreesCapacity) {
    const auto node = AddNode();
    const auto vm = Create(kAlice, Request());
    Ack(node, Take(node).at(0));
    ASSERT_EQ(StateOf(kAlice, vm.id), VmState::kRunning);

    auto stopping = vms_->Act(kAlice, vm.id, VmAction::kStop);
    ASSERT_TRUE(stopping) << stopping.error().message;
    EXPECT_EQ(stopping->state, VmState::kStopping);
    auto stop = Take(node);
    ASSERT_EQ(stop.size(), 1U);
    EXPECT_EQ(stop[0].type, "stop_vm");
    EXPECT_EQ(stop[0].payload.at("graceSeconds"), 30);
    Ack(node, stop[0]);
    EXPECT_EQ(StateOf(kAlice, vm.id), VmState::kStopped);

    // A stopped VM keeps its reservation (it can be started again at any time).
    auto capacity = vm_repository_->SchedulableNodes(clock_.Now() - days{30}, clock_.Now());
    ASSERT_TRUE(capacity);
    EXPECT_EQ((*capacity)[0].reserved_points, 134U);

    auto starting = vms_->Act(kAlice, vm.id, VmAction::kStart);
    ASSERT_TRUE(starting) << starting.error().message;
    auto start = Take(node);
    ASSERT_EQ(start.size(), 1U);
    EXPECT_EQ(start[0].type, "start_vm");
    Ack(node, start[0]);
    EXPECT_EQ(StateOf(kAlice, vm.id), VmState::kRunning);

    auto rebooting = vms_->Act(kAlice, vm.id, VmAction::kReboot);
    ASSERT_TRUE(rebooting) << rebooting.error().message;
    EXPECT_EQ(rebooting->state, VmState::kRunning);
    auto reboot = Take(node);
    ASSERT_EQ(reboot.size(), 1U);
    EXPECT_EQ(reboot[0].type, "reboot_vm");
    Ack(node, reboot[0]);

    auto deleting = vms_->Act(kAlice, vm.id, VmAction::kDelete);
    ASSERT_TRUE(deleting) << deleting.error().message;
    EXPECT_EQ(deleting->state, VmState::kDeleting);
    auto del = Take(node);
    ASSERT_EQ(del.size(), 1U);
    EXPECT_EQ(del[0].type, "delete_vm");
    Ack(node, del[0]);
    EXPECT_EQ(StateOf(kAlice, vm.id), VmState::kDeleted);
    capacity = vm_repository_->SchedulableNodes(clock_.Now() - days{30}, clock_.Now());
    ASSERT_TRUE(capacity);
    EXPECT_EQ((*capacity)[0].reserved_points, 0U);
    EXPECT_EQ((*capacity)[0].reserved_memory_mib, 0U);

    auto events = vms_->Events(kAlice, vm.id);
    ASSERT_TRUE(events);
    std::vector<std::string> path;
    for (const auto& e : *events) path.push_back(std::string(domain::ToString(e.to)));
    EXPECT_EQ(path, (std::vector<std::string>{"scheduling", "provisioning", "running", "stopping",
                                              "stopped", "provisioning", "running", "running",
                                              "running", "deleting", "deleted"}));
    // Deleted VMs leave the list.
    auto page = vms_->List(kAlice, 100, "");
    ASSERT_TRUE(page);
    EXPECT_TRUE(page->vms.empty());
}

TEST_F(VmServicePgTest, IllegalActionsAreConflictsAndChangeNothing) {
    const auto node = AddNode();
    const auto vm = Create(kAlice, Request());
    auto start = vms_->Act(kAlice, vm.id, VmAction::kStart);
    ASSERT_FALSE(start);
    EXPECT_EQ(start.error().code, common::ErrorCode::kConflict);
    Ack(node, Take(node).at(0));
    auto again = vms_->Act(kAlice, vm.id, VmAction::kStart);
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().code, common::ErrorCode::kConflict);
    EXPECT_EQ(StateOf(kAlice, vm.id), VmState::kRunning);
    EXPECT_TRUE(Take(node).empty());
}

TEST_F(VmServicePgTest, AFailedCommandFailsTheVmWithTheAgentsMessage) {
    const auto node = AddNode();
    const auto vm = Create(kAlice, Request());
    Ack(node, Take(node).at(0), false);
    auto failed = vms_->Get(kAlice, vm.id);
    ASSERT_TRUE(failed);
    EXPECT_EQ(failed->state, VmState::kFailed);
    EXPECT_NE(failed->state_reason.find("libvirt: out of disk"), std::string::npos)
        << failed->state_reason;
    // A failed VM no longer holds capacity; deleting it cleans up on the node.
    auto capacity = vm_repository_->SchedulableNodes(clock_.Now() - days{30}, clock_.Now());
    ASSERT_TRUE(capacity);
    EXPECT_EQ((*capacity)[0].reserved_points, 0U);
    auto deleting = vms_->Act(kAlice, vm.id, VmAction::kDelete);
    ASSERT_TRUE(deleting) << deleting.error().message;
    EXPECT_EQ(Take(node).at(0).type, "delete_vm");
}

TEST_F(VmServicePgTest, OwnersSeeOnlyTheirOwnVms) {
    AddNode();
    const auto vm = Create(kAlice, Request());
    EXPECT_EQ(vms_->Get(kBob, vm.id).error().code, common::ErrorCode::kNotFound);
    EXPECT_EQ(vms_->Act(kBob, vm.id, VmAction::kDelete).error().code, common::ErrorCode::kNotFound);
    EXPECT_EQ(vms_->Events(kBob, vm.id).error().code, common::ErrorCode::kNotFound);
    auto bobs = vms_->List(kBob, 100, "");
    ASSERT_TRUE(bobs);
    EXPECT_TRUE(bobs->vms.empty());
    EXPECT_EQ(StateOf(kAlice, vm.id), VmState::kProvisioning);
}

TEST_F(VmServicePgTest, AnIdempotencyKeyMakesARetryReturnTheSameVm) {
    const auto node = AddNode();
    auto request = Request();
    request.idempotency_key = "retry-1";
    auto first = vms_->Create(kAlice, request);
    ASSERT_TRUE(first);
    EXPECT_FALSE(first->replayed);
    auto second = vms_->Create(kAlice, request);
    ASSERT_TRUE(second);
    EXPECT_TRUE(second->replayed);
    EXPECT_EQ(second->vm.id, first->vm.id);
    EXPECT_EQ(Take(node).size(), 1U);
    // The key is per owner: Bob's request with the same key is his own VM.
    auto bobs = vms_->Create(kBob, request);
    ASSERT_TRUE(bobs);
    EXPECT_FALSE(bobs->replayed);
    EXPECT_NE(bobs->vm.id, first->vm.id);
}

TEST_F(VmServicePgTest, ImpossibleRequestsAreRefusedWithAReason) {
    AddNode();
    auto huge = vms_->Create(kAlice, Request(2, 64 * 1024));
    ASSERT_FALSE(huge);
    EXPECT_EQ(huge.error().code, common::ErrorCode::kUnprocessable);
    EXPECT_NE(huge.error().message.find("memory"), std::string::npos) << huge.error().message;

    auto request = Request();
    request.image = "windows-95";
    auto unknown = vms_->Create(kAlice, request);
    ASSERT_FALSE(unknown);
    EXPECT_EQ(unknown.error().code, common::ErrorCode::kInvalidArgument);

    request = Request();
    request.ssh_key_ids = {common::NewUuid()};
    auto key = vms_->Create(kAlice, request);
    ASSERT_FALSE(key);
    EXPECT_EQ(key.error().code, common::ErrorCode::kInvalidArgument);

    request = Request();
    request.password_hash = "hunter2";
    auto password = vms_->Create(kAlice, request);
    ASSERT_FALSE(password);
    EXPECT_EQ(password.error().code, common::ErrorCode::kInvalidArgument);

    auto page = vms_->List(kAlice, 100, "");
    ASSERT_TRUE(page);
    EXPECT_TRUE(page->vms.empty());
}

TEST_F(VmServicePgTest, ConcurrentCreatesNeverOversubscribeANode) {
    // 4 GiB for VMs after the host's 1 GiB: room for exactly four 1 GiB VMs on the only node.
    NodeSpec small;
    small.cores = 8;
    small.points = 800;
    small.memory_gib = 5;
    const auto node = AddNode(small);
    std::atomic<int> created{0}, refused{0}, other{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < 3; ++i) {
                auto r = vms_->Create(kAlice, Request(1, 1024, 5));
                if (r)
                    ++created;
                else if (r.error().code == common::ErrorCode::kUnprocessable)
                    ++refused;
                else
                    ++other;
            }
        });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(created.load(), 4);
    EXPECT_EQ(refused.load(), 8);
    EXPECT_EQ(other.load(), 0);
    auto capacity = vm_repository_->SchedulableNodes(clock_.Now() - days{30}, clock_.Now());
    ASSERT_TRUE(capacity);
    EXPECT_EQ((*capacity)[0].reserved_memory_mib, 4096U);
    EXPECT_EQ(Take(node).size(), 4U);
}

TEST_F(VmServicePgTest, ReconciliationFailsLostVmsAndDestroysOrphansAfterTheGrace) {
    const auto node = AddNode();
    const auto kept = Create(kAlice, Request(1, 1024, 5));
    const auto lost = Create(kAlice, Request(1, 1024, 5));
    for (const auto& c : Take(node)) Ack(node, c, true, {"192.168.122.9"});
    ASSERT_EQ(StateOf(kAlice, lost.id), VmState::kRunning);
    const std::string orphan = common::NewUuid();

    // Just changed: nothing is judged yet.
    std::vector<ports::ReportedDomain> report = {
        {kept.id, "running", {"192.168.122.10"}, std::nullopt},
        {orphan, "running", {}, std::nullopt}};
    auto first = vms_->Report(node, report);
    ASSERT_TRUE(first) << first.error().message;
    EXPECT_TRUE(first->lost.empty());
    EXPECT_EQ(first->unknown, std::vector<std::string>{orphan});
    EXPECT_EQ(StateOf(kAlice, lost.id), VmState::kRunning);
    auto updated = vms_->Get(kAlice, kept.id);
    EXPECT_EQ(updated->addresses, std::vector<std::string>{"192.168.122.10"});

    clock_.Advance(minutes{3});
    auto second = vms_->Report(node, report);
    ASSERT_TRUE(second);
    EXPECT_EQ(second->lost, std::vector<std::string>{lost.id});
    EXPECT_EQ(StateOf(kAlice, lost.id), VmState::kFailed);
    EXPECT_EQ(StateOf(kAlice, kept.id), VmState::kRunning);
    EXPECT_TRUE(second->destroying.empty());

    clock_.Advance(minutes{10});
    auto third = vms_->Report(node, report);
    ASSERT_TRUE(third);
    EXPECT_EQ(third->destroying, std::vector<std::string>{orphan});
    const auto destroy = Take(node);
    ASSERT_EQ(destroy.size(), 1U);
    EXPECT_EQ(destroy[0].type, "delete_vm");
    EXPECT_EQ(destroy[0].payload.at("vmId"), orphan);
    // Only once.
    auto fourth = vms_->Report(node, report);
    ASSERT_TRUE(fourth);
    EXPECT_TRUE(fourth->destroying.empty());

    // A VM that stopped on its own is recorded as stopped.
    report = {{kept.id, "stopped", {}, std::nullopt}};
    auto fifth = vms_->Report(node, report);
    ASSERT_TRUE(fifth);
    EXPECT_EQ(fifth->state_fixed, std::vector<std::string>{kept.id});
    EXPECT_EQ(StateOf(kAlice, kept.id), VmState::kStopped);
}

TEST_F(VmServicePgTest, AGuestThatStoppedByItselfIsStoppedAtOnceWithItsBootLogKept) {
    const auto node = AddNode();
    const auto vm = Create(kAlice, Request());
    for (const auto& c : Take(node)) Ack(node, c, true);
    ASSERT_EQ(StateOf(kAlice, vm.id), VmState::kRunning);
    EXPECT_FALSE(vms_->Get(kAlice, vm.id)->boot_log_kept);
    auto none = vms_->BootLog(kAlice, vm.id);
    ASSERT_FALSE(none);
    EXPECT_EQ(none.error().code, common::ErrorCode::kNotFound);

    // Reported within the settle time: a stop by itself is judged at once, not later.
    const std::string log = "tiny-guest: no root file system\nDECLOUD-GUEST-BOOT-FAILED\n";
    const ports::ReportedGuestStop stop{common::NewUuid(), log, 8};
    std::vector<ports::ReportedDomain> report = {{vm.id, "stopped", {}, stop}};
    auto outcome = vms_->Report(node, report);
    ASSERT_TRUE(outcome) << outcome.error().message;
    EXPECT_EQ(outcome->state_fixed, std::vector<std::string>{vm.id});
    EXPECT_EQ(StateOf(kAlice, vm.id), VmState::kStopped);
    auto kept = vms_->BootLog(kAlice, vm.id);
    ASSERT_TRUE(kept) << kept.error().message;
    EXPECT_EQ(kept->text, log);
    EXPECT_EQ(kept->ran_for_s, 8U);
    EXPECT_EQ(kept->captured_at, clock_.Now());
    EXPECT_TRUE(vms_->Get(kAlice, vm.id)->boot_log_kept);
    auto events = vms_->Events(kAlice, vm.id);
    ASSERT_TRUE(events);
    EXPECT_EQ(events->back().to, VmState::kStopped);
    EXPECT_NE(events->back().reason.find("failed to start"), std::string::npos)
        << events->back().reason;

    // The same stop again (the node did not hear our answer): nothing more happens.
    clock_.Advance(minutes{1});
    ASSERT_TRUE(vms_->Report(node, report));
    auto again = vms_->Events(kAlice, vm.id);
    ASSERT_TRUE(again);
    EXPECT_EQ(again->size(), events->size());
    EXPECT_EQ(vms_->BootLog(kAlice, vm.id)->captured_at, kept->captured_at);

    // Another owner learns nothing; a later stop, long after the start, replaces the log.
    auto stranger = vms_->BootLog(kBob, vm.id);
    ASSERT_FALSE(stranger);
    EXPECT_EQ(stranger.error().code, common::ErrorCode::kNotFound);
    ASSERT_TRUE(vms_->Act(kAlice, vm.id, VmAction::kStart));
    for (const auto& c : Take(node)) Ack(node, c, true);
    ASSERT_EQ(StateOf(kAlice, vm.id), VmState::kRunning);
    report = {{vm.id, "stopped", {}, ports::ReportedGuestStop{common::NewUuid(), "bye\n", {}}}};
    ASSERT_TRUE(vms_->Report(node, report));
    EXPECT_EQ(StateOf(kAlice, vm.id), VmState::kStopped);
    kept = vms_->BootLog(kAlice, vm.id);
    ASSERT_TRUE(kept);
    EXPECT_EQ(kept->text, "bye\n");
    EXPECT_FALSE(kept->ran_for_s);
    events = vms_->Events(kAlice, vm.id);
    EXPECT_EQ(events->back().reason.find("failed to start"), std::string::npos);
}

TEST_F(VmServicePgTest, AResultForASupersededCommandChangesNothing) {
    const auto node = AddNode();
    const auto vm = Create(kAlice, Request());
    const auto create = Take(node).at(0);
    // The owner deletes it before the node answered the create.
    ASSERT_TRUE(vms_->Act(kAlice, vm.id, VmAction::kDelete));
    Ack(node, create, true);
    EXPECT_EQ(StateOf(kAlice, vm.id), VmState::kDeleting);
    const auto del = Take(node);
    ASSERT_EQ(del.size(), 1U);
    Ack(node, del[0]);
    EXPECT_EQ(StateOf(kAlice, vm.id), VmState::kDeleted);
}

TEST_F(VmServicePgTest, VmsFollowTheirNodeOfflineAndBack) {
    const auto node = AddNode();
    const auto vm = Create(kAlice, Request());
    ASSERT_TRUE(vms_->NodesWentOffline({node}));
    auto off = vms_->Get(kAlice, vm.id);
    ASSERT_TRUE(off);
    EXPECT_TRUE(off->node_offline);
    ASSERT_TRUE(vms_->NodesCameOnline({node}));
    auto on = vms_->Get(kAlice, vm.id);
    EXPECT_FALSE(on->node_offline);
}

TEST_F(VmServicePgTest, ANodeCannotAnswerAnotherNodesCommands) {
    const auto a = AddNode();
    const auto b = AddNode();
    const auto vm = Create(kAlice, Request(1, 1024, 5));
    const auto& placed = vm.node_id;
    const auto& stranger = placed == a ? b : a;
    const auto create = Take(placed).at(0);
    EXPECT_TRUE(Take(stranger).empty());
    proto::CommandResult r;
    r.command_id = create.id;
    r.success = false;
    r.message = "forged";
    auto st = vms_->CompleteCommand(stranger, r);
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code, common::ErrorCode::kNotFound);
    EXPECT_EQ(StateOf(kAlice, vm.id), VmState::kProvisioning);
}

TEST_F(VmServicePgTest, ATemplateIsRenderedIntoTheSeedAndItsSecretsAreNotKept) {
    const auto node = AddNode();
    auto request = Request(2, 2048, 10);
    request.image.clear();  // the template's image
    request.template_id = "code-server";
    request.template_params = {{"password", "correct horse battery"}};
    const auto vm = Create(kAlice, request);
    EXPECT_EQ(vm.image, "debian-12");
    EXPECT_EQ(vm.template_id, "code-server");
    EXPECT_FALSE(vm.template_params.contains("password")) << vm.template_params.dump();
    auto commands = Take(node);
    ASSERT_EQ(commands.size(), 1U);
    const auto user_data = commands[0].payload.at("userData").get<std::string>();
    EXPECT_TRUE(user_data.starts_with("Content-Type: multipart/mixed")) << user_data;
    EXPECT_NE(user_data.find("\"correct horse battery\""), std::string::npos);
    EXPECT_NE(user_data.find("code-server"), std::string::npos);

    // Once the node has answered, the rendered secret is gone from the database.
    Ack(node, commands[0]);
    auto lease = pool_->Acquire();
    ASSERT_TRUE(lease);
    pqxx::work tx(lease->conn());
    const auto stored = tx.exec1("SELECT payload::text FROM node_commands")[0].as<std::string>();
    EXPECT_EQ(stored.find("correct horse battery"), std::string::npos) << stored;
    EXPECT_NE(stored.find(vm.id), std::string::npos);
}

TEST_F(VmServicePgTest, TemplateRequestsAreCheckedBeforeAnythingIsCreated) {
    AddNode();
    auto request = Request(1, 1024, 10);
    request.template_id = "code-server";
    request.template_params = {{"password", "correct horse battery"}};
    auto small = vms_->Create(kAlice, request);
    ASSERT_FALSE(small);
    EXPECT_NE(small.error().message.find("at least 2 cores"), std::string::npos)
        << small.error().message;

    request = Request(2, 2048, 10);
    request.template_id = "code-server";
    request.template_params = {{"password", "short"}};
    EXPECT_EQ(vms_->Create(kAlice, request).error().code, common::ErrorCode::kInvalidArgument);
    request.template_params = {{"password", "correct horse battery"}, {"extra", 1}};
    EXPECT_EQ(vms_->Create(kAlice, request).error().code, common::ErrorCode::kInvalidArgument);
    request.template_params = {{"password", "correct horse battery"}};
    request.user_data = "#cloud-config\n{}";
    EXPECT_EQ(vms_->Create(kAlice, request).error().code, common::ErrorCode::kInvalidArgument);
    request.user_data.clear();
    request.template_id = "minecraft-9000";
    EXPECT_EQ(vms_->Create(kAlice, request).error().code, common::ErrorCode::kInvalidArgument);
    auto page = vms_->List(kAlice, 100, "");
    ASSERT_TRUE(page);
    EXPECT_TRUE(page->vms.empty());
}

TEST_F(VmServicePgTest, NodesThatRunNoVmsAreNeverChosen) {
    NodeSpec heartbeat_only;
    heartbeat_only.vms = false;
    AddNode(heartbeat_only);
    auto refused = vms_->Create(kAlice, Request());
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, common::ErrorCode::kUnprocessable);
    const auto node = AddNode();
    EXPECT_EQ(Create(kAlice, Request()).node_id, node);
}

}  // namespace
}  // namespace decloud::orchestrator
