#include "agent/domain/ingress/framing.hpp"

#include <optional>
#include <string>
#include <vector>

#include "text.hpp"

namespace decloud::agent::domain::ingress {

using common::Error;
using common::Result;
using text::CheckName;
using text::CheckValue;
using text::ParseDecimal;

Result<RequestFraming> CheckRequestHeaders(std::span<const RawHeader> headers) {
    std::optional<std::uint64_t> content_length;
    std::vector<std::string> codings;
    bool has_transfer_encoding = false;
    int host_count = 0;

    for (const auto& [name, value] : headers) {
        if (auto ok = CheckName(name); !ok) return ok.error();
        if (auto ok = CheckValue(value); !ok) return ok.error();

        if (text::EqualsIgnoreCase(name, "Host")) {
            if (++host_count > 1) return Error::InvalidArgument("more than one Host header");
        } else if (text::EqualsIgnoreCase(name, "Content-Length")) {
            std::optional<Error> problem;
            text::ForEachListElement(value, [&](std::string_view element) {
                if (problem) return;
                const auto parsed = ParseDecimal(element);
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
            std::optional<Error> problem;
            text::ForEachListElement(value, [&](std::string_view element) {
                if (element.empty()) {
                    if (!problem) problem = Error::InvalidArgument("empty transfer coding");
                    return;
                }
                codings.push_back(text::Lower(element));
            });
            if (problem) return *problem;
        }
    }

    if (content_length && has_transfer_encoding) {
        return Error::InvalidArgument("both Content-Length and Transfer-Encoding");
    }
    RequestFraming framing;
    if (has_transfer_encoding) {
        std::size_t chunked = 0;
        for (const auto& coding : codings) chunked += coding == "chunked" ? 1 : 0;
        if (chunked == 0) return Error::InvalidArgument("unsupported transfer coding");
        if (chunked > 1) return Error::InvalidArgument("chunked applied more than once");
        if (codings.back() != "chunked") {
            return Error::InvalidArgument("chunked is not the final transfer coding");
        }
        if (codings.size() != 1) return Error::InvalidArgument("unsupported transfer coding");
        framing.kind = RequestFraming::Kind::kChunked;
    } else if (content_length) {
        framing.kind = RequestFraming::Kind::kContentLength;
        framing.content_length = *content_length;
    }
    return framing;
}

Result<std::uint64_t> ParseChunkSize(std::string_view line) {
    std::size_t i = 0;
    std::uint64_t size = 0;
    while (i < line.size() && text::IsHexDigit(line[i])) {
        if (i == 16) return Error::InvalidArgument("chunk size has more than 16 hex digits");
        const char c = text::ToLower(line[i]);
        size = (size << 4) | static_cast<std::uint64_t>(text::IsDigit(c) ? c - '0' : c - 'a' + 10);
        ++i;
    }
    if (i == 0) return Error::InvalidArgument("chunk size is not a hex number");

    // Extensions: *( BWS ";" name [ "=" ( token / quoted-string ) ] ).
    while (i < line.size()) {
        while (i < line.size() && text::IsWhitespace(line[i])) ++i;
        if (i == line.size()) return Error::InvalidArgument("trailing whitespace in chunk line");
        if (line[i] != ';') return Error::InvalidArgument("invalid character in chunk line");
        ++i;
        const std::size_t name_start = i;
        while (i < line.size() && text::IsTokenChar(line[i])) ++i;
        if (i == name_start) return Error::InvalidArgument("empty chunk extension name");
        if (i == line.size() || line[i] != '=') continue;
        ++i;
        if (i < line.size() && line[i] == '"') {
            ++i;
            bool closed = false;
            while (i < line.size()) {
                const auto u = static_cast<unsigned char>(line[i]);
                if (line[i] == '"') {
                    closed = true;
                    ++i;
                    break;
                }
                if (line[i] == '\\') {
                    ++i;
                    if (i == line.size()) break;
                    const auto escaped = static_cast<unsigned char>(line[i]);
                    if ((escaped < 0x20 && line[i] != '\t') || escaped == 0x7F) {
                        return Error::InvalidArgument("control character in chunk extension");
                    }
                } else if ((u < 0x20 && line[i] != '\t') || u == 0x7F) {
                    return Error::InvalidArgument("control character in chunk extension");
                }
                ++i;
            }
            if (!closed) return Error::InvalidArgument("unterminated quoted chunk extension");
        } else {
            const std::size_t value_start = i;
            while (i < line.size() && text::IsTokenChar(line[i])) ++i;
            if (i == value_start) return Error::InvalidArgument("empty chunk extension value");
        }
    }
    return size;
}

}  // namespace decloud::agent::domain::ingress
