#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <utility>

#include "decloud/common/result.hpp"

namespace decloud::agent::domain::ingress {

// A header as delivered by a raw parser: name exactly as before the colon, value after the
// optional leading whitespace was skipped (so a value still starting with SP/HT is a folded line).
using RawHeader = std::pair<std::string_view, std::string_view>;

// How the request body is delimited, once the headers passed CheckRequestHeaders.
struct RequestFraming {
    enum class Kind { kNone, kContentLength, kChunked };
    Kind kind = Kind::kNone;
    std::uint64_t content_length = 0;  // only for kContentLength

    friend bool operator==(const RequestFraming&, const RequestFraming&) = default;
};

// Request-smuggling checks on the raw header list. Rejects (kInvalidArgument, message naming the
// problem, for a 400 problem+json):
//  - header names that are empty, contain non-token characters (CR, LF, NUL included) or end in
//    SP/HT (whitespace between name and colon);
//  - values starting with SP/HT (obsolete line folding) or containing CR, LF, NUL or another
//    control character other than HT;
//  - both Content-Length and Transfer-Encoding;
//  - Content-Length that is not a plain decimal, or several (also comma-separated) values that
//    differ; identical values are folded into one;
//  - any Transfer-Encoding other than exactly one "chunked" coding: the proxy neither decodes
//    nor forwards other codings, so "gzip, chunked" is refused too, as are "chunked, gzip",
//    "chunked, chunked" and empty list elements;
//  - more than one Host header.
common::Result<RequestFraming> CheckRequestHeaders(std::span<const RawHeader> headers);

// Parses a chunk-size line (without CRLF): 1 to 16 hex digits, then optional extensions
// `BWS ";" name [ "=" (token | quoted-string) ]`, whitespace allowed only directly before ';'.
common::Result<std::uint64_t> ParseChunkSize(std::string_view line);

}  // namespace decloud::agent::domain::ingress
