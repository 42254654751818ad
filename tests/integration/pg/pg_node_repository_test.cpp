// PgNodeRepository and the migrations against a real throwaway PostgreSQL.

#include <gtest/gtest.h>

#include <pqxx/pqxx>
#include <thread>

#include "decloud/common/ids.hpp"
#include "decloud/testing/temp_pg_cluster.hpp"
#include "orchestrator/adapters/pg/migrations.hpp"
#include "orchestrator/adapters/pg/pg_node_repository.hpp"

namespace decloud::orchestrator::adapters::pg {
namespace {

using namespace std::chrono;

class PgRepositoryTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() { cluster_ = new testing::TempPgCluster(); }
    static void TearDownTestSuite() { delete cluster_; }

    void SetUp() override {
        const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
        url_ = cluster_->CreateDatabase(std::string("repo_") + info->name());
        pool_ = std::make_unique<PgPool>(url_, 4);
        ASSERT_TRUE(RunMigrations(*pool_));
        repo_ = std::make_unique<PgNodeRepository>(*pool_);
    }

    domain::NodeRegistration Registration(const std::string& key) {
        domain::NodeRegistration r;
        r.public_key = key;
        r.operator_wallet = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";
        r.reported_ip = "8.8.4.4";
        r.observed_ip = "8.8.4.4";
        r.region = "eu-west";
        r.tags = {"ssd", "gpu"};
        r.resources.cpu_model = "CPU";
        r.resources.cpu_cores = 4;
        r.resources.cpu_threads = 8;
        r.resources.memory_bytes = 1ull << 34;
        r.resources.gpus.push_back({"0000:01:00.0", "0x10de", "0x2204", "NVIDIA", "RTX 3090"});
        r.compute = {400, 16000.5, 8};
        r.agent_version = "0.1.0";
        r.cgnat = {false, false, "public"};
        r.credential_hash = "aa";
        return r;
    }

    std::vector<domain::AvailabilityInterval> Availability(const std::string& id,
                                                           common::TimePoint since) {
        auto h = repo_->History(std::vector{id}, since);
        EXPECT_TRUE(h) << h.error().message;
        return h && h->contains(id) ? h->at(id).availability
                                    : std::vector<domain::AvailabilityInterval>{};
    }

    std::vector<domain::DailyHeartbeatStats> DailyStats(const std::string& id,
                                                        common::TimePoint since) {
        auto h = repo_->History(std::vector{id}, since);
        EXPECT_TRUE(h) << h.error().message;
        return h && h->contains(id) ? h->at(id).daily : std::vector<domain::DailyHeartbeatStats>{};
    }

    domain::BufferedHeartbeat Beat(const std::string& id, common::TimePoint at,
                                   std::uint32_t count = 1) {
        domain::BufferedHeartbeat hb;
        hb.node_id = id;
        hb.first_at = at;
        hb.last_at = at;
        hb.count = count;
        hb.usage = {12.5, 1 << 20, 2 << 20, 1};
        hb.agent_version = "0.1.1";
        return hb;
    }

    static testing::TempPgCluster* cluster_;
    std::string url_;
    std::unique_ptr<PgPool> pool_;
    std::unique_ptr<PgNodeRepository> repo_;
    common::TimePoint t0_{seconds{1'800'000'000}};
};

testing::TempPgCluster* PgRepositoryTest::cluster_ = nullptr;

TEST_F(PgRepositoryTest, MigrationsAreIdempotentAndRecorded) {
    ASSERT_TRUE(RunMigrations(*pool_));
    ASSERT_TRUE(RunMigrations(*pool_));
    pqxx::connection conn(url_);
    pqxx::work tx(conn);
    EXPECT_EQ(tx.exec1("SELECT count(*) FROM schema_migrations")[0].as<int>(),
              static_cast<int>(EmbeddedMigrations().size()));
}

TEST_F(PgRepositoryTest, TwoOrchestratorsMigratingAtOnce) {
    const auto url = cluster_->CreateDatabase("repo_concurrent_migrations");
    PgPool a(url, 1), b(url, 1);
    common::Status ra, rb;
    std::thread ta([&] { ra = RunMigrations(a); });
    std::thread tb([&] { rb = RunMigrations(b); });
    ta.join();
    tb.join();
    EXPECT_TRUE(ra) << ra.error().message;
    EXPECT_TRUE(rb) << rb.error().message;
    pqxx::connection conn(url);
    pqxx::work tx(conn);
    EXPECT_EQ(tx.exec1("SELECT count(*) FROM schema_migrations")[0].as<int>(),
              static_cast<int>(EmbeddedMigrations().size()));
}

TEST_F(PgRepositoryTest, ChangedMigrationIsRefused) {
    {
        pqxx::connection conn(url_);
        pqxx::work tx(conn);
        tx.exec0("UPDATE schema_migrations SET checksum = 'tampered' WHERE version = 1");
        tx.commit();
    }
    auto st = RunMigrations(*pool_);
    ASSERT_FALSE(st);
    EXPECT_NE(st.error().message.find("changed after it was applied"), std::string::npos);
}

TEST_F(PgRepositoryTest, RegisterThenReRegisterKeepsIdAndHistory) {
    auto first = repo_->Register(Registration("key-1"), t0_);
    ASSERT_TRUE(first) << first.error().message;
    EXPECT_TRUE(first->created);
    const auto& n = first->node;
    EXPECT_TRUE(common::IsUuid(n.id));
    EXPECT_EQ(n.status, domain::NodeStatus::kOffline);
    EXPECT_EQ(n.tags, (std::vector<std::string>{"ssd", "gpu"}));
    EXPECT_EQ(n.resources.gpus.size(), 1u);
    EXPECT_DOUBLE_EQ(n.compute.events_per_second, 16000.5);
    EXPECT_EQ(n.registered_at, t0_);
    ASSERT_TRUE(
        repo_->ApplyHeartbeats(std::vector{Beat(n.id, t0_ + seconds{1})}, seconds{15}, t0_));

    auto again = Registration("key-1");
    again.region = "us-east";
    again.credential_hash = "bb";
    again.cgnat_override = true;
    again.cgnat = {true, true, "operator"};
    auto second = repo_->Register(again, t0_ + hours{1});
    ASSERT_TRUE(second);
    EXPECT_FALSE(second->created);
    EXPECT_EQ(second->node.id, n.id);
    EXPECT_EQ(second->node.region, "us-east");
    EXPECT_EQ(second->node.registered_at, t0_);
    EXPECT_EQ(second->node.updated_at, t0_ + hours{1});
    EXPECT_EQ(second->node.cgnat_override, std::optional<bool>(true));
    EXPECT_TRUE(second->node.cgnat.requires_relay);
    EXPECT_EQ(second->node.status, domain::NodeStatus::kOnline) << "status kept";
    EXPECT_EQ(repo_->GetCredential(n.id)->credential_hash, "bb");
    EXPECT_EQ(DailyStats(n.id, t0_ - hours{24}).size(), 1u);
}

TEST_F(PgRepositoryTest, UnknownIdsAreNotFound) {
    EXPECT_EQ(repo_->Get("00000000-0000-4000-8000-000000000000").error().code,
              common::ErrorCode::kNotFound);
    EXPECT_EQ(repo_->GetCredential("nope").error().code, common::ErrorCode::kNotFound);
    EXPECT_EQ(repo_->Get("'; DROP TABLE nodes; --").error().code, common::ErrorCode::kNotFound);
}

TEST_F(PgRepositoryTest, ListPagesAndFilters) {
    std::vector<std::string> ids;
    for (int i = 0; i < 5; ++i)
        ids.push_back(repo_->Register(Registration("k" + std::to_string(i)), t0_)->node.id);
    std::sort(ids.begin(), ids.end());
    ASSERT_TRUE(repo_->ApplyHeartbeats(std::vector{Beat(ids[1], t0_)}, seconds{15}, t0_));
    ports::NodeListQuery q;
    q.limit = 2;
    auto page = repo_->List(q);
    ASSERT_EQ(page->size(), 2u);
    EXPECT_EQ((*page)[0].id, ids[0]);
    q.after_id = (*page)[1].id;
    page = repo_->List(q);
    EXPECT_EQ((*page)[0].id, ids[2]);
    q = {};
    q.status = domain::NodeStatus::kOnline;
    page = repo_->List(q);
    ASSERT_EQ(page->size(), 1u);
    EXPECT_EQ((*page)[0].id, ids[1]);
    q = {};
    q.operator_wallet = "0xsomeoneelse";
    EXPECT_TRUE(repo_->List(q)->empty());
}

TEST_F(PgRepositoryTest, HeartbeatsOpenIntervalsCountDaysAndMissedSlots) {
    const auto id = repo_->Register(Registration("hb"), t0_)->node.id;
    auto r = repo_->ApplyHeartbeats(
        std::vector{Beat(id, t0_, 2), Beat("00000000-0000-4000-8000-000000000000", t0_)},
        seconds{15}, t0_);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->nodes_updated, 1u);
    EXPECT_EQ(r->unknown_nodes, 1u);
    EXPECT_EQ(r->came_online, std::vector<std::string>{id});
    auto node = repo_->Get(id);
    EXPECT_EQ(node->status, domain::NodeStatus::kOnline);
    EXPECT_EQ(node->last_heartbeat_at, t0_);
    EXPECT_DOUBLE_EQ(node->usage.cpu_percent, 12.5);
    EXPECT_EQ(node->agent_version, "0.1.1");
    // 61 s later at a 15 s interval: 3 slots missed.
    r = repo_->ApplyHeartbeats(std::vector{Beat(id, t0_ + seconds{61})}, seconds{15}, t0_);
    EXPECT_TRUE(r->came_online.empty());
    auto days = DailyStats(id, t0_ - hours{1});
    ASSERT_EQ(days.size(), 1u);
    EXPECT_EQ(days[0].heartbeats, 3u);
    EXPECT_EQ(days[0].missed, 3u);
    auto intervals = Availability(id, t0_ - hours{1});
    ASSERT_EQ(intervals.size(), 1u);
    EXPECT_EQ(intervals[0].start, t0_);
    EXPECT_FALSE(intervals[0].end.has_value());
}

TEST_F(PgRepositoryTest, SweepClosesIntervalsAtTheLastHeartbeat) {
    const auto id = repo_->Register(Registration("sw"), t0_)->node.id;
    ASSERT_TRUE(repo_->ApplyHeartbeats(std::vector{Beat(id, t0_)}, seconds{15}, t0_));
    ASSERT_TRUE(repo_->ApplyHeartbeats(std::vector{Beat(id, t0_ + seconds{15})}, seconds{15}, t0_));
    EXPECT_TRUE(repo_->MarkStaleOffline(t0_, t0_ + minutes{2})->empty());
    auto swept = repo_->MarkStaleOffline(t0_ + minutes{3}, t0_ + minutes{5});
    ASSERT_TRUE(swept);
    EXPECT_EQ(*swept, std::vector<std::string>{id});
    auto intervals = Availability(id, t0_ - hours{1});
    ASSERT_EQ(intervals.size(), 1u);
    EXPECT_EQ(intervals[0].end, t0_ + seconds{15});
    // Back again: a second interval.
    ASSERT_TRUE(repo_->ApplyHeartbeats(std::vector{Beat(id, t0_ + hours{1})}, seconds{15}, t0_));
    intervals = Availability(id, t0_ - hours{1});
    ASSERT_EQ(intervals.size(), 2u);
    EXPECT_EQ(intervals[1].start, t0_ + hours{1});
    EXPECT_TRUE(Availability(id, t0_ + minutes{30}).size() == 1u)
        << "closed intervals before `since` are left out";
}

TEST_F(PgRepositoryTest, OnlyOneReplicaSweepsAtATime) {
    const auto id = repo_->Register(Registration("lock"), t0_)->node.id;
    ASSERT_TRUE(repo_->ApplyHeartbeats(std::vector{Beat(id, t0_)}, seconds{15}, t0_));
    // Another replica holds the sweeper's lock in an open transaction.
    pqxx::connection other(url_);
    pqxx::work holder(other);
    ASSERT_TRUE(holder
                    .exec1("SELECT pg_try_advisory_xact_lock(" +
                           std::to_string(0x6465636c6f7501LL) + ")")[0]
                    .as<bool>());
    EXPECT_TRUE(repo_->MarkStaleOffline(t0_ + hours{1}, t0_ + hours{1})->empty());
    holder.abort();
    EXPECT_EQ(repo_->MarkStaleOffline(t0_ + hours{1}, t0_ + hours{1})->size(), 1u);
}

TEST_F(PgRepositoryTest, ConsumeOnceRefusesReplaysUntilExpiry) {
    ASSERT_TRUE(repo_->ConsumeOnce("sig-1", t0_ + minutes{5}, t0_));
    auto replay = repo_->ConsumeOnce("sig-1", t0_ + minutes{5}, t0_ + minutes{1});
    ASSERT_FALSE(replay);
    EXPECT_EQ(replay.error().code, common::ErrorCode::kConflict);
    EXPECT_TRUE(repo_->ConsumeOnce("sig-1", t0_ + minutes{20}, t0_ + minutes{6}))
        << "expired, purged";
}

TEST_F(PgRepositoryTest, StateSurvivesAClusterRestart) {
    const auto id = repo_->Register(Registration("restart"), t0_)->node.id;
    ASSERT_TRUE(repo_->ApplyHeartbeats(std::vector{Beat(id, t0_)}, seconds{15}, t0_));
    repo_.reset();
    pool_.reset();
    cluster_->Stop();
    cluster_->Start();
    pool_ = std::make_unique<PgPool>(url_, 2);
    ASSERT_TRUE(RunMigrations(*pool_));
    repo_ = std::make_unique<PgNodeRepository>(*pool_);
    auto node = repo_->Get(id);
    ASSERT_TRUE(node) << node.error().message;
    EXPECT_EQ(node->status, domain::NodeStatus::kOnline);
    EXPECT_EQ(node->last_heartbeat_at, t0_);
}

TEST_F(PgRepositoryTest, UnreachableDatabaseIsUnavailable) {
    PgPool dead("host=127.0.0.1 port=1 user=postgres dbname=x connect_timeout=2", 1);
    PgNodeRepository repo(dead);
    auto r = repo.Get("00000000-0000-4000-8000-000000000000");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, common::ErrorCode::kUnavailable);
    EXPECT_EQ(RunMigrations(dead).error().code, common::ErrorCode::kUnavailable);
}

TEST_F(PgRepositoryTest, TwentyThousandHeartbeatsInOneFlush) {
    constexpr int kNodes = 20000;
    // Insert the nodes directly: registration is not what is measured here.
    {
        pqxx::connection conn(url_);
        pqxx::work tx(conn);
        tx.exec0(
            "INSERT INTO nodes (id, public_key, operator_wallet, credential_hash, resources, "
            "compute_points, "
            "benchmark_events_per_second, benchmark_threads, behind_cgnat, requires_relay, "
            "cgnat_reason, status, "
            "registered_at, updated_at) SELECT gen_random_uuid(), 'k' || g, '0x0', 'h', '{}', 1, "
            "1, 1, false, "
            "false, '', 'offline', now(), now() FROM generate_series(1, " +
            std::to_string(kNodes) + ") g");
        tx.commit();
    }
    std::vector<domain::BufferedHeartbeat> batch;
    {
        pqxx::connection conn(url_);
        pqxx::work tx(conn);
        for (const auto& row : tx.exec("SELECT id::text FROM nodes WHERE public_key LIKE 'k%'"))
            batch.push_back(Beat(row[0].as<std::string>(), t0_));
    }
    ASSERT_EQ(batch.size(), static_cast<std::size_t>(kNodes));
    for (int round = 0; round < 2; ++round) {
        for (auto& hb : batch) hb.first_at = hb.last_at = t0_ + seconds{15 * round};
        const auto start = steady_clock::now();
        auto r = repo_->ApplyHeartbeats(batch, seconds{15}, t0_);
        const auto ms = duration_cast<milliseconds>(steady_clock::now() - start).count();
        ASSERT_TRUE(r) << r.error().message;
        EXPECT_EQ(r->nodes_updated, static_cast<std::size_t>(kNodes));
        std::printf("ApplyHeartbeats: %d nodes in %lld ms (%s)\n", kNodes,
                    static_cast<long long>(ms),
                    round == 0 ? "all coming online" : "already online");
    }
}

}  // namespace
}  // namespace decloud::orchestrator::adapters::pg
