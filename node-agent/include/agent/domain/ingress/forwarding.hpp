#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "agent/domain/ingress/framing.hpp"

namespace decloud::agent::domain::ingress {

// What the proxy knows about the hop it is forwarding.
struct ForwardContext {
    std::string_view client_address;    // peer IP literal, no brackets or port; "" if unknown
    std::string_view proto = "http";    // scheme the client used: "http" or "https"
    std::string_view upstream_address;  // the VM's IP literal (from the routing table)
    std::uint16_t upstream_port = 0;
    bool preserve_host = true;  // false: Host becomes "{upstream_address}:{upstream_port}"
    // The client is a proxy we trust (Caddy in front): its X-Forwarded-Proto and
    // X-Forwarded-Host describe the original request and are kept instead of replaced.
    bool trust_forwarded = false;
};

// The proxy's header rules on raw header lists (as parsed by http1.hpp), writing
// "Name: value\r\n" lines (no blank line) straight into `out`, so no field container is built per
// request. Pure; no shared state.

// True when the headers ask for a WebSocket upgrade: some Connection header lists the token
// "upgrade" (case-insensitive, any position, whitespace tolerant) and there is exactly one Upgrade
// header whose value is "websocket" (case-insensitive). Anything else in Upgrade (h2c, lists)
// is not a WebSocket upgrade, so it is stripped rather than tunnelled.
bool IsWebSocketUpgrade(std::span<const RawHeader> headers);

// The header lines of the request the VM receives:
//  - hop-by-hop fields removed (Connection and every field it names, Keep-Alive,
//    Proxy-Connection, Proxy-Authenticate, Proxy-Authorization, TE, Trailer, Transfer-Encoding,
//    Upgrade); for a WebSocket upgrade "Connection: Upgrade" and "Upgrade: websocket" are set.
//    Host and Content-Length are never removed because Connection names them;
//  - the client appended to X-Forwarded-For and Forwarded (RFC 7239, IPv6 as "[addr]"),
//    X-Forwarded-Proto and X-Forwarded-Host (the Host as received) set, or kept from a trusted
//    proxy;
//  - Host kept, or rewritten to the upstream authority when !preserve_host;
//  - Expect never forwarded (the proxy answers 100-continue itself).
// `websocket` is IsWebSocketUpgrade(headers), computed once by the caller.
void AppendUpstreamRequestFields(std::string& out, std::span<const RawHeader> headers,
                                 const ForwardContext& context, bool websocket);

// The header lines of a VM's response as the client receives them: hop-by-hop fields removed;
// with `websocket_accepted` (a 101 answer to a forwarded WebSocket upgrade) Upgrade and
// Connection are kept.
void AppendDownstreamResponseFields(std::string& out, std::span<const RawHeader> headers,
                                    bool websocket_accepted);

// "addr:port", or "[addr]:port" for IPv6.
std::string FormatAuthority(std::string_view address, std::uint16_t port);

}  // namespace decloud::agent::domain::ingress
