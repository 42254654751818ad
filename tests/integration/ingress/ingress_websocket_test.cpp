// decloud-ingress bridges WebSockets: the upgrade is detected however Connection spells it, the
// upstream handshake carries the same path, query and subprotocols, the upstream's choice or
// refusal is what the client sees, frames of every kind pass both ways, close codes travel in both
// directions, 1,000 connections work at once, and a client that stops reading does not make the
// proxy buffer what the upstream floods. The npm `ws` client is the judge.

#include <sys/resource.h>
#include <algorithm>

#include <chrono>
#include <fstream>
#include <iostream>

#include "ingress_fixture.hpp"

namespace decloud::ingress_test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

constexpr long kPeakAllowanceKb = 64 * 1024;

class IngressWebSocketTest : public IngressTest {
  protected:
    std::string StatsUrl() const {
        return "http://127.0.0.1:" + std::to_string(control_port_) + "/__stats";
    }
};

// A client frame: FIN + opcode, masked as clients must.
std::string MaskedFrame(std::uint8_t opcode, std::string_view payload) {
    std::string frame;
    frame += static_cast<char>(0x80 | opcode);
    frame += static_cast<char>(0x80 | payload.size());  // payload < 126 bytes here
    const char mask[4] = {0x12, 0x34, 0x56, 0x78};
    frame.append(mask, 4);
    for (std::size_t i = 0; i < payload.size(); ++i)
        frame += static_cast<char>(payload[i] ^ mask[i % 4]);
    return frame;
}

TEST_F(IngressWebSocketTest, UpgradeIsDetectedInAnyConnectionSpelling) {
    ASSERT_NO_FATAL_FAILURE(StartProxy());
    const std::vector<std::pair<std::string, std::string>> spellings = {
        {"keep-alive, Upgrade", "websocket"},
        {"UPGRADE", "WebSocket"},
        {"upgrade,keep-alive", "websocket"},
    };
    int n = 0;
    for (const auto& [connection_value, upgrade_value] : spellings) {
        SCOPED_TRACE(connection_value);
        const std::string target = AppPath("/ws/raw?n=" + std::to_string(++n));
        RawConnection connection(proxy_port_);
        ASSERT_TRUE(connection.Send(
            "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: " + connection_value +
            "\r\nUpgrade: " + upgrade_value +
            "\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"));
        const std::string head = connection.ReadUntil("\r\n\r\n", 10s);
        std::size_t consumed = 0;
        const auto response = ParseResponse(head, false, &consumed);
        ASSERT_TRUE(response) << head;
        ASSERT_EQ(response->status, 101) << head;
        EXPECT_EQ(response->Header("Sec-WebSocket-Accept"), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        EXPECT_EQ(Lower(response->Header("Upgrade")), "websocket");

        // A text frame goes through and comes back (unmasked, same opcode).
        const std::string payload = "through the proxy " + std::to_string(n);
        ASSERT_TRUE(connection.Send(MaskedFrame(0x1, payload)));
        const std::string echoed = connection.ReadUntil(payload, 10s);
        ASSERT_GE(echoed.size(), payload.size() + 2) << "no echo";
        EXPECT_EQ(static_cast<unsigned char>(echoed[echoed.size() - payload.size() - 2]), 0x81);
        EXPECT_EQ(static_cast<unsigned char>(echoed[echoed.size() - payload.size() - 1]),
                  payload.size());

        const auto handshakes = UpstreamStats()["wsHandshakes"];
        ASSERT_FALSE(handshakes.empty());
        EXPECT_EQ(handshakes.back()["url"], "/ws/raw?n=" + std::to_string(n));
    }
}

TEST_F(IngressWebSocketTest, HandshakeCarriesPathQueryAndTheUpstreamsSubprotocol) {
    ASSERT_NO_FATAL_FAILURE(StartProxy());
    // The upstream picks the second offer, so a proxy choosing by itself would show.
    auto report = WsClient({"handshake", ProxyWsUrl(AppPath("/ws/room?x=1&choose=chat.v2")),
                            "--protocols", "chat.v1,chat.v2"});
    ASSERT_FALSE(report.contains("error")) << report.dump();
    EXPECT_EQ(report["open"], true);
    EXPECT_EQ(report["protocol"], "chat.v2");
    EXPECT_EQ(report["info"]["url"], "/ws/room?x=1&choose=chat.v2");
    EXPECT_EQ(report["info"]["chosen"], "chat.v2");
    std::string offered = report["info"]["protocolHeader"].is_string()
                              ? report["info"]["protocolHeader"].get<std::string>()
                              : std::string();
    std::erase(offered, ' ');
    EXPECT_EQ(offered, "chat.v1,chat.v2");

    // Host form too; no subprotocol offered means none chosen.
    report = WsClient({"handshake", ProxyWsUrl("/ws/host?y=2"), "--host", AppHost()});
    ASSERT_FALSE(report.contains("error")) << report.dump();
    EXPECT_EQ(report["open"], true);
    EXPECT_EQ(report["protocol"], "");
    EXPECT_EQ(report["info"]["url"], "/ws/host?y=2");
    EXPECT_TRUE(report["info"]["protocolHeader"].is_null()) << report.dump();
}

TEST_F(IngressWebSocketTest, UpstreamThatRefusesTheUpgradeGivesItsStatus) {
    ASSERT_NO_FATAL_FAILURE(StartProxy());
    const auto report = WsClient({"handshake", ProxyWsUrl(AppPath("/ws-refuse"))});
    ASSERT_FALSE(report.contains("error")) << report.dump();
    EXPECT_EQ(report["open"], false);
    EXPECT_EQ(report["status"], 403);
    EXPECT_EQ(report["body"], "no upgrade here");

    // An unknown VM is refused by the proxy itself.
    const auto unknown = WsClient({"handshake", ProxyWsUrl(VmPath(kUnknownId, app_port_, "/ws"))});
    EXPECT_EQ(unknown["status"], 404) << unknown.dump();
}

TEST_F(IngressWebSocketTest, FramesOfEveryKindPassBothWays) {
    ASSERT_NO_FATAL_FAILURE(StartProxy());
    const auto report = WsClient({"exchange", ProxyWsUrl(AppPath("/ws/echo"))});
    ASSERT_FALSE(report.contains("error")) << report.dump();
    const auto& results = report["results"];
    EXPECT_EQ(results["text"], (json{{"binary", false}, {"same", true}}));
    EXPECT_EQ(results["binary"], (json{{"binary", true}, {"same", true}}));
    EXPECT_EQ(results["bigBinary"], (json{{"binary", true}, {"bytes", 1048576}, {"same", true}}));
    EXPECT_EQ(results["fragmentedText"],
              (json{{"binary", false}, {"text", "frag-one|frag-two|frag-three"}}));
    EXPECT_EQ(results["fragmentedBinary"], (json{{"binary", true}, {"bytes", {1, 2, 3, 4, 5, 6}}}));
    EXPECT_EQ(results["clientPing"]["pong"], "are-you-there");
    EXPECT_EQ(results["serverPing"]["reply"], "pong:from-upstream");
    // The client's close code and reason reach the upstream, whose echo comes back.
    EXPECT_EQ(report["close"], (json{{"code", 4002}, {"reason", "ciao"}}));
    json closes;
    EXPECT_TRUE(testing::WaitUntil(
        [&] {
            closes = UpstreamStats()["wsCloses"];
            return !closes.empty();
        },
        5s, 20ms));
    EXPECT_EQ(closes, (json::array({{{"code", 4002}, {"reason", "ciao"}}})));
}

TEST_F(IngressWebSocketTest, UpstreamCloseCodeAndReasonReachTheClient) {
    ASSERT_NO_FATAL_FAILURE(StartProxy());
    const auto report = WsClient(
        {"server-close", ProxyWsUrl(AppPath("/ws/echo")), "--code", "4001", "--reason", "bye"});
    EXPECT_EQ(report, (json{{"code", 4001}, {"reason", "bye"}}));
    EXPECT_TRUE(testing::WaitUntil([&] { return UpstreamStats()["wsActive"] == 0; }, 5s, 20ms));
}

TEST_F(IngressWebSocketTest, AThousandConcurrentWebSocketsAllEcho) {
    // 1,000 bridged pairs need over 2,000 descriptors: the proxy starts with the usual soft limit
    // of 1024 and must raise it itself (up to the hard limit, which has to allow it).
    rlimit limit{};
    ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &limit), 0);
    ASSERT_GE(limit.rlim_max, 4096u) << "the hard RLIMIT_NOFILE is too low for this test";
    proxy_soft_fd_limit_ = 1024;
    // All 1,000 come from 127.0.0.1: more than one address may open by default.
    ASSERT_NO_FATAL_FAILURE(StartProxy({{"--max-connections-per-client", "2000"}}));
    EXPECT_TRUE(testing::WaitUntil(
        [&] {
            std::ifstream limits("/proc/" + std::to_string(proxy_->pid()) + "/limits");
            for (std::string line; std::getline(limits, line);)
                if (line.starts_with("Max open files"))
                    return line.find(" 1024 ") == std::string::npos;
            return false;
        },
        5s, 20ms))
        << "the proxy kept a soft descriptor limit of 1024";
    const auto started = std::chrono::steady_clock::now();
    const auto report = WsClient(
        {"many", ProxyWsUrl(AppPath("/ws/many")), "--count", "1000", "--stats", StatsUrl()}, 240s);
    std::cout << "[ websockets ] 1000 connections in "
              << std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count()
              << " s: " << report.dump() << "\n";
    ASSERT_FALSE(report.contains("error")) << report.dump();
    EXPECT_EQ(report["opened"], 1000);
    EXPECT_EQ(report["echoed"], 1000);
    EXPECT_EQ(report["mismatched"], 0);
    EXPECT_EQ(report["errors"], 0) << report["firstError"];
    EXPECT_EQ(report["upstreamActive"], 1000) << "the upstream did not see them all at once";
    EXPECT_TRUE(testing::WaitUntil([&] { return UpstreamStats()["wsActive"] == 0; }, 10s, 50ms));
}

TEST_F(IngressWebSocketTest, SlowReaderDoesNotGrowTheProxy) {
    ASSERT_NO_FATAL_FAILURE(StartProxy());
    const auto warm = WsClient({"handshake", ProxyWsUrl(AppPath("/ws/warm"))});
    ASSERT_EQ(warm["open"], true) << warm.dump();
    const long idle_kb = ProxyRssKb();
    constexpr long long kTotal = 1024LL * 1024 * 1024;
    const auto report = WsClient(
        {"slow-reader",
         ProxyWsUrl(AppPath("/ws-flood?total=" + std::to_string(kTotal) + "&size=1048576")),
         "--pause-ms", "3000", "--stats", StatsUrl()},
        240s);
    const long peak_kb = ProxyPeakRssKb();
    std::cout << "[ websockets ] slow reader: " << report.dump() << "; idle RSS " << idle_kb / 1024
              << " MiB, peak " << peak_kb / 1024 << " MiB\n";
    ASSERT_FALSE(report.contains("error")) << report.dump();
    EXPECT_EQ(report["bytes"], kTotal);
    EXPECT_EQ(report["received"], kTotal / 1048576);
    EXPECT_EQ(report["inOrder"], true);
    // Back-pressure reached the upstream: while the client did not read, the upstream could only
    // fill socket buffers and the proxy's bounded buffers.
    EXPECT_LT(report["sentWhilePaused"].get<long long>(), 128LL * 1024 * 1024);
    EXPECT_LT(peak_kb - idle_kb, kPeakAllowanceKb)
        << "the proxy's peak RSS grew by " << (peak_kb - idle_kb) / 1024 << " MiB";
}

TEST_F(IngressWebSocketTest, BridgedWebSocketsAreCountedWhileOpen) {
    ASSERT_NO_FATAL_FAILURE(StartProxy());
    RawConnection ws(proxy_port_);
    ASSERT_TRUE(ws.connected());
    ASSERT_TRUE(ws.Send("GET " + AppPath("/ws/counted") +
                        " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\n"
                        "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"));
    const auto head = ws.ReadUntil("\r\n\r\n", 10s);
    ASSERT_TRUE(head.starts_with("HTTP/1.1 101 ")) << head;
    const auto open = ProxyCounters();
    EXPECT_EQ(open["websocketsActive"], 1) << open.dump();
    EXPECT_EQ(open["responsesByClass"], json::array({1, 0, 0, 0, 0})) << open.dump();

    ws.Close();
    json closed;
    EXPECT_TRUE(testing::WaitUntil(
        [&] {
            closed = ProxyCounters();
            return closed["websocketsActive"] == 0;
        },
        10s, 50ms))
        << closed.dump();
}

}  // namespace
}  // namespace decloud::ingress_test
