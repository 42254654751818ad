#include <gtest/gtest.h>

#include "decloud/common/metrics.hpp"
#include "decloud/testing/process.hpp"
#include "server_fixture.hpp"

namespace decloud::net {
namespace {

using namespace std::chrono_literals;
using testing::HttpRequest;
using testing::RawExchange;

class HttpServerTest : public testing_support::ServerFixture {
  protected:
    void SetUp() override {
        auto router = std::make_shared<Router>();
        router->Add(http::verb::get, "/echo/{id}",
                    [](RequestContext& ctx) -> asio::awaitable<Response> {
                        co_return MakeJson(ctx.request, http::status::ok,
                                           {{"id", ctx.Param("id")},
                                            {"requestId", ctx.request_id},
                                            {"route", ctx.route},
                                            {"remote", ctx.remote_address.to_string()}});
                    });
        router->Add(http::verb::post, "/body",
                    [this](RequestContext& ctx) -> asio::awaitable<Response> {
                        ++body_calls_;
                        co_return MakeJson(ctx.request, http::status::ok,
                                           {{"size", ctx.request.body().size()}});
                    });
        router->Add(http::verb::put, "/body", [](RequestContext& ctx) -> asio::awaitable<Response> {
            co_return MakeJson(ctx.request, http::status::ok, nlohmann::json::object());
        });
        router->Add(http::verb::get, "/throw", [](RequestContext&) -> asio::awaitable<Response> {
            throw std::runtime_error("boom");
            co_return Response{};
        });
        router->Add(http::verb::get, "/slow",
                    [this](RequestContext& ctx) -> asio::awaitable<Response> {
                        slow_entered_ = true;
                        asio::steady_timer timer(co_await asio::this_coro::executor, 300ms);
                        co_await timer.async_wait(asio::use_awaitable);
                        co_return MakeJson(ctx.request, http::status::ok, {{"slow", true}});
                    });
        ServerOptions options;
        options.body_limit = 1024;
        options.read_timeout = 300ms;
        options.shutdown_grace = 5s;
        StartServer(router, options);
    }

    std::atomic<int> body_calls_{0};
    std::atomic<bool> slow_entered_{false};
};

nlohmann::json Json(const std::optional<testing::HttpReply>& r) {
    EXPECT_TRUE(r.has_value());
    return r ? nlohmann::json::parse(r->body, nullptr, false) : nlohmann::json();
}

TEST_F(HttpServerTest, RoutesWithPathParameters) {
    auto r = HttpRequest(port_, "GET", "/echo/node-7?verbose=1");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    const auto j = Json(r);
    EXPECT_EQ(j["id"], "node-7");
    EXPECT_EQ(j["route"], "/echo/{id}");
    EXPECT_EQ(j["remote"], "127.0.0.1");
}

TEST_F(HttpServerTest, UnknownPathsAndMethodsAreProblems) {
    auto r = HttpRequest(port_, "GET", "/nope");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 404);
    EXPECT_NE(r->headers.find("application/problem+json"), std::string::npos);
    EXPECT_FALSE(Json(r)["requestId"].get<std::string>().empty());
    auto m = HttpRequest(port_, "DELETE", "/body");
    ASSERT_TRUE(m);
    EXPECT_EQ(m->status, 405);
    EXPECT_NE(m->headers.find("Allow: POST, PUT"), std::string::npos) << m->headers;
}

TEST_F(HttpServerTest, RequestIdsAreEchoedOrGenerated) {
    auto r = HttpRequest(port_, "GET", "/echo/1", {}, {{"X-Request-Id", "abc-123"}});
    ASSERT_TRUE(r);
    EXPECT_EQ(Json(r)["requestId"], "abc-123");
    EXPECT_NE(r->headers.find("X-Request-Id: abc-123"), std::string::npos);
    auto g = HttpRequest(port_, "GET", "/echo/1", {}, {{"X-Request-Id", "bad id with spaces"}});
    const auto id = Json(g)["requestId"].get<std::string>();
    EXPECT_EQ(id.size(), 16u);
}

TEST_F(HttpServerTest, OversizedBodyIsRefusedBeforeTheHandler) {
    auto r = HttpRequest(port_, "POST", "/body", std::string(5000, 'x'));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 413);
    EXPECT_NE(r->headers.find("application/problem+json"), std::string::npos);
    EXPECT_EQ(body_calls_, 0);
    auto ok = HttpRequest(port_, "POST", "/body", std::string(1000, 'x'));
    EXPECT_EQ(Json(ok)["size"], 1000);
}

TEST_F(HttpServerTest, MalformedAndSmugglingRequestsAreRefused) {
    EXPECT_NE(RawExchange(port_, "GARBAGE\r\n\r\n", true).find("400 Bad Request"),
              std::string::npos);
    const auto both = RawExchange(port_,
                                  "POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                                  "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                                  true);
    EXPECT_NE(both.find("400 Bad Request"), std::string::npos) << both;
    const auto dup = RawExchange(
        port_,
        "POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        true);
    EXPECT_NE(dup.find("400 Bad Request"), std::string::npos) << dup;
    const auto bad_chunk = RawExchange(
        port_, "POST /body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", true);
    EXPECT_NE(bad_chunk.find("400 Bad Request"), std::string::npos) << bad_chunk;
    EXPECT_EQ(body_calls_, 0);
}

TEST_F(HttpServerTest, AHandlerThatThrowsGetsA500AndTheServerGoesOn) {
    auto r = HttpRequest(port_, "GET", "/throw");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 500);
    EXPECT_EQ(Json(r)["status"], 500);
    EXPECT_EQ(HttpRequest(port_, "GET", "/echo/2")->status, 200);
}

TEST_F(HttpServerTest, ClientsThatVanishMidRequestDoNotHurt) {
    RawExchange(port_, "POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc", true,
                1s);
    RawExchange(port_, "GET /echo/1 HTT", true, 1s);
    EXPECT_EQ(HttpRequest(port_, "GET", "/echo/3")->status, 200);
    EXPECT_EQ(body_calls_, 0);
}

TEST_F(HttpServerTest, StalledRequestIsTimedOut) {
    // Half a request, then silence: the read timeout (300 ms here) closes the connection long
    // before the client's own 30 s patience runs out.
    const auto started = std::chrono::steady_clock::now();
    const auto reply = RawExchange(
        port_, "POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc", false, 30s);
    EXPECT_LT(std::chrono::steady_clock::now() - started, 25s);
    EXPECT_EQ(reply.find("200"), std::string::npos) << reply;
    EXPECT_EQ(body_calls_, 0);
}

TEST_F(HttpServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
    const std::string two =
        "GET /echo/a HTTP/1.1\r\nHost: x\r\n\r\nGET /echo/b HTTP/1.1\r\nHost: x\r\nConnection: "
        "close\r\n\r\n";
    const auto reply = RawExchange(port_, two, false, 10s);
    EXPECT_NE(reply.find("\"id\":\"a\""), std::string::npos);
    EXPECT_NE(reply.find("\"id\":\"b\""), std::string::npos);
}

TEST_F(HttpServerTest, GracefulShutdownFinishesRequestsInFlight) {
    std::optional<testing::HttpReply> slow;
    std::thread client([&] { slow = HttpRequest(port_, "GET", "/slow"); });
    ASSERT_TRUE(testing::WaitUntil([&] { return slow_entered_.load(); }, 10s));
    std::atomic<bool> done{false};
    server_->Shutdown([&] { done = true; });
    client.join();
    ASSERT_TRUE(slow);
    EXPECT_EQ(slow->status, 200);
    EXPECT_NE(slow->headers.find("Connection: close"), std::string::npos) << slow->headers;
    ASSERT_TRUE(testing::WaitUntil([&] { return done.load(); }, 10s));
    EXPECT_FALSE(HttpRequest(port_, "GET", "/echo/1", {}, {}, 1s)) << "no longer accepting";
}

TEST_F(HttpServerTest, ExportsRequestMetrics) {
    HttpRequest(port_, "GET", "/echo/1");
    HttpRequest(port_, "GET", "/nope");
    const auto text = common::SerializeMetrics(*registry_);
    EXPECT_NE(
        text.find(
            "decloud_http_requests_total{method=\"GET\",route=\"/echo/{id}\",status=\"200\"} 1"),
        std::string::npos)
        << text;
    EXPECT_NE(text.find("route=\"unmatched\",status=\"404\""), std::string::npos);
    EXPECT_NE(text.find("decloud_http_request_duration_seconds_bucket"), std::string::npos);
}

}  // namespace
}  // namespace decloud::net
