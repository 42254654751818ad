#include "agent/domain/console_text.hpp"

#include <cstdint>

namespace decloud::agent::domain {

namespace {

constexpr char kEscape = '\x1b';
constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// Length of the well-formed UTF-8 sequence at s[i], 0 if it is not one (RFC 3629: no overlong
// forms, no surrogates, nothing above U+10FFFF).
std::size_t Utf8SequenceLength(std::string_view s, std::size_t i) {
    const auto byte = [&](std::size_t k) { return static_cast<std::uint8_t>(s[i + k]); };
    const auto continuation = [&](std::size_t k, std::uint8_t lo = 0x80, std::uint8_t hi = 0xBF) {
        return i + k < s.size() && byte(k) >= lo && byte(k) <= hi;
    };
    const auto b0 = byte(0);
    if (b0 < 0x80) return 1;
    if (b0 >= 0xC2 && b0 <= 0xDF) return continuation(1) ? 2 : 0;
    if (b0 >= 0xE0 && b0 <= 0xEF) {
        const std::uint8_t lo = b0 == 0xE0 ? 0xA0 : 0x80;
        const std::uint8_t hi = b0 == 0xED ? 0x9F : 0xBF;
        return continuation(1, lo, hi) && continuation(2) ? 3 : 0;
    }
    if (b0 >= 0xF0 && b0 <= 0xF4) {
        const std::uint8_t lo = b0 == 0xF0 ? 0x90 : 0x80;
        const std::uint8_t hi = b0 == 0xF4 ? 0x8F : 0xBF;
        return continuation(1, lo, hi) && continuation(2) && continuation(3) ? 4 : 0;
    }
    return 0;
}

// Index just past the escape sequence starting at s[i] (s[i] == ESC): CSI "ESC [ params final",
// OSC "ESC ] ... BEL or ESC \", otherwise ESC and the one character after it.
std::size_t SkipEscape(std::string_view s, std::size_t i) {
    if (i + 1 >= s.size()) return s.size();
    const char kind = s[i + 1];
    if (kind == '[') {
        std::size_t k = i + 2;
        while (k < s.size() && !(s[k] >= '@' && s[k] <= '~')) ++k;
        return k < s.size() ? k + 1 : s.size();
    }
    if (kind == ']') {
        for (std::size_t k = i + 2; k < s.size(); ++k) {
            if (s[k] == '\a') return k + 1;
            if (s[k] == kEscape && k + 1 < s.size() && s[k + 1] == '\\') return k + 2;
        }
        return s.size();
    }
    return i + 2;
}

}  // namespace

std::string ReadableConsoleText(std::string_view raw) {
    // Continuation bytes at the very start belong to a character cut off by the tail.
    std::size_t i = 0;
    while (i < raw.size() && i < 3 && (static_cast<std::uint8_t>(raw[i]) & 0xC0) == 0x80) ++i;
    std::string out;
    out.reserve(raw.size() - i);
    while (i < raw.size()) {
        const char c = raw[i];
        if (c == kEscape) {
            i = SkipEscape(raw, i);
            continue;
        }
        if (c == '\r') {
            // "\r\n" is a line end; a lone "\r" (a progress line redrawn) becomes one too.
            out += '\n';
            i += i + 1 < raw.size() && raw[i + 1] == '\n' ? 2 : 1;
            continue;
        }
        const auto u = static_cast<std::uint8_t>(c);
        if (u < 0x80) {
            if (u >= 0x20 && u != 0x7F)
                out += c;
            else if (c == '\n' || c == '\t')
                out += c;
            ++i;
            continue;
        }
        const auto length = Utf8SequenceLength(raw, i);
        if (length == 0) {
            out += kReplacement;
            ++i;
        } else {
            out.append(raw.substr(i, length));
            i += length;
        }
    }
    return out;
}

std::string_view TailOfLog(std::string_view text, std::size_t max_bytes) {
    if (text.size() <= max_bytes) return text;
    auto tail = text.substr(text.size() - max_bytes);
    if (text[text.size() - max_bytes - 1] == '\n') return tail;
    if (const auto newline = tail.find('\n'); newline != std::string_view::npos)
        return tail.substr(newline + 1);
    // One line longer than the tail: start at a character boundary at least.
    while (!tail.empty() && (static_cast<std::uint8_t>(tail.front()) & 0xC0) == 0x80)
        tail.remove_prefix(1);
    return tail;
}

}  // namespace decloud::agent::domain
