#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "agent/domain/ingress/framing.hpp"
#include "decloud/common/result.hpp"

namespace decloud::agent::domain::ingress {

// HTTP/1.x message heads as they arrive on the wire. The proxy parses heads itself (instead of
// through Beast's parser) so that it sees exactly what was sent: Beast folds obsolete line
// folding into spaces, and the smuggling checks need the raw header list.

// Offset just past the blank line ending a head ("\r\n\r\n", or with bare LFs, which the parsers
// then refuse), or npos while it is incomplete.
// Leading empty lines (CRLF) before a request line are part of the head (RFC 9112 2.2).
std::size_t FindHeadEnd(std::string_view buffered);

struct RequestHead {
    std::string_view method;
    std::string_view target;
    int version_minor = 1;  // HTTP/1.0 or HTTP/1.1
    std::vector<RawHeader> headers;
};

// Parses "METHOD SP target SP HTTP/1.x CRLF *(field CRLF) CRLF". Every line must end in CRLF
// (a bare LF or CR is refused); method a token; target visible ASCII without spaces. Header lines
// are split at the first colon without any other check: CheckRequestHeaders judges them.
common::Result<RequestHead> ParseRequestHead(std::string_view head);
// The same into `out`, reusing its header list's memory (the proxy parses one head per request).
common::Result<void> ParseRequestHead(std::string_view head, RequestHead& out);

struct ResponseHead {
    unsigned status = 0;
    std::string_view reason;  // may be empty
    int version_minor = 1;
    std::vector<RawHeader> headers;
};

// Parses "HTTP/1.x SP 3DIGIT SP [reason] CRLF *(field CRLF) CRLF".
common::Result<ResponseHead> ParseResponseHead(std::string_view head);
common::Result<void> ParseResponseHead(std::string_view head, ResponseHead& out);

// How a VM's response body is delimited.
struct ResponseFraming {
    enum class Kind { kNone, kContentLength, kChunked, kUntilClose };
    Kind kind = Kind::kNone;
    std::uint64_t content_length = 0;
    bool keep_alive = true;  // HTTP/1.1 without "Connection: close"

    friend bool operator==(const ResponseFraming&, const ResponseFraming&) = default;
};

// Decides the framing of a response to `request_method` (RFC 9112 6.3): no body for HEAD, 1xx, 204
// and 304; chunked when it is the final transfer coding; otherwise Content-Length; otherwise read
// until close. Refuses (for a 502) malformed names or values, both Content-Length and
// Transfer-Encoding, conflicting or non-decimal Content-Length.
common::Result<ResponseFraming> CheckResponseHeaders(const ResponseHead& head,
                                                     std::string_view request_method);

// Follows a chunked body as it streams by, without copying it: says how many of the offered bytes
// belong to the body, where the chunk data lies within them, and when the body (with its trailer
// section) is complete. Chunk-size lines are checked with ParseChunkSize, trailer lines like
// header lines. Lines are limited to `max_line` bytes.
class ChunkedScanner {
  public:
    explicit ChunkedScanner(std::size_t max_line = 8 * 1024) : max_line_(max_line) {}

    struct Span {
        std::size_t offset = 0;
        std::size_t size = 0;
    };
    struct Progress {
        std::size_t consumed = 0;  // bytes of `bytes` that belong to the body
        bool done = false;         // the final CRLF after the trailers was consumed
    };

    // `data`, when given, receives the spans (relative to `bytes`) that are chunk payload.
    common::Result<Progress> Feed(std::string_view bytes, std::vector<Span>* data = nullptr);
    bool done() const { return state_ == State::kDone; }

  private:
    enum class State { kSizeLine, kData, kDataCr, kDataLf, kTrailerLine, kDone };
    common::Status EndLine();

    State state_ = State::kSizeLine;
    std::uint64_t remaining_ = 0;
    std::size_t max_line_;
    std::vector<char> line_;  // the current size or trailer line, without CRLF
    bool saw_cr_ = false;
};

}  // namespace decloud::agent::domain::ingress
