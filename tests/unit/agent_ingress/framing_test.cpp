#include "agent/domain/ingress/framing.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace decloud::agent::domain::ingress {
namespace {

using Kind = RequestFraming::Kind;
using Headers = std::vector<RawHeader>;

common::Result<RequestFraming> Check(const Headers& headers) {
    return CheckRequestHeaders(headers);
}

// Expects a rejection whose message contains `needle`.
void ExpectRejected(const Headers& headers, std::string_view needle) {
    const auto r = Check(headers);
    ASSERT_FALSE(r.has_value()) << "accepted, expected: " << needle;
    EXPECT_EQ(r.error().code, common::ErrorCode::kInvalidArgument);
    EXPECT_NE(r.error().message.find(needle), std::string::npos) << r.error().message;
}

TEST(FramingTest, NoBody) {
    const auto r = Check({{"Host", "a"}, {"Accept", "*/*"}});
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->kind, Kind::kNone);
}

TEST(FramingTest, ContentLength) {
    auto r = Check({{"Host", "a"}, {"content-length", "42"}});
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->kind, Kind::kContentLength);
    EXPECT_EQ(r->content_length, 42u);
    r = Check({{"Content-Length", "0"}});
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->kind, Kind::kContentLength);
    EXPECT_EQ(r->content_length, 0u);
}

TEST(FramingTest, IdenticalContentLengthsAreFolded) {
    auto r = Check({{"Content-Length", "7"}, {"Content-Length", "7"}});
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->content_length, 7u);
    r = Check({{"Content-Length", "7, 7,7"}});
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->content_length, 7u);
}

TEST(FramingTest, DifferingContentLengthsAreRejected) {
    ExpectRejected({{"Content-Length", "7"}, {"Content-Length", "8"}}, "conflicting");
    ExpectRejected({{"Content-Length", "7, 8"}}, "conflicting");
}

TEST(FramingTest, ContentLengthMustBePlainDecimal) {
    for (std::string_view v :
         {"", "+5", "-5", "5a", "0x10", "1e3", "5 5", "5,", "99999999999999999999", "５"}) {
        ExpectRejected({{"Content-Length", v}}, "plain decimal");
    }
}

TEST(FramingTest, ContentLengthAndTransferEncodingTogether) {
    ExpectRejected({{"Content-Length", "5"}, {"Transfer-Encoding", "chunked"}},
                   "both Content-Length and Transfer-Encoding");
    ExpectRejected({{"transfer-encoding", "chunked"}, {"CONTENT-LENGTH", "5"}},
                   "both Content-Length and Transfer-Encoding");
}

TEST(FramingTest, ChunkedOnly) {
    for (std::string_view v : {"chunked", "Chunked", "CHUNKED"}) {
        const auto r = Check({{"Transfer-Encoding", v}});
        ASSERT_TRUE(r.has_value()) << v;
        EXPECT_EQ(r->kind, Kind::kChunked);
    }
}

TEST(FramingTest, OtherTransferCodingsAreRejected) {
    // The proxy does not decode transfer codings, so even a valid "gzip, chunked" is refused.
    ExpectRejected({{"Transfer-Encoding", "gzip, chunked"}}, "unsupported transfer coding");
    ExpectRejected({{"Transfer-Encoding", "gzip"}, {"Transfer-Encoding", "chunked"}},
                   "unsupported transfer coding");
    ExpectRejected({{"Transfer-Encoding", "gzip"}}, "unsupported transfer coding");
    ExpectRejected({{"Transfer-Encoding", "identity"}}, "unsupported transfer coding");
    ExpectRejected({{"Transfer-Encoding", "chunked;q=1"}}, "unsupported transfer coding");
    ExpectRejected({{"Transfer-Encoding", "xchunked"}}, "unsupported transfer coding");
    ExpectRejected({{"Transfer-Encoding", "chunked, gzip"}}, "not the final");
    ExpectRejected({{"Transfer-Encoding", "chunked , chunked"}}, "more than once");
    ExpectRejected({{"Transfer-Encoding", "chunked"}, {"Transfer-Encoding", "chunked"}},
                   "more than once");
    ExpectRejected({{"Transfer-Encoding", ""}}, "empty transfer coding");
    ExpectRejected({{"Transfer-Encoding", "chunked,"}}, "empty transfer coding");
}

TEST(FramingTest, ObsoleteLineFolding) {
    ExpectRejected({{"X-A", " folded"}}, "obsolete line folding");
    ExpectRejected({{"Transfer-Encoding", "\tchunked"}}, "obsolete line folding");
    ExpectRejected({{"X-A", "a\r\n b"}}, "CR or LF");
    ExpectRejected({{"X-A", "a\nb"}}, "CR or LF");
}

TEST(FramingTest, ControlCharactersInValues) {
    ExpectRejected({{"X-A", std::string_view("a\0b", 3)}}, "NUL");
    ExpectRejected({{"X-A", "a\x01"}}, "control character");
    ExpectRejected({{"X-A", "a\x7f"}}, "control character");
    EXPECT_TRUE(Check({{"X-A", "a\tb c"}}).has_value());
    EXPECT_TRUE(Check({{"X-A", "caf\xc3\xa9"}}).has_value()) << "obs-text is allowed";
    EXPECT_TRUE(Check({{"X-A", ""}}).has_value());
}

TEST(FramingTest, HeaderNames) {
    ExpectRejected({{"Transfer-Encoding ", "chunked"}}, "whitespace between header name");
    ExpectRejected({{"Content-Length\t", "5"}}, "whitespace between header name");
    ExpectRejected({{"", "x"}}, "empty header name");
    ExpectRejected({{"X A", "x"}}, "invalid header name");
    ExpectRejected({{"X:A", "x"}}, "invalid header name");
    ExpectRejected({{"X(A)", "x"}}, "invalid header name");
    ExpectRejected({{std::string_view("X\0A", 3), "x"}}, "control character in header name");
    ExpectRejected({{"X\rA", "x"}}, "control character in header name");
    ExpectRejected({{" Host", "x"}}, "invalid header name");
    EXPECT_TRUE(Check({{"X-Weird_!#$%&'*+.^`|~", "x"}}).has_value());
}

TEST(FramingTest, DuplicateHost) {
    ExpectRejected({{"Host", "a"}, {"host", "b"}}, "more than one Host");
}

TEST(ChunkSizeTest, Plain) {
    EXPECT_EQ(*ParseChunkSize("0"), 0u);
    EXPECT_EQ(*ParseChunkSize("1a"), 26u);
    EXPECT_EQ(*ParseChunkSize("FF"), 255u);
    EXPECT_EQ(*ParseChunkSize("000010"), 16u);
    EXPECT_EQ(*ParseChunkSize("ffffffffffffffff"), 0xffffffffffffffffULL);
}

TEST(ChunkSizeTest, Extensions) {
    EXPECT_EQ(*ParseChunkSize("10;name"), 16u);
    EXPECT_EQ(*ParseChunkSize("10;name=value"), 16u);
    EXPECT_EQ(*ParseChunkSize("10 ;a=b;c"), 16u);
    EXPECT_EQ(*ParseChunkSize("10\t;a"), 16u);
    EXPECT_EQ(*ParseChunkSize("10;a=\"quoted ; value\""), 16u);
    EXPECT_EQ(*ParseChunkSize("10;a=\"esc\\\"aped\";b=c"), 16u);
    EXPECT_EQ(*ParseChunkSize("10;a=\"\""), 16u);
}

TEST(ChunkSizeTest, Rejections) {
    for (std::string_view bad : {
             "",
             " 10",
             "10 ",
             "10\t",
             "+10",
             "-1",
             "0x10",
             "10g",
             "1 0",
             "10000000000000000",  // 17 hex digits
             "00000000000000001",  // 17 digits, even if small
             "10;",
             "10; a",
             "10;a =b",
             "10;a= b",
             "10;a=",
             "10;a=b c",
             "10;a=\"open",
             "10;a=\"x\\",
             "10;a=\"x\"y",
             "10;a=(b)",
             "10;;a",
             "10\r",
             "10;a\n",
         }) {
        EXPECT_FALSE(ParseChunkSize(bad).has_value()) << bad;
    }
    EXPECT_FALSE(ParseChunkSize(std::string_view("1\0", 2)).has_value());
    EXPECT_FALSE(ParseChunkSize(std::string_view("1;a=\"\0\"", 7)).has_value());
    EXPECT_FALSE(ParseChunkSize("1;a=\"\x01\"").has_value());
}

}  // namespace
}  // namespace decloud::agent::domain::ingress
