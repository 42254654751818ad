#include "decloud/proto/siwe.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

#include "decloud/common/clock.hpp"

namespace decloud::proto {

using common::Error;
using common::Result;

namespace {

constexpr std::string_view kHeaderSuffix = " wants you to sign in with your Ethereum account:";

bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsHex(char c) { return IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
bool IsUnreserved(char c) {
    return IsAlpha(c) || IsDigit(c) || c == '-' || c == '.' || c == '_' || c == '~';
}
bool IsSubDelim(char c) {
    return std::string_view("!$&'()*+,;=").find(c) != std::string_view::npos;
}
bool IsGenDelim(char c) { return std::string_view(":/?#[]@").find(c) != std::string_view::npos; }

// Every character is allowed by `ok`, and every '%' starts a valid %XX escape.
template <class Pred>
bool AllOf(std::string_view s, Pred ok, bool allow_pct) {
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (allow_pct && s[i] == '%') {
            if (i + 2 >= s.size() || !IsHex(s[i + 1]) || !IsHex(s[i + 2])) return false;
            i += 2;
            continue;
        }
        if (!ok(s[i])) return false;
    }
    return true;
}

bool ValidScheme(std::string_view s) {
    if (s.empty() || !IsAlpha(s[0])) return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
        return IsAlpha(c) || IsDigit(c) || c == '+' || c == '-' || c == '.';
    });
}

// RFC 3986 authority: [userinfo "@"] host [":" port]; no path, no spaces.
bool ValidAuthority(std::string_view s) {
    if (s.empty()) return false;
    return AllOf(
        s,
        [](char c) {
            return IsUnreserved(c) || IsSubDelim(c) || c == ':' || c == '@' || c == '[' || c == ']';
        },
        true);
}

// RFC 3986 URI: scheme ":" hier-part [ "?" query ] [ "#" fragment ], character set only.
bool ValidUri(std::string_view s) {
    const auto colon = s.find(':');
    if (colon == std::string_view::npos || !ValidScheme(s.substr(0, colon))) return false;
    return AllOf(
        s.substr(colon + 1),
        [](char c) { return IsUnreserved(c) || IsSubDelim(c) || IsGenDelim(c); }, true);
}

bool ValidStatement(std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) {
        return IsUnreserved(c) || IsSubDelim(c) || IsGenDelim(c) || c == ' ';
    });
}

bool ValidPchars(std::string_view s) {
    return AllOf(
        s, [](char c) { return IsUnreserved(c) || IsSubDelim(c) || c == ':' || c == '@'; }, true);
}

bool ValidAddress(std::string_view s) {
    return s.size() == 42 && s.starts_with("0x") && std::all_of(s.begin() + 2, s.end(), IsHex);
}

bool ValidDateTime(std::string_view s) {
    common::TimePoint t;
    return common::ParseRfc3339(s, t);
}

std::vector<std::string_view> SplitLines(std::string_view text) {
    std::vector<std::string_view> lines;
    for (;;) {
        const auto lf = text.find('\n');
        lines.push_back(text.substr(0, lf));
        if (lf == std::string_view::npos) break;
        text.remove_prefix(lf + 1);
    }
    return lines;
}

Error Bad(std::string what) { return Error::InvalidArgument("SIWE message: " + std::move(what)); }

}  // namespace

Result<SiweMessage> ParseSiweMessage(std::string_view text) {
    if (text.size() > kMaxSiweMessageBytes) return Bad("longer than 8192 bytes");
    if (text.find('\r') != std::string_view::npos) return Bad("lines must end with LF only");
    const auto lines = SplitLines(text);
    SiweMessage m;
    std::size_t i = 0;
    auto next = [&]() -> std::optional<std::string_view> {
        if (i >= lines.size()) return std::nullopt;
        return lines[i++];
    };
    auto field = [&](std::string_view label) -> Result<std::string_view> {
        auto line = next();
        if (!line || !line->starts_with(label))
            return Bad("expected a '" + std::string(label) + "' line");
        return line->substr(label.size());
    };

    // Header: [scheme "://"] domain " wants you to sign in with your Ethereum account:"
    auto header = next();
    if (!header || !header->ends_with(kHeaderSuffix))
        return Bad("the first line must end with '" + std::string(kHeaderSuffix.substr(1)) + "'");
    auto authority = header->substr(0, header->size() - kHeaderSuffix.size());
    if (const auto sep = authority.find("://"); sep != std::string_view::npos) {
        m.scheme = authority.substr(0, sep);
        if (!ValidScheme(m.scheme)) return Bad("invalid scheme");
        authority.remove_prefix(sep + 3);
    }
    if (!ValidAuthority(authority)) return Bad("invalid domain");
    m.domain = authority;

    auto address = next();
    if (!address || !ValidAddress(*address))
        return Bad("the second line must be a 0x-prefixed 40-digit address");
    m.address = *address;
    if (auto blank = next(); !blank || !blank->empty())
        return Bad("a blank line must follow the address");
    // Either "statement LF LF URI" or "LF URI".
    auto line = next();
    if (!line) return Bad("truncated after the address");
    if (!line->empty()) {
        if (!ValidStatement(*line))
            return Bad(
                "the statement has characters outside RFC 3986's reserved and unreserved sets");
        m.statement = *line;
        if (auto blank = next(); !blank || !blank->empty())
            return Bad("a blank line must follow the statement");
    }

    auto uri = field("URI: ");
    if (!uri) return uri.error();
    if (!ValidUri(*uri)) return Bad("URI is not an RFC 3986 URI");
    m.uri = *uri;
    auto version = field("Version: ");
    if (!version) return version.error();
    if (*version != "1") return Bad("Version must be 1");
    auto chain = field("Chain ID: ");
    if (!chain) return chain.error();
    if (chain->empty() || !std::all_of(chain->begin(), chain->end(), IsDigit))
        return Bad("Chain ID must be digits");
    const auto [p, ec] = std::from_chars(chain->data(), chain->data() + chain->size(), m.chain_id);
    if (ec != std::errc{} || p != chain->data() + chain->size())
        return Bad("Chain ID is out of range");
    auto nonce = field("Nonce: ");
    if (!nonce) return nonce.error();
    if (nonce->size() < 8 ||
        !std::all_of(nonce->begin(), nonce->end(), [](char c) { return IsAlpha(c) || IsDigit(c); }))
        return Bad("Nonce must be at least 8 letters or digits");
    m.nonce = *nonce;
    auto issued = field("Issued At: ");
    if (!issued) return issued.error();
    if (!ValidDateTime(*issued)) return Bad("Issued At is not an RFC 3339 date-time");
    m.issued_at = *issued;

    // Optional fields, each at most once and in this order.
    auto peek = [&]() -> std::optional<std::string_view> {
        if (i >= lines.size()) return std::nullopt;
        return lines[i];
    };
    if (auto l = peek(); l && l->starts_with("Expiration Time: ")) {
        const auto v = next()->substr(17);
        if (!ValidDateTime(v)) return Bad("Expiration Time is not an RFC 3339 date-time");
        m.expiration_time = std::string(v);
    }
    if (auto l = peek(); l && l->starts_with("Not Before: ")) {
        const auto v = next()->substr(12);
        if (!ValidDateTime(v)) return Bad("Not Before is not an RFC 3339 date-time");
        m.not_before = std::string(v);
    }
    if (auto l = peek(); l && l->starts_with("Request ID: ")) {
        const auto v = next()->substr(12);
        if (!ValidPchars(v)) return Bad("Request ID has characters outside RFC 3986 pchar");
        m.request_id = std::string(v);
    }
    if (auto l = peek(); l && *l == "Resources:") {
        next();
        m.resources.emplace();
        while (auto r = peek()) {
            if (!r->starts_with("- ")) break;
            next();
            const auto v = r->substr(2);
            if (!ValidUri(v))
                return Bad("resource '" + std::string(v) + "' is not an RFC 3986 URI");
            m.resources->emplace_back(v);
        }
    }
    if (i != lines.size())
        return Bad("unexpected line '" + std::string(lines[i].substr(0, 40)) + "'");
    return m;
}

std::string FormatSiweMessage(const SiweMessage& m) {
    std::string out;
    if (!m.scheme.empty()) out += m.scheme + "://";
    out += m.domain;
    out += kHeaderSuffix;
    out += "\n" + m.address + "\n\n";
    if (m.statement) out += *m.statement + "\n";
    out += "\nURI: " + m.uri;
    out += "\nVersion: " + m.version;
    out += "\nChain ID: " + std::to_string(m.chain_id);
    out += "\nNonce: " + m.nonce;
    out += "\nIssued At: " + m.issued_at;
    if (m.expiration_time) out += "\nExpiration Time: " + *m.expiration_time;
    if (m.not_before) out += "\nNot Before: " + *m.not_before;
    if (m.request_id) out += "\nRequest ID: " + *m.request_id;
    if (m.resources) {
        out += "\nResources:";
        for (const auto& r : *m.resources) out += "\n- " + r;
    }
    return out;
}

}  // namespace decloud::proto
