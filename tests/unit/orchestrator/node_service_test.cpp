#include "orchestrator/app/node_service.hpp"

#include <gtest/gtest.h>

#include "decloud/fakes/in_memory_node_repository.hpp"

namespace decloud::orchestrator::app {
namespace {

using namespace std::chrono;
constexpr const char* kWallet = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";

struct Signed {
    std::string body;
    std::string signature;
};

class NodeServiceTest : public ::testing::Test {
  protected:
    NodeServiceTest() : service_(repo_, clock_, NodeServiceOptions{}) {}

    proto::RegisterNodeRequest Request(const crypto::Ed25519KeyPair& key) {
        proto::RegisterNodeRequest r;
        r.node_public_key = key.PublicKeyBase64();
        r.operator_wallet = kWallet;
        r.public_ip = "8.8.4.4";
        r.region = "eu-west";
        r.tags = {"ssd"};
        r.resources.cpu_model = "Test CPU";
        r.resources.cpu_cores = 4;
        r.resources.cpu_threads = 8;
        r.resources.memory_bytes = 16ull << 30;
        r.resources.storage_total_bytes = 100ull << 30;
        r.resources.storage_free_bytes = 50ull << 30;
        r.compute = {400, 4000, 8};
        r.agent_version = "0.1.0";
        r.timestamp = common::FormatRfc3339(clock_.Now());
        return r;
    }

    Signed Sign(const crypto::Ed25519KeyPair& key, const proto::RegisterNodeRequest& r) {
        Signed s;
        s.body = proto::ToJson(r).dump();
        s.signature = key.SignBase64(s.body);
        return s;
    }

    common::Result<proto::RegisterNodeResponse> Register(const crypto::Ed25519KeyPair& key,
                                                         const std::string& observed = "8.8.4.4") {
        const auto s = Sign(key, Request(key));
        return service_.Register(s.body, s.signature, observed);
    }

    proto::HeartbeatRequest Beat(double cpu = 10) { return {{cpu, 1 << 20, 1 << 20, 0}, "0.1.0"}; }

    fakes::InMemoryNodeRepository repo_;
    common::ManualClock clock_;
    NodeService service_;
};

TEST_F(NodeServiceTest, RegistersAndReRegistersWithoutDuplicating) {
    const auto key = crypto::Ed25519KeyPair::Generate();
    auto first = Register(key);
    ASSERT_TRUE(first) << first.error().message;
    EXPECT_EQ(first->heartbeat_interval_seconds, 15u);
    EXPECT_FALSE(first->behind_cgnat);
    clock_.Advance(seconds{1});
    auto second = Register(key);
    ASSERT_TRUE(second) << second.error().message;
    EXPECT_EQ(second->node_id, first->node_id);
    EXPECT_NE(second->node_token, first->node_token);
    EXPECT_EQ(repo_.Count(), 1u);
    // The old token is dead, the new one works.
    EXPECT_EQ(service_.TryHeartbeat(first->node_id, first->node_token, Beat()), FastAuth::kUnknown);
    EXPECT_FALSE(service_.HeartbeatAfterLookup(first->node_id, first->node_token, Beat()));
    EXPECT_EQ(service_.TryHeartbeat(second->node_id, second->node_token, Beat()),
              FastAuth::kAccepted);
}

TEST_F(NodeServiceTest, DetectsCgnatFromTheReportedAddress) {
    const auto key = crypto::Ed25519KeyPair::Generate();
    auto req = Request(key);
    req.public_ip = "100.80.1.2";
    const auto s = Sign(key, req);
    auto r = service_.Register(s.body, s.signature, "8.8.4.4");
    ASSERT_TRUE(r);
    EXPECT_TRUE(r->behind_cgnat);
    EXPECT_TRUE(r->requires_relay);
    EXPECT_NE(r->cgnat_reason.find("CGNAT"), std::string::npos);
    auto view = service_.Get(r->node_id);
    ASSERT_TRUE(view);
    EXPECT_TRUE(view->node.cgnat.requires_relay);
}

TEST_F(NodeServiceTest, RejectsBadRegistrationsAndStoresNothing) {
    const auto key = crypto::Ed25519KeyPair::Generate();
    const auto other = crypto::Ed25519KeyPair::Generate();
    const auto good = Sign(key, Request(key));

    struct Case {
        std::string what;
        std::string body;
        std::string signature;
        common::ErrorCode code;
    };
    auto with = [&](auto mutate) {
        auto r = Request(key);
        mutate(r);
        return Sign(key, r);
    };
    const auto bad_wallet =
        with([](auto& r) { r.operator_wallet = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD"; });
    const auto bad_ip = with([](auto& r) { r.public_ip = "not-an-ip"; });
    const auto bad_region = with([](auto& r) { r.region = "EU West!"; });
    const auto bad_tags = with([](auto& r) { r.tags = {"ok", "no spaces"}; });
    const auto stale =
        with([&](auto& r) { r.timestamp = common::FormatRfc3339(clock_.Now() - minutes{6}); });
    const auto future =
        with([&](auto& r) { r.timestamp = common::FormatRfc3339(clock_.Now() + minutes{6}); });
    const auto no_threads = with([](auto& r) { r.resources.cpu_threads = 0; });
    const auto bad_key = with([](auto& r) { r.node_public_key = "AAAA"; });
    const std::vector<Case> cases = {
        {"malformed json", "{\"nodePublicKey\":", "x", common::ErrorCode::kInvalidArgument},
        {"unsigned", good.body, "", common::ErrorCode::kUnauthenticated},
        {"signed by another key", good.body, other.SignBase64(good.body),
         common::ErrorCode::kUnauthenticated},
        {"tampered body", good.body + " ", good.signature, common::ErrorCode::kUnauthenticated},
        {"bad checksum", bad_wallet.body, bad_wallet.signature,
         common::ErrorCode::kInvalidArgument},
        {"bad ip", bad_ip.body, bad_ip.signature, common::ErrorCode::kInvalidArgument},
        {"bad region", bad_region.body, bad_region.signature, common::ErrorCode::kInvalidArgument},
        {"bad tags", bad_tags.body, bad_tags.signature, common::ErrorCode::kInvalidArgument},
        {"stale", stale.body, stale.signature, common::ErrorCode::kUnauthenticated},
        {"future", future.body, future.signature, common::ErrorCode::kUnauthenticated},
        {"no threads", no_threads.body, no_threads.signature, common::ErrorCode::kInvalidArgument},
        {"bad key", bad_key.body, bad_key.signature, common::ErrorCode::kInvalidArgument},
    };
    for (const auto& c : cases) {
        auto r = service_.Register(c.body, c.signature, "8.8.4.4");
        ASSERT_FALSE(r) << c.what;
        EXPECT_EQ(r.error().code, c.code) << c.what << ": " << r.error().message;
    }
    EXPECT_EQ(repo_.Count(), 0u);
    EXPECT_EQ(repo_.ConsumedTokens(), 0u) << "bad requests must not burn signatures either";
}

TEST_F(NodeServiceTest, ReplayedRegistrationIsRefused) {
    const auto key = crypto::Ed25519KeyPair::Generate();
    const auto s = Sign(key, Request(key));
    ASSERT_TRUE(service_.Register(s.body, s.signature, "8.8.4.4"));
    auto replay = service_.Register(s.body, s.signature, "8.8.4.4");
    ASSERT_FALSE(replay);
    EXPECT_EQ(replay.error().code, common::ErrorCode::kConflict);
}

TEST_F(NodeServiceTest, HeartbeatsMakeANodeOnlineAndSilenceMakesItOffline) {
    const auto key = crypto::Ed25519KeyPair::Generate();
    auto reg = Register(key);
    ASSERT_TRUE(reg);
    EXPECT_EQ(service_.Get(reg->node_id)->node.status, domain::NodeStatus::kOffline);

    ASSERT_EQ(service_.TryHeartbeat(reg->node_id, reg->node_token, Beat(42)), FastAuth::kAccepted);
    auto flushed = service_.FlushHeartbeats();
    ASSERT_TRUE(flushed);
    EXPECT_EQ(flushed->nodes_updated, 1u);
    auto view = service_.Get(reg->node_id);
    EXPECT_EQ(view->node.status, domain::NodeStatus::kOnline);
    EXPECT_EQ(view->node.usage.cpu_percent, 42);
    EXPECT_EQ(view->heartbeats_today, 1u);

    clock_.Advance(minutes{1});
    ASSERT_TRUE(service_.SweepOffline());
    EXPECT_EQ(service_.Get(reg->node_id)->node.status, domain::NodeStatus::kOnline);
    clock_.Advance(minutes{1} + seconds{1});
    auto swept = service_.SweepOffline();
    ASSERT_TRUE(swept);
    EXPECT_EQ(*swept, std::vector<std::string>{reg->node_id});
    EXPECT_EQ(service_.Get(reg->node_id)->node.status, domain::NodeStatus::kOffline);

    // It comes back; the gap is counted as missed heartbeats.
    ASSERT_EQ(service_.TryHeartbeat(reg->node_id, reg->node_token, Beat()), FastAuth::kAccepted);
    ASSERT_TRUE(service_.FlushHeartbeats());
    view = service_.Get(reg->node_id);
    EXPECT_EQ(view->node.status, domain::NodeStatus::kOnline);
    EXPECT_EQ(view->missed_heartbeats_today, 7u);  // 121 s gap at 15 s: 8 slots, 7 missed
}

TEST_F(NodeServiceTest, HeartbeatCredentialChecks) {
    const auto a = Register(crypto::Ed25519KeyPair::Generate());
    const auto b = Register(crypto::Ed25519KeyPair::Generate());
    ASSERT_TRUE(a && b);
    // A's token on B's id: refused, on the fast path and after lookup.
    EXPECT_EQ(service_.TryHeartbeat(b->node_id, a->node_token, Beat()), FastAuth::kUnknown);
    auto r = service_.HeartbeatAfterLookup(b->node_id, a->node_token, Beat());
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, common::ErrorCode::kUnauthenticated);
    auto unknown =
        service_.HeartbeatAfterLookup("00000000-0000-4000-8000-000000000000", "x", Beat());
    ASSERT_FALSE(unknown);
    EXPECT_EQ(unknown.error().code, common::ErrorCode::kNotFound);
    EXPECT_EQ(service_.HeartbeatAfterLookup("../etc", "x", Beat()).error().code,
              common::ErrorCode::kNotFound);
    EXPECT_EQ(service_.BufferedHeartbeats(), 0u);
}

TEST_F(NodeServiceTest, AnotherReplicaLearnsCredentialsFromTheRepository) {
    const auto reg = Register(crypto::Ed25519KeyPair::Generate());
    ASSERT_TRUE(reg);
    NodeService replica(repo_, clock_, NodeServiceOptions{});
    EXPECT_EQ(replica.TryHeartbeat(reg->node_id, reg->node_token, Beat()), FastAuth::kUnknown);
    ASSERT_TRUE(replica.HeartbeatAfterLookup(reg->node_id, reg->node_token, Beat()));
    EXPECT_EQ(replica.TryHeartbeat(reg->node_id, reg->node_token, Beat()), FastAuth::kAccepted);
}

TEST_F(NodeServiceTest, ForgottenNodeIsToldToRegisterAgain) {
    const auto reg = Register(crypto::Ed25519KeyPair::Generate());
    ASSERT_TRUE(reg);
    repo_.Remove(reg->node_id);
    NodeService fresh(repo_, clock_, NodeServiceOptions{});
    auto r = fresh.HeartbeatAfterLookup(reg->node_id, reg->node_token, Beat());
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, common::ErrorCode::kNotFound);
    EXPECT_NE(r.error().message.find("register again"), std::string::npos);
}

TEST_F(NodeServiceTest, FailedFlushKeepsTheHeartbeats) {
    const auto reg = Register(crypto::Ed25519KeyPair::Generate());
    ASSERT_TRUE(reg);
    ASSERT_EQ(service_.TryHeartbeat(reg->node_id, reg->node_token, Beat()), FastAuth::kAccepted);
    repo_.FailNext();
    EXPECT_FALSE(service_.FlushHeartbeats());
    EXPECT_EQ(service_.BufferedHeartbeats(), 1u);
    auto ok = service_.FlushHeartbeats();
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->nodes_updated, 1u);
}

TEST_F(NodeServiceTest, ListPagesWithACursor) {
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(Register(crypto::Ed25519KeyPair::Generate()));
    ports::NodeListQuery q;
    q.limit = 2;
    std::vector<std::string> seen;
    for (int page = 0; page < 5; ++page) {
        auto p = service_.List(q);
        ASSERT_TRUE(p);
        for (const auto& v : p->nodes) seen.push_back(v.node.id);
        if (p->next_cursor.empty()) break;
        q.after_id = p->next_cursor;
    }
    EXPECT_EQ(seen.size(), 5u);
    EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
    q.limit = 0;
    EXPECT_FALSE(service_.List(q));
    q.limit = 10;
    q.after_id = "'; DROP TABLE nodes; --";
    EXPECT_FALSE(service_.List(q));
}

}  // namespace
}  // namespace decloud::orchestrator::app
