// The node service on the real PostgreSQL adapter with an injected clock: registration,
// heartbeats, the offline sweep after 2 minutes, uptime over a simulated month, and state
// surviving a restart (a new pool, repository and service on the same database).

#include <gtest/gtest.h>

#include "decloud/testing/temp_pg_cluster.hpp"
#include "orchestrator/adapters/pg/migrations.hpp"
#include "orchestrator/adapters/pg/pg_node_repository.hpp"
#include "orchestrator/adapters/pg/pg_pool.hpp"
#include "orchestrator/app/node_service.hpp"

namespace decloud::orchestrator {
namespace {

using namespace std::chrono;
namespace pg = adapters::pg;

class NodeServicePgTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() { cluster_ = new testing::TempPgCluster(); }
    static void TearDownTestSuite() { delete cluster_; }

    void SetUp() override {
        const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
        url_ = cluster_->CreateDatabase(std::string("svc_") + info->name());
        Start();
    }

    void Start() {
        service_.reset();
        repository_.reset();
        pool_ = std::make_unique<pg::PgPool>(url_, 2);
        ASSERT_TRUE(pg::RunMigrations(*pool_));
        repository_ = std::make_unique<pg::PgNodeRepository>(*pool_);
        service_ =
            std::make_unique<app::NodeService>(*repository_, clock_, app::NodeServiceOptions{});
    }

    proto::RegisterNodeResponse Register(const crypto::Ed25519KeyPair& key, const std::string& ip) {
        proto::RegisterNodeRequest r;
        r.node_public_key = key.PublicKeyBase64();
        r.operator_wallet = "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB";
        r.public_ip = ip;
        r.region = "us-east";
        r.tags = {"nvme"};
        r.resources.cpu_model = "CPU";
        r.resources.cpu_cores = 4;
        r.resources.cpu_threads = 8;
        r.resources.memory_bytes = 16ull << 30;
        r.resources.storage_total_bytes = 100ull << 30;
        r.resources.storage_free_bytes = 60ull << 30;
        r.compute = {400, 4000, 8};
        r.timestamp = common::FormatRfc3339(clock_.Now());
        const auto body = proto::ToJson(r).dump();
        auto resp = service_->Register(body, key.SignBase64(body), ip);
        EXPECT_TRUE(resp) << resp.error().message;
        return *resp;
    }

    void Beat(const proto::RegisterNodeResponse& reg) {
        const proto::HeartbeatRequest hb{{25, 1 << 30, 2ull << 30, 1}, "0.1.0"};
        if (service_->TryHeartbeat(reg.node_id, reg.node_token, hb) != app::FastAuth::kAccepted) {
            auto r = service_->HeartbeatAfterLookup(reg.node_id, reg.node_token, hb);
            ASSERT_TRUE(r) << r.error().message;
        }
    }

    static testing::TempPgCluster* cluster_;
    std::string url_;
    common::ManualClock clock_{common::TimePoint{seconds{1'800'000'000}}};
    std::unique_ptr<pg::PgPool> pool_;
    std::unique_ptr<pg::PgNodeRepository> repository_;
    std::unique_ptr<app::NodeService> service_;
};

testing::TempPgCluster* NodeServicePgTest::cluster_ = nullptr;

TEST_F(NodeServicePgTest, RegisterHeartbeatSweepAndComeBack) {
    const auto key = crypto::Ed25519KeyPair::Generate();
    const auto reg = Register(key, "8.8.4.4");
    EXPECT_FALSE(reg.requires_relay);
    EXPECT_EQ(service_->Get(reg.node_id)->node.status, domain::NodeStatus::kOffline);

    for (int i = 0; i < 4; ++i) {
        Beat(reg);
        ASSERT_TRUE(service_->FlushHeartbeats());
        clock_.Advance(seconds{15});
    }
    auto view = service_->Get(reg.node_id);
    ASSERT_TRUE(view);
    EXPECT_EQ(view->node.status, domain::NodeStatus::kOnline);
    EXPECT_EQ(view->heartbeats_today, 4u);
    EXPECT_EQ(view->missed_heartbeats_today, 0u);
    EXPECT_EQ(view->node.usage.running_vms, 1u);

    // 1:59 after the last heartbeat: still online. 2:01: offline.
    clock_.Advance(minutes{2} - seconds{15} - seconds{1});
    EXPECT_TRUE(service_->SweepOffline()->empty());
    clock_.Advance(seconds{2});
    EXPECT_EQ(*service_->SweepOffline(), std::vector<std::string>{reg.node_id});
    EXPECT_EQ(service_->Get(reg.node_id)->node.status, domain::NodeStatus::kOffline);

    clock_.Advance(minutes{10});
    Beat(reg);
    auto flushed = service_->FlushHeartbeats();
    ASSERT_TRUE(flushed);
    EXPECT_EQ(flushed->came_online, std::vector<std::string>{reg.node_id});
    view = service_->Get(reg.node_id);
    EXPECT_EQ(view->node.status, domain::NodeStatus::kOnline);
    EXPECT_GT(view->missed_heartbeats_today, 40u);
}

TEST_F(NodeServicePgTest, ReRegistrationKeepsIdentityAndHistory) {
    const auto key = crypto::Ed25519KeyPair::Generate();
    const auto first = Register(key, "8.8.4.4");
    Beat(first);
    ASSERT_TRUE(service_->FlushHeartbeats());
    clock_.Advance(seconds{30});
    const auto second = Register(key, "100.70.0.9");
    EXPECT_EQ(second.node_id, first.node_id);
    EXPECT_TRUE(second.requires_relay) << "the new address is in CGNAT space";
    auto view = service_->Get(first.node_id);
    EXPECT_EQ(view->heartbeats_today, 1u) << "history kept";
    EXPECT_EQ(view->node.reported_ip, "100.70.0.9");
    auto page = service_->List({});
    ASSERT_TRUE(page);
    EXPECT_EQ(page->nodes.size(), 1u);
}

TEST_F(NodeServicePgTest, StateSurvivesARestart) {
    const auto reg = Register(crypto::Ed25519KeyPair::Generate(), "8.8.4.4");
    Beat(reg);
    ASSERT_TRUE(service_->FlushHeartbeats());
    Start();  // a new process, as far as the database can tell
    auto view = service_->Get(reg.node_id);
    ASSERT_TRUE(view);
    EXPECT_EQ(view->node.status, domain::NodeStatus::kOnline);
    // The new service has an empty credential cache and learns the token from PostgreSQL.
    Beat(reg);
    ASSERT_TRUE(service_->FlushHeartbeats());
    EXPECT_EQ(service_->Get(reg.node_id)->heartbeats_today, 2u);
}

TEST_F(NodeServicePgTest, UptimeOverASimulatedMonth) {
    const auto reg = Register(crypto::Ed25519KeyPair::Generate(), "8.8.4.4");
    // 30 days: a heartbeat every hour from hour 0 to hour 19, then silence until the next
    // day. The sweep closes each day's interval at its last heartbeat: 19 h online of 24 h.
    // (Heartbeats an hour apart count as missed slots too; only availability matters here.)
    for (int day = 0; day < 30; ++day) {
        for (int h = 0; h < 20; ++h) {
            Beat(reg);
            ASSERT_TRUE(service_->FlushHeartbeats());
            clock_.Advance(minutes{60});
        }
        ASSERT_EQ(service_->SweepOffline()->size(), 1u);
        clock_.Advance(hours{4});
    }
    const auto view = service_->Get(reg.node_id);
    ASSERT_TRUE(view);
    EXPECT_NEAR(view->uptime_ratio_30d, 19.0 / 24.0, 0.01) << view->uptime_ratio_30d;
}

}  // namespace
}  // namespace decloud::orchestrator
