#include <gtest/gtest.h>

#include "decloud/net/http_server.hpp"

namespace decloud::net {
namespace {

Handler Nop() {
    return [](RequestContext& ctx) -> asio::awaitable<Response> {
        co_return MakeJson(ctx.request, http::status::ok, nlohmann::json::object());
    };
}

TEST(Router, MatchesLiteralAndCapturedSegments) {
    Router r;
    r.Add(http::verb::get, "/api/nodes", Nop());
    r.Add(http::verb::get, "/api/nodes/{id}", Nop());
    r.Add(http::verb::post, "/api/nodes/{id}/heartbeat", Nop());
    auto m = r.Find(http::verb::get, "/api/nodes/abc", false);
    ASSERT_NE(m.handler, nullptr);
    EXPECT_EQ(m.route, "/api/nodes/{id}");
    ASSERT_EQ(m.params.size(), 1u);
    EXPECT_EQ(m.params[0], (std::pair<std::string, std::string>{"id", "abc"}));
    EXPECT_NE(r.Find(http::verb::get, "/api/nodes", false).handler, nullptr);
    EXPECT_EQ(r.Find(http::verb::get, "/api/nodes/", false).handler, nullptr) << "empty capture";
    EXPECT_EQ(r.Find(http::verb::get, "/api/nodes/a/b", false).handler, nullptr);
    EXPECT_EQ(r.Find(http::verb::get, "api/nodes", false).handler, nullptr);
}

TEST(Router, ReportsAllowedMethodsForAKnownPath) {
    Router r;
    r.Add(http::verb::get, "/x/{id}", Nop());
    r.Add(http::verb::put, "/x/{id}", Nop());
    auto m = r.Find(http::verb::delete_, "/x/1", false);
    EXPECT_EQ(m.handler, nullptr);
    EXPECT_EQ(m.allow, "GET, PUT");
    EXPECT_TRUE(r.Find(http::verb::delete_, "/y", false).allow.empty());
}

TEST(Router, DecodesCapturedSegments) {
    Router r;
    r.Add(http::verb::get, "/f/{name}", Nop());
    auto m = r.Find(http::verb::get, "/f/a%20b%2F..%zz", false);
    ASSERT_NE(m.handler, nullptr);
    EXPECT_EQ(m.params[0].second, "a b/..%zz");
}

TEST(Router, WebSocketRoutesOnlyForUpgrades) {
    Router r;
    r.AddWebSocket(
        "/ws/{id}",
        [](RequestContext&, std::shared_ptr<WebSocketConnection>) -> asio::awaitable<void> {
            co_return;
        });
    EXPECT_NE(r.Find(http::verb::get, "/ws/1", true).websocket, nullptr);
    EXPECT_EQ(r.Find(http::verb::get, "/ws/1", false).websocket, nullptr);
}

TEST(Responses, ProblemDetailsCarryEverything) {
    Request req{http::verb::get, "/", 11};
    auto p = MakeProblem(req, http::status::not_found, "Not found", "no node 'x'", "rid-1");
    EXPECT_EQ(p[http::field::content_type], "application/problem+json");
    const auto j = nlohmann::json::parse(p.body());
    EXPECT_EQ(j["status"], 404);
    EXPECT_EQ(j["title"], "Not found");
    EXPECT_EQ(j["detail"], "no node 'x'");
    EXPECT_EQ(j["requestId"], "rid-1");
    EXPECT_EQ(j["type"], "about:blank");
    auto ok = MakeJson(req, http::status::created, {{"a", 1}});
    EXPECT_EQ(ok.result(), http::status::created);
    EXPECT_EQ(ok[http::field::content_length], std::to_string(ok.body().size()));
}

}  // namespace
}  // namespace decloud::net
