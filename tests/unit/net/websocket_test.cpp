#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <future>

#include "decloud/net/websocket.hpp"
#include "decloud/testing/process.hpp"
#include "server_fixture.hpp"

namespace decloud::net {
namespace {

using namespace std::chrono_literals;

class WebSocketTest : public testing_support::ServerFixture {
  protected:
    void SetUp() override {
        auto router = std::make_shared<Router>();
        // Echoes every message; "bye" makes the server close.
        router->AddWebSocket(
            "/ws/{name}",
            [this](RequestContext& ctx,
                   std::shared_ptr<WebSocketConnection> ws) -> asio::awaitable<void> {
                ws->Send("hello " + std::string(ctx.Param("name")));
                for (;;) {
                    auto msg = co_await ws->Read();
                    if (!msg) break;
                    if (*msg == "bye") {
                        ws->Close("done");
                        break;
                    }
                    ws->Send("echo:" + *msg);
                }
                server_side_finished_ = true;
            },
            [](RequestContext& ctx) -> asio::awaitable<std::optional<Response>> {
                if (ctx.request[http::field::authorization] != "Bearer ok")
                    co_return MakeProblem(ctx.request, http::status::unauthorized,
                                          "Authentication required", "bad token", ctx.request_id);
                co_return std::nullopt;
            });
        StartServer(router);
    }

    template <class T>
    T Run(std::function<asio::awaitable<T>()> f) {
        std::promise<T> p;
        asio::co_spawn(
            ioc_, [&]() -> asio::awaitable<void> { p.set_value(co_await f()); },
            [](std::exception_ptr) {});
        return p.get_future().get();
    }

    std::atomic<bool> server_side_finished_{false};
};

TEST_F(WebSocketTest, EchoesBothWaysAndClosesCleanly) {
    auto conn = Run<common::Result<std::shared_ptr<WebSocketConnection>>>([&] {
        return ConnectWebSocket(ioc_.get_executor(), "127.0.0.1", port_, "/ws/alice",
                                {{"Authorization", "Bearer ok"}});
    });
    ASSERT_TRUE(conn) << conn.error().message;
    auto ws = *conn;
    auto read = [&] { return Run<common::Result<std::string>>([&] { return ws->Read(); }); };
    EXPECT_EQ(*read(), "hello alice");
    // Send from this (non-io) thread: queued and written on the connection's strand.
    for (int i = 0; i < 20; ++i) ws->Send("m" + std::to_string(i));
    for (int i = 0; i < 20; ++i) EXPECT_EQ(*read(), "echo:m" + std::to_string(i));
    ws->Send("bye");
    auto closed = read();
    ASSERT_FALSE(closed);
    EXPECT_NE(closed.error().message.find("done"), std::string::npos) << closed.error().message;
    EXPECT_TRUE(testing::WaitUntil([&] { return server_side_finished_.load(); }, 10s));
}

TEST_F(WebSocketTest, UpgradeCheckCanRefuse) {
    auto conn = Run<common::Result<std::shared_ptr<WebSocketConnection>>>([&] {
        return ConnectWebSocket(ioc_.get_executor(), "127.0.0.1", port_, "/ws/bob",
                                {{"Authorization", "Bearer no"}});
    });
    ASSERT_FALSE(conn);
    auto raw = testing::RawExchange(
        port_,
        "GET /ws/bob HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        true);
    EXPECT_NE(raw.find("401"), std::string::npos) << raw;
}

TEST_F(WebSocketTest, ShutdownSaysGoingAway) {
    auto conn = Run<common::Result<std::shared_ptr<WebSocketConnection>>>([&] {
        return ConnectWebSocket(ioc_.get_executor(), "127.0.0.1", port_, "/ws/carol",
                                {{"Authorization", "Bearer ok"}});
    });
    ASSERT_TRUE(conn);
    auto ws = *conn;
    EXPECT_EQ(*Run<common::Result<std::string>>([&] { return ws->Read(); }), "hello carol");
    std::atomic<bool> done{false};
    server_->Shutdown([&] { done = true; });
    auto r = Run<common::Result<std::string>>([&] { return ws->Read(); });
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("shutting down"), std::string::npos) << r.error().message;
    EXPECT_TRUE(testing::WaitUntil([&] { return done.load(); }, 10s));
}

}  // namespace
}  // namespace decloud::net
