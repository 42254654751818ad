// The agent's link against a scripted orchestrator on loopback (in-process): registration is
// signed, heartbeats carry the token, a 404 leads to re-registration with the same key, and an
// unreachable orchestrator is retried without the link giving up.

#include "agent/app/orchestrator_link.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <thread>

#include "decloud/net/http_server.hpp"

namespace decloud::agent::app {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using namespace std::chrono_literals;

struct FakeOrchestrator {
    std::atomic<int> registrations{0};
    std::atomic<int> heartbeats{0};
    std::atomic<int> forget_after{-1};  // answer 404 to heartbeat number N (once)
    std::atomic<bool> bad_signature{false};
    std::string last_public_key;
    std::mutex mutex;

    std::shared_ptr<net::Router> Router() {
        auto router = std::make_shared<net::Router>();
        router->Add(http::verb::post, "/api/nodes/register",
                    [this](net::RequestContext& ctx) -> asio::awaitable<net::Response> {
                        auto j = nlohmann::json::parse(ctx.request.body());
                        const std::string sig(ctx.request[proto::kSignatureHeader]);
                        if (!crypto::VerifyEd25519(j["nodePublicKey"].get<std::string>(),
                                                   ctx.request.body(), sig)) {
                            bad_signature = true;
                            co_return net::MakeProblem(ctx.request, http::status::unauthorized, "x",
                                                       "bad sig", ctx.request_id);
                        }
                        {
                            std::lock_guard lock(mutex);
                            last_public_key = j["nodePublicKey"];
                        }
                        ++registrations;
                        proto::RegisterNodeResponse r{
                            "11111111-1111-4111-8111-111111111111",
                            "token-" + std::to_string(registrations.load()),
                            1,
                            true,
                            true,
                            "reported address is private"};
                        co_return net::MakeJson(ctx.request, http::status::ok, proto::ToJson(r));
                    });
        router->Add(http::verb::post, "/api/nodes/{id}/heartbeat",
                    [this](net::RequestContext& ctx) -> asio::awaitable<net::Response> {
                        const int n = ++heartbeats;
                        const std::string expected =
                            "Bearer token-" + std::to_string(registrations.load());
                        if (ctx.request[http::field::authorization] != expected)
                            co_return net::MakeProblem(ctx.request, http::status::unauthorized, "x",
                                                       "token", ctx.request_id);
                        if (n == forget_after.load())
                            co_return net::MakeProblem(ctx.request, http::status::not_found, "x",
                                                       "register again", ctx.request_id);
                        proto::HeartbeatResponse r;
                        r.next_heartbeat_seconds = 1;
                        co_return net::MakeJson(ctx.request, http::status::ok, proto::ToJson(r));
                    });
        return router;
    }
};

proto::NodeResources Resources() {
    proto::NodeResources r;
    r.cpu_model = "cpu";
    r.cpu_cores = 1;
    r.cpu_threads = 1;
    r.memory_bytes = 1 << 30;
    return r;
}

LinkOptions Options(std::uint16_t port) {
    LinkOptions o;
    o.orchestrator_host = "127.0.0.1";
    o.orchestrator_port = port;
    o.agent_version = "test";
    o.heartbeat_jitter = 0;
    o.initial_backoff = 20ms;
    o.max_backoff = 100ms;
    o.http.connect_timeout = 1s;
    o.http.request_timeout = 2s;
    return o;
}

// Runs the io_context until `done` holds or a generous deadline passes.
bool RunUntil(asio::io_context& ioc, const std::function<bool()>& done) {
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (!done() && std::chrono::steady_clock::now() < deadline) ioc.run_for(20ms);
    return done();
}

TEST(OrchestratorLink, RegistersHeartbeatsAndReRegistersWhenForgotten) {
    asio::io_context ioc;
    FakeOrchestrator fake;
    fake.forget_after = 2;
    net::HttpServer server(ioc, net::ServerOptions{}, fake.Router());
    const auto port = server.Start();
    const auto key = crypto::Ed25519KeyPair::Generate();
    auto link = std::make_shared<OrchestratorLink>(
        ioc.get_executor(), Options(port), key,
        NodeProfile{"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "", "eu", {}, {}}, Resources(),
        proto::ComputeScore{100, 1000, 1},
        [] {
            return proto::NodeUsage{1, 2, 3, 0};
        },
        [] { return std::chrono::system_clock::now(); });
    bool finished = false;
    asio::co_spawn(ioc, link->Run(), [&](std::exception_ptr) { finished = true; });

    // Heartbeat interval is 1 s here; the second heartbeat is answered 404.
    ASSERT_TRUE(RunUntil(
        ioc, [&] { return fake.registrations >= 2 && link->Status().heartbeats_sent >= 2; }));
    EXPECT_FALSE(fake.bad_signature);
    EXPECT_EQ(fake.last_public_key, key.PublicKeyBase64()) << "same key after re-registration";
    const auto status = link->Status();
    EXPECT_TRUE(status.registered);
    EXPECT_EQ(status.node_id, "11111111-1111-4111-8111-111111111111");
    EXPECT_TRUE(status.behind_cgnat);
    link->Stop();
    server.Shutdown([] {});
    EXPECT_TRUE(RunUntil(ioc, [&] { return finished; })) << "Stop() ends Run()";
}

TEST(OrchestratorLink, KeepsRetryingWhileTheOrchestratorIsDown) {
    asio::io_context ioc;
    // A port nobody listens on.
    std::uint16_t port = 0;
    {
        asio::ip::tcp::acceptor probe(ioc, {asio::ip::make_address("127.0.0.1"), 0});
        port = probe.local_endpoint().port();
    }
    auto link = std::make_shared<OrchestratorLink>(
        ioc.get_executor(), Options(port), crypto::Ed25519KeyPair::Generate(),
        NodeProfile{"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "", "", {}, {}}, Resources(),
        proto::ComputeScore{}, [] { return proto::NodeUsage{}; },
        [] { return std::chrono::system_clock::now(); });
    bool finished = false;
    asio::co_spawn(ioc, link->Run(), [&](std::exception_ptr) { finished = true; });
    ASSERT_TRUE(RunUntil(ioc, [&] { return link->Status().failures >= 3; }));
    EXPECT_FALSE(link->Status().registered);
    EXPECT_FALSE(link->Status().last_error.empty());

    // The orchestrator appears on that port: the link registers by itself.
    FakeOrchestrator fake;
    net::ServerOptions options;
    options.port = port;
    net::HttpServer server(ioc, options, fake.Router());
    server.Start();
    ASSERT_TRUE(RunUntil(ioc, [&] { return link->Status().heartbeats_sent >= 1; }));
    link->Stop();
    server.Shutdown([] {});
    EXPECT_TRUE(RunUntil(ioc, [&] { return finished; }));
}

}  // namespace
}  // namespace decloud::agent::app
