// Load generator for bench/heartbeats: registers N simulated agents (each with its own node
// key, as a real agent would), then drives heartbeats for all of them over C keep-alive
// connections, closed loop, for a fixed time. Prints throughput and latency percentiles.

#include <CLI/CLI.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "decloud/common/clock.hpp"
#include "decloud/crypto/crypto.hpp"
#include "decloud/proto/node_messages.hpp"

namespace asio = boost::asio;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using namespace decloud;

namespace {

struct Agent {
    std::string node_id;
    std::string token;
};

struct Reply {
    int status = 0;
    std::string body;
};

// One keep-alive HTTP/1.1 connection with exactly one request in flight.
class Connection {
  public:
    explicit Connection(tcp::socket socket) : socket_(std::move(socket)) {}

    asio::awaitable<std::optional<Reply>> Exchange(const std::string& request) {
        auto [wec, wn] = co_await asio::async_write(socket_, asio::buffer(request),
                                                    asio::as_tuple(asio::use_awaitable));
        if (wec) co_return std::nullopt;
        auto [hec, hn] = co_await asio::async_read_until(socket_, buffer_, "\r\n\r\n",
                                                         asio::as_tuple(asio::use_awaitable));
        if (hec) co_return std::nullopt;
        std::string head(asio::buffers_begin(buffer_.data()),
                         asio::buffers_begin(buffer_.data()) + hn);
        buffer_.consume(hn);
        Reply reply;
        reply.status = std::atoi(head.c_str() + 9);
        std::size_t length = 0;
        for (auto pos = head.find("\r\n"); pos != std::string::npos;
             pos = head.find("\r\n", pos + 2)) {
            if (strncasecmp(head.c_str() + pos + 2, "content-length:", 15) == 0)
                length = std::strtoull(head.c_str() + pos + 17, nullptr, 10);
        }
        if (buffer_.size() < length) {
            auto [bec, bn] = co_await asio::async_read(
                socket_, buffer_, asio::transfer_exactly(length - buffer_.size()),
                asio::as_tuple(asio::use_awaitable));
            if (bec) co_return std::nullopt;
        }
        reply.body.assign(asio::buffers_begin(buffer_.data()),
                          asio::buffers_begin(buffer_.data()) + length);
        buffer_.consume(length);
        co_return reply;
    }

  private:
    tcp::socket socket_;
    asio::streambuf buffer_;
};

asio::awaitable<std::unique_ptr<Connection>> Connect(std::uint16_t port) {
    tcp::socket socket(co_await asio::this_coro::executor);
    auto [ec] = co_await socket.async_connect({asio::ip::make_address("127.0.0.1"), port},
                                              asio::as_tuple(asio::use_awaitable));
    if (ec) throw std::runtime_error("connect: " + ec.message());
    socket.set_option(tcp::no_delay(true));
    co_return std::make_unique<Connection>(std::move(socket));
}

std::string RegistrationRequest(const crypto::Ed25519KeyPair& key, std::size_t i) {
    proto::RegisterNodeRequest r;
    r.node_public_key = key.PublicKeyBase64();
    r.operator_wallet = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";
    r.public_ip = "8.8." + std::to_string(i / 256 % 256) + "." + std::to_string(i % 256);
    r.region = "bench";
    r.resources.cpu_model = "Simulated CPU";
    r.resources.cpu_cores = 8;
    r.resources.cpu_threads = 16;
    r.resources.memory_bytes = 32ull << 30;
    r.resources.storage_total_bytes = 1ull << 40;
    r.resources.storage_free_bytes = 1ull << 39;
    r.compute = {800, 8000, 16};
    r.agent_version = "bench";
    r.timestamp = common::FormatRfc3339(std::chrono::system_clock::now());
    const auto body = proto::ToJson(r).dump();
    return "POST /api/nodes/register HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
           "X-DeCloud-Signature: " +
           key.SignBase64(body) + "\r\nContent-Length: " + std::to_string(body.size()) +
           "\r\n\r\n" + body;
}

std::string HeartbeatRequest(const Agent& a, int cpu) {
    const std::string body = "{\"usage\":{\"cpuPercent\":" + std::to_string(cpu) +
                             ",\"memoryUsedBytes\":1073741824,\"storageUsedBytes\":2147483648,"
                             "\"runningVms\":2},\"agentVersion\":\"bench\"}";
    return "POST /api/nodes/" + a.node_id +
           "/heartbeat HTTP/1.1\r\nHost: bench\r\n"
           "Content-Type: application/json\r\nAuthorization: Bearer " +
           a.token + "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

double Percentile(std::vector<std::uint32_t>& us, double p) {
    if (us.empty()) return 0;
    const auto k = static_cast<std::size_t>(p * static_cast<double>(us.size() - 1));
    std::nth_element(us.begin(), us.begin() + static_cast<std::ptrdiff_t>(k), us.end());
    return us[k] / 1000.0;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App cli{"Heartbeat load generator"};
    std::uint16_t port = 8080;
    std::size_t nodes = 20000, connections = 64;
    double seconds = 20, warmup = 3;
    unsigned threads = 1;
    cli.add_option("--port", port);
    cli.add_option("--nodes", nodes, "simulated agents");
    cli.add_option("--connections", connections, "concurrent keep-alive connections");
    cli.add_option("--seconds", seconds, "measured duration");
    cli.add_option("--warmup", warmup, "unmeasured warm-up seconds");
    cli.add_option("--threads", threads, "load generator threads");
    CLI11_PARSE(cli, argc, argv);

    std::vector<Agent> agents(nodes);
    std::atomic<std::size_t> next_registration{0}, registration_failures{0};
    // Registration: the keys are generated and the requests signed up front (CPU-bound).
    std::vector<std::string> registrations(nodes);
    for (std::size_t i = 0; i < nodes; ++i)
        registrations[i] = RegistrationRequest(crypto::Ed25519KeyPair::Generate(), i);
    const auto reg_start = Clock::now();
    {
        asio::io_context ioc;
        for (std::size_t c = 0; c < std::min<std::size_t>(connections, 32); ++c) {
            asio::co_spawn(
                ioc,
                [&]() -> asio::awaitable<void> {
                    auto conn = co_await Connect(port);
                    for (;;) {
                        const auto i = next_registration++;
                        if (i >= nodes) break;
                        auto reply = co_await conn->Exchange(registrations[i]);
                        if (!reply || reply->status != 200) {
                            ++registration_failures;
                            if (!reply) conn = co_await Connect(port);
                            continue;
                        }
                        const auto j = nlohmann::json::parse(reply->body);
                        agents[i] = {j["nodeId"], j["nodeToken"]};
                    }
                },
                asio::detached);
        }
        ioc.run();
    }
    const double reg_seconds = std::chrono::duration<double>(Clock::now() - reg_start).count();
    if (registration_failures > 0) {
        std::cerr << registration_failures << " registrations failed\n";
        return 1;
    }
    std::printf("registered %zu agents in %.1f s (%.0f/s)\n", nodes, reg_seconds,
                nodes / reg_seconds);

    // Heartbeats: connection c serves agents c, c+C, c+2C, ... round-robin.
    std::atomic<bool> measuring{false}, stop{false};
    std::atomic<std::uint64_t> errors{0};
    std::vector<std::vector<std::uint32_t>> latencies(connections);
    asio::io_context ioc(static_cast<int>(threads));
    for (std::size_t c = 0; c < connections; ++c) {
        asio::co_spawn(
            ioc,
            [&, c]() -> asio::awaitable<void> {
                auto conn = co_await Connect(port);
                std::size_t k = c;
                int cpu = 0;
                while (!stop) {
                    const auto req = HeartbeatRequest(agents[k], cpu++ % 100);
                    const auto t0 = Clock::now();
                    auto reply = co_await conn->Exchange(req);
                    const auto us =
                        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0)
                            .count();
                    if (!reply || reply->status != 200) {
                        ++errors;
                        if (!reply) conn = co_await Connect(port);
                    } else if (measuring) {
                        latencies[c].push_back(static_cast<std::uint32_t>(us));
                    }
                    k += connections;
                    if (k >= nodes) k = c;
                }
            },
            asio::detached);
    }
    std::thread timer([&] {
        std::this_thread::sleep_for(std::chrono::duration<double>(warmup));
        measuring = true;
        std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
        measuring = false;
        stop = true;
    });
    std::vector<std::thread> runners;
    for (unsigned t = 1; t < threads; ++t) runners.emplace_back([&] { ioc.run(); });
    ioc.run();
    for (auto& r : runners) r.join();
    timer.join();

    std::vector<std::uint32_t> all;
    for (auto& v : latencies) all.insert(all.end(), v.begin(), v.end());
    const double rate = static_cast<double>(all.size()) / seconds;
    const double p50 = Percentile(all, 0.50);
    const double p99 = Percentile(all, 0.99);
    const double max = all.empty() ? 0 : *std::max_element(all.begin(), all.end()) / 1000.0;
    std::printf(
        "heartbeats: %zu in %.0f s over %zu connections, %llu errors; p50 %.2f ms p99 %.2f ms max "
        "%.2f ms\n",
        all.size(), seconds, connections, static_cast<unsigned long long>(errors.load()), p50, p99,
        max);
    std::printf("RESULT heartbeats_per_s=%.0f p50_ms=%.2f p99_ms=%.2f errors=%llu\n", rate, p50,
                p99, static_cast<unsigned long long>(errors.load()));
    return errors > 0 ? 1 : 0;
}
