// The marketplace on the real PostgreSQL adapter with an injected clock: every filter and sort,
// keyset pagination while nodes are inserted and rows rebuilt concurrently, the featured rule,
// profile ownership, reputation counts, review rules, and a quote that writes nothing.

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <pqxx/pqxx>
#include <set>
#include <thread>

#include "decloud/common/ids.hpp"
#include "decloud/crypto/crypto.hpp"
#include "decloud/testing/temp_pg_cluster.hpp"
#include "orchestrator/adapters/pg/migrations.hpp"
#include "orchestrator/adapters/pg/pg_auth_repository.hpp"
#include "orchestrator/adapters/pg/pg_marketplace_repository.hpp"
#include "orchestrator/adapters/pg/pg_node_repository.hpp"
#include "orchestrator/adapters/pg/pg_pool.hpp"
#include "orchestrator/adapters/pg/pg_relay_repository.hpp"
#include "orchestrator/adapters/pg/pg_user_repository.hpp"
#include "orchestrator/adapters/pg/pg_vm_repository.hpp"
#include "orchestrator/app/marketplace_service.hpp"
#include "orchestrator/app/node_service.hpp"
#include "orchestrator/app/vm_service.hpp"

namespace decloud::orchestrator {
namespace {

using namespace std::chrono;
using domain::MarketFilter;
using domain::MarketSort;
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
    std::uint64_t price = 10;
    std::string region = "eu-west";
    std::vector<std::string> tags;
    std::vector<std::pair<std::string, std::string>> gpus;  // vendor, model
    bool cgnat = false;
};

class MarketplacePgTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() { cluster_ = new testing::TempPgCluster(); }
    static void TearDownTestSuite() { delete cluster_; }

    void SetUp() override {
        const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
        url_ = cluster_->CreateDatabase(std::string("market_") + info->name());
        pool_ = std::make_unique<pg::PgPool>(url_, 6);
        ASSERT_TRUE(pg::RunMigrations(*pool_));
        node_repository_ = std::make_unique<pg::PgNodeRepository>(*pool_);
        user_repository_ = std::make_unique<pg::PgUserRepository>(*pool_);
        vm_repository_ = std::make_unique<pg::PgVmRepository>(*pool_);
        relay_repository_ = std::make_unique<pg::PgRelayRepository>(*pool_);
        market_repository_ = std::make_unique<pg::PgMarketplaceRepository>(*pool_);
        nodes_ = std::make_unique<app::NodeService>(*node_repository_, clock_,
                                                    app::NodeServiceOptions{});
        app::VmServiceOptions options;
        options.max_vms_per_user = 20;
        vms_ =
            std::make_unique<app::VmService>(*vm_repository_, *user_repository_, clock_, options);
        app::MarketplaceServiceOptions market_options;
        market_options.featured = {9500, 2};
        market_ = std::make_unique<app::MarketplaceService>(
            *market_repository_, *vms_, relay_repository_.get(), clock_, market_options);
        pg::PgAuthRepository auth(*pool_);
        for (const char* wallet : {kAlice, kBob})
            ASSERT_TRUE(auth.CreateSession(common::NewUuid(), wallet, "", clock_.Now(),
                                           clock_.Now() + hours{1}));
    }

    // Registers a node (signed, as an agent does) and brings it online with one heartbeat; with
    // `node_key`, the same node registers again (as an agent does after a restart).
    std::string AddNode(const NodeSpec& spec = {},
                        const crypto::Ed25519KeyPair* node_key = nullptr) {
        const auto key = node_key ? *node_key : crypto::Ed25519KeyPair::Generate();
        proto::RegisterNodeRequest r;
        r.node_public_key = key.PublicKeyBase64();
        r.operator_wallet = kOperator;
        // Only stored and classified, never contacted: a public address, or one in CGNAT space.
        const std::string ip = spec.cgnat ? "100.64.7.9" : "93.184.216.34";
        r.public_ip = ip;
        r.region = spec.region;
        r.tags = spec.tags;
        r.resources.cpu_model = "CPU";
        r.resources.cpu_cores = spec.cores;
        r.resources.cpu_threads = spec.cores * 2;
        r.resources.memory_bytes = spec.memory_gib << 30;
        r.resources.storage_total_bytes = std::max<std::uint64_t>(500, spec.disk_free_gib) << 30;
        r.resources.storage_free_bytes = spec.disk_free_gib << 30;
        int slot = 0;
        for (const auto& [vendor, model] : spec.gpus)
            r.resources.gpus.push_back(
                {"0000:0" + std::to_string(++slot) + ":00.0", "0x10de", "0x2204", vendor, model});
        r.compute = {spec.points, 4000, spec.cores};
        r.price_per_point_micro_usdc = spec.price;
        r.timestamp = common::FormatRfc3339(clock_.Now());
        const auto body = proto::ToJson(r).dump();
        auto reg = nodes_->Register(body, key.SignBase64(body), ip);
        EXPECT_TRUE(reg) << reg.error().message;
        if (!reg) return {};
        proto::HeartbeatRequest hb;
        hb.usage = {5, 1 << 30, 1ull << 30, 0};
        hb.agent_version = "0.1.0";
        EXPECT_EQ(nodes_->TryHeartbeat(reg->node_id, reg->node_token, hb),
                  app::FastAuth::kAccepted);
        EXPECT_TRUE(nodes_->FlushHeartbeats());
        return reg->node_id;
    }

    void Sql(const std::string& sql) {
        pqxx::connection c(url_);
        pqxx::work tx(c);
        tx.exec(sql);
        tx.commit();
    }

    long long Count(const std::string& table) {
        pqxx::connection c(url_);
        pqxx::work tx(c);
        return tx.exec1("SELECT count(*) FROM " + table)[0].as<long long>();
    }

    // Sets a node's availability history: online for `ratio` of the last 30 days.
    void SetUptime(const std::string& node_id, double ratio) {
        const auto now = clock_.Now();
        const auto start = now - days{30};
        const auto online_secs = static_cast<long long>(ratio * 30 * 86400);
        Sql("DELETE FROM node_availability WHERE node_id = '" + node_id + "';" +
            "UPDATE nodes SET registered_at = '" + common::FormatRfc3339(start) + "' WHERE id = '" +
            node_id + "';" +
            "INSERT INTO node_availability (node_id, started_at, ended_at) VALUES ('" + node_id +
            "', '" + common::FormatRfc3339(start) + "', '" + common::FormatRfc3339(start) +
            "'::timestamptz + interval '" + std::to_string(online_secs) + " seconds')");
    }

    void Refresh() {
        auto r = market_->Refresh();
        ASSERT_TRUE(r) << r.error().message;
    }

    std::vector<std::string> Ids(const MarketFilter& f) {
        auto page = market_->Search(f, "");
        EXPECT_TRUE(page) << page.error().message;
        std::vector<std::string> out;
        if (!page) return out;
        for (const auto& l : page->listings) out.push_back(l.node.node_id);
        return out;
    }

    std::set<std::string> IdSet(const MarketFilter& f) {
        const auto ids = Ids(f);
        return {ids.begin(), ids.end()};
    }

    app::CreateVmRequest Request(std::uint32_t cores = 2) {
        app::CreateVmRequest r;
        r.name = "vm";
        r.requirements.cores = cores;
        r.requirements.memory_mib = 2048;
        r.requirements.disk_gib = 20;
        r.image = "debian-12";
        return r;
    }

    // Creates a VM on `node` and acknowledges its create, so it is running.
    ports::VmRecord RunVm(const std::string& owner, const std::string& node) {
        auto req = Request();
        req.requirements.target_node_id = node;
        auto created = vms_->Create(owner, std::move(req));
        EXPECT_TRUE(created) << created.error().message;
        AckAll(node);
        return created->vm;
    }

    void AckAll(const std::string& node) {
        auto taken = vms_->TakeCommands(node);
        ASSERT_TRUE(taken);
        for (const auto& c : *taken) {
            proto::CommandResult r;
            r.command_id = c.id;
            r.success = true;
            r.data = {{"addresses", json::array()}};
            ASSERT_TRUE(vms_->CompleteCommand(node, r));
        }
    }

    using json = nlohmann::json;
    static testing::TempPgCluster* cluster_;
    std::string url_;
    common::ManualClock clock_{common::TimePoint{seconds{1'800'000'000}}};
    std::unique_ptr<pg::PgPool> pool_;
    std::unique_ptr<pg::PgNodeRepository> node_repository_;
    std::unique_ptr<pg::PgUserRepository> user_repository_;
    std::unique_ptr<pg::PgVmRepository> vm_repository_;
    std::unique_ptr<pg::PgRelayRepository> relay_repository_;
    std::unique_ptr<pg::PgMarketplaceRepository> market_repository_;
    std::unique_ptr<app::NodeService> nodes_;
    std::unique_ptr<app::VmService> vms_;
    std::unique_ptr<app::MarketplaceService> market_;
};

testing::TempPgCluster* MarketplacePgTest::cluster_ = nullptr;

TEST_F(MarketplacePgTest, EveryFilterSelectsExactlyTheMatchingNodes) {
    NodeSpec s;
    s.price = 5;
    s.tags = {"ssd", "nvme"};
    const auto cheap_ssd = AddNode(s);
    s = {};
    s.price = 20;
    s.region = "us-east";
    s.tags = {"ssd"};
    s.gpus = {{"NVIDIA", "GeForce RTX 4090"}, {"NVIDIA", "GeForce RTX 4090"}};
    const auto gpu2 = AddNode(s);
    s = {};
    s.price = 15;
    s.gpus = {{"AMD", "Radeon Pro W7900"}};
    s.cgnat = true;
    const auto amd_cgnat = AddNode(s);
    s = {};
    s.price = 30;
    s.points = 1600;
    s.cores = 16;
    s.memory_gib = 128;
    s.disk_free_gib = 2000;
    s.tags = {"hdd"};
    const auto big = AddNode(s);
    clock_.Advance(days{30});
    SetUptime(cheap_ssd, 0.999);
    SetUptime(gpu2, 0.90);
    SetUptime(amd_cgnat, 0.96);
    SetUptime(big, 0.50);
    Refresh();

    MarketFilter f;
    EXPECT_EQ(IdSet(f), (std::set<std::string>{cheap_ssd, gpu2, amd_cgnat, big}));
    f = {};
    f.tags_all = {"ssd", "nvme"};
    EXPECT_EQ(IdSet(f), (std::set<std::string>{cheap_ssd}));
    f = {};
    f.tags_any = {"nvme", "hdd"};
    EXPECT_EQ(IdSet(f), (std::set<std::string>{cheap_ssd, big}));
    f = {};
    f.region = "us-east";
    EXPECT_EQ(IdSet(f), (std::set<std::string>{gpu2}));
    f = {};
    f.min_price = 15;
    f.max_price = 20;
    EXPECT_EQ(IdSet(f), (std::set<std::string>{gpu2, amd_cgnat}));
    f = {};
    f.has_gpu = true;
    EXPECT_EQ(IdSet(f), (std::set<std::string>{gpu2, amd_cgnat}));
    f.has_gpu = false;
    EXPECT_EQ(IdSet(f), (std::set<std::string>{cheap_ssd, big}));
    f = {};
    f.gpu_vendor = "nvidia";  // case-insensitive
    EXPECT_EQ(IdSet(f), (std::set<std::string>{gpu2}));
    f = {};
    f.gpu_model = "w79";  // substring
    EXPECT_EQ(IdSet(f), (std::set<std::string>{amd_cgnat}));
    f.gpu_model = "%";  // a LIKE wildcard is a literal character here
    EXPECT_TRUE(Ids(f).empty());
    f = {};
    f.min_gpu_count = 2;
    EXPECT_EQ(IdSet(f), (std::set<std::string>{gpu2}));
    f = {};
    f.min_uptime_bp = 9500;
    EXPECT_EQ(IdSet(f), (std::set<std::string>{cheap_ssd, amd_cgnat}));
    f.min_uptime_bp = 9990;
    EXPECT_EQ(IdSet(f), (std::set<std::string>{cheap_ssd}));
    f = {};
    f.behind_cgnat = true;
    EXPECT_EQ(IdSet(f), (std::set<std::string>{amd_cgnat}));
    f.behind_cgnat = false;
    EXPECT_EQ(IdSet(f), (std::set<std::string>{cheap_ssd, gpu2, big}));
    f = {};
    f.min_free_memory_mib = 64 * 1024;
    EXPECT_EQ(IdSet(f), (std::set<std::string>{big}));
    f = {};
    f.min_free_disk_gib = 1000;
    EXPECT_EQ(IdSet(f), (std::set<std::string>{big}));
    // 400 raw points are 400 at guaranteed but 800 at burstable (2:1 is balanced, 4:1 burstable).
    f = {};
    f.min_free_points = 800;
    f.tier = domain::QualityTier::kGuaranteed;
    EXPECT_EQ(IdSet(f), (std::set<std::string>{big}));
    f.tier = domain::QualityTier::kBalanced;
    EXPECT_EQ(IdSet(f), (std::set<std::string>{cheap_ssd, gpu2, amd_cgnat, big}));
    // Filters combine.
    f = {};
    f.tags_any = {"ssd"};
    f.max_price = 10;
    f.min_uptime_bp = 9000;
    EXPECT_EQ(IdSet(f), (std::set<std::string>{cheap_ssd}));

    // Each result carries its reputation, live availability and the asked VM's price.
    f = {};
    f.region = "us-east";
    f.vm_cores = 2;
    f.tier = domain::QualityTier::kGuaranteed;
    auto page = market_->Search(f, "");
    ASSERT_TRUE(page);
    ASSERT_EQ(page->listings.size(), 1u);
    const auto& l = page->listings[0];
    EXPECT_EQ(l.node.uptime_bp, 9000u);
    EXPECT_TRUE(l.node.online);
    EXPECT_EQ(l.node.gpu_count, 2u);
    EXPECT_EQ(l.node.gpu_models.at(0), "GeForce RTX 4090");
    EXPECT_EQ(l.node.free_points, 400u);
    EXPECT_EQ(l.hourly_price_micro_usdc, 200u * 20);  // 2 cores x 100 points x 20
}

TEST_F(MarketplacePgTest, EverySortOrdersByItsKeyThenId) {
    std::vector<std::string> ids;
    for (int i = 0; i < 6; ++i) {
        NodeSpec s;
        s.price = static_cast<std::uint64_t>(10 + (i % 3));  // ties broken by id
        s.points = static_cast<std::uint32_t>(400 + 100 * i);
        ids.push_back(AddNode(s));
    }
    clock_.Advance(days{30});
    for (int i = 0; i < 6; ++i) SetUptime(ids[static_cast<std::size_t>(i)], 0.5 + 0.08 * i);
    // One VM on the last node lowers its free points below the second last's.
    RunVm(kAlice, ids[5]);
    Refresh();

    auto page_of = [&](MarketSort sort, bool descending) {
        MarketFilter f;
        f.sort = sort;
        f.descending = descending;
        auto page = market_->Search(f, "");
        EXPECT_TRUE(page);
        return page->listings;
    };
    for (const bool desc : {false, true}) {
        const auto by_price = page_of(MarketSort::kPrice, desc);
        ASSERT_EQ(by_price.size(), 6u);
        for (std::size_t i = 1; i < by_price.size(); ++i) {
            const auto& a = by_price[i - 1].node;
            const auto& b = by_price[i].node;
            const auto ka = std::make_pair(a.price_per_point, a.node_id);
            const auto kb = std::make_pair(b.price_per_point, b.node_id);
            EXPECT_TRUE(desc ? ka > kb : ka < kb) << i;
        }
    }
    const auto by_uptime = page_of(MarketSort::kUptime, true);
    std::vector<std::string> expected(ids.rbegin(), ids.rend());
    std::vector<std::string> got;
    for (const auto& l : by_uptime) got.push_back(l.node.node_id);
    EXPECT_EQ(got, expected);
    const auto by_points = page_of(MarketSort::kComputePoints, true);
    got.clear();
    for (const auto& l : by_points) got.push_back(l.node.node_id);
    EXPECT_EQ(got, expected);
    const auto by_free = page_of(MarketSort::kFreeCapacity, true);
    ASSERT_EQ(by_free.size(), 6u);
    for (std::size_t i = 1; i < by_free.size(); ++i)
        EXPECT_GT(std::make_pair(by_free[i - 1].node.free_points, by_free[i - 1].node.node_id),
                  std::make_pair(by_free[i].node.free_points, by_free[i].node.node_id));
    // Node 5: 900 points on 4 cores, a 2-core standard VM holds ceil(2 x 225 / 1.5) = 300, so it
    // ranks below node 4 (800 free) and node 3 (700 free), level with node 2 (600).
    EXPECT_EQ(by_free.at(0).node.node_id, ids[4]);
    EXPECT_EQ(by_free.at(1).node.node_id, ids[3]);
    const std::set<std::string> tied{by_free.at(2).node.node_id, by_free.at(3).node.node_id};
    EXPECT_EQ(tied, (std::set<std::string>{ids[2], ids[5]}));
    EXPECT_EQ(by_free.at(2).node.free_points, 600u);
}

TEST_F(MarketplacePgTest, PaginationIsStableWhileNodesAreAddedAndRowsRebuilt) {
    std::vector<std::string> initial;
    for (int i = 0; i < 40; ++i) {
        NodeSpec s;
        s.price = static_cast<std::uint64_t>(1 + (i * 7) % 13);  // many ties
        initial.push_back(AddNode(s));
    }
    Refresh();

    // Another replica rebuilds every row over and over while we page.
    std::atomic<bool> stop{false};
    std::atomic<int> refreshes{0};
    std::thread refresher([&] {
        while (!stop) {
            if (market_->Refresh()) ++refreshes;
        }
    });
    // Joined also when an assertion below returns early.
    struct Joiner {
        std::atomic<bool>& flag;
        std::thread& worker;
        ~Joiner() {
            flag = true;
            if (worker.joinable()) worker.join();
        }
    } joiner{stop, refresher};

    MarketFilter f;
    f.limit = 6;
    std::vector<ports::MarketNode> seen;
    std::string cursor;
    int pages = 0;
    for (;;) {
        auto page = market_->Search(f, cursor);
        ASSERT_TRUE(page) << page.error().message;
        for (auto& l : page->listings) seen.push_back(std::move(l.node));
        ++pages;
        // Inserts between pages, cheaper and dearer than everything seen.
        for (const std::uint64_t price : {0u, 7u, 50u}) {
            NodeSpec s;
            s.price = price;
            const auto id = AddNode(s);
            ASSERT_TRUE(market_repository_->Refresh(id, clock_.Now() - days{30}, clock_.Now(),
                                                    market_->options().featured));
        }
        if (page->next_cursor.empty()) break;
        cursor = page->next_cursor;
        ASSERT_LT(pages, 100);
    }
    stop = true;
    refresher.join();
    EXPECT_GT(refreshes.load(), 0);

    // Never a duplicate, always in (price, id) order, and every node that existed throughout
    // (with a key that did not change) seen exactly once.
    std::set<std::string> ids;
    for (std::size_t i = 0; i < seen.size(); ++i) {
        EXPECT_TRUE(ids.insert(seen[i].node_id).second) << "duplicate " << seen[i].node_id;
        if (i > 0) {
            EXPECT_LT(std::make_pair(seen[i - 1].price_per_point, seen[i - 1].node_id),
                      std::make_pair(seen[i].price_per_point, seen[i].node_id));
        }
    }
    for (const auto& id : initial) EXPECT_TRUE(ids.contains(id)) << "skipped " << id;
    // Nodes inserted behind the cursor are not seen; those ahead of it are.
    EXPECT_GT(ids.size(), initial.size());
}

TEST_F(MarketplacePgTest, CursorsAreBoundToTheirQueryAndRefuseTampering) {
    for (int i = 0; i < 3; ++i) AddNode();
    Refresh();
    MarketFilter f;
    f.limit = 1;
    auto page = market_->Search(f, "");
    ASSERT_TRUE(page);
    ASSERT_FALSE(page->next_cursor.empty());
    auto other = f;
    other.region = "eu-west";
    auto refused = market_->Search(other, page->next_cursor);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, common::ErrorCode::kInvalidArgument);
    auto tampered = page->next_cursor;
    tampered[tampered.size() / 2] = tampered[tampered.size() / 2] == 'x' ? 'y' : 'x';
    refused = market_->Search(f, tampered);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, common::ErrorCode::kInvalidArgument);
    f.limit = 0;
    refused = market_->Search(f, "");
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, common::ErrorCode::kInvalidArgument);
}

TEST_F(MarketplacePgTest, FeaturedAreTheBestUptimesAtOrAboveTheThreshold) {
    std::vector<std::string> ids;
    for (int i = 0; i < 5; ++i) ids.push_back(AddNode());
    clock_.Advance(days{30});
    SetUptime(ids[0], 0.999);
    SetUptime(ids[1], 0.95);  // exactly at the threshold
    SetUptime(ids[2], 0.97);
    SetUptime(ids[3], 0.9499);  // just below
    SetUptime(ids[4], 0.60);
    Refresh();
    // Count 2: the two best of the three qualifying.
    auto featured = market_->Featured(1, domain::QualityTier::kStandard);
    ASSERT_TRUE(featured);
    ASSERT_EQ(featured->size(), 2u);
    EXPECT_EQ((*featured)[0].node.node_id, ids[0]);
    EXPECT_EQ((*featured)[1].node.node_id, ids[2]);
    MarketFilter f;
    f.featured_only = true;
    EXPECT_EQ(IdSet(f), (std::set<std::string>{ids[0], ids[2]}));
    auto all = market_->Search(MarketFilter{}, "");
    ASSERT_TRUE(all);
    for (const auto& l : all->listings)
        EXPECT_EQ(l.node.featured, l.node.node_id == ids[0] || l.node.node_id == ids[2]);

    // The rule is configuration: a larger count takes the node at exactly 95 %, not 94.99 %.
    ASSERT_TRUE(market_repository_->Refresh(std::nullopt, clock_.Now() - days{30}, clock_.Now(),
                                            {9500, 10}));
    EXPECT_EQ(IdSet(f), (std::set<std::string>{ids[0], ids[1], ids[2]}));
    // A node whose uptime falls loses the mark on the next refresh.
    SetUptime(ids[0], 0.5);
    ASSERT_TRUE(market_repository_->Refresh(std::nullopt, clock_.Now() - days{30}, clock_.Now(),
                                            {9500, 10}));
    EXPECT_EQ(IdSet(f), (std::set<std::string>{ids[1], ids[2]}));
}

TEST_F(MarketplacePgTest, OnlyTheOperatorSetsTheProfileAndItIsValidated) {
    const auto node = AddNode();
    Refresh();
    domain::NodeProfile p;
    p.display_name = "Rack 7 — Zürich";
    p.description = "EPYC, fibre.\nQuiet neighbours.";
    p.tags = {"eu:ch", "fibre"};
    p.price_per_point_micro_usdc = 42;

    auto denied = market_->UpdateProfile(kAlice, node, p);
    ASSERT_FALSE(denied);
    EXPECT_EQ(denied.error().code, common::ErrorCode::kPermissionDenied);
    auto missing = market_->UpdateProfile(kOperator, common::NewUuid(), p);
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().code, common::ErrorCode::kNotFound);
    auto bad = p;
    bad.display_name = "bad\x01name";
    auto invalid = market_->UpdateProfile(kOperator, node, bad);
    ASSERT_FALSE(invalid);
    EXPECT_EQ(invalid.error().code, common::ErrorCode::kInvalidArgument);
    // Refused updates changed nothing.
    auto before = market_->Profile(node);
    ASSERT_TRUE(before);
    EXPECT_EQ(before->display_name, "");
    EXPECT_EQ(before->price_per_point, 10u);

    // The wallet compares case-insensitively (addresses arrive checksummed or not).
    std::string lower = kOperator;
    std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
    auto updated = market_->UpdateProfile(lower, node, p);
    ASSERT_TRUE(updated) << updated.error().message;
    EXPECT_EQ(updated->display_name, p.display_name);
    EXPECT_EQ(updated->description, p.description);
    EXPECT_EQ(updated->price_per_point, 42u);
    // Visible in search at once (no refresh), profile tags searchable.
    MarketFilter f;
    f.tags_all = {"fibre"};
    f.min_price = 42;
    EXPECT_EQ(Ids(f), std::vector<std::string>{node});
    // And the scheduler prices with it.
    auto quote = vms_->Quote(Request());
    ASSERT_TRUE(quote);
    ASSERT_FALSE(quote->schedule.candidates.empty());
    EXPECT_EQ(quote->schedule.candidates[0].hourly_rate_micro_usdc,
              quote->schedule.candidates[0].points * 42);
}

TEST_F(MarketplacePgTest, ReRegistrationKeepsThePriceAndProfileTheOperatorSet) {
    const auto key = crypto::Ed25519KeyPair::Generate();
    NodeSpec spec;
    spec.price = 10;
    spec.tags = {"agent-tag"};
    const auto node = AddNode(spec, &key);
    // Without a profile price, the agent's configured price follows each registration.
    clock_.Advance(seconds{1});
    spec.price = 12;
    ASSERT_EQ(AddNode(spec, &key), node);
    auto got = node_repository_->Get(node);
    ASSERT_TRUE(got);
    EXPECT_EQ(got->price_per_point_micro_usdc, 12u);

    domain::NodeProfile p;
    p.display_name = "Rack 7";
    p.tags = {"fibre"};
    p.price_per_point_micro_usdc = 42;
    ASSERT_TRUE(market_->UpdateProfile(kOperator, node, p));
    // The agent restarts with its own price: the operator's profile and price stay.
    clock_.Advance(seconds{1});
    spec.price = 10;
    ASSERT_EQ(AddNode(spec, &key), node);
    got = node_repository_->Get(node);
    ASSERT_TRUE(got);
    EXPECT_EQ(got->price_per_point_micro_usdc, 42u);
    Refresh();
    auto shown = market_->Profile(node);
    ASSERT_TRUE(shown);
    EXPECT_EQ(shown->display_name, "Rack 7");
    EXPECT_EQ(shown->price_per_point, 42u);
    EXPECT_NE(std::find(shown->tags.begin(), shown->tags.end(), "fibre"), shown->tags.end());
    EXPECT_NE(std::find(shown->tags.begin(), shown->tags.end(), "agent-tag"), shown->tags.end());

    // A later profile edit without a price keeps the one set before, across registrations too.
    p.price_per_point_micro_usdc.reset();
    p.display_name = "Rack 7b";
    ASSERT_TRUE(market_->UpdateProfile(kOperator, node, p));
    clock_.Advance(seconds{1});
    ASSERT_EQ(AddNode(spec, &key), node);
    got = node_repository_->Get(node);
    ASSERT_TRUE(got);
    EXPECT_EQ(got->price_per_point_micro_usdc, 42u);
    // And the scheduler prices with it.
    auto quote = vms_->Quote(Request());
    ASSERT_TRUE(quote);
    ASSERT_FALSE(quote->schedule.candidates.empty());
    EXPECT_EQ(quote->schedule.candidates[0].hourly_rate_micro_usdc,
              quote->schedule.candidates[0].points * 42);
}

TEST_F(MarketplacePgTest, ReviewsOnlyByTheOwnerOfAnEndedVmOncePerVm) {
    const auto node = AddNode();
    const auto vm = RunVm(kAlice, node);
    const auto other = RunVm(kAlice, node);

    auto early = market_->AddReview(kAlice, vm.id, 5, "great");
    ASSERT_FALSE(early);
    EXPECT_EQ(early.error().code, common::ErrorCode::kConflict);  // still running

    ASSERT_TRUE(vms_->Act(kAlice, vm.id, VmAction::kDelete));
    AckAll(node);
    auto not_owner = market_->AddReview(kBob, vm.id, 1, "never used it");
    ASSERT_FALSE(not_owner);
    EXPECT_EQ(not_owner.error().code, common::ErrorCode::kNotFound);
    auto unknown = market_->AddReview(kAlice, common::NewUuid(), 4, "");
    ASSERT_FALSE(unknown);
    EXPECT_EQ(unknown.error().code, common::ErrorCode::kNotFound);
    auto bad_rating = market_->AddReview(kAlice, vm.id, 6, "");
    ASSERT_FALSE(bad_rating);
    EXPECT_EQ(bad_rating.error().code, common::ErrorCode::kInvalidArgument);
    EXPECT_EQ(Count("node_reviews"), 0);

    auto first = market_->AddReview(kAlice, vm.id, 4, "Solid.\nFast disk.");
    ASSERT_TRUE(first) << first.error().message;
    EXPECT_EQ(first->node_id, node);
    auto second = market_->AddReview(kAlice, vm.id, 1, "changed my mind");
    ASSERT_FALSE(second);
    EXPECT_EQ(second.error().code, common::ErrorCode::kConflict);

    // Two concurrent reviews of the other VM once it ended: exactly one lands.
    ASSERT_TRUE(vms_->Act(kAlice, other.id, VmAction::kDelete));
    AckAll(node);
    std::atomic<int> ok{0};
    std::thread a([&] { ok += market_->AddReview(kAlice, other.id, 2, "a") ? 1 : 0; });
    std::thread b([&] { ok += market_->AddReview(kAlice, other.id, 2, "b") ? 1 : 0; });
    a.join();
    b.join();
    EXPECT_EQ(ok.load(), 1);

    auto reviews = market_->Reviews(node);
    ASSERT_TRUE(reviews);
    EXPECT_EQ(reviews->count, 2u);
    EXPECT_DOUBLE_EQ(reviews->average, 3.0);
    ASSERT_EQ(reviews->reviews.size(), 2u);
    auto no_node = market_->Reviews(common::NewUuid());
    ASSERT_FALSE(no_node);
    EXPECT_EQ(no_node.error().code, common::ErrorCode::kNotFound);

    // Reputation: hosted counts every VM placed there, completed those their owner deleted.
    const auto failed = RunVm(kBob, node);
    Sql("UPDATE vms SET state = 'failed' WHERE id = '" + failed.id + "'");
    Refresh();
    auto profile = market_->Profile(node);
    ASSERT_TRUE(profile);
    EXPECT_EQ(profile->vms_hosted, 3u);
    EXPECT_EQ(profile->vms_completed, 2u);
    EXPECT_EQ(profile->review_count, 2u);
    EXPECT_DOUBLE_EQ(profile->average_rating, 3.0);
}

TEST_F(MarketplacePgTest, LiveAvailabilityBeforeTheNextRefresh) {
    const auto node = AddNode();
    Refresh();
    RunVm(kAlice, node);
    // The search row still has the old free points; the listing reads them live.
    auto profile = market_->Profile(node);
    ASSERT_TRUE(profile);
    EXPECT_EQ(profile->free_points, 400u - 134u);
    EXPECT_EQ(profile->free_memory_mib, (16u * 1024 - 1024) - 2048);
    // The node stops heartbeating: it shows offline at once.
    clock_.Advance(minutes{5});
    ASSERT_TRUE(nodes_->SweepOffline());
    profile = market_->Profile(node);
    ASSERT_TRUE(profile);
    EXPECT_FALSE(profile->online);
}

TEST_F(MarketplacePgTest, AQuoteNamesNodePriceRelayAndExclusionsAndWritesNothing) {
    NodeSpec s;
    s.cgnat = true;
    s.price = 3;
    const auto cgnat = AddNode(s);
    s = {};
    s.price = 50;
    s.memory_gib = 2;  // too small for 4 GiB
    const auto small = AddNode(s);
    s = {};
    s.price = 60;
    const auto dear = AddNode(s);
    Refresh();
    RunVm(kBob, dear);  // so there are VM rows, events and commands to count

    const char* tables[] = {"vms",          "vm_events", "node_commands",    "node_market",
                            "node_reviews", "nodes",     "relay_assignments"};
    std::vector<long long> before;
    for (const char* t : tables) before.push_back(Count(t));

    auto req = Request();
    req.requirements.memory_mib = 4096;
    auto quote = market_->Quote(req);
    ASSERT_TRUE(quote) << quote.error().message;
    ASSERT_FALSE(quote->quote.schedule.candidates.empty());
    EXPECT_EQ(quote->quote.schedule.candidates[0].node_id, cgnat);
    EXPECT_EQ(quote->quote.schedule.candidates[0].hourly_rate_micro_usdc,
              quote->quote.schedule.candidates[0].points * 3);
    EXPECT_TRUE(quote->behind_cgnat);
    EXPECT_TRUE(quote->relay_node_id.empty());  // no relay assigned yet
    EXPECT_FALSE(quote->relay_note.empty());
    ASSERT_TRUE(quote->node);
    EXPECT_EQ(quote->node->node_id, cgnat);
    bool small_excluded = false;
    for (const auto& r : quote->quote.schedule.rejections)
        if (r.node_id == small) {
            small_excluded = true;
            EXPECT_EQ(r.reason, domain::RejectReason::kMemory);
        }
    EXPECT_TRUE(small_excluded);

    for (std::size_t i = 0; i < std::size(tables); ++i)
        EXPECT_EQ(Count(tables[i]), before[i]) << tables[i];
}

}  // namespace
}  // namespace decloud::orchestrator
