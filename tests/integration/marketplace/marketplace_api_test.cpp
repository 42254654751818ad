// The marketplace over HTTP on a real orchestrator and PostgreSQL: public searches, validation
// answered as problem+json (unknown sort, unknown parameter, bad range, tampered cursor), profile
// ownership (401 / 403 / 404 / 200), reviews of VMs one does not own, and the quote's extra
// fields.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>

#include "decloud/crypto/crypto.hpp"
#include "decloud/crypto/ethereum.hpp"
#include "decloud/testing/orchestrator.hpp"
#include "decloud/testing/process.hpp"
#include "decloud/testing/sign_in.hpp"
#include "decloud/testing/temp_pg_cluster.hpp"

namespace decloud {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using Headers = std::vector<std::pair<std::string, std::string>>;

class MarketplaceApiTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        pg_ = new testing::TempPgCluster();
        dir_ = new testing::TempDir("decloud-market-api");
        auto started = testing::StartTestOrchestrator(
            DECLOUD_ORCHESTRATOR_BIN, pg_->CreateDatabase("market_api"), dir_->path(),
            {"marketplace.refresh_interval=1s"});
        port_ = started.port;
        orchestrator_ = started.process.release();
        ASSERT_TRUE(started.ready) << orchestrator_->Log();
    }

    static void TearDownTestSuite() {
        if (orchestrator_) {
            EXPECT_EQ(orchestrator_->Terminate(), 0) << orchestrator_->Log();
        }
        delete orchestrator_;
        delete dir_;
        delete pg_;
    }

    static testing::HttpReply Call(const std::string& method, const std::string& target,
                                   const std::string& body = {}, const Headers& headers = {}) {
        Headers all = headers;
        if (!body.empty()) all.emplace_back("Content-Type", "application/json");
        auto reply = testing::HttpRequest(port_, method, target, body, all);
        EXPECT_TRUE(reply.has_value()) << method << " " << target;
        return reply.value_or(testing::HttpReply{});
    }

    // A 400 problem+json whose detail mentions `fragment`.
    static void ExpectProblem(const testing::HttpReply& r, int status,
                              const std::string& fragment) {
        EXPECT_EQ(r.status, status) << r.body;
        EXPECT_NE(r.Header("Content-Type").find("application/problem+json"), std::string::npos)
            << r.headers;
        EXPECT_NE(r.body.find(fragment), std::string::npos) << r.body;
    }

    static testing::TempPgCluster* pg_;
    static testing::TempDir* dir_;
    static testing::ChildProcess* orchestrator_;
    static std::uint16_t port_;
};

testing::TempPgCluster* MarketplaceApiTest::pg_ = nullptr;
testing::TempDir* MarketplaceApiTest::dir_ = nullptr;
testing::ChildProcess* MarketplaceApiTest::orchestrator_ = nullptr;
std::uint16_t MarketplaceApiTest::port_ = 0;

TEST_F(MarketplaceApiTest, SearchProfilesReviewsAndQuoteOverHttp) {
    const auto operator_key = crypto::EthereumKey::Generate();
    const auto user_key = crypto::EthereumKey::Generate();
    auto op = testing::SignIn(port_, operator_key);
    auto user = testing::SignIn(port_, user_key);
    ASSERT_TRUE(op && user);
    std::vector<std::string> nodes;
    for (int i = 0; i < 3; ++i) {
        auto n = testing::RegisterNode(port_, crypto::Ed25519KeyPair::Generate(),
                                       operator_key.Address());
        ASSERT_TRUE(n) << n.error().message;
        nodes.push_back(n->id);
    }
    // The refresh job (every second here) gives every node its search row.
    json page;
    ASSERT_TRUE(testing::WaitUntil(
        [&] {
            const auto r = Call("GET", "/api/marketplace/nodes?limit=100");
            if (r.status != 200) return false;
            page = json::parse(r.body);
            return page["nodes"].size() == nodes.size();
        },
        20s))
        << page.dump();
    EXPECT_TRUE(page["nextCursor"].is_null());
    const auto& first = page["nodes"][0];
    EXPECT_TRUE(first.contains("reputation"));
    EXPECT_TRUE(first.contains("availability"));
    EXPECT_TRUE(first["hourlyPriceMicroUsdc"].is_string());

    // Validation: problem+json naming what is wrong.
    ExpectProblem(Call("GET", "/api/marketplace/nodes?sort=cheapest"), 400, "sort");
    ExpectProblem(Call("GET", "/api/marketplace/nodes?colour=blue"), 400, "colour");
    ExpectProblem(Call("GET", "/api/marketplace/nodes?region=eu-west&region=us-east"), 400,
                  "twice");
    ExpectProblem(Call("GET", "/api/marketplace/nodes?minPrice=9&maxPrice=3"), 400, "minPrice");
    ExpectProblem(Call("GET", "/api/marketplace/nodes?minUptime=101"), 400, "minUptime");
    ExpectProblem(Call("GET", "/api/marketplace/nodes?limit=0"), 400, "limit");
    ExpectProblem(Call("GET", "/api/marketplace/nodes?tagsAll=a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q"),
                  400, "tagsAll");
    ExpectProblem(Call("GET", "/api/marketplace/nodes?gpu=maybe"), 400, "gpu");

    // Cursors: pages of one, a tampered cursor and one from another query are refused.
    auto r = Call("GET", "/api/marketplace/nodes?limit=1");
    ASSERT_EQ(r.status, 200);
    std::string cursor = json::parse(r.body)["nextCursor"].get<std::string>();
    std::set<std::string> seen{json::parse(r.body)["nodes"][0]["id"].get<std::string>()};
    for (;;) {
        r = Call("GET", "/api/marketplace/nodes?limit=1&cursor=" + cursor);
        ASSERT_EQ(r.status, 200) << r.body;
        const auto body = json::parse(r.body);
        for (const auto& n : body["nodes"])
            EXPECT_TRUE(seen.insert(n["id"].get<std::string>()).second);
        if (body["nextCursor"].is_null()) break;
        cursor = body["nextCursor"].get<std::string>();
    }
    EXPECT_EQ(seen.size(), nodes.size());
    r = Call("GET", "/api/marketplace/nodes?limit=1");
    cursor = json::parse(r.body)["nextCursor"].get<std::string>();
    auto tampered = cursor;
    tampered[tampered.size() / 2] = tampered[tampered.size() / 2] == 'Q' ? 'R' : 'Q';
    ExpectProblem(Call("GET", "/api/marketplace/nodes?limit=1&cursor=" + tampered), 400, "cursor");
    ExpectProblem(Call("GET", "/api/marketplace/nodes?limit=1&sort=uptime&cursor=" + cursor), 400,
                  "cursor");

    // Profiles: operator only.
    const std::string profile =
        json{{"displayName", "Rack 7"}, {"tags", {"fibre"}}, {"pricePerPointMicroUsdc", "33"}}
            .dump();
    const std::string target = "/api/nodes/" + nodes[0] + "/profile";
    EXPECT_EQ(Call("PUT", target, profile).status, 401);
    ExpectProblem(Call("PUT", target, profile, {user->Header()}), 403, "operator");
    ExpectProblem(Call("PUT", "/api/nodes/00000000-0000-4000-8000-000000000000/profile", profile,
                       {op->Header()}),
                  404, "node");
    ExpectProblem(
        Call("PUT", target, json{{"displayName", std::string(65, 'x')}}.dump(), {op->Header()}),
        400, "displayName");
    r = Call("PUT", target, profile, {op->Header()});
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(json::parse(r.body)["displayName"], "Rack 7");
    r = Call("GET", "/api/marketplace/nodes?tagsAll=fibre&minPrice=33");
    ASSERT_EQ(r.status, 200);
    ASSERT_EQ(json::parse(r.body)["nodes"].size(), 1u);
    EXPECT_EQ(json::parse(r.body)["nodes"][0]["id"], nodes[0]);
    r = Call("GET", "/api/marketplace/nodes/" + nodes[0]);
    ASSERT_EQ(r.status, 200);
    EXPECT_EQ(json::parse(r.body)["pricePerPointMicroUsdc"], "33");
    EXPECT_EQ(Call("GET", "/api/marketplace/nodes/00000000-0000-4000-8000-000000000000").status,
              404);

    // Reviews: none yet; a VM the caller does not have is a 404.
    r = Call("GET", "/api/marketplace/nodes/" + nodes[0] + "/reviews");
    ASSERT_EQ(r.status, 200);
    EXPECT_EQ(json::parse(r.body)["count"], 0);
    EXPECT_TRUE(json::parse(r.body)["averageRating"].is_null());
    ExpectProblem(Call("POST", "/api/vms/00000000-0000-4000-8000-000000000000/review",
                       json{{"rating", 5}}.dump(), {user->Header()}),
                  404, "VM");
    ExpectProblem(Call("POST", "/api/vms/00000000-0000-4000-8000-000000000000/review",
                       json{{"rating", 9}}.dump(), {user->Header()}),
                  400, "rating");
    EXPECT_EQ(Call("POST", "/api/vms/00000000-0000-4000-8000-000000000000/review",
                   json{{"rating", 5}}.dump())
                  .status,
              401);

    // The quote carries the marketplace's fields (no node is online here: nothing placed).
    r = Call("POST", "/api/vms/quote",
             json{{"name", "q"},
                  {"cpuCores", 1},
                  {"memoryMib", 512},
                  {"diskGib", 5},
                  {"image", "debian-12"}}
                 .dump(),
             {user->Header()});
    ASSERT_EQ(r.status, 200) << r.body;
    const auto quote = json::parse(r.body);
    EXPECT_TRUE(quote["placement"].is_null());
    EXPECT_EQ(quote["behindCgnat"], false);
    EXPECT_TRUE(quote.contains("relay"));
    EXPECT_TRUE(quote["node"].is_null());
    EXPECT_TRUE(quote["rejections"].is_array());

    r = Call("GET", "/api/marketplace/featured?cores=2&tier=guaranteed");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(json::parse(r.body)["rule"]["minUptime30dPercent"], 95.0);
}

}  // namespace
}  // namespace decloud
