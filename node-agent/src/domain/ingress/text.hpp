#pragma once

// Character classes and small string helpers shared by the ingress rules (internal header).

#include <string>
#include <string_view>

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

}  // namespace decloud::agent::domain::ingress::text
