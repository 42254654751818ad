#include "agent/domain/ingress/forwarding.hpp"

#include <algorithm>
#include <array>
#include <boost/container/small_vector.hpp>

#include "text.hpp"

namespace decloud::agent::domain::ingress {

namespace {

constexpr std::array<std::string_view, 9> kHopByHop = {
    "Connection",
    "Keep-Alive",
    "Proxy-Connection",
    "Proxy-Authenticate",
    "Proxy-Authorization",
    "TE",
    "Trailer",
    "Transfer-Encoding",
    "Upgrade",
};

// Connection may name these, but dropping them would change what the VM is asked for or how the
// body is framed; the proxy owns both decisions.
constexpr std::array<std::string_view, 2> kNeverNominated = {"Host", "Content-Length"};

bool IsOneOf(std::string_view name, std::span<const std::string_view> names) {
    return std::any_of(names.begin(), names.end(),
                       [&](std::string_view n) { return text::EqualsIgnoreCase(n, name); });
}

// Tokens of every Connection header (as sent; compared case-insensitively).
// Held inline: most messages name a token or two, and none is copied per request.
class ConnectionTokenList {
  public:
    void push_back(std::string_view token) { tokens_.push_back(token); }
    operator std::span<const std::string_view>() const { return {tokens_.data(), tokens_.size()}; }
    auto begin() const { return tokens_.begin(); }
    auto end() const { return tokens_.end(); }

  private:
    boost::container::small_vector<std::string_view, 8> tokens_;
};

ConnectionTokenList ConnectionTokens(std::span<const RawHeader> headers) {
    ConnectionTokenList tokens;
    for (const auto& [name, value] : headers) {
        if (!text::EqualsIgnoreCase(name, "Connection")) continue;
        text::ForEachListElement(value, [&](std::string_view token) {
            if (!token.empty()) tokens.push_back(token);
        });
    }
    return tokens;
}

// Whether a field is hop-by-hop here: listed, or named by Connection (unless protected).
bool IsHopByHop(std::string_view name, std::span<const std::string_view> connection_tokens) {
    if (IsOneOf(name, kHopByHop)) return true;
    if (IsOneOf(name, kNeverNominated)) return false;
    return IsOneOf(name, connection_tokens);
}

void AppendLine(std::string& out, std::string_view name, std::string_view value) {
    out.append(name).append(": ").append(value).append("\r\n");
}

// Appends the values of every `name` field joined with ", " (empty ones left out); true if any.
bool AppendJoinedValues(std::string& out, std::span<const RawHeader> headers,
                        std::string_view name) {
    bool any = false;
    for (const auto& [field, raw] : headers) {
        if (!text::EqualsIgnoreCase(field, name)) continue;
        const auto value = text::Trim(raw);
        if (value.empty()) continue;
        if (any) out += ", ";
        out += value;
        any = true;
    }
    return any;
}

// RFC 7239 value: a token as is, anything else as a quoted-string.
void AppendForwardedValue(std::string& out, std::string_view value) {
    if (text::IsToken(value)) {
        out += value;
        return;
    }
    out += '"';
    for (char c : value) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    out += '"';
}

void AppendForwardedElement(std::string& out, const ForwardContext& context,
                            std::string_view host) {
    out += "for=";
    if (context.client_address.empty()) {
        out += "unknown";
    } else if (context.client_address.find(':') != std::string_view::npos) {
        // An IPv6 literal in brackets, which RFC 7239 quotes; it holds no quote or backslash.
        out.append("\"[").append(context.client_address).append("]\"");
    } else {
        AppendForwardedValue(out, context.client_address);
    }
    if (!host.empty()) {
        out += ";host=";
        AppendForwardedValue(out, host);
    }
    out += ";proto=";
    AppendForwardedValue(out, context.proto);
}

}  // namespace

bool IsWebSocketUpgrade(std::span<const RawHeader> headers) {
    const auto tokens = ConnectionTokens(headers);
    if (!IsOneOf("upgrade", tokens)) return false;
    std::size_t upgrades = 0;
    bool websocket = false;
    for (const auto& [name, value] : headers) {
        if (!text::EqualsIgnoreCase(name, "Upgrade")) continue;
        ++upgrades;
        websocket = text::EqualsIgnoreCase(text::Trim(value), "websocket");
    }
    return upgrades == 1 && websocket;
}

void AppendUpstreamRequestFields(std::string& out, std::span<const RawHeader> headers,
                                 const ForwardContext& context, bool websocket) {
    const auto tokens = ConnectionTokens(headers);
    std::string_view host;
    bool wrote_host = false;
    bool has_forwarded_for = false;
    bool has_forwarded = false;
    std::string_view trusted_proto;
    std::string_view trusted_host;
    for (const auto& [name, value] : headers) {
        if (IsHopByHop(name, tokens)) continue;
        if (text::EqualsIgnoreCase(name, "Host")) {
            host = value;
            wrote_host = true;
            if (context.preserve_host) {
                AppendLine(out, name, value);
            } else {
                AppendLine(out, "Host",
                           FormatAuthority(context.upstream_address, context.upstream_port));
            }
        } else if (text::EqualsIgnoreCase(name, "X-Forwarded-For")) {
            has_forwarded_for = true;  // joined below, with the client appended
        } else if (text::EqualsIgnoreCase(name, "Forwarded")) {
            has_forwarded = true;
        } else if (text::EqualsIgnoreCase(name, "X-Forwarded-Proto")) {
            if (context.trust_forwarded && trusted_proto.empty()) trusted_proto = text::Trim(value);
        } else if (text::EqualsIgnoreCase(name, "X-Forwarded-Host")) {
            if (context.trust_forwarded && trusted_host.empty()) trusted_host = text::Trim(value);
        } else if (text::EqualsIgnoreCase(name, "Expect")) {
            continue;
        } else {
            AppendLine(out, name, value);
        }
    }
    if (!wrote_host && !context.preserve_host) {
        AppendLine(out, "Host", FormatAuthority(context.upstream_address, context.upstream_port));
    }
    if (websocket) {
        AppendLine(out, "Connection", "Upgrade");
        AppendLine(out, "Upgrade", "websocket");
    }
    // Written straight into `out`: no string is built per request.
    out += "X-Forwarded-For: ";
    if (has_forwarded_for && AppendJoinedValues(out, headers, "X-Forwarded-For")) out += ", ";
    out += context.client_address.empty() ? std::string_view("unknown") : context.client_address;
    out += "\r\n";
    AppendLine(out, "X-Forwarded-Proto", trusted_proto.empty() ? context.proto : trusted_proto);
    if (!trusted_host.empty()) {
        AppendLine(out, "X-Forwarded-Host", trusted_host);
    } else if (!host.empty()) {
        AppendLine(out, "X-Forwarded-Host", host);
    }
    out += "Forwarded: ";
    if (has_forwarded && AppendJoinedValues(out, headers, "Forwarded")) out += ", ";
    AppendForwardedElement(out, context, host);
    out += "\r\n";
}

void AppendDownstreamResponseFields(std::string& out, std::span<const RawHeader> headers,
                                    bool websocket_accepted) {
    const auto tokens = ConnectionTokens(headers);
    for (const auto& [name, value] : headers) {
        const bool keep = websocket_accepted && (text::EqualsIgnoreCase(name, "Upgrade") ||
                                                 text::EqualsIgnoreCase(name, "Connection"));
        if (!keep) {
            if (IsOneOf(name, kHopByHop)) continue;
            if (!IsOneOf(name, kNeverNominated) &&
                std::any_of(tokens.begin(), tokens.end(), [&](std::string_view token) {
                    return text::EqualsIgnoreCase(token, name) &&
                           !(websocket_accepted && text::EqualsIgnoreCase(token, "upgrade"));
                })) {
                continue;
            }
        }
        AppendLine(out, name, value);
    }
}

std::string FormatAuthority(std::string_view address, std::uint16_t port) {
    std::string out;
    if (address.find(':') != std::string_view::npos) {
        out = "[" + std::string(address) + "]";
    } else {
        out = std::string(address);
    }
    return out + ":" + std::to_string(port);
}

}  // namespace decloud::agent::domain::ingress
