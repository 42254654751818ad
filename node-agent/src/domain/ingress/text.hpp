#pragma once

// Character classes and small string helpers shared by the ingress rules (internal header).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "decloud/common/result.hpp"

namespace decloud::agent::domain::ingress::text {

inline bool IsDigit(char c) { return c >= '0' && c <= '9'; }

inline bool IsHexDigit(char c) {
    return IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

inline bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

inline bool IsWhitespace(char c) { return c == ' ' || c == '\t'; }

// RFC 9110 tchar.
inline bool IsTokenChar(char c) {
    if (IsDigit(c) || IsAlpha(c)) return true;
    switch (c) {
        case '!':
        case '#':
        case '$':
        case '%':
        case '&':
        case '\'':
        case '*':
        case '+':
        case '-':
        case '.':
        case '^':
        case '_':
        case '`':
        case '|':
        case '~':
            return true;
        default:
            return false;
    }
}

inline bool IsToken(std::string_view s) {
    if (s.empty()) return false;
    for (char c : s) {
        if (!IsTokenChar(c)) return false;
    }
    return true;
}

inline char ToLower(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

inline std::string Lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = ToLower(c);
    return out;
}

inline bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (ToLower(a[i]) != ToLower(b[i])) return false;
    }
    return true;
}

inline std::string_view Trim(std::string_view s) {
    while (!s.empty() && IsWhitespace(s.front())) s.remove_prefix(1);
    while (!s.empty() && IsWhitespace(s.back())) s.remove_suffix(1);
    return s;
}

// Calls f(element) for every comma-separated element, trimmed of optional whitespace (empty
// elements included, so callers can decide whether "a,,b" is acceptable).
template <class F>
void ForEachListElement(std::string_view list, F&& f) {
    while (true) {
        const auto comma = list.find(',');
        f(Trim(list.substr(0, comma)));
        if (comma == std::string_view::npos) return;
        list.remove_prefix(comma + 1);
    }
}

// Header field checks shared by requests, responses and trailers.
inline bool IsForbiddenInValue(char c) {
    const auto u = static_cast<unsigned char>(c);
    return (u < 0x20 && c != '\t') || u == 0x7F;
}

inline common::Status CheckName(std::string_view name) {
    if (name.empty()) return common::Error::InvalidArgument("empty header name");
    if (IsWhitespace(name.back())) {
        return common::Error::InvalidArgument("whitespace between header name and colon");
    }
    for (char c : name) {
        if (c == '\r' || c == '\n' || c == '\0') {
            return common::Error::InvalidArgument("control character in header name");
        }
        if (!IsTokenChar(c)) return common::Error::InvalidArgument("invalid header name character");
    }
    return common::Ok();
}

inline common::Status CheckValue(std::string_view value) {
    if (!value.empty() && IsWhitespace(value.front())) {
        return common::Error::InvalidArgument("obsolete line folding in header value");
    }
    for (char c : value) {
        if (c == '\r' || c == '\n')
            return common::Error::InvalidArgument("CR or LF in header value");
        if (c == '\0') return common::Error::InvalidArgument("NUL in header value");
        if (IsForbiddenInValue(c))
            return common::Error::InvalidArgument("control character in header value");
    }
    return common::Ok();
}

// 1*DIGIT that fits in 64 bits.
inline std::optional<std::uint64_t> ParseDecimal(std::string_view s) {
    if (s.empty() || s.size() > 19) return std::nullopt;
    std::uint64_t value = 0;
    for (char c : s) {
        if (!IsDigit(c)) return std::nullopt;
        value = value * 10 + static_cast<std::uint64_t>(c - '0');
    }
    return value;
}

}  // namespace decloud::agent::domain::ingress::text
