#include "agent/domain/ingress/http1.hpp"

#include <gtest/gtest.h>

#include <string>

namespace decloud::agent::domain::ingress {
namespace {

using Kind = ResponseFraming::Kind;

TEST(Http1Test, FindsTheEndOfAHead) {
    EXPECT_EQ(FindHeadEnd("GET / HTTP/1.1\r\nHost: a\r\n\r\nbody"), 27u);
    EXPECT_EQ(FindHeadEnd("GET / HTTP/1.1\r\nHost: a\r\n"), std::string_view::npos);
    // A head with bare LFs ends too, so that it is refused at once instead of waited for.
    EXPECT_EQ(FindHeadEnd("GET / HTTP/1.1\nHost: a\n\nbody"), 24u);
    EXPECT_FALSE(ParseRequestHead("GET / HTTP/1.1\nHost: a\n\n").has_value());
}

TEST(Http1Test, ParsesARequestHead) {
    const auto head =
        ParseRequestHead("\r\nPOST /a?b=c HTTP/1.1\r\nHost: x\r\nX-Empty:\r\nA:  v v  \r\n\r\n");
    ASSERT_TRUE(head.has_value()) << head.error().message;
    EXPECT_EQ(head->method, "POST");
    EXPECT_EQ(head->target, "/a?b=c");
    EXPECT_EQ(head->version_minor, 1);
    ASSERT_EQ(head->headers.size(), 3u);
    EXPECT_EQ(head->headers[0], (RawHeader{"Host", "x"}));
    EXPECT_EQ(head->headers[1], (RawHeader{"X-Empty", ""}));
    EXPECT_EQ(head->headers[2], (RawHeader{"A", "v v"}));
    const auto old = ParseRequestHead("GET / HTTP/1.0\r\n\r\n");
    ASSERT_TRUE(old.has_value());
    EXPECT_EQ(old->version_minor, 0);
}

TEST(Http1Test, ParsingIntoAReusedHeadReplacesEverything) {
    RequestHead request;
    ASSERT_TRUE(ParseRequestHead("GET /a HTTP/1.0\r\nA: 1\r\nB: 2\r\n\r\n", request));
    ASSERT_TRUE(ParseRequestHead("PUT /b HTTP/1.1\r\nC: 3\r\n\r\n", request));
    EXPECT_EQ(request.method, "PUT");
    EXPECT_EQ(request.target, "/b");
    EXPECT_EQ(request.version_minor, 1);
    ASSERT_EQ(request.headers.size(), 1u);
    EXPECT_EQ(request.headers[0], (RawHeader{"C", "3"}));

    ResponseHead response;
    ASSERT_TRUE(ParseResponseHead("HTTP/1.0 404 Not Found\r\nA: 1\r\n\r\n", response));
    ASSERT_TRUE(ParseResponseHead("HTTP/1.1 204\r\n\r\n", response));
    EXPECT_EQ(response.status, 204u);
    EXPECT_EQ(response.reason, "");
    EXPECT_EQ(response.version_minor, 1);
    EXPECT_TRUE(response.headers.empty());
    EXPECT_FALSE(ParseResponseHead("HTTP/1.1 2x0 OK\r\n\r\n", response));
}

TEST(Http1Test, RefusesMalformedRequestHeads) {
    for (const char* bad : {
             "GET / HTTP/1.1\r\nHost: a\n\r\n",          // bare LF
             "GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n",     // bare CR
             "GET / HTTP/1.1\r\nHost: a\r\n b\r\n\r\n",  // obsolete line folding
             "GET / HTTP/1.1\r\n\tHost: a\r\n\r\n",      // folding on the first line
             "GET / HTTP/1.1\r\nNoColon\r\n\r\n",
             "GET /a b HTTP/1.1\r\n\r\n",  // space in target
             "GET  / HTTP/1.1\r\n\r\n",    // empty target
             "GET / HTTP/2.0\r\n\r\n",
             "GET / http/1.1\r\n\r\n",
             "G(T / HTTP/1.1\r\n\r\n",
             "GET /\x01 HTTP/1.1\r\n\r\n",
             "GET / HTTP/1.1\n\r\n",
         }) {
        EXPECT_FALSE(ParseRequestHead(bad).has_value()) << bad;
    }
}

TEST(Http1Test, ParsesStatusLinesWithAndWithoutReason) {
    auto ok = ParseResponseHead("HTTP/1.1 200 OK\r\nA: b\r\n\r\n");
    ASSERT_TRUE(ok.has_value());
    EXPECT_EQ(ok->status, 200u);
    EXPECT_EQ(ok->reason, "OK");
    auto empty_reason = ParseResponseHead("HTTP/1.1 204 \r\n\r\n");
    ASSERT_TRUE(empty_reason.has_value());
    EXPECT_EQ(empty_reason->reason, "");
    auto no_reason = ParseResponseHead("HTTP/1.0 599\r\n\r\n");
    ASSERT_TRUE(no_reason.has_value());
    EXPECT_EQ(no_reason->status, 599u);
    EXPECT_EQ(no_reason->version_minor, 0);
    for (const char* bad :
         {"HTTP/1.1 20 OK\r\n\r\n", "HTTP/1.1 099 x\r\n\r\n", "HTTP/1.1 2000\r\n\r\n",
          "HTTP/1.1 200 O\x01K\r\n\r\n", "HTTP/3 200 OK\r\n\r\n"}) {
        EXPECT_FALSE(ParseResponseHead(bad).has_value()) << bad;
    }
}

ResponseFraming Framing(std::string_view head, std::string_view method = "GET") {
    auto parsed = ParseResponseHead(head);
    EXPECT_TRUE(parsed.has_value());
    auto framing = CheckResponseHeaders(*parsed, method);
    EXPECT_TRUE(framing.has_value()) << framing.error().message;
    return *framing;
}

TEST(Http1Test, DecidesResponseFraming) {
    EXPECT_EQ(Framing("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"),
              (ResponseFraming{Kind::kContentLength, 5, true}));
    EXPECT_EQ(Framing("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n").kind,
              Kind::kChunked);
    EXPECT_EQ(Framing("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"),
              (ResponseFraming{Kind::kUntilClose, 0, false}));
    EXPECT_EQ(Framing("HTTP/1.1 200 OK\r\n\r\n").kind, Kind::kUntilClose);
    EXPECT_EQ(Framing("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", "HEAD").kind, Kind::kNone);
    EXPECT_EQ(Framing("HTTP/1.1 204 No Content\r\n\r\n").kind, Kind::kNone);
    EXPECT_EQ(Framing("HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n").kind, Kind::kNone);
    EXPECT_FALSE(
        Framing("HTTP/1.1 200 OK\r\nConnection: Keep-Alive, close\r\nContent-Length: 1\r\n\r\n")
            .keep_alive);
    EXPECT_FALSE(Framing("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n").keep_alive);
}

TEST(Http1Test, RefusesAmbiguousResponses) {
    for (const char* bad :
         {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
          "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
          "HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n",
          "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n"}) {
        auto parsed = ParseResponseHead(bad);
        ASSERT_TRUE(parsed.has_value()) << bad;
        EXPECT_FALSE(CheckResponseHeaders(*parsed, "GET").has_value()) << bad;
    }
}

TEST(Http1Test, ScansAChunkedBodyAcrossAnySplit) {
    const std::string body =
        "5;ext=\"q\"\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-Sum: 15\r\n\r\nNEXT";
    const std::size_t body_size = body.size() - 4;
    for (std::size_t split = 0; split <= body.size(); ++split) {
        ChunkedScanner scanner;
        std::vector<ChunkedScanner::Span> spans;
        std::string payload;
        std::size_t consumed = 0;
        bool done = false;
        for (const auto part :
             {std::string_view(body).substr(0, split), std::string_view(body).substr(split)}) {
            spans.clear();
            auto progress = scanner.Feed(part, &spans);
            ASSERT_TRUE(progress.has_value()) << progress.error().message;
            for (const auto& span : spans) payload.append(part.substr(span.offset, span.size));
            consumed += progress->consumed;
            done = progress->done;
            if (done) break;
        }
        EXPECT_TRUE(done) << split;
        EXPECT_EQ(consumed, body_size) << split;
        EXPECT_EQ(payload, "hello0123456789") << split;
    }
}

TEST(Http1Test, RefusesMalformedChunkedBodies) {
    for (const char* bad : {"x\r\n", "-1\r\n", "12345678901234567\r\n", "5\r\nhelloX\r\n",
                            "5\nhello", "5\r\nhello\r\n0\r\n folded: x\r\n\r\n",
                            "5\r\nhello\r\n0\r\nBad Name: x\r\n\r\n", "5 \r\n", "5\r\nhello\r\r"}) {
        ChunkedScanner scanner;
        EXPECT_FALSE(scanner.Feed(bad).has_value()) << bad;
    }
    ChunkedScanner limited(8);
    EXPECT_FALSE(limited.Feed("5;aaaaaaaaaaaaaaaaaa=b\r\n").has_value());
}

}  // namespace
}  // namespace decloud::agent::domain::ingress
