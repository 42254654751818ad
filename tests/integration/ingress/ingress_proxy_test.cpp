// decloud-ingress end to end over HTTP: routing by path and Host, refusals as problem+json, no way
// to reach anything outside routes.json, hop-by-hop and forwarding headers, statuses and cookies
// passed through, chunked bodies and trailers, Expect: 100-continue, upstream keep-alive, 502/504,
// client aborts, request smuggling, TLS with reload, route reload. curl is the judge wherever it
// can send the request; raw sockets send what curl would not.

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <thread>

#include "ingress_fixture.hpp"

namespace decloud::ingress_test {
namespace {

using namespace std::chrono_literals;
using namespace std::string_literals;
using nlohmann::json;

::testing::AssertionResult IsProblem(int status, std::string_view content_type,
                                     const std::string& body, int expected) {
    if (status != expected)
        return ::testing::AssertionFailure()
               << "status " << status << ", expected " << expected << "; body: " << body;
    if (!content_type.starts_with("application/problem+json"))
        return ::testing::AssertionFailure() << "Content-Type '" << content_type
                                             << "' is not application/problem+json; body: " << body;
    const auto problem = json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (!problem.is_object() || !problem.contains("title") || !problem["title"].is_string() ||
        problem["title"].get<std::string>().empty())
        return ::testing::AssertionFailure() << "no title in " << body;
    if (!problem.contains("detail") || !problem["detail"].is_string())
        return ::testing::AssertionFailure() << "no detail in " << body;
    return ::testing::AssertionSuccess();
}

::testing::AssertionResult IsProblem(const CurlResult& r, int expected) {
    if (r.exit_code != 0)
        return ::testing::AssertionFailure() << "curl exit " << r.exit_code << ": " << r.err;
    return IsProblem(r.status, r.Header("Content-Type"), r.body, expected);
}

::testing::AssertionResult IsProblem(const std::optional<RawResponse>& r, int expected) {
    if (!r) return ::testing::AssertionFailure() << "no complete response";
    return IsProblem(r->status, r->Header("Content-Type"), r->body, expected);
}

// Header values the upstream received (its echo's rawHeaders), case-insensitive name.
std::vector<std::string> EchoHeaders(const json& echo, std::string_view name) {
    Headers headers;
    const auto& raw = echo["rawHeaders"];
    for (std::size_t i = 0; i + 1 < raw.size(); i += 2)
        headers.emplace_back(raw[i].get<std::string>(), raw[i + 1].get<std::string>());
    return HeaderValues(headers, name);
}

std::string EchoHeader(const json& echo, std::string_view name) {
    const auto values = EchoHeaders(echo, name);
    return values.empty() ? std::string() : values.front();
}

long long Count(const json& stats, std::string_view key) {
    return stats.contains(key) ? stats[std::string(key)].get<long long>() : -1;
}

bool PortWasReached(const json& stats, std::uint16_t port) {
    return stats.contains("requestsByPort") &&
           stats["requestsByPort"].contains(std::to_string(port));
}

std::string Base64Url(std::string_view in) {
    static constexpr char kAlphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string out;
    std::size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
        const unsigned v = (static_cast<unsigned char>(in[i]) << 16) |
                           (static_cast<unsigned char>(in[i + 1]) << 8) |
                           static_cast<unsigned char>(in[i + 2]);
        out += kAlphabet[(v >> 18) & 63];
        out += kAlphabet[(v >> 12) & 63];
        out += kAlphabet[(v >> 6) & 63];
        out += kAlphabet[v & 63];
    }
    if (i + 1 == in.size()) {
        const unsigned v = static_cast<unsigned char>(in[i]) << 16;
        out += kAlphabet[(v >> 18) & 63];
        out += kAlphabet[(v >> 12) & 63];
    } else if (i + 2 == in.size()) {
        const unsigned v = (static_cast<unsigned char>(in[i]) << 16) |
                           (static_cast<unsigned char>(in[i + 1]) << 8);
        out += kAlphabet[(v >> 18) & 63];
        out += kAlphabet[(v >> 12) & 63];
        out += kAlphabet[(v >> 6) & 63];
    }
    return out;
}

class IngressProxyTest : public IngressTest {
  protected:
    // Opens `count` connections that send nothing, once the proxy counts them open.
    std::vector<std::unique_ptr<RawConnection>> HoldIdleConnections(int count) {
        std::vector<std::unique_ptr<RawConnection>> held;
        for (int i = 0; i < count; ++i)
            held.push_back(std::make_unique<RawConnection>(proxy_port_));
        EXPECT_TRUE(testing::WaitUntil([&] { return ProxyCounters()["connectionsOpen"] == count; },
                                       5s, 20ms));
        return held;
    }

    // A new connection's request turned away: the answer, after which the proxy closed the
    // connection (nullopt: no answer).
    std::optional<RawResponse> TurnedAway(const std::string& request) {
        RawConnection connection(proxy_port_);
        EXPECT_TRUE(connection.Send(request));
        auto answer = connection.ReadResponse();
        EXPECT_TRUE(connection.ReadUntilClosed(5s).closed);
        if (answer) {
            EXPECT_EQ(answer->Header("Content-Type"), "application/problem+json");
        }
        return answer;
    }
};

// --- routing -----------------------------------------------------------------------------------

TEST_F(IngressProxyTest, PathFormForwardsRestAndQueryToTheVmPort) {
    ASSERT_NO_FATAL_FAILURE(StartProxy());
    auto r = Curl({ProxyUrl(AppPath("/echo?a=1&b=%2F%20x"))});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    ASSERT_EQ(r.status, 200) << r.body;
    auto echo = r.Json();
    EXPECT_EQ(echo["url"], "/echo?a=1&b=%2F%20x");
    EXPECT_EQ(echo["method"], "GET");
    EXPECT_EQ(echo["localPort"], app_port_);

    // The VM's extra port and a port of the node's allow-list are reachable too.
    for (const auto port : {extra_port_, allowed_port_}) {
        r = Curl({ProxyUrl(VmPath(kAppId, port, "/echo?p=" + std::to_string(port)))});
        ASSERT_EQ(r.status, 200) << r.body << r.err;
        EXPECT_EQ(r.Json()["localPort"], port);
        EXPECT_EQ(r.Json()["url"], "/echo?p=" + std::to_string(port));
    }

    // A body goes along with its method; the id matches case-insensitively.
    std::string upper_id(kAppId);
    std::transform(upper_id.begin(), upper_id.end(), upper_id.begin(),
                   [](unsigned char c) { return std::toupper(c); });
    r = Curl({"-X", "PATCH", "--data-binary", "hello body",
              ProxyUrl(VmPath(upper_id, app_port_, "/echo"))});
    ASSERT_EQ(r.status, 200) << r.body << r.err;
    echo = r.Json();
    EXPECT_EQ(echo["method"], "PATCH");
    EXPECT_EQ(echo["body"], "hello body");

    // The rest of the path goes verbatim: no decoding, no dot-segment removal.
    r = Curl({"--path-as-is", ProxyUrl(AppPath("/echo/%2e%2e/a/../b%2Fc?x=%41"))});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    const auto stats = UpstreamStats();
    ASSERT_FALSE(stats["lastRequests"].empty());
    EXPECT_EQ(stats["lastRequests"].back()["url"], "/echo/%2e%2e/a/../b%2Fc?x=%41");

    // No rest at all: the VM's root.
    r = Curl({ProxyUrl(AppPath(""))});
    EXPECT_EQ(UpstreamStats()["lastRequests"].back()["url"], "/");
}

TEST_F(IngressProxyTest, HostFormReachesTheDefaultPortOrThePrefixedOne) {
    ASSERT_NO_FATAL_FAILURE(StartProxy());
    const std::string domain(kVmDomain);
    const std::vector<std::pair<std::string, std::uint16_t>> cases = {
        {"app." + domain, app_port_},
        {"APP.Vms.LocalHost", app_port_},
        {"app." + domain + ":8080", app_port_},
        {std::string(kAppId) + "." + domain, app_port_},
        {std::to_string(extra_port_) + "-app." + domain, extra_port_},
        {std::to_string(allowed_port_) + "-" + std::string(kAppId) + "." + domain, allowed_port_},
    };
    for (const auto& [host, port] : cases) {
        SCOPED_TRACE(host);
        const auto r = Curl({"-H", "Host: " + host, ProxyUrl("/echo?via=host")});
        ASSERT_EQ(r.exit_code, 0) << r.err;
        ASSERT_EQ(r.status, 200) << r.body;
        const auto echo = r.Json();
        EXPECT_EQ(echo["localPort"], port);
        EXPECT_EQ(echo["url"], "/echo?via=host");
        EXPECT_EQ(EchoHeader(echo, "Host"), host) << "Host is preserved by default";
    }
    // The host form wins over a path that looks like the path form: the target goes unchanged.
    const auto r =
        Curl({"-H", "Host: app." + domain, ProxyUrl(VmPath(kUnknownId, app_port_, "/echo"))});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    const auto stats = UpstreamStats();
    ASSERT_FALSE(stats["lastRequests"].empty());
    EXPECT_EQ(stats["lastRequests"].back()["url"], VmPath(kUnknownId, app_port_, "/echo"));
    EXPECT_EQ(stats["lastRequests"].back()["localPort"], app_port_);
}

TEST_F(IngressProxyTest, UnknownVmIs404AndPortsOutsideTheListsAre403) {
    ASSERT_NO_FATAL_FAILURE(StartProxy());
    const std::string domain(kVmDomain);
    EXPECT_TRUE(IsProblem(Curl({ProxyUrl(VmPath(kUnknownId, app_port_, "/echo"))}), 404));
    EXPECT_TRUE(IsProblem(Curl({"-H", "Host: nope." + domain, ProxyUrl("/echo")}), 404));
    EXPECT_TRUE(IsProblem(
        Curl({"-H", "Host: " + std::string(kUnknownId) + "." + domain, ProxyUrl("/echo")}), 404));

    // The upstream listens on secret_port_, but it is neither the VM's nor allowed.
    EXPECT_TRUE(IsProblem(Curl({ProxyUrl(VmPath(kAppId, secret_port_, "/echo"))}), 403));
    EXPECT_TRUE(IsProblem(
        Curl({"-H", "Host: " + std::to_string(secret_port_) + "-app." + domain, ProxyUrl("/echo")}),
        403));
    // Another VM's extra port is not this VM's.
    EXPECT_TRUE(IsProblem(Curl({ProxyUrl(VmPath(kDownId, extra_port_, "/echo"))}), 403));
    // A well-known port that is not in --allowed-ports (the flag replaced the defaults).
    EXPECT_TRUE(IsProblem(Curl({ProxyUrl(VmPath(kAppId, 22, "/echo"))}), 403));

    const auto stats = UpstreamStats();
    EXPECT_FALSE(PortWasReached(stats, secret_port_)) << stats.dump();
    EXPECT_EQ(Count(stats, "requests"), 0) << stats.dump();
}

TEST_F(IngressProxyTest, AbsoluteFormConnectAndAsteriskTargetsAre400) {
    ASSERT_NO_FATAL_FAILURE(StartProxy());
    const std::string secret = "127.0.0.1:" + std::to_string(secret_port_);
    const std::vector<std::pair<std::string, std::string>> requests = {
        {"absolute-form to an address",
         "GET http://" + secret + "/echo HTTP/1.1\r\nHost: " + secret + "\r\n\r\n"},
        {"absolute-form to the VM's own host name",
         "GET http://app.vms.localhost/echo HTTP/1.1\r\nHost: app.vms.localhost\r\n\r\n"},
        {"absolute-form with a path-form path",
         "GET http://" + secret + AppPath("/echo") + " HTTP/1.1\r\nHost: " + secret + "\r\n\r\n"},
        {"CONNECT", "CONNECT " + secret + " HTTP/1.1\r\nHost: " + secret + "\r\n\r\n"},
        {"CONNECT to the VM", "CONNECT app.vms.localhost:" + std::to_string(app_port_) +
                                  " HTTP/1.1\r\nHost: app.vms.localhost\r\n\r\n"},
        {"asterisk-form", "OPTIONS * HTTP/1.1\r\nHost: app.vms.localhost\r\n\r\n"},
    };
    for (const auto& [name, bytes] : requests) {
        SCOPED_TRACE(name);
        RawConnection connection(proxy_port_);
        ASSERT_TRUE(connection.connected());
        ASSERT_TRUE(connection.Send(bytes));
        EXPECT_TRUE(IsProblem(connection.ReadResponse(), 400));
    }
    // curl used as a forward proxy client sends absolute-form targets.
    EXPECT_TRUE(IsProblem(Curl({"-x", ProxyUrl(""), "http://" + secret + "/echo"}), 400));
    EXPECT_TRUE(IsProblem(Curl({"-x", ProxyUrl(""), "http://app.vms.localhost/echo"}), 400));

    const auto stats = UpstreamStats();
    EXPECT_EQ(Count(stats, "requests"), 0) << stats.dump();
    EXPECT_EQ(Count(stats, "connections"), 0) << stats.dump();
}

TEST_F(IngressProxyTest, NoHostOrPathReachesAnAddressOutsideTheRoutes) {
    ASSERT_NO_FATAL_FAILURE(StartProxy());
    const std::string secret = "127.0.0.1:" + std::to_string(secret_port_);
    const std::vector<std::string> hosts = {
        secret,
        "127.0.0.1",
        "localhost:" + std::to_string(secret_port_),
        "evil.example",
        "app.vms.localhost.evil.example",
        "vms.localhost",
    };
    for (const auto& host : hosts) {
        SCOPED_TRACE(host);
        const auto r = Curl({"-H", "Host: " + host, ProxyUrl("/echo")});
        EXPECT_TRUE(IsProblem(r, 404));
    }
    // Hosts that are not host names at all.
    for (const std::string& host : std::vector<std::string>{
             "app.vms.localhost@" + secret, "app.vms.localhost:80:90", "x.app.vms.localhost",
             "app.vms.localhost/x", "[::1]:" + std::to_string(secret_port_)}) {
        SCOPED_TRACE(host);
        const auto r = Curl({"-H", "Host: " + host, ProxyUrl("/echo")});
        EXPECT_TRUE(r.status == 400 || r.status == 404) << r.status << " " << r.body;
        EXPECT_TRUE(IsProblem(r, r.status));
    }
    // Path forms that try a port or an address the route does not have.
    for (const std::string& target : std::vector<std::string>{
             "/api/vms/" + std::string(kAppId) + "/proxy/http/" + secret + "/echo",
             "/api/vms/" + std::string(kAppId) + "/proxy/http/0/echo",
             "/api/vms/" + std::string(kAppId) + "/proxy/http/99999/echo",
             "/api/vms/" + std::string(kAppId) + "/proxy/http/+" + std::to_string(secret_port_) +
                 "/echo",
             "/api/vms/127.0.0.1/proxy/http/" + std::to_string(secret_port_) + "/echo",
             "/api/vms/" + std::string(kAppId) + "/../../proxy/http/" +
                 std::to_string(secret_port_),
             "/api/vms/" + std::string(kAppId) + "/proxy/https/" + std::to_string(secret_port_) +
                 "/echo"}) {
        SCOPED_TRACE(target);
        const auto r = Curl({"--path-as-is", ProxyUrl(target)});
        EXPECT_TRUE(r.status == 400 || r.status == 403 || r.status == 404)
            << r.status << " " << r.body;
        EXPECT_TRUE(IsProblem(r, r.status));
    }
    const auto stats = UpstreamStats();
    EXPECT_FALSE(PortWasReached(stats, secret_port_)) << stats.dump();
    EXPECT_EQ(Count(stats, "requests"), 0) << stats.dump();
}

// --- headers -----------------------------------------------------------------------------------

TEST_F(IngressProxyTest, RequestHopByHopHeadersGoAndForwardingHeadersCome) {
    ASSERT_NO_FATAL_FAILURE(StartProxy());
    const auto r = Curl({"-H",
                         "Host: app.vms.localhost",
                         "-H",
                         "Connection: keep-alive, X-Secret",
                         "-H",
                         "X-Secret: 1",
                         "-H",
                         "Keep-Alive: timeout=5",
                         "-H",
                         "Proxy-Authorization: Basic Zm9vOmJhcg==",
                         "-H",
                         "Proxy-Connection: keep-alive",
                         "-H",
                         "TE: trailers",
                         "-H",
                         "Trailer: X-Checksum",
                         "-H",
                         "Upgrade: h2c",
                         "-H",
                         "X-Forwarded-For: 203.0.113.9",
                         "-H",
                         "X-Forwarded-Proto: spoofed",
                         "-H",
                         "Authorization: Bearer kept",
                         "-H",
                         "X-Kept: yes",
                         ProxyUrl("/echo")});
    ASSERT_EQ(r.status, 200) << r.body << r.err;
    const auto echo = r.Json();
    for (const std::string& name : std::vector<std::string>{
             "X-Secret", "Keep-Alive", "Proxy-Authorization", "Proxy-Connection", "TE", "Trailer",
             "Upgrade", "Transfer-Encoding"}) {
        EXPECT_TRUE(EchoHeaders(echo, name).empty()) << name << " reached the upstream";
    }
    for (const auto& connection : EchoHeaders(echo, "Connection"))
        EXPECT_EQ(Lower(connection).find("x-secret"), std::string::npos) << connection;
    EXPECT_EQ(EchoHeader(echo, "X-Kept"), "yes");
    EXPECT_EQ(EchoHeader(echo, "Authorization"), "Bearer kept");
    EXPECT_EQ(EchoHeader(echo, "Host"), "app.vms.localhost");
    EXPECT_EQ(EchoHeader(echo, "X-Forwarded-For"), "203.0.113.9, 127.0.0.1");
    EXPECT_EQ(EchoHeader(echo, "X-Forwarded-Proto"), "http");
    EXPECT_EQ(EchoHeader(echo, "X-Forwarded-Host"), "app.vms.localhost");
    const auto forwarded = Lower(EchoHeader(echo, "Forwarded"));
    EXPECT_NE(forwarded.find("for=127.0.0.1"), std::string::npos) << forwarded;
    EXPECT_NE(forwarded.find("proto=http"), std::string::npos) << forwarded;
}

TEST_F(IngressProxyTest, RewriteHostSendsTheVmAuthority) {
    ASSERT_NO_FATAL_FAILURE(StartProxy({{"--rewrite-host"}}));
    auto r = Curl({"-H", "Host: app.vms.localhost", ProxyUrl("/echo")});
    ASSERT_EQ(r.status, 200) << r.body << r.err;
    EXPECT_EQ(EchoHeader(r.Json(), "Host"), "127.0.0.1:" + std::to_string(app_port_));
    EXPECT_EQ(EchoHeader(r.Json(), "X-Forwarded-Host"), "app.vms.localhost");
    r = Curl({ProxyUrl(VmPath(kAppId, extra_port_, "/echo"))});
    ASSERT_EQ(r.status, 200) << r.body << r.err;
    EXPECT_EQ(EchoHeader(r.Json(), "Host"), "127.0.0.1:" + std::to_string(extra_port_));
}

TEST_F(IngressProxyTest, StatusesCookiesAndResponseHeadersPassThrough) {
    ASSERT_NO_FATAL_FAILURE(StartProxy());
    auto r = Curl({ProxyUrl(AppPath("/cookies?n=3"))});
    ASSERT_EQ(r.status, 200) << r.body << r.err;
    EXPECT_EQ(r.HeaderList("Set-Cookie"),
              (std::vector<std::string>{"c0=v0; Path=/; HttpOnly", "c1=v1; Path=/; HttpOnly",
                                        "c2=v2; Path=/; HttpOnly"}));
    EXPECT_EQ(r.HeaderList("X-Multi"), (std::vector<std::string>{"one", "two"}));
    EXPECT_EQ(r.body, "cookies");

    r = Curl({ProxyUrl(AppPath("/status/299?reason=Very%20Custom"))});
    EXPECT_EQ(r.status_line, "HTTP/1.1 299 Very Custom");
    EXPECT_EQ(r.body, "status 299");
    for (const int status : {201, 302, 404, 418, 500, 503}) {
        r = Curl({ProxyUrl(AppPath("/status/" + std::to_string(status)))});
        EXPECT_EQ(r.status, status) << r.err;
        EXPECT_EQ(r.body, "status " + std::to_string(status)) << "the VM's own body, not a problem";
    }
    r = Curl({ProxyUrl(AppPath("/status/204"))});
    EXPECT_EQ(r.status, 204);
    EXPECT_EQ(r.body, "");

    // A status line without a reason phrase.
    r = Curl({ProxyUrl(
        AppPath("/raw?b64=" + Base64Url("HTTP/1.1 299 \r\nContent-Length: 2\r\n\r\nok")))});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.status, 299) << r.status_line;
    EXPECT_EQ(r.body, "ok");

    // Hop-by-hop response headers stay with the hop; everything else passes.
    r = Curl({ProxyUrl(AppPath(
        "/raw?b64=" +
        Base64Url("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: X-Hop\r\n"
                  "X-Hop: 1\r\nKeep-Alive: timeout=9\r\nProxy-Connection: keep-alive\r\n"
                  "Proxy-Authenticate: Basic realm=x\r\nUpgrade: h2c\r\nTrailer: X-T\r\n"
                  "X-Kept: yes\r\nCache-Control: no-store\r\nContent-Length: 5\r\n\r\nhello")))});
    ASSERT_EQ(r.status, 200) << r.err;
    EXPECT_EQ(r.body, "hello");
    for (const std::string& name : std::vector<std::string>{
             "X-Hop", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Upgrade", "Trailer"})
        EXPECT_EQ(r.Header(name), "") << name << " reached the client";
    EXPECT_EQ(Lower(r.Header("Connection")).find("x-hop"), std::string::npos);
    EXPECT_EQ(r.Header("X-Kept"), "yes");
    EXPECT_EQ(r.Header("Cache-Control"), "no-store");
    EXPECT_EQ(r.Header("Content-Type"), "text/plain");
}

// --- bodies ------------------------------------------------------------------------------------

TEST_F(IngressProxyTest, ChunkedRequestBodyAndItsTrailersReachTheUpstream) {
    ASSERT_NO_FATAL_FAILURE(StartProxy());
    RawConnection connection(proxy_port_);
    ASSERT_TRUE(connection.connected());
    ASSERT_TRUE(
        connection.Send("POST " + AppPath("/echo") +
                        " HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
                        "Trailer: X-Checksum\r\nContent-Type: text/plain\r\n\r\n"
                        "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Checksum: abc123\r\n\r\n"));
    const auto response = connection.ReadResponse();
    ASSERT_TRUE(response);
    ASSERT_EQ(response->status, 200) << response->body;
    const auto echo = json::parse(response->body, nullptr, false);
    EXPECT_EQ(echo["body"], "hello world");
    EXPECT_EQ(echo["bodyBytes"], 11);
    Headers trailers;
    for (std::size_t i = 0; i + 1 < echo["rawTrailers"].size(); i += 2)
        trailers.emplace_back(echo["rawTrailers"][i], echo["rawTrailers"][i + 1]);
    EXPECT_EQ(HeaderValue(trailers, "X-Checksum"), "abc123") << echo.dump();

    // The same connection carries a second request afterwards.
    ASSERT_TRUE(connection.Send("GET " + AppPath("/echo?second=1") +
                                " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
    const auto second = connection.ReadResponse();
    ASSERT_TRUE(second);
    EXPECT_EQ(second->status, 200);
    EXPECT_EQ(json::parse(second->body, nullptr, false)["url"], "/echo?second=1");

    // curl uploading from a pipe sends chunked too.
    std::string body(3 * 1024 * 1024 + 7, '\0');
    for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>((i * 31 + 7) % 251);
    const auto run = testing::RunCommand(
        "/usr/bin/curl", {"-sS", "-T", "-", "-H", "Expect:", ProxyUrl(AppPath("/upload"))}, {},
        body, 60s);
    ASSERT_EQ(run.exit_code, 0) << run.err;
    const auto upload = json::parse(run.out, nullptr, false);
    EXPECT_EQ(upload["bytes"], body.size()) << run.out;
    const auto local = testing::RunCommand("/usr/bin/sha256sum", {}, {}, body);
    EXPECT_EQ(upload["sha256"], local.out.substr(0, 64));
}

TEST_F(IngressProxyTest, ChunkedResponsesArriveWhole) {
    ASSERT_NO_FATAL_FAILURE(StartProxy());
    auto r = Curl({ProxyUrl(AppPath("/chunked?parts=alpha,beta,gamma&delay=30&trailer=t1"))});
    ASSERT_EQ(r.status, 200) << r.err;
    EXPECT_EQ(r.body, "alphabetagamma");

    r = Curl({ProxyUrl(AppPath("/download?bytes=10485763&mode=chunked&id=chunked-small"))});
    ASSERT_EQ(r.status, 200) << r.err;
    EXPECT_EQ(r.body.size(), 10485763u);
    const auto local = testing::RunCommand("/usr/bin/sha256sum", {}, {}, r.body);
    const auto stats = UpstreamStats();
    EXPECT_EQ(stats["downloads"]["chunked-small"]["sha256"], local.out.substr(0, 64));
}

TEST_F(IngressProxyTest, ExpectContinueIsAnsweredByTheProxyAndNotForwarded) {
    ASSERT_NO_FATAL_FAILURE(StartProxy());
    // curl sends Expect: 100-continue by itself for uploads above 1 MiB.
    const std::string file = dir_.path() + "/upload.bin";
    {
        std::ofstream out(file, std::ios::binary);
        for (int i = 0; i < 3 * 1024 * 1024; ++i) out.put(static_cast<char>((i * 7 + 3) % 256));
    }
    const auto started = std::chrono::steady_clock::now();
    auto r = Curl({"-T", file, "--expect100-timeout", "6", ProxyUrl(AppPath("/upload"))});
    const auto elapsed = std::chrono::steady_clock::now() - started;
    ASSERT_EQ(r.exit_code, 0) << r.err;
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.interim_statuses, std::vector<int>{100});
    // Without a 100 curl would wait 6 s before sending the body anyway.
    EXPECT_LT(elapsed, 5s);
    const auto upload = r.Json();
    EXPECT_EQ(upload["bytes"], 3 * 1024 * 1024);
    EXPECT_TRUE(upload["expect"].is_null()) << upload.dump();
    const auto local = testing::RunCommand("/usr/bin/sha256sum", {file});
    EXPECT_EQ(upload["sha256"], local.out.substr(0, 64));

    // Asked explicitly on a small body, by raw bytes: the 100 comes before the body is sent.
    RawConnection connection(proxy_port_);
    ASSERT_TRUE(connection.Send("POST " + AppPath("/echo") +
                                " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n"
                                "Expect: 100-continue\r\n\r\n"));
    const auto interim = connection.ReadResponse(5s);
    ASSERT_TRUE(interim) << "no 100 Continue before the body";
    EXPECT_EQ(interim->status, 100);
    ASSERT_TRUE(connection.Send("hello"));
    const auto final_response = connection.ReadResponse();
    ASSERT_TRUE(final_response);
    EXPECT_EQ(final_response->status, 200);
    const auto echo = json::parse(final_response->body, nullptr, false);
    EXPECT_EQ(echo["body"], "hello");
    EXPECT_TRUE(EchoHeaders(echo, "Expect").empty());
    EXPECT_EQ(Count(UpstreamStats(), "expectSeen"), 0);
}

// --- connections and failures ------------------------------------------------------------------

TEST_F(IngressProxyTest, SequentialRequestsOnOneClientConnectionReuseUpstreamConnections) {
    ASSERT_NO_FATAL_FAILURE(StartProxy());
    constexpr int kRequests = 50;
    std::vector<std::string> args{"-sS", "-w", "%{http_code} %{num_connects}\\n"};
    for (int i = 0; i < kRequests; ++i) {
        args.push_back(ProxyUrl(AppPath("/echo?i=" + std::to_string(i))));
        args.insert(args.end(), {"-o", "/dev/null"});
    }
    const auto run = testing::RunCommand("/usr/bin/curl", args, {}, {}, 60s);
    ASSERT_EQ(run.exit_code, 0) << run.err;
    int ok = 0, client_connects = 0;
    std::istringstream lines(run.out);
    for (std::string code, connects; lines >> code >> connects;) {
        ok += code == "200";
        client_connects += std::stoi(connects);
    }
    EXPECT_EQ(ok, kRequests) << run.out;
    EXPECT_EQ(client_connects, 1) << "curl should have kept its one connection";
    const auto stats = UpstreamStats();
    EXPECT_EQ(Count(stats, "requests"), kRequests);
    EXPECT_LE(Count(stats, "connections"), 2) << "upstream connections are not reused";
}

// The proxy keeps VM connections for the next request: one the VM closed or wrote to while it
// waited must never fail a request or answer it with what the VM said unasked.
TEST_F(IngressProxyTest, PooledConnectionsTheVmClosedOrWroteToAreNotUsedForAnswers) {
    ASSERT_NO_FATAL_FAILURE(StartProxy());
    const auto echo_answers = [&](std::vector<std::string> extra) {
        extra.push_back(ProxyUrl(AppPath("/echo")));
        const auto r = Curl(extra);
        EXPECT_EQ(r.status, 200) << r.body << r.err;
        return r.status == 200 && json::parse(r.body, nullptr, false).is_object();
    };
    const auto pooled_then_closed = [&](const std::string& mode) {
        const auto closed_before = Count(UpstreamStats(), "closedAfter");
        const auto r = Curl({ProxyUrl(AppPath("/close-after?delay=50&mode=" + mode))});
        EXPECT_EQ(r.status, 200) << r.body << r.err;
        // Until the VM has closed it: the connection sits in the pool meanwhile.
        EXPECT_TRUE(testing::WaitUntil(
            [&] { return Count(UpstreamStats(), "closedAfter") > closed_before; }, 5s, 10ms));
    };
    for (const std::string mode : {"fin", "408"}) {
        SCOPED_TRACE(mode);
        // A request without a body may take it unchecked: it is retried on a new connection.
        pooled_then_closed(mode);
        EXPECT_TRUE(echo_answers({}));
        // A request with a body is never sent on a connection the VM has left.
        pooled_then_closed(mode);
        EXPECT_TRUE(echo_answers({"-X", "POST", "--data-binary", "payload"}));
        // Idle long enough for a VM to have timed it out: checked before use.
        pooled_then_closed(mode);
        std::this_thread::sleep_for(1100ms);
        EXPECT_TRUE(echo_answers({}));
    }
}

TEST_F(IngressProxyTest, PipelinedRequestsAreAnsweredInOrder) {
    ASSERT_NO_FATAL_FAILURE(StartProxy());
    RawConnection connection(proxy_port_);
    std::string requests;
    for (int i = 0; i < 3; ++i) {
        requests += "GET " + AppPath("/echo?i=" + std::to_string(i)) +
                    " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    }
    requests += "GET " + AppPath("/echo?i=last") +
                " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    ASSERT_TRUE(connection.Send(requests));
    const auto drained = connection.ReadUntilClosed(10s);
    const std::string& out = drained.bytes;
    std::size_t at = 0;
    for (const std::string query : {"i=0", "i=1", "i=2", "i=last"}) {
        const auto found = out.find("?" + query, at);
        ASSERT_NE(found, std::string::npos) << query << " missing or out of order in:\n" << out;
        at = found;
    }
    std::size_t responses = 0;
    for (auto p = out.find("HTTP/1.1 200"); p != std::string::npos;
         p = out.find("HTTP/1.1 200", p + 1))
        ++responses;
    EXPECT_EQ(responses, 4u) << out;
}

// CPU time (user + system) the proxy process has used so far.
std::chrono::microseconds ProcessCpuTime(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::istringstream fields(stat.substr(stat.rfind(')') + 2));
    std::string field;
    long long ticks = 0;
    for (int i = 3; i <= 15 && fields >> field; ++i)
        if (i == 14 || i == 15) ticks += std::stoll(field);  // utime, stime
    return std::chrono::microseconds{ticks * 1'000'000 / ::sysconf(_SC_CLK_TCK)};
}

TEST_F(IngressProxyTest, BusyPollingServesRequestsAndSleepsWhenIdle) {
    ASSERT_NO_FATAL_FAILURE(StartProxy({{"--busy-poll-us", "200"}}));
    std::vector<std::string> args{"-sS", "-w", "%{http_code}\n"};
    for (int i = 0; i < 20; ++i) {
        args.push_back(ProxyUrl(AppPath("/echo?i=" + std::to_string(i))));
        args.insert(args.end(), {"-o", "/dev/null"});
    }
    const auto run = testing::RunCommand("/usr/bin/curl", args, {}, {}, 60s);
    ASSERT_EQ(run.exit_code, 0) << run.err;
    std::istringstream codes(run.out);
    int ok = 0;
    for (std::string code; codes >> code;) ok += code == "200";
    EXPECT_EQ(ok, 20) << run.out;
    // Without traffic the thread sleeps: a second of wall time costs it almost no CPU (a thread
    // that kept polling would spend the whole second).
    std::this_thread::sleep_for(100ms);
    const auto before = ProcessCpuTime(proxy_->pid());
    std::this_thread::sleep_for(1s);
    EXPECT_LT(ProcessCpuTime(proxy_->pid()) - before, 200ms);
}

TEST_F(IngressProxyTest, RefusedOrResetUpstreamIs502) {
    ASSERT_NO_FATAL_FAILURE(StartProxy());
    EXPECT_TRUE(IsProblem(Curl({ProxyUrl(VmPath(kDownId, closed_port_, "/echo"))}), 502));
    EXPECT_TRUE(IsProblem(Curl({"-H", "Host: down.vms.localhost", ProxyUrl("/echo")}), 502));
    EXPECT_TRUE(IsProblem(Curl({ProxyUrl(AppPath("/reset?when=before"))}), 502));
    EXPECT_TRUE(IsProblem(Curl({ProxyUrl(AppPath("/reset?when=midheader"))}), 502));
    // The pool is not poisoned by the reset connections.
    for (int i = 0; i < 3; ++i) {
        const auto r = Curl({ProxyUrl(AppPath("/echo"))});
        EXPECT_EQ(r.status, 200) << r.body << r.err;
    }
}

TEST_F(IngressProxyTest, SilentUpstreamIs504AfterTheIdleTimeout) {
    ASSERT_NO_FATAL_FAILURE(
        StartProxy({{"--idle-timeout-ms", "500", "--total-timeout-ms", "60000"}}));
    auto started = std::chrono::steady_clock::now();
    EXPECT_TRUE(IsProblem(Curl({ProxyUrl(AppPath("/slow?delay=20000"))}), 504));
    auto elapsed = std::chrono::steady_clock::now() - started;
    EXPECT_GE(elapsed, 400ms);
    EXPECT_LT(elapsed, 5s);

    // Bytes every 100 ms keep an exchange alive past the idle timeout.
    started = std::chrono::steady_clock::now();
    const auto r = Curl({ProxyUrl(AppPath("/trickle?interval=100&count=15"))});
    elapsed = std::chrono::steady_clock::now() - started;
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, std::string(15, '.'));
    EXPECT_GE(elapsed, 1400ms);
}

TEST_F(IngressProxyTest, RequestHeadTricklingInIs408AfterTheHeaderTimeout) {
    ASSERT_NO_FATAL_FAILURE(
        StartProxy({{"--header-timeout-ms", "500", "--idle-timeout-ms", "60000"}}));
    const std::string request = "GET " + AppPath("/echo") + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

    // The clock starts with a head's first byte: a keep-alive connection may sit idle for longer.
    RawConnection idle(proxy_port_);
    ASSERT_TRUE(idle.Send(request));
    auto answered = idle.ReadResponse();
    ASSERT_TRUE(answered);
    EXPECT_EQ(answered->status, 200);
    std::this_thread::sleep_for(800ms);
    ASSERT_TRUE(idle.Send(request));
    answered = idle.ReadResponse();
    ASSERT_TRUE(answered) << "an idle keep-alive connection outlived the header timeout";
    EXPECT_EQ(answered->status, 200);

    // A head that keeps trickling in, a header line every 100 ms, is refused after 500 ms.
    RawConnection slow(proxy_port_);
    const auto started = std::chrono::steady_clock::now();
    ASSERT_TRUE(slow.Send("GET " + AppPath("/echo") + " HTTP/1.1\r\nHost: 127.0.0.1\r\n"));
    std::string got;
    for (int i = 0; i < 50; ++i) {
        got = slow.ReadUntil("\r\n\r\n", 100ms);
        if (got.find("\r\n\r\n") != std::string::npos) break;
        if (!slow.Send("X-Trickle: " + std::to_string(i) + "\r\n")) break;
    }
    const auto elapsed = std::chrono::steady_clock::now() - started;
    EXPECT_TRUE(got.starts_with("HTTP/1.1 408 ")) << got;
    EXPECT_NE(got.find("Content-Type: application/problem+json"), std::string::npos) << got;
    EXPECT_GE(elapsed, 450ms);
    EXPECT_LT(elapsed, 5s);
    EXPECT_TRUE(slow.ReadUntilClosed(5s).closed);
    EXPECT_EQ(UpstreamStats()["lastRequests"].size(), 2u) << "the trickled request never left";
}

TEST_F(IngressProxyTest, ConnectionsFromOneAddressAreCapped) {
    ASSERT_NO_FATAL_FAILURE(StartProxy({{"--max-connections-per-client", "3"}}));
    const std::string request = "GET " + AppPath("/echo") + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    auto held = HoldIdleConnections(3);
    const auto refused = TurnedAway(request);
    ASSERT_TRUE(refused);
    EXPECT_EQ(refused->status, 429);
    EXPECT_NE(refused->body.find("3 connections"), std::string::npos) << refused->body;

    // The held ones still work, and once one goes there is room again.
    ASSERT_TRUE(held[0]->Send(request));
    const auto served = held[0]->ReadResponse();
    ASSERT_TRUE(served);
    EXPECT_EQ(served->status, 200);
    held[1]->Close();
    ASSERT_TRUE(
        testing::WaitUntil([&] { return ProxyCounters()["connectionsOpen"] == 2; }, 5s, 20ms));
    RawConnection again(proxy_port_);
    ASSERT_TRUE(again.Send(request));
    const auto admitted = again.ReadResponse();
    ASSERT_TRUE(admitted);
    EXPECT_EQ(admitted->status, 200);

    const auto counters = ProxyCounters();
    EXPECT_EQ(counters["connectionsRefused"], 1) << counters.dump();
    EXPECT_EQ(counters["requests"], 2) << "a connection turned away is no request";
}

TEST_F(IngressProxyTest, ConnectionsInAllAreCappedAndTrustedProxiesOnlyByThat) {
    // 127.0.0.1 is a trusted proxy here (Caddy in front): it speaks for many clients, so only the
    // overall limit applies to it.
    ASSERT_NO_FATAL_FAILURE(StartProxy({{"--max-connections", "4", "--max-connections-per-client",
                                         "2", "--trusted-proxies", "127.0.0.1"}}));
    auto held = HoldIdleConnections(4);
    const auto refused =
        TurnedAway("GET " + AppPath("/echo") + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    ASSERT_TRUE(refused);
    EXPECT_EQ(refused->status, 503);
    EXPECT_EQ(ProxyCounters()["connectionsRefused"], 1);
}

TEST_F(IngressProxyTest, SlowUpstreamIs504AfterTheTotalTimeout) {
    ASSERT_NO_FATAL_FAILURE(
        StartProxy({{"--idle-timeout-ms", "60000", "--total-timeout-ms", "500"}}));
    auto started = std::chrono::steady_clock::now();
    EXPECT_TRUE(IsProblem(Curl({ProxyUrl(AppPath("/slow?delay=20000"))}), 504));
    auto elapsed = std::chrono::steady_clock::now() - started;
    EXPECT_GE(elapsed, 400ms);
    EXPECT_LT(elapsed, 5s);

    // A response that started but goes on past the total timeout is cut off.
    started = std::chrono::steady_clock::now();
    const auto r = Curl({ProxyUrl(AppPath("/trickle?interval=100&count=100"))});
    elapsed = std::chrono::steady_clock::now() - started;
    EXPECT_EQ(r.status, 200);
    EXPECT_NE(r.exit_code, 0) << "a cut-off response must not look complete";
    EXPECT_LT(r.body.size(), 100u);
    EXPECT_LT(elapsed, 5s);
}

TEST_F(IngressProxyTest, ClientThatLeavesMakesTheProxyCloseTheUpstream) {
    ASSERT_NO_FATAL_FAILURE(StartProxy());
    {
        RawConnection connection(proxy_port_);
        ASSERT_TRUE(connection.Send("GET " + AppPath("/slow?delay=8000") +
                                    " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
        ASSERT_TRUE(
            testing::WaitUntil([&] { return Count(UpstreamStats(), "requests") == 1; }, 5s, 20ms));
    }
    // Well before the upstream would have answered on its own.
    const auto started = std::chrono::steady_clock::now();
    EXPECT_TRUE(
        testing::WaitUntil([&] { return Count(UpstreamStats(), "aborted") == 1; }, 4s, 20ms))
        << UpstreamStats().dump();
    EXPECT_LT(std::chrono::steady_clock::now() - started, 4s);

    // The same for a download the client stops reading halfway.
    {
        RawConnection connection(proxy_port_);
        ASSERT_TRUE(connection.Send("GET " + AppPath("/download?bytes=1073741824&id=left") +
                                    " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
        connection.ReadUntil("\r\n\r\n", 5s);
    }
    EXPECT_TRUE(
        testing::WaitUntil([&] { return Count(UpstreamStats(), "aborted") == 2; }, 4s, 20ms))
        << UpstreamStats().dump();
    EXPECT_FALSE(UpstreamStats()["downloads"]["left"]["finished"].get<bool>());
}

// --- smuggling ---------------------------------------------------------------------------------

struct SmugglingCase {
    std::string name;
    std::string headers;  // between the request line + Host and the empty line
    std::string body;
    bool body_level;  // the headers are fine; the body framing is not
};

TEST_F(IngressProxyTest, SmugglingAttemptsAre400AndCloseTheConnection) {
    ASSERT_NO_FATAL_FAILURE(StartProxy());
    const std::string smuggled =
        "GET " + AppPath("/echo?smuggled=1") + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    const std::vector<SmugglingCase> cases = {
        {"CL and TE", "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n", false},
        {"TE and CL", "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", "0\r\n\r\n", false},
        {"two different CL", "Content-Length: 5\r\nContent-Length: 6\r\n", "hello!", false},
        {"CL list 1,2", "Content-Length: 1,2\r\n", "xx", false},
        {"CL with plus", "Content-Length: +5\r\n", "hello", false},
        {"CL negative", "Content-Length: -5\r\n", "hello", false},
        {"CL hex", "Content-Length: 0x5\r\n", "hello", false},
        {"CL with inner space", "Content-Length: 5 5\r\n", "hello", false},
        {"CL with trailing garbage", "Content-Length: 5a\r\n", "hello", false},
        {"TE gzip, chunked", "Transfer-Encoding: gzip, chunked\r\n", "0\r\n\r\n", false},
        {"TE chunked, chunked", "Transfer-Encoding: chunked, chunked\r\n", "0\r\n\r\n", false},
        {"TE twice", "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n",
         false},
        {"TE xchunked", "Transfer-Encoding: xchunked\r\n", "0\r\n\r\n", false},
        {"TE chunked, gzip", "Transfer-Encoding: chunked, gzip\r\n", "0\r\n\r\n", false},
        {"TE identity", "Transfer-Encoding: identity\r\n", "", false},
        {"obsolete line folding (space)", "X-Folded: one\r\n two\r\nContent-Length: 5\r\n", "hello",
         false},
        {"obsolete line folding (tab)", "Content-Length: 5\r\nX-Folded: one\r\n\ttwo\r\n", "hello",
         false},
        {"folded Transfer-Encoding", "Transfer-Encoding:\r\n chunked\r\n", "0\r\n\r\n", false},
        {"space before colon (CL)", "Content-Length : 5\r\n", "hello", false},
        {"space before colon (TE)", "Transfer-Encoding : chunked\r\n", "0\r\n\r\n", false},
        {"bare LF in a value", "X-A: one\nX-Injected: two\r\nContent-Length: 5\r\n", "hello",
         false},
        {"bare LF hiding TE", "X-A: one\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n",
         "hello", false},
        {"bare CR in a value", "X-A: one\rX-Injected: two\r\nContent-Length: 5\r\n", "hello",
         false},
        {"NUL in a value", "X-A: a\0b\r\nContent-Length: 5\r\n"s, "hello", false},
        {"two Host headers", "Host: 127.0.0.1:" + std::to_string(secret_port_) + "\r\n", "", false},
        {"chunk size not hex", "Transfer-Encoding: chunked\r\n", "zz\r\nhello\r\n0\r\n\r\n", true},
        {"chunk size too long", "Transfer-Encoding: chunked\r\n",
         "10000000000000005\r\nhello\r\n0\r\n\r\n", true},
        {"chunk size negative", "Transfer-Encoding: chunked\r\n", "-5\r\nhello\r\n0\r\n\r\n", true},
        {"chunk size 0x prefix", "Transfer-Encoding: chunked\r\n", "0x5\r\nhello\r\n0\r\n\r\n",
         true},
        {"chunk size with space", "Transfer-Encoding: chunked\r\n", "5 \r\nhello\r\n0\r\n\r\n",
         true},
        {"chunk data longer than its size", "Transfer-Encoding: chunked\r\n",
         "3\r\nhello\r\n0\r\n\r\n", true},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        const auto before = UpstreamStats();
        RawConnection connection(proxy_port_);
        ASSERT_TRUE(connection.connected());
        connection.Send("POST " + AppPath("/echo") + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
                        c.headers + "\r\n" + c.body + smuggled);
        const auto drained = connection.ReadUntilClosed(5s);
        EXPECT_TRUE(drained.closed) << "the proxy kept the connection open";
        std::size_t consumed = 0;
        const auto response = ParseResponse(drained.bytes, /*eof=*/true, &consumed);
        EXPECT_TRUE(IsProblem(response, 400)) << drained.bytes;
        EXPECT_EQ(consumed, drained.bytes.size()) << "more than one response: " << drained.bytes;
        const auto after = UpstreamStats();
        if (c.body_level) {
            EXPECT_EQ(Count(after, "completed"), Count(before, "completed"))
                << "a request with a broken body completed at the upstream";
        } else {
            EXPECT_EQ(Count(after, "requests"), Count(before, "requests"))
                << "the request reached the upstream";
        }
    }
    // The same prefix with sound framing goes through: the refusals above were about framing.
    for (const std::string& framed :
         {"Content-Length: 5\r\n\r\nhello"s,
          "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"s}) {
        RawConnection connection(proxy_port_);
        connection.Send("POST " + AppPath("/echo") + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + framed);
        const auto response = connection.ReadResponse();
        ASSERT_TRUE(response) << framed;
        EXPECT_EQ(response->status, 200) << response->body;
        EXPECT_EQ(json::parse(response->body, nullptr, false)["body"], "hello");
    }
    const auto stats = UpstreamStats();
    for (const auto& request : stats["lastRequests"])
        EXPECT_EQ(request["url"].get<std::string>().find("smuggled"), std::string::npos)
            << request.dump();
    EXPECT_FALSE(PortWasReached(stats, secret_port_));
}

// --- TLS and reloads ---------------------------------------------------------------------------

// A self-signed pair for the VM host names and 127.0.0.1.
void MakeCertificate(const std::string& cert, const std::string& key) {
    const auto run = Bash(
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
        "-subj /CN=app.vms.localhost -addext "
        "'subjectAltName=DNS:app.vms.localhost,DNS:*.vms.localhost,IP:127.0.0.1' -keyout '" +
            key + "' -out '" + cert + "' 2>&1",
        30s);
    ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
}

TEST_F(IngressProxyTest, TlsListenerServesItsCertificateAndReloadsItOnSighup) {
    const std::string cert = dir_.path() + "/tls.crt", key = dir_.path() + "/tls.key";
    const std::string first_ca = dir_.path() + "/first.crt",
                      second_ca = dir_.path() + "/second.crt";
    ASSERT_NO_FATAL_FAILURE(MakeCertificate(first_ca, dir_.path() + "/first.key"));
    std::filesystem::copy_file(first_ca, cert);
    std::filesystem::copy_file(dir_.path() + "/first.key", key);
    ASSERT_NO_FATAL_FAILURE(StartProxy({{"--tls-cert", cert, "--tls-key", key}}));
    const std::string base = "https://127.0.0.1:" + std::to_string(proxy_port_);

    auto r = Curl({"--cacert", first_ca, base + AppPath("/echo?tls=1")});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.Json()["url"], "/echo?tls=1");
    EXPECT_EQ(EchoHeader(r.Json(), "X-Forwarded-Proto"), "https");

    const std::string host_url = "https://app.vms.localhost:" + std::to_string(proxy_port_);
    const std::string resolve = "app.vms.localhost:" + std::to_string(proxy_port_) + ":127.0.0.1";
    r = Curl({"--cacert", first_ca, "--resolve", resolve, host_url + "/echo?host=1"});
    ASSERT_EQ(r.status, 200) << r.err;
    EXPECT_EQ(r.Json()["localPort"], app_port_);

    // Plain HTTP to the TLS port reaches nothing.
    const auto before = Count(UpstreamStats(), "requests");
    Curl({ProxyUrl(AppPath("/echo?plain=1"))}, 5s);
    EXPECT_EQ(Count(UpstreamStats(), "requests"), before);

    // New files, then SIGHUP: new connections see the new certificate.
    ASSERT_NO_FATAL_FAILURE(MakeCertificate(second_ca, dir_.path() + "/second.key"));
    r = Curl({"--cacert", second_ca, base + AppPath("/echo")});
    EXPECT_EQ(r.exit_code, 60) << "the new certificate is in use before the reload";
    std::filesystem::copy_file(second_ca, cert + ".new");
    std::filesystem::copy_file(dir_.path() + "/second.key", key + ".new");
    std::filesystem::rename(cert + ".new", cert);
    std::filesystem::rename(key + ".new", key);
    ASSERT_EQ(::kill(proxy_->pid(), SIGHUP), 0);
    EXPECT_TRUE(testing::WaitUntil(
        [&] {
            r = Curl({"--cacert", second_ca, base + AppPath("/echo?reloaded=1")}, 5s);
            return r.exit_code == 0 && r.status == 200;
        },
        10s, 100ms))
        << r.exit_code << " " << r.err;
    r = Curl({"--cacert", first_ca, base + AppPath("/echo")});
    EXPECT_EQ(r.exit_code, 60) << "the old certificate is still served: " << r.err;

    // A broken pair on SIGHUP keeps the current one.
    std::ofstream(key) << "not a key";
    ASSERT_EQ(::kill(proxy_->pid(), SIGHUP), 0);
    ASSERT_TRUE(testing::WaitUntil(
        [&] { return proxy_->Log().find("TLS not reloaded") != std::string::npos; }, 5s, 50ms))
        << proxy_->Log();
    r = Curl({"--cacert", second_ca, base + AppPath("/echo")});
    EXPECT_EQ(r.status, 200) << r.err;
}

TEST_F(IngressProxyTest, RoutesReloadOnSighup) {
    ASSERT_NO_FATAL_FAILURE(StartProxy());
    const std::string late_id = "2d3e4f50-6b7c-4d8e-9fa0-1b2c3d4e5f60";
    EXPECT_TRUE(IsProblem(Curl({"-H", "Host: late.vms.localhost", ProxyUrl("/echo")}), 404));
    WriteRoutes(json::array({{{"vmId", late_id},
                              {"name", "late"},
                              {"address", "127.0.0.1"},
                              {"defaultPort", allowed_port_}}}));
    ASSERT_EQ(::kill(proxy_->pid(), SIGHUP), 0);
    CurlResult r;
    EXPECT_TRUE(testing::WaitUntil(
        [&] {
            r = Curl({"-H", "Host: late.vms.localhost", ProxyUrl("/echo")});
            return r.status == 200;
        },
        10s, 50ms))
        << r.status << " " << r.body;
    EXPECT_EQ(r.Json()["localPort"], allowed_port_);

    // An unreadable file keeps the routes in use.
    { std::ofstream(routes_path_) << "{ not json"; }
    ASSERT_EQ(::kill(proxy_->pid(), SIGHUP), 0);
    ASSERT_TRUE(testing::WaitUntil(
        [&] { return proxy_->Log().find("routes not reloaded") != std::string::npos; }, 5s, 50ms))
        << proxy_->Log();
    EXPECT_EQ(Curl({"-H", "Host: late.vms.localhost", ProxyUrl("/echo")}).status, 200);

    // A route that goes away is gone.
    WriteRoutes();
    ASSERT_EQ(::kill(proxy_->pid(), SIGHUP), 0);
    EXPECT_TRUE(testing::WaitUntil(
        [&] {
            return Curl({"-H", "Host: late.vms.localhost", ProxyUrl("/echo")}).status == 404;
        },
        10s, 50ms));
    EXPECT_EQ(Curl({ProxyUrl(AppPath("/echo"))}).status, 200);
}

// The counters the agent exports on /metrics, read here through decloud-ingress's SIGUSR1 line.
TEST_F(IngressProxyTest, CountersSayWhatClientsGot) {
    ASSERT_NO_FATAL_FAILURE(StartProxy());
    const auto zero = ProxyCounters();
    EXPECT_EQ(zero["requests"], 0) << proxy_->Log();
    EXPECT_EQ(zero["responsesByClass"], json::array({0, 0, 0, 0, 0}));

    EXPECT_EQ(Curl({ProxyUrl(AppPath("/echo"))}).status, 200);
    EXPECT_EQ(Curl({ProxyUrl(AppPath("/status/302"))}).status, 302);
    EXPECT_EQ(Curl({ProxyUrl(AppPath("/status/503"))}).status, 503);  // the VM's own 503
    EXPECT_TRUE(IsProblem(Curl({ProxyUrl(VmPath(kUnknownId, app_port_, "/echo"))}), 404));
    EXPECT_TRUE(IsProblem(Curl({ProxyUrl(VmPath(kAppId, secret_port_, "/echo"))}), 403));
    EXPECT_TRUE(IsProblem(Curl({ProxyUrl(VmPath(kDownId, closed_port_, "/echo"))}), 502));
    {
        // A head over the 64 KiB limit: 431, and the connection is closed.
        RawConnection raw(proxy_port_);
        ASSERT_TRUE(raw.Send("GET " + AppPath("/echo") + " HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " +
                             std::string(70 * 1024, 'a') + "\r\n\r\n"));
        const auto refused = raw.ReadResponse();
        ASSERT_TRUE(refused);
        EXPECT_EQ(refused->status, 431);
        EXPECT_EQ(refused->Header("Content-Type"), "application/problem+json");
        EXPECT_TRUE(raw.ReadUntilClosed(5s).closed);
    }
    EXPECT_EQ(UpstreamStats()["lastRequests"].size(), 3u) << "only the 200, 302 and 503 reached it";

    const auto after = ProxyCounters();
    EXPECT_EQ(after["requests"], 7) << after.dump();
    EXPECT_EQ(after["responsesByClass"], json::array({0, 1, 1, 3, 2})) << after.dump();
    EXPECT_EQ(after["gatewayErrors"], 1) << "the VM's 503 is not the proxy's: " << after.dump();
    EXPECT_GE(after["upstreamConnects"], 1);
    EXPECT_EQ(after["websocketsActive"], 0);
    EXPECT_EQ(proxy_->Log().find("ingress access:"), std::string::npos) << "off by default";
}

TEST_F(IngressProxyTest, AccessLogSaysWhoAskedWhatAndWhatTheyGot) {
    ASSERT_NO_FATAL_FAILURE(StartProxy({{"--access-log"}}));
    const auto answered = Curl({ProxyUrl(AppPath("/echo?x=1"))});
    ASSERT_EQ(answered.status, 200);
    EXPECT_TRUE(
        IsProblem(Curl({"-H", "Host: nope." + std::string(kVmDomain), ProxyUrl("/a")}), 404));
    std::vector<std::string> lines;
    ASSERT_TRUE(testing::WaitUntil(
        [&] {
            lines = ProxyLogLines("ingress access: ");
            return lines.size() >= 2;
        },
        5s, 20ms))
        << proxy_->Log();
    ASSERT_EQ(lines.size(), 2u) << proxy_->Log();

    const auto& ok = lines[0];
    EXPECT_NE(
        ok.find("ingress access: 127.0.0.1 \"GET " + AppPath("/echo?x=1") +
                "\" host=127.0.0.1:" + std::to_string(proxy_port_) + " vm=" + std::string(kAppId) +
                " port=" + std::to_string(app_port_) + " status=200 bytes="),
        std::string::npos)
        << ok;
    // Bytes sent to the client: the response head and the body, more than the body alone.
    const auto bytes = std::stoull(ok.substr(ok.find(" bytes=") + 7));
    EXPECT_GT(bytes, answered.body.size()) << ok;
    EXPECT_NE(ok.find(" ms="), std::string::npos) << ok;

    const auto& refused = lines[1];
    EXPECT_NE(refused.find("\"GET /a\" host=nope." + std::string(kVmDomain) +
                           " vm=- port=0 status=404 bytes="),
              std::string::npos)
        << refused;
}

}  // namespace
}  // namespace decloud::ingress_test
