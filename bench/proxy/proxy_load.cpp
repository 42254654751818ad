// Load generator for bench/proxy, for what wrk cannot do. One thread; each mode prints a summary
// line and a last line "RESULT key=value ...".
//
//   proxy_load rate --port P [--target /path] --rate R --connections C --seconds D
//     Open-loop HTTP/1.1 GETs at a fixed rate over C keep-alive connections (one request in flight
//     per connection, as wrk2 does). Request k of connection c is scheduled at
//     start + (k*C + c)/R; its latency runs from that scheduled time, not from the actual send, so
//     a slow answer that delays the next sends is charged to them (no coordinated omission).
//   proxy_load ws-echo --port P [--target /path] --connections K --seconds D [--size 64]
//     K WebSocket connections, each sending a binary message and waiting for its echo in a loop;
//     reports echoed messages per second.
//   proxy_load ws-idle --port P [--target /path] --connections N --pid PID
//     Reads VmRSS of PID, opens N WebSocket connections (each exchanges one message, then stays
//     idle), reads VmRSS again and reports the growth per connection.

#include <sys/resource.h>
#include <CLI/CLI.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/websocket.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using WsStream = websocket::stream<tcp::socket>;

namespace {

struct Target {
    std::string address = "127.0.0.1";
    std::uint16_t port = 0;
    std::string path = "/";
    std::string host;  // Host header; "" means "address:port"
};

asio::awaitable<std::optional<tcp::socket>> Connect(Target target) {
    tcp::socket socket(co_await asio::this_coro::executor);
    const tcp::endpoint endpoint(asio::ip::make_address(target.address), target.port);
    auto [ec] = co_await socket.async_connect(endpoint, asio::as_tuple(asio::use_awaitable));
    if (ec) co_return std::nullopt;
    socket.set_option(tcp::no_delay(true));
    co_return std::optional<tcp::socket>(std::move(socket));
}

// A WebSocket client connection after a successful handshake, or nullptr.
asio::awaitable<std::unique_ptr<WsStream>> ConnectWebSocket(Target target) {
    auto socket = co_await Connect(target);
    if (!socket) co_return nullptr;
    auto ws = std::make_unique<WsStream>(std::move(*socket));
    // A close that the other side never answers must not hang the run.
    ws->set_option(websocket::stream_base::timeout{std::chrono::seconds(5),
                                                   websocket::stream_base::none(), false});
    auto [ec] =
        co_await ws->async_handshake(target.host, target.path, asio::as_tuple(asio::use_awaitable));
    if (ec) {
        std::cerr << "websocket handshake with " << target.address << ":" << target.port
                  << target.path << ": " << ec.message() << "\n";
        co_return nullptr;
    }
    ws->binary(true);
    co_return ws;
}

// Sends `payload` and waits for the same bytes back.
asio::awaitable<bool> EchoOnce(WsStream* ws, const std::string* payload,
                               beast::flat_buffer* buffer) {
    auto [wec, wn] =
        co_await ws->async_write(asio::buffer(*payload), asio::as_tuple(asio::use_awaitable));
    if (wec) co_return false;
    auto [rec, rn] = co_await ws->async_read(*buffer, asio::as_tuple(asio::use_awaitable));
    if (rec) co_return false;
    const bool same = buffer->size() == payload->size() &&
                      std::memcmp(buffer->data().data(), payload->data(), payload->size()) == 0;
    buffer->consume(buffer->size());
    co_return same;
}

double Micros(std::int64_t ns) { return static_cast<double>(ns) / 1000.0; }

// p in [0, 1] over sorted values.
std::int64_t Percentile(const std::vector<std::int64_t>& sorted, double p) {
    if (sorted.empty()) return 0;
    const auto k = static_cast<std::size_t>(p * static_cast<double>(sorted.size() - 1) + 0.5);
    return sorted[std::min(k, sorted.size() - 1)];
}

void RaiseDescriptorLimit() {
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &limit);
    }
}

// ---------------------------------------------------------------------------------------------
// rate

struct RateStats {
    std::vector<std::int64_t> latencies_ns;  // requests scheduled inside the measured window
    std::uint64_t errors = 0;                // failed exchanges (connection reopened) or non-200
    std::uint64_t dropped = 0;               // scheduled but never sent: the run overran
};

asio::awaitable<void> RateConnection(Target target, std::string request, Clock::time_point first,
                                     Clock::duration interval, Clock::time_point measure_from,
                                     Clock::time_point end, RateStats* stats) {
    // Past this the target cannot keep up; what is left is counted, not sent.
    const auto deadline = end + std::chrono::seconds(5);
    asio::steady_timer timer(co_await asio::this_coro::executor);
    auto socket = co_await Connect(target);
    beast::flat_buffer buffer;
    for (auto scheduled = first; scheduled < end; scheduled += interval) {
        if (Clock::now() < scheduled) {
            timer.expires_at(scheduled);
            co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
        } else if (Clock::now() > deadline) {
            ++stats->dropped;
            continue;
        }
        if (!socket) {
            socket = co_await Connect(target);
            buffer.clear();
            if (!socket) {
                ++stats->errors;
                continue;
            }
        }
        auto [wec, wn] = co_await asio::async_write(*socket, asio::buffer(request),
                                                    asio::as_tuple(asio::use_awaitable));
        http::response_parser<http::string_body> parser;
        parser.body_limit(1 << 20);
        boost::system::error_code rec = wec;
        if (!wec) {
            auto [ec, rn] = co_await http::async_read(*socket, buffer, parser,
                                                      asio::as_tuple(asio::use_awaitable));
            rec = ec;
        }
        const auto done = Clock::now();
        if (rec || parser.get().result() != http::status::ok) {
            ++stats->errors;
            socket.reset();
            continue;
        }
        if (scheduled >= measure_from) stats->latencies_ns.push_back((done - scheduled).count());
        if (!parser.get().keep_alive()) socket.reset();
    }
}

int RunRate(const Target& target, double rate, std::size_t connections, double seconds,
            double warmup) {
    const std::string request = "GET " + target.path + " HTTP/1.1\r\nHost: " + target.host +
                                "\r\nUser-Agent: proxy_load\r\n\r\n";
    RateStats stats;
    stats.latencies_ns.reserve(static_cast<std::size_t>(rate * seconds * 1.1) + 16);
    asio::io_context io{1};
    const auto to_clock = [](double s) {
        return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
    };
    const auto start = Clock::now() + std::chrono::milliseconds(100);  // after the connects
    const auto measure_from = start + to_clock(warmup);
    const auto end = measure_from + to_clock(seconds);
    const auto interval = to_clock(static_cast<double>(connections) / rate);
    for (std::size_t c = 0; c < connections; ++c) {
        const auto first = start + to_clock(static_cast<double>(c) / rate);
        asio::co_spawn(io,
                       RateConnection(target, request, first, interval, measure_from, end, &stats),
                       asio::detached);
    }
    io.run();

    auto& lat = stats.latencies_ns;
    std::sort(lat.begin(), lat.end());
    const double p50 = Micros(Percentile(lat, 0.50)), p90 = Micros(Percentile(lat, 0.90)),
                 p99 = Micros(Percentile(lat, 0.99)), p999 = Micros(Percentile(lat, 0.999));
    const double max = lat.empty() ? 0 : Micros(lat.back());
    const double achieved = static_cast<double>(lat.size()) / seconds;
    std::printf(
        "rate %s:%u%s: asked %.0f req/s over %zu connections for %.0f s, answered %.0f req/s, "
        "errors %llu, dropped %llu; latency from the scheduled send (us): p50 %.1f p90 %.1f "
        "p99 %.1f p99.9 %.1f max %.1f\n",
        target.address.c_str(), target.port, target.path.c_str(), rate, connections, seconds,
        achieved, static_cast<unsigned long long>(stats.errors),
        static_cast<unsigned long long>(stats.dropped), p50, p90, p99, p999, max);
    std::printf(
        "RESULT rate=%.0f answered_per_s=%.0f errors=%llu dropped=%llu p50_us=%.1f p90_us=%.1f "
        "p99_us=%.1f p999_us=%.1f max_us=%.1f\n",
        rate, achieved, static_cast<unsigned long long>(stats.errors),
        static_cast<unsigned long long>(stats.dropped), p50, p90, p99, p999, max);
    // A target that cannot keep up is a result (its latencies show it), not a failure.
    return stats.errors == 0 && !lat.empty() ? 0 : 1;
}

// ---------------------------------------------------------------------------------------------
// ws-echo

struct EchoStats {
    std::uint64_t messages = 0;  // echoes received inside the measured window
    std::uint64_t failed_connections = 0;
};

asio::awaitable<void> EchoLoop(Target target, std::size_t size, Clock::time_point measure_from,
                               Clock::time_point end, EchoStats* stats) {
    auto ws = co_await ConnectWebSocket(target);
    if (!ws) {
        ++stats->failed_connections;
        co_return;
    }
    std::string payload(size, '\0');
    for (std::size_t i = 0; i < size; ++i) payload[i] = static_cast<char>('a' + i % 26);
    beast::flat_buffer buffer;
    for (;;) {
        if (!co_await EchoOnce(ws.get(), &payload, &buffer)) {
            ++stats->failed_connections;
            co_return;
        }
        const auto now = Clock::now();
        if (now >= end) break;
        if (now >= measure_from) ++stats->messages;
    }
    auto [cec] = co_await ws->async_close(websocket::close_code::normal,
                                          asio::as_tuple(asio::use_awaitable));
    (void)cec;  // the numbers are in; a close the proxy fumbles is not this bench's concern
}

int RunWsEcho(const Target& target, std::size_t connections, double seconds, double warmup,
              std::size_t size) {
    EchoStats stats;
    asio::io_context io{1};
    const auto to_clock = [](double s) {
        return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
    };
    const auto measure_from = Clock::now() + to_clock(warmup);
    const auto end = measure_from + to_clock(seconds);
    for (std::size_t c = 0; c < connections; ++c)
        asio::co_spawn(io, EchoLoop(target, size, measure_from, end, &stats), asio::detached);
    io.run();
    const double per_s = static_cast<double>(stats.messages) / seconds;
    std::printf(
        "ws-echo %s:%u%s: %zu connections, %zu-byte messages, %.0f s: %.0f echoes/s, %llu "
        "connections failed\n",
        target.address.c_str(), target.port, target.path.c_str(), connections, size, seconds, per_s,
        static_cast<unsigned long long>(stats.failed_connections));
    std::printf("RESULT msgs_per_s=%.0f failed_connections=%llu\n", per_s,
                static_cast<unsigned long long>(stats.failed_connections));
    return stats.failed_connections == 0 ? 0 : 1;
}

// ---------------------------------------------------------------------------------------------
// ws-idle

std::optional<long> ReadRssKib(int pid) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(status, line))
        if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
    return std::nullopt;
}

struct IdleState {
    std::size_t wanted = 0;
    std::size_t next = 0;
    std::size_t failed = 0;
    std::vector<std::unique_ptr<WsStream>> open;
};

asio::awaitable<void> OpenIdle(Target target, IdleState* state) {
    const std::string payload = "hello through the proxy";
    beast::flat_buffer buffer;
    while (state->next < state->wanted) {
        ++state->next;
        auto ws = co_await ConnectWebSocket(target);
        if (!ws || !co_await EchoOnce(ws.get(), &payload, &buffer)) {
            ++state->failed;
            continue;
        }
        state->open.push_back(std::move(ws));
    }
}

int RunWsIdle(const Target& target, std::size_t connections, int pid, double settle) {
    const auto settle_time = std::chrono::duration<double>(settle);
    std::this_thread::sleep_for(settle_time);
    const auto before = ReadRssKib(pid);
    if (!before) {
        std::cerr << "cannot read VmRSS of pid " << pid << "\n";
        return 1;
    }
    asio::io_context io{1};  // outlives the streams in `state`
    IdleState state;
    state.wanted = connections;
    state.open.reserve(connections);
    for (std::size_t w = 0; w < std::min<std::size_t>(connections, 32); ++w)
        asio::co_spawn(io, OpenIdle(target, &state), asio::detached);
    io.run();
    // Everything open is idle now; let the proxy finish whatever the last echoes left behind.
    std::this_thread::sleep_for(settle_time);
    const auto after = ReadRssKib(pid);
    if (!after) {
        std::cerr << "cannot read VmRSS of pid " << pid << "\n";
        return 1;
    }
    const std::size_t opened = state.open.size();
    const double per_conn =
        opened == 0 ? 0 : static_cast<double>(*after - *before) / static_cast<double>(opened);
    std::printf(
        "ws-idle %s:%u%s: %zu of %zu WebSockets open and idle, %zu failed; VmRSS of pid %d %ld "
        "-> %ld KiB: %.1f KiB per connection\n",
        target.address.c_str(), target.port, target.path.c_str(), opened, connections, state.failed,
        pid, *before, *after, per_conn);
    std::printf(
        "RESULT kib_per_conn=%.1f opened=%zu failed=%zu rss_before_kib=%ld rss_after_kib=%ld\n",
        per_conn, opened, state.failed, *before, *after);
    return state.failed == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App cli{"bench/proxy load generator: fixed-rate HTTP, WebSocket echo, idle WebSockets"};
    cli.require_subcommand(1);
    Target target;
    std::size_t connections = 16;
    double seconds = 8, warmup = 1;
    auto add_common = [&](CLI::App* sub) {
        sub->add_option("--address", target.address, "IP address to connect to");
        sub->add_option("--port", target.port)->required();
        sub->add_option("--target", target.path, "request target (path and query)");
        sub->add_option("--host", target.host, "Host header (default: address:port)");
        sub->add_option("--connections", connections);
    };
    double rate = 1000;
    auto* rate_cmd = cli.add_subcommand("rate", "open-loop HTTP GETs at a fixed rate");
    add_common(rate_cmd);
    rate_cmd->add_option("--rate", rate, "requests per second")->required();
    rate_cmd->add_option("--seconds", seconds, "measured duration");
    rate_cmd->add_option("--warmup", warmup, "unmeasured seconds before");

    std::size_t size = 64;
    auto* echo_cmd = cli.add_subcommand("ws-echo", "WebSocket echo throughput");
    add_common(echo_cmd);
    echo_cmd->add_option("--seconds", seconds, "measured duration");
    echo_cmd->add_option("--warmup", warmup, "unmeasured seconds before");
    echo_cmd->add_option("--size", size, "message size in bytes");

    int pid = 0;
    double settle = 1;
    auto* idle_cmd = cli.add_subcommand("ws-idle", "memory of idle bridged WebSockets");
    add_common(idle_cmd);
    idle_cmd->add_option("--pid", pid, "process whose VmRSS is read (the proxy)")->required();
    idle_cmd->add_option("--settle", settle, "seconds to wait before each RSS reading");
    CLI11_PARSE(cli, argc, argv);

    if (target.host.empty()) target.host = target.address + ":" + std::to_string(target.port);
    RaiseDescriptorLimit();
    if (rate_cmd->parsed()) return RunRate(target, rate, connections, seconds, warmup);
    if (echo_cmd->parsed()) return RunWsEcho(target, connections, seconds, warmup, size);
    return RunWsIdle(target, connections, pid, settle);
}
