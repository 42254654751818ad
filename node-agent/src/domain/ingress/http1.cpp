#include "agent/domain/ingress/http1.hpp"

#include <optional>

#include "text.hpp"

namespace decloud::agent::domain::ingress {

using common::Error;
using common::Result;

namespace {

// Splits the header lines after the start line. `rest` starts just after the start line's CRLF
// and ends with the blank line's CRLF.
// `headers` is cleared first; its capacity is reused.
Result<void> SplitHeaderLines(std::string_view rest, std::vector<RawHeader>& headers) {
    headers.clear();
    headers.reserve(16);
    while (true) {
        const auto eol = rest.find('\n');
        if (eol == std::string_view::npos || eol == 0 || rest[eol - 1] != '\r') {
            return Error::InvalidArgument("header line does not end in CRLF");
        }
        const auto line = rest.substr(0, eol - 1);
        rest.remove_prefix(eol + 1);
        if (line.empty()) break;
        if (line.find('\r') != std::string_view::npos) {
            return Error::InvalidArgument("bare CR in header section");
        }
        if (text::IsWhitespace(line.front())) {
            return Error::InvalidArgument("obsolete line folding in header section");
        }
        const auto colon = line.find(':');
        if (colon == std::string_view::npos)
            return Error::InvalidArgument("header line without colon");
        auto value = line.substr(colon + 1);
        // Optional whitespace around the value is not part of it (RFC 9110 5.5).
        while (!value.empty() && text::IsWhitespace(value.front())) value.remove_prefix(1);
        while (!value.empty() && text::IsWhitespace(value.back())) value.remove_suffix(1);
        headers.emplace_back(line.substr(0, colon), value);
    }
    if (!rest.empty()) return Error::InvalidArgument("data after the end of the head");
    return {};
}

// Splits off the first line (without CRLF); refuses bare LF.
Result<std::string_view> TakeLine(std::string_view& text) {
    const auto eol = text.find('\n');
    if (eol == std::string_view::npos || eol == 0 || text[eol - 1] != '\r') {
        return Error::InvalidArgument("start line does not end in CRLF");
    }
    const auto line = text.substr(0, eol - 1);
    text.remove_prefix(eol + 1);
    return line;
}

Result<int> ParseVersion(std::string_view version) {
    if (version == "HTTP/1.1") return 1;
    if (version == "HTTP/1.0") return 0;
    return Error::InvalidArgument("unsupported HTTP version");
}

bool IsTargetChar(char c) {
    const auto u = static_cast<unsigned char>(c);
    return u > 0x20 && u < 0x7F;
}

}  // namespace

std::size_t FindHeadEnd(std::string_view buffered) {
    // A blank line ends the head; one written with bare LFs ends it too, so that such a request
    // is refused by ParseRequestHead instead of waiting for more.
    for (auto lf = buffered.find('\n'); lf != std::string_view::npos;
         lf = buffered.find('\n', lf + 1)) {
        if (lf + 1 < buffered.size() && buffered[lf + 1] == '\n') return lf + 2;
        if (lf + 2 < buffered.size() && buffered[lf + 1] == '\r' && buffered[lf + 2] == '\n')
            return lf + 3;
    }
    return std::string_view::npos;
}

Result<RequestHead> ParseRequestHead(std::string_view head) {
    RequestHead out;
    auto parsed = ParseRequestHead(head, out);
    if (!parsed) return parsed.error();
    return out;
}

Result<void> ParseRequestHead(std::string_view head, RequestHead& out) {
    // A client may send empty lines between requests (RFC 9112 2.2).
    while (head.starts_with("\r\n")) head.remove_prefix(2);
    auto line = TakeLine(head);
    if (!line) return line.error();
    out.version_minor = 1;
    const auto first_space = line->find(' ');
    const auto last_space = line->rfind(' ');
    if (first_space == std::string_view::npos || first_space == last_space) {
        return Error::InvalidArgument("malformed request line");
    }
    out.method = line->substr(0, first_space);
    out.target = line->substr(first_space + 1, last_space - first_space - 1);
    if (!text::IsToken(out.method)) return Error::InvalidArgument("malformed request method");
    if (out.target.empty()) return Error::InvalidArgument("empty request target");
    for (char c : out.target) {
        if (!IsTargetChar(c)) return Error::InvalidArgument("invalid character in request target");
    }
    auto version = ParseVersion(line->substr(last_space + 1));
    if (!version) return version.error();
    out.version_minor = *version;
    return SplitHeaderLines(head, out.headers);
}

Result<ResponseHead> ParseResponseHead(std::string_view head) {
    ResponseHead out;
    auto parsed = ParseResponseHead(head, out);
    if (!parsed) return parsed.error();
    return out;
}

Result<void> ParseResponseHead(std::string_view head, ResponseHead& out) {
    auto line = TakeLine(head);
    if (!line) return line.error();
    out.reason = {};
    // "HTTP/1.1 200 OK", "HTTP/1.1 200 " and "HTTP/1.1 200" are all seen in the wild.
    if (line->size() < 12 || (*line)[8] != ' ')
        return Error::InvalidArgument("malformed status line");
    auto version = ParseVersion(line->substr(0, 8));
    if (!version) return version.error();
    out.version_minor = *version;
    const auto code = line->substr(9, 3);
    if (!text::IsDigit(code[0]) || !text::IsDigit(code[1]) || !text::IsDigit(code[2]) ||
        code[0] == '0') {
        return Error::InvalidArgument("malformed status code");
    }
    out.status =
        static_cast<unsigned>((code[0] - '0') * 100 + (code[1] - '0') * 10 + (code[2] - '0'));
    if (line->size() > 12) {
        if ((*line)[12] != ' ') return Error::InvalidArgument("malformed status line");
        out.reason = line->substr(13);
        for (char c : out.reason) {
            if (text::IsForbiddenInValue(c))
                return Error::InvalidArgument("control character in reason");
        }
    }
    return SplitHeaderLines(head, out.headers);
}

Result<ResponseFraming> CheckResponseHeaders(const ResponseHead& head,
                                             std::string_view request_method) {
    ResponseFraming framing;
    framing.keep_alive = head.version_minor == 1;
    std::optional<std::uint64_t> content_length;
    bool chunked_last = false;
    bool has_transfer_encoding = false;
    for (const auto& [name, value] : head.headers) {
        if (auto ok = text::CheckName(name); !ok) return ok.error();
        if (auto ok = text::CheckValue(value); !ok) return ok.error();
        if (text::EqualsIgnoreCase(name, "Content-Length")) {
            std::optional<Error> problem;
            text::ForEachListElement(value, [&](std::string_view element) {
                const auto parsed = text::ParseDecimal(element);
                if (problem) return;
                if (!parsed) {
                    problem = Error::InvalidArgument("Content-Length is not a plain decimal");
                } else if (content_length && *content_length != *parsed) {
                    problem = Error::InvalidArgument("conflicting Content-Length values");
                } else {
                    content_length = parsed;
                }
            });
            if (problem) return *problem;
        } else if (text::EqualsIgnoreCase(name, "Transfer-Encoding")) {
            has_transfer_encoding = true;
            chunked_last = false;
            text::ForEachListElement(value, [&](std::string_view element) {
                chunked_last = text::EqualsIgnoreCase(element, "chunked");
            });
        } else if (text::EqualsIgnoreCase(name, "Connection")) {
            text::ForEachListElement(value, [&](std::string_view element) {
                if (text::EqualsIgnoreCase(element, "close")) framing.keep_alive = false;
            });
        }
    }
    if (content_length && has_transfer_encoding) {
        return Error::InvalidArgument("both Content-Length and Transfer-Encoding");
    }
    if (request_method == "HEAD" || head.status < 200 || head.status == 204 || head.status == 304) {
        framing.kind = ResponseFraming::Kind::kNone;
    } else if (has_transfer_encoding) {
        framing.kind =
            chunked_last ? ResponseFraming::Kind::kChunked : ResponseFraming::Kind::kUntilClose;
    } else if (content_length) {
        framing.kind = ResponseFraming::Kind::kContentLength;
        framing.content_length = *content_length;
    } else {
        framing.kind = ResponseFraming::Kind::kUntilClose;
    }
    if (framing.kind == ResponseFraming::Kind::kUntilClose) framing.keep_alive = false;
    return framing;
}

common::Status ChunkedScanner::EndLine() {
    const std::string_view line(line_.data(), line_.size());
    if (state_ == State::kSizeLine) {
        auto size = ParseChunkSize(line);
        if (!size) return size.error();
        remaining_ = *size;
        state_ = remaining_ == 0 ? State::kTrailerLine : State::kData;
    } else if (line.empty()) {
        state_ = State::kDone;
    } else {
        // A trailer field: same rules as a header line.
        if (text::IsWhitespace(line.front())) {
            return Error::InvalidArgument("obsolete line folding in trailer section");
        }
        const auto colon = line.find(':');
        if (colon == std::string_view::npos)
            return Error::InvalidArgument("trailer line without colon");
        if (auto ok = text::CheckName(line.substr(0, colon)); !ok) return ok.error();
        if (auto ok = text::CheckValue(text::Trim(line.substr(colon + 1))); !ok) return ok.error();
    }
    line_.clear();
    return common::Ok();
}

Result<ChunkedScanner::Progress> ChunkedScanner::Feed(std::string_view bytes,
                                                      std::vector<Span>* data) {
    std::size_t i = 0;
    while (i < bytes.size() && state_ != State::kDone) {
        switch (state_) {
            case State::kSizeLine:
            case State::kTrailerLine: {
                const char c = bytes[i++];
                if (saw_cr_) {
                    if (c != '\n') return Error::InvalidArgument("bare CR in chunked body");
                    saw_cr_ = false;
                    if (auto ok = EndLine(); !ok) return ok.error();
                } else if (c == '\r') {
                    saw_cr_ = true;
                } else if (c == '\n') {
                    return Error::InvalidArgument("bare LF in chunked body");
                } else {
                    if (line_.size() >= max_line_)
                        return Error::InvalidArgument("chunk line too long");
                    line_.push_back(c);
                }
                break;
            }
            case State::kData: {
                const auto take =
                    static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, bytes.size() - i));
                if (data && take > 0) data->push_back({i, take});
                i += take;
                remaining_ -= take;
                if (remaining_ == 0) state_ = State::kDataCr;
                break;
            }
            case State::kDataCr:
                if (bytes[i++] != '\r')
                    return Error::InvalidArgument("chunk data longer than its size");
                state_ = State::kDataLf;
                break;
            case State::kDataLf:
                if (bytes[i++] != '\n')
                    return Error::InvalidArgument("chunk data not followed by CRLF");
                state_ = State::kSizeLine;
                break;
            case State::kDone:
                break;
        }
    }
    return Progress{i, state_ == State::kDone};
}

}  // namespace decloud::agent::domain::ingress
