#include "agent/domain/ingress/forwarding.hpp"

#include <gtest/gtest.h>

#include <boost/beast/http/fields.hpp>

#include <string>
#include <vector>

namespace decloud::agent::domain::ingress {
namespace {

namespace http = boost::beast::http;

// The rules work on raw header lists; these tests state them on Beast field containers, which
// read more easily, and convert both ways.
std::vector<RawHeader> ToRaw(const http::fields& fields) {
    std::vector<RawHeader> raw;
    for (const auto& field : fields) raw.emplace_back(field.name_string(), field.value());
    return raw;
}

http::fields FromLines(std::string_view lines) {
    http::fields fields;
    while (!lines.empty()) {
        const auto eol = lines.find("\r\n");
        const auto line = lines.substr(0, eol);
        const auto colon = line.find(": ");
        fields.insert(line.substr(0, colon), line.substr(colon + 2));
        lines.remove_prefix(eol + 2);
    }
    return fields;
}

bool IsWebSocketUpgrade(const http::fields& fields) {
    const auto raw = ToRaw(fields);
    return ingress::IsWebSocketUpgrade(std::span<const RawHeader>(raw));
}

void PrepareUpstreamRequest(http::fields& fields, const ForwardContext& context) {
    const auto raw = ToRaw(fields);
    std::string lines;
    AppendUpstreamRequestFields(lines, raw, context,
                                ingress::IsWebSocketUpgrade(std::span<const RawHeader>(raw)));
    fields = FromLines(lines);
}

void PrepareDownstreamResponse(http::fields& fields, bool websocket_accepted) {
    const auto raw = ToRaw(fields);
    std::string lines;
    AppendDownstreamResponseFields(lines, raw, websocket_accepted);
    fields = FromLines(lines);
}

std::vector<std::string> Values(const http::fields& fields, std::string_view name) {
    std::vector<std::string> out;
    const auto range = fields.equal_range(name);
    for (auto it = range.first; it != range.second; ++it) out.emplace_back(it->value());
    return out;
}

std::string Value(const http::fields& fields, std::string_view name) {
    return std::string(fields[name]);
}

ForwardContext Context(std::string_view client, std::string_view proto = "https") {
    ForwardContext c;
    c.client_address = client;
    c.proto = proto;
    c.upstream_address = "10.10.0.5";
    c.upstream_port = 8080;
    return c;
}

TEST(ForwardingTest, RemovesHopByHopAndNominatedHeaders) {
    http::fields f;
    f.set(http::field::host, "web.vm.example");
    f.insert(http::field::connection, "close, X-Secret");
    f.insert(http::field::connection, " keep-alive ,  X-Other ");
    f.set("X-Secret", "1");
    f.set("X-Other", "2");
    f.set("Keep-Alive", "timeout=5");
    f.set("Proxy-Connection", "keep-alive");
    f.set("Proxy-Authenticate", "Basic");
    f.set("Proxy-Authorization", "Basic Zm9vOmJhcg==");
    f.set("TE", "trailers");
    f.set("Trailer", "X-Checksum");
    f.set("Transfer-Encoding", "chunked");
    f.set("Upgrade", "h2c");
    f.set("Authorization", "Bearer abc");
    f.set("Accept", "*/*");

    PrepareUpstreamRequest(f, Context("192.0.2.7"));
    for (std::string_view name : {"Connection", "X-Secret", "X-Other", "Keep-Alive",
                                  "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization",
                                  "TE", "Trailer", "Transfer-Encoding", "Upgrade"}) {
        EXPECT_EQ(f.count(name), 0u) << name;
    }
    EXPECT_EQ(Value(f, "Authorization"), "Bearer abc");
    EXPECT_EQ(Value(f, "Accept"), "*/*");
    EXPECT_EQ(Value(f, "Host"), "web.vm.example");
}

TEST(ForwardingTest, ConnectionCannotStripHostOrContentLength) {
    http::fields f;
    f.set(http::field::host, "web.vm.example");
    f.set(http::field::content_length, "5");
    f.set(http::field::connection, "Host, content-length");
    PrepareUpstreamRequest(f, Context("192.0.2.7"));
    EXPECT_EQ(Value(f, "Host"), "web.vm.example");
    EXPECT_EQ(Value(f, "Content-Length"), "5");
}

TEST(ForwardingTest, SetsForwardingHeadersForIpv4) {
    http::fields f;
    f.set(http::field::host, "web.vm.example:8443");
    f.set("X-Forwarded-Proto", "spoofed");
    f.set("X-Forwarded-Host", "spoofed.example");
    PrepareUpstreamRequest(f, Context("192.0.2.7"));
    EXPECT_EQ(Value(f, "X-Forwarded-For"), "192.0.2.7");
    EXPECT_EQ(Value(f, "X-Forwarded-Proto"), "https");
    EXPECT_EQ(Value(f, "X-Forwarded-Host"), "web.vm.example:8443");
    EXPECT_EQ(Value(f, "Forwarded"), "for=192.0.2.7;host=\"web.vm.example:8443\";proto=https");
}

TEST(ForwardingTest, AppendsToExistingLists) {
    http::fields f;
    f.set(http::field::host, "web.vm.example");
    f.insert("X-Forwarded-For", "203.0.113.1");
    f.insert("X-Forwarded-For", "198.51.100.2, 198.51.100.3");
    f.insert("Forwarded", "for=203.0.113.1");
    PrepareUpstreamRequest(f, Context("192.0.2.7", "http"));
    EXPECT_EQ(Values(f, "X-Forwarded-For"),
              std::vector<std::string>{"203.0.113.1, 198.51.100.2, 198.51.100.3, 192.0.2.7"});
    EXPECT_EQ(
        Values(f, "Forwarded"),
        std::vector<std::string>{"for=203.0.113.1, for=192.0.2.7;host=web.vm.example;proto=http"});
}

TEST(ForwardingTest, ForwardedProtoAndHostAreReplacedUnlessTheClientIsTrusted) {
    const auto prepare = [](bool trusted) {
        http::fields f;
        f.set(http::field::host, "web.vm.example");
        f.insert("X-Forwarded-Proto", "https");
        f.insert("X-Forwarded-Host", "public.example");
        f.insert("Expect", "100-continue");
        auto context = Context("127.0.0.1", "http");
        context.trust_forwarded = trusted;
        PrepareUpstreamRequest(f, context);
        return f;
    };
    const auto untrusted = prepare(false);
    EXPECT_EQ(Values(untrusted, "X-Forwarded-Proto"), std::vector<std::string>{"http"});
    EXPECT_EQ(Values(untrusted, "X-Forwarded-Host"), std::vector<std::string>{"web.vm.example"});
    EXPECT_TRUE(Values(untrusted, "Expect").empty());  // answered by the proxy, never forwarded
    const auto trusted = prepare(true);
    EXPECT_EQ(Values(trusted, "X-Forwarded-Proto"), std::vector<std::string>{"https"});
    EXPECT_EQ(Values(trusted, "X-Forwarded-Host"), std::vector<std::string>{"public.example"});
}

TEST(ForwardingTest, QuotesIpv6ClientInForwarded) {
    http::fields f;
    f.set(http::field::host, "web.vm.example");
    PrepareUpstreamRequest(f, Context("::1"));
    EXPECT_EQ(Value(f, "Forwarded"), "for=\"[::1]\";host=web.vm.example;proto=https");
    EXPECT_EQ(Value(f, "X-Forwarded-For"), "::1");
}

TEST(ForwardingTest, UnknownClientAndMissingHost) {
    http::fields f;
    f.set("X-Forwarded-Host", "spoofed.example");
    PrepareUpstreamRequest(f, Context(""));
    EXPECT_EQ(Value(f, "X-Forwarded-For"), "unknown");
    EXPECT_EQ(Value(f, "Forwarded"), "for=unknown;proto=https");
    EXPECT_EQ(f.count("X-Forwarded-Host"), 0u);
}

TEST(ForwardingTest, RewritesHostWhenConfigured) {
    http::fields f;
    f.set(http::field::host, "web.vm.example");
    auto ctx = Context("192.0.2.7");
    ctx.preserve_host = false;
    PrepareUpstreamRequest(f, ctx);
    EXPECT_EQ(Value(f, "Host"), "10.10.0.5:8080");
    EXPECT_EQ(Value(f, "X-Forwarded-Host"), "web.vm.example");

    http::fields g;
    g.set(http::field::host, "db.vm.example");
    ctx.upstream_address = "fd00::7";
    ctx.upstream_port = 80;
    PrepareUpstreamRequest(g, ctx);
    EXPECT_EQ(Value(g, "Host"), "[fd00::7]:80");
}

TEST(ForwardingTest, KeepsWebSocketUpgrade) {
    http::fields f;
    f.set(http::field::host, "web.vm.example");
    f.insert(http::field::connection, "keep-alive");
    f.insert(http::field::connection, "Upgrade, X-Drop");
    f.set(http::field::upgrade, "WebSocket");
    f.set("X-Drop", "1");
    f.set("Keep-Alive", "timeout=5");
    f.set(http::field::sec_websocket_key, "dGhlIHNhbXBsZSBub25jZQ==");
    ASSERT_TRUE(IsWebSocketUpgrade(f));
    PrepareUpstreamRequest(f, Context("192.0.2.7"));
    EXPECT_EQ(Values(f, "Connection"), std::vector<std::string>{"Upgrade"});
    EXPECT_EQ(Values(f, "Upgrade"), std::vector<std::string>{"websocket"});
    EXPECT_EQ(f.count("X-Drop"), 0u);
    EXPECT_EQ(f.count("Keep-Alive"), 0u);
    EXPECT_EQ(Value(f, "Sec-WebSocket-Key"), "dGhlIHNhbXBsZSBub25jZQ==");
}

TEST(WebSocketDetectionTest, Variants) {
    const auto detect = [](std::vector<std::string> connection, std::vector<std::string> upgrade) {
        http::fields f;
        for (const auto& c : connection) f.insert(http::field::connection, c);
        for (const auto& u : upgrade) f.insert(http::field::upgrade, u);
        return IsWebSocketUpgrade(f);
    };
    EXPECT_TRUE(detect({"Upgrade"}, {"websocket"}));
    EXPECT_TRUE(detect({"keep-alive, Upgrade"}, {"WebSocket"}));
    EXPECT_TRUE(detect({"keep-alive ,\tUPGRADE ,x"}, {" websocket "}));
    EXPECT_TRUE(detect({"keep-alive", "upgrade"}, {"websocket"}));
    EXPECT_FALSE(detect({"keep-alive"}, {"websocket"}));
    EXPECT_FALSE(detect({"upgraded"}, {"websocket"}));
    EXPECT_FALSE(detect({"x-upgrade"}, {"websocket"}));
    EXPECT_FALSE(detect({"upgrade"}, {}));
    EXPECT_FALSE(detect({"upgrade"}, {"h2c"}));
    EXPECT_FALSE(detect({"upgrade"}, {"websocket, h2c"}));
    EXPECT_FALSE(detect({"upgrade"}, {"websocket", "h2c"}));
    EXPECT_FALSE(detect({}, {"websocket"}));
}

TEST(ForwardingTest, NonWebSocketUpgradeIsStripped) {
    http::fields f;
    f.set(http::field::host, "web.vm.example");
    f.set(http::field::connection, "Upgrade, HTTP2-Settings");
    f.set(http::field::upgrade, "h2c");
    f.set("HTTP2-Settings", "AAMAAABkAARAAAAAAAIAAAAA");
    PrepareUpstreamRequest(f, Context("192.0.2.7"));
    EXPECT_EQ(f.count("Upgrade"), 0u);
    EXPECT_EQ(f.count("Connection"), 0u);
    EXPECT_EQ(f.count("HTTP2-Settings"), 0u);
}

TEST(ForwardingTest, ResponseSide) {
    http::fields f;
    f.set(http::field::connection, "close, X-Internal");
    f.set("X-Internal", "secret");
    f.set("Keep-Alive", "timeout=5");
    f.set("Transfer-Encoding", "chunked");
    f.set("Proxy-Authenticate", "Basic");
    f.set("Content-Type", "text/html");
    PrepareDownstreamResponse(f, false);
    EXPECT_EQ(f.count("Connection"), 0u);
    EXPECT_EQ(f.count("X-Internal"), 0u);
    EXPECT_EQ(f.count("Keep-Alive"), 0u);
    EXPECT_EQ(f.count("Transfer-Encoding"), 0u);
    EXPECT_EQ(f.count("Proxy-Authenticate"), 0u);
    EXPECT_EQ(Value(f, "Content-Type"), "text/html");

    http::fields ws;
    ws.set(http::field::connection, "Upgrade");
    ws.set(http::field::upgrade, "websocket");
    ws.set(http::field::sec_websocket_accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    PrepareDownstreamResponse(ws, true);
    EXPECT_EQ(Value(ws, "Connection"), "Upgrade");
    EXPECT_EQ(Value(ws, "Upgrade"), "websocket");
    EXPECT_EQ(Value(ws, "Sec-WebSocket-Accept"), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(FormatAuthorityTest, BracketsIpv6) {
    EXPECT_EQ(FormatAuthority("10.0.0.1", 80), "10.0.0.1:80");
    EXPECT_EQ(FormatAuthority("fd00::1", 443), "[fd00::1]:443");
}

}  // namespace
}  // namespace decloud::agent::domain::ingress
