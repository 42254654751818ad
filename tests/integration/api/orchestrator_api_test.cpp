// The orchestrator's HTTP API, as a real process on a real PostgreSQL, fed bad input: every
// refusal is a clear 4xx problem+json and leaves the database exactly as it was.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "decloud/common/clock.hpp"
#include "decloud/crypto/crypto.hpp"
#include "decloud/proto/node_messages.hpp"
#include "decloud/testing/orchestrator.hpp"
#include "decloud/testing/process.hpp"
#include "decloud/testing/sign_in.hpp"
#include "decloud/testing/temp_pg_cluster.hpp"

namespace decloud {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

constexpr const char* kWallet = "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359";

struct Registration {
    std::string body;
    std::string signature;
};

class OrchestratorApiTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        pg_ = new testing::TempPgCluster();
        dir_ = new testing::TempDir("decloud-api");
        database_url_ = pg_->CreateDatabase("api");
        admin_ = new crypto::EthereumKey(crypto::EthereumKey::Generate());
        auto started = testing::StartTestOrchestrator(
            DECLOUD_ORCHESTRATOR_BIN, database_url_, dir_->path(),
            {"server.body_limit_bytes=65536", "server.read_timeout=2s",
             "auth.admin_wallets=" + admin_->Address()});
        port_ = started.port;
        orchestrator_ = started.process.release();
        ASSERT_TRUE(started.ready) << orchestrator_->Log();
        auto session = testing::SignIn(port_, *admin_);
        ASSERT_TRUE(session) << session.error().message;
        admin_header_ = session->Header();
    }

    // A GET as the admin, who may read every node.
    static std::optional<testing::HttpReply> AdminGet(const std::string& target) {
        return testing::HttpRequest(port_, "GET", target, {}, {admin_header_});
    }

    static void TearDownTestSuite() {
        if (orchestrator_) {
            EXPECT_EQ(orchestrator_->Terminate(), 0) << orchestrator_->Log();
        }
        delete orchestrator_;
        delete admin_;
        delete dir_;
        delete pg_;
    }

    // Everything a refused request could have written, as one comparable snapshot.
    static std::string DatabaseState() {
        pqxx::connection conn(database_url_);
        pqxx::work tx(conn);
        auto r = tx.exec1(
            "SELECT (SELECT count(*) FROM nodes)::text || '/' || "
            "(SELECT count(*) FROM used_tokens)::text || '/' || "
            "(SELECT coalesce(max(updated_at)::text, '') FROM nodes) || '/' || "
            "(SELECT coalesce(max(last_heartbeat_at)::text, '') FROM nodes) || '/' || "
            "(SELECT count(*) FROM node_daily_stats)::text");
        return r[0].as<std::string>();
    }

    static Registration Sign(const crypto::Ed25519KeyPair& key,
                             const std::string& wallet = kWallet) {
        auto signed_reg = testing::SignRegistration(key, wallet);
        return {signed_reg.body, signed_reg.signature};
    }

    static std::optional<testing::HttpReply> PostRegistration(const Registration& reg) {
        return testing::HttpRequest(port_, "POST", "/api/nodes/register", reg.body,
                                    {{"X-DeCloud-Signature", reg.signature}});
    }

    static json ExpectProblem(const std::optional<testing::HttpReply>& r, int status) {
        EXPECT_TRUE(r.has_value());
        if (!r) return {};
        EXPECT_EQ(r->status, status) << r->body;
        EXPECT_NE(r->headers.find("application/problem+json"), std::string::npos) << r->headers;
        auto body = json::parse(r->body, nullptr, false);
        EXPECT_TRUE(body.is_object()) << r->body;
        if (!body.is_object()) return {};
        EXPECT_EQ(body["status"], status);
        EXPECT_FALSE(body["detail"].get<std::string>().empty());
        return body;
    }

    static testing::TempPgCluster* pg_;
    static testing::TempDir* dir_;
    static testing::ChildProcess* orchestrator_;
    static std::string database_url_;
    static std::uint16_t port_;
    static crypto::EthereumKey* admin_;
    static std::pair<std::string, std::string> admin_header_;
};

testing::TempPgCluster* OrchestratorApiTest::pg_ = nullptr;
testing::TempDir* OrchestratorApiTest::dir_ = nullptr;
testing::ChildProcess* OrchestratorApiTest::orchestrator_ = nullptr;
std::string OrchestratorApiTest::database_url_;
std::uint16_t OrchestratorApiTest::port_ = 0;
crypto::EthereumKey* OrchestratorApiTest::admin_ = nullptr;
std::pair<std::string, std::string> OrchestratorApiTest::admin_header_;

TEST_F(OrchestratorApiTest, MalformedJsonIsRefusedAndNothingIsStored) {
    const auto before = DatabaseState();
    auto body =
        ExpectProblem(testing::HttpRequest(port_, "POST", "/api/nodes/register",
                                           "{\"nodePublicKey\": ", {{"X-DeCloud-Signature", "x"}}),
                      400);
    EXPECT_NE(body["detail"].get<std::string>().find("JSON"), std::string::npos);
    ExpectProblem(testing::HttpRequest(port_, "POST", "/api/nodes/register", "[1,2,3]",
                                       {{"X-DeCloud-Signature", "x"}}),
                  400);
    EXPECT_EQ(DatabaseState(), before);
}

TEST_F(OrchestratorApiTest, OversizedBodyIsRefused) {
    const auto before = DatabaseState();
    const std::string huge = "{\"pad\":\"" + std::string(200'000, 'a') + "\"}";
    const auto r = testing::HttpRequest(port_, "POST", "/api/nodes/register", huge);
    ExpectProblem(r, 413);
    EXPECT_EQ(DatabaseState(), before);
}

TEST_F(OrchestratorApiTest, InvalidWalletIsRefusedWithTheReason) {
    const auto before = DatabaseState();
    const auto key = crypto::Ed25519KeyPair::Generate();
    auto body = ExpectProblem(
        PostRegistration(Sign(key, "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d35A")), 400);
    EXPECT_NE(body["detail"].get<std::string>().find("operatorWallet"), std::string::npos);
    ExpectProblem(PostRegistration(Sign(key, "not-a-wallet")), 400);
    EXPECT_EQ(DatabaseState(), before);
}

TEST_F(OrchestratorApiTest, BadSignaturesAndReplaysAreRefused) {
    const auto key = crypto::Ed25519KeyPair::Generate();
    const auto other = crypto::Ed25519KeyPair::Generate();
    auto reg = Sign(key);
    const auto before = DatabaseState();
    ExpectProblem(testing::HttpRequest(port_, "POST", "/api/nodes/register", reg.body), 401);
    ExpectProblem(testing::HttpRequest(port_, "POST", "/api/nodes/register", reg.body,
                                       {{"X-DeCloud-Signature", other.SignBase64(reg.body)}}),
                  401);
    ExpectProblem(testing::HttpRequest(
                      port_, "POST", "/api/nodes/register", reg.body,
                      {{"X-DeCloud-Signature", reg.signature}, {"Content-Type", "text/plain"}}),
                  400);
    EXPECT_EQ(DatabaseState(), before);
    auto ok = PostRegistration(reg);
    ASSERT_TRUE(ok);
    ASSERT_EQ(ok->status, 200) << ok->body;
    const auto after_first = DatabaseState();
    ExpectProblem(PostRegistration(reg), 409);
    EXPECT_EQ(DatabaseState(), after_first);
}

TEST_F(OrchestratorApiTest, BodyCutOffMidRequestStoresNothing) {
    const auto before = DatabaseState();
    const auto reg = Sign(crypto::Ed25519KeyPair::Generate());
    const std::string head =
        "POST /api/nodes/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "X-DeCloud-Signature: " +
        reg.signature + "\r\nContent-Length: " + std::to_string(reg.body.size()) + "\r\n\r\n";
    testing::RawExchange(port_, head + reg.body.substr(0, reg.body.size() / 2), /*half_close=*/true,
                         3s);
    // And one that simply stalls: the read timeout (2 s here) closes it.
    const auto stalled = testing::RawExchange(port_, head + reg.body.substr(0, 10), false, 10s);
    EXPECT_EQ(stalled.find("200 OK"), std::string::npos);
    EXPECT_EQ(DatabaseState(), before);
    auto health = testing::HttpRequest(port_, "GET", "/healthz");
    ASSERT_TRUE(health);
    EXPECT_EQ(health->status, 200);
}

TEST_F(OrchestratorApiTest, HeartbeatsAreCheckedAgainstTheNodesOwnCredentials) {
    auto a = PostRegistration(Sign(crypto::Ed25519KeyPair::Generate()));
    auto b = PostRegistration(Sign(crypto::Ed25519KeyPair::Generate()));
    ASSERT_TRUE(a && b);
    ASSERT_EQ(a->status, 200);
    ASSERT_EQ(b->status, 200);
    const auto ja = json::parse(a->body), jb = json::parse(b->body);
    const std::string beat = proto::ToJson(proto::HeartbeatRequest{{5, 1, 1, 0}, "t"}).dump();
    const auto before = DatabaseState();

    auto r = testing::HttpRequest(
        port_, "POST", "/api/nodes/" + jb["nodeId"].get<std::string>() + "/heartbeat", beat,
        {{"Authorization", "Bearer " + ja["nodeToken"].get<std::string>()}});
    ExpectProblem(r, 401);
    ExpectProblem(
        testing::HttpRequest(port_, "POST",
                             "/api/nodes/" + jb["nodeId"].get<std::string>() + "/heartbeat", beat),
        401);
    ExpectProblem(testing::HttpRequest(port_, "POST",
                                       "/api/nodes/00000000-0000-4000-8000-000000000000/heartbeat",
                                       beat, {{"Authorization", "Bearer whatever"}}),
                  404);
    ExpectProblem(testing::HttpRequest(port_, "POST", "/api/nodes/not-a-uuid/heartbeat", beat,
                                       {{"Authorization", "Bearer whatever"}}),
                  404);
    ExpectProblem(testing::HttpRequest(
                      port_, "POST", "/api/nodes/" + ja["nodeId"].get<std::string>() + "/heartbeat",
                      "{\"usage\": {\"cpuPercent\": 900}}",
                      {{"Authorization", "Bearer " + ja["nodeToken"].get<std::string>()}}),
                  400);
    std::this_thread::sleep_for(1200ms);  // longer than the flush interval: nothing may appear
    EXPECT_EQ(DatabaseState(), before);

    auto good = testing::HttpRequest(
        port_, "POST", "/api/nodes/" + ja["nodeId"].get<std::string>() + "/heartbeat", beat,
        {{"Authorization", "Bearer " + ja["nodeToken"].get<std::string>()}});
    ASSERT_TRUE(good);
    EXPECT_EQ(good->status, 200) << good->body;
    EXPECT_EQ(json::parse(good->body)["nextHeartbeatSeconds"], 15);
    ASSERT_TRUE(testing::WaitUntil(
        [&] {
            auto n = AdminGet("/api/nodes/" + ja["nodeId"].get<std::string>());
            return n && json::parse(n->body)["status"] == "online";
        },
        10s));
}

TEST_F(OrchestratorApiTest, UnknownThingsAreProblemsToo) {
    ExpectProblem(AdminGet("/api/nodes/00000000-0000-4000-8000-000000000000"), 404);
    ExpectProblem(AdminGet("/api/nodes/%2e%2e"), 404);
    ExpectProblem(AdminGet("/api/nodes?limit=abc"), 400);
    ExpectProblem(AdminGet("/api/nodes?limit=100000"), 400);
    ExpectProblem(AdminGet("/api/nodes?cursor=zzz"), 400);
    ExpectProblem(AdminGet("/api/nodes?status=sleeping"), 400);
    ExpectProblem(testing::HttpRequest(port_, "GET", "/no/such/route"), 404);
    auto r = testing::HttpRequest(port_, "DELETE", "/api/nodes/register");
    ExpectProblem(r, 405);
    const auto garbage = testing::RawExchange(port_, "THIS IS NOT HTTP\r\n\r\n", true, 3s);
    EXPECT_NE(garbage.find("400"), std::string::npos) << garbage;
}

TEST_F(OrchestratorApiTest, MetricsAndHealth) {
    auto m = testing::HttpRequest(port_, "GET", "/metrics");
    ASSERT_TRUE(m);
    EXPECT_EQ(m->status, 200);
    EXPECT_NE(m->body.find("decloud_http_requests_total"), std::string::npos);
    EXPECT_NE(m->body.find("decloud_heartbeats_flushed_total"), std::string::npos);
    auto h = testing::HttpRequest(port_, "GET", "/readyz");
    ASSERT_TRUE(h);
    EXPECT_EQ(h->status, 200);
}

}  // namespace
}  // namespace decloud
