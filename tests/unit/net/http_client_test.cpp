#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <future>
#include <set>

#include "decloud/net/http_client.hpp"
#include "decloud/testing/process.hpp"
#include "server_fixture.hpp"

namespace decloud::net {
namespace {

using namespace std::chrono_literals;

class HttpClientTest : public testing_support::ServerFixture {
  protected:
    void SetUp() override {
        auto router = std::make_shared<Router>();
        router->Add(
            http::verb::post, "/echo", [this](RequestContext& ctx) -> asio::awaitable<Response> {
                ++calls_;
                ports_.insert(ctx.remote_port);
                co_return MakeJson(
                    ctx.request, http::status::ok,
                    {{"body", ctx.request.body()}, {"host", ctx.request[http::field::host]}});
            });
        router->Add(http::verb::get, "/sleep",
                    [](RequestContext& ctx) -> asio::awaitable<Response> {
                        asio::steady_timer timer(co_await asio::this_coro::executor, 2s);
                        co_await timer.async_wait(asio::use_awaitable);
                        co_return MakeJson(ctx.request, http::status::ok, {});
                    });
        StartServer(router);
    }

    int accepted_connections() {
        // decloud_http_connections is a gauge; count distinct client ports seen instead.
        return static_cast<int>(ports_.size());
    }

    std::atomic<int> calls_{0};
    std::set<unsigned short> ports_;
};

common::Result<Response> Post(asio::io_context& ioc, HttpClient& client, std::string body) {
    std::promise<common::Result<Response>> p;
    asio::co_spawn(
        ioc,
        [&]() -> asio::awaitable<void> {
            Request req{http::verb::post, "/echo", 11};
            req.set(http::field::content_type, "application/json");
            req.body() = body;
            p.set_value(co_await client.Send(std::move(req)));
        },
        [](std::exception_ptr) {});
    return p.get_future().get();
}

TEST_F(HttpClientTest, SendsAndReusesTheConnection) {
    HttpClient client(ioc_.get_executor(), "127.0.0.1", port_);
    for (int i = 0; i < 5; ++i) {
        auto r = Post(ioc_, client, "hello " + std::to_string(i));
        ASSERT_TRUE(r) << r.error().message;
        EXPECT_EQ(r->result_int(), 200);
        const auto j = nlohmann::json::parse(r->body());
        EXPECT_EQ(j["body"], "hello " + std::to_string(i));
        EXPECT_EQ(j["host"], "127.0.0.1:" + std::to_string(port_));
    }
    EXPECT_EQ(calls_, 5);
    EXPECT_EQ(accepted_connections(), 1) << "keep-alive: one connection for all five";
}

TEST_F(HttpClientTest, UnreachablePeerIsUnavailable) {
    const auto closed_port = testing::FreeTcpPort();
    HttpClient client(ioc_.get_executor(), "127.0.0.1", closed_port);
    auto r = Post(ioc_, client, "x");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, common::ErrorCode::kUnavailable);
}

TEST_F(HttpClientTest, SlowPeerTimesOut) {
    ClientOptions options;
    options.request_timeout = 200ms;
    HttpClient client(ioc_.get_executor(), "127.0.0.1", port_, options);
    std::promise<common::Result<Response>> p;
    asio::co_spawn(
        ioc_,
        [&]() -> asio::awaitable<void> {
            p.set_value(co_await client.Send(Request{http::verb::get, "/sleep", 11}));
        },
        [](std::exception_ptr) {});
    auto r = p.get_future().get();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, common::ErrorCode::kTimeout);
    // The client recovers for the next request.
    auto again = Post(ioc_, client, "after timeout");
    ASSERT_TRUE(again) << again.error().message;
}

TEST(ParseHttpUrl, AcceptsHttpAndExplainsTheRest) {
    auto u = ParseHttpUrl("http://127.0.0.1:8080/base/");
    ASSERT_TRUE(u);
    EXPECT_EQ(u->host, "127.0.0.1");
    EXPECT_EQ(u->port, 8080);
    EXPECT_EQ(u->base_path, "/base");
    auto d = ParseHttpUrl("http://orchestrator.example");
    ASSERT_TRUE(d);
    EXPECT_EQ(d->port, 80);
    EXPECT_EQ(d->base_path, "");
    auto v6 = ParseHttpUrl("http://[::1]:9000");
    ASSERT_TRUE(v6);
    EXPECT_EQ(v6->host, "::1");
    auto tls = ParseHttpUrl("https://x");
    ASSERT_TRUE(tls);
    EXPECT_EQ(tls->scheme, "https");
    EXPECT_EQ(tls->port, 443);
    EXPECT_FALSE(ParseHttpUrl("ftp://x"));
    EXPECT_FALSE(ParseHttpUrl("not a url"));
    EXPECT_FALSE(ParseHttpUrl("http://x:0"));
    EXPECT_FALSE(ParseHttpUrl("http://x/?q=1"));
}

}  // namespace
}  // namespace decloud::net
