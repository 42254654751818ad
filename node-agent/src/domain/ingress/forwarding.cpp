#include "agent/domain/ingress/forwarding.hpp"

#include <algorithm>
#include <array>
#include <vector>

#include "text.hpp"

namespace decloud::agent::domain::ingress {

namespace http = boost::beast::http;

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

// Lowercased tokens of every Connection header.
std::vector<std::string> ConnectionTokens(const http::fields& fields) {
    std::vector<std::string> tokens;
    const auto range = fields.equal_range(http::field::connection);
    for (auto it = range.first; it != range.second; ++it) {
        text::ForEachListElement(std::string_view(it->value()), [&](std::string_view token) {
            if (!token.empty()) tokens.push_back(text::Lower(token));
        });
    }
    return tokens;
}

void RemoveHopByHop(http::fields& fields, bool keep_upgrade) {
    for (const std::string& token : ConnectionTokens(fields)) {
        if (keep_upgrade && token == "upgrade") continue;
        const bool protected_field =
            std::any_of(kNeverNominated.begin(), kNeverNominated.end(),
                        [&](std::string_view name) { return text::EqualsIgnoreCase(name, token); });
        if (!protected_field && text::IsToken(token)) fields.erase(token);
    }
    for (std::string_view name : kHopByHop) {
        if (keep_upgrade && (name == "Upgrade" || name == "Connection")) continue;
        fields.erase(name);
    }
}

// All values of a (possibly repeated) list field joined with ", ".
std::string JoinedValues(const http::fields& fields, std::string_view name) {
    std::string joined;
    const auto range = fields.equal_range(name);
    for (auto it = range.first; it != range.second; ++it) {
        const std::string_view value = text::Trim(std::string_view(it->value()));
        if (value.empty()) continue;
        if (!joined.empty()) joined += ", ";
        joined += value;
    }
    return joined;
}

void AppendToList(http::fields& fields, std::string_view name, std::string_view element) {
    std::string value = JoinedValues(fields, name);
    if (!value.empty()) value += ", ";
    value += element;
    fields.set(name, value);
}

// RFC 7239 value: a token as is, anything else as a quoted-string.
std::string ForwardedValue(std::string_view value) {
    if (text::IsToken(value)) return std::string(value);
    std::string quoted = "\"";
    for (char c : value) {
        if (c == '"' || c == '\\') quoted += '\\';
        quoted += c;
    }
    quoted += '"';
    return quoted;
}

std::string ForwardedElement(const ForwardContext& context, std::string_view host) {
    std::string node;
    if (context.client_address.empty()) {
        node = "unknown";
    } else if (context.client_address.find(':') != std::string_view::npos) {
        node = "[" + std::string(context.client_address) + "]";
    } else {
        node = std::string(context.client_address);
    }
    std::string element = "for=" + ForwardedValue(node);
    if (!host.empty()) element += ";host=" + ForwardedValue(host);
    element += ";proto=" + ForwardedValue(context.proto);
    return element;
}

}  // namespace

bool IsWebSocketUpgrade(const http::fields& fields) {
    const auto tokens = ConnectionTokens(fields);
    if (std::find(tokens.begin(), tokens.end(), "upgrade") == tokens.end()) return false;
    if (fields.count(http::field::upgrade) != 1) return false;
    return text::EqualsIgnoreCase(text::Trim(std::string_view(fields[http::field::upgrade])),
                                  "websocket");
}

void PrepareUpstreamRequest(http::fields& fields, const ForwardContext& context) {
    const bool websocket = IsWebSocketUpgrade(fields);
    RemoveHopByHop(fields, websocket);
    if (websocket) {
        fields.set(http::field::connection, "Upgrade");
        fields.set(http::field::upgrade, "websocket");
    }

    const std::string host(fields[http::field::host]);
    const std::string_view client =
        context.client_address.empty() ? std::string_view("unknown") : context.client_address;
    AppendToList(fields, "X-Forwarded-For", client);
    fields.set("X-Forwarded-Proto", context.proto);
    if (host.empty()) {
        fields.erase("X-Forwarded-Host");
    } else {
        fields.set("X-Forwarded-Host", host);
    }
    AppendToList(fields, "Forwarded", ForwardedElement(context, host));

    if (!context.preserve_host) {
        fields.set(http::field::host,
                   FormatAuthority(context.upstream_address, context.upstream_port));
    }
}

void PrepareDownstreamResponse(http::fields& fields, bool websocket_accepted) {
    RemoveHopByHop(fields, websocket_accepted);
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
