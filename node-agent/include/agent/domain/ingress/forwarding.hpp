#pragma once

#include <boost/beast/http/fields.hpp>
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

// True when the fields ask for a WebSocket upgrade: some Connection header lists the token
// "upgrade" (case-insensitive, any position, whitespace tolerant) and there is exactly one Upgrade
// header whose value is "websocket" (case-insensitive). Anything else in Upgrade (h2c, lists)
// is not a WebSocket upgrade, so it is stripped rather than tunnelled.
bool IsWebSocketUpgrade(const boost::beast::http::fields& fields);

// Rewrites a client request's fields in place for forwarding to the VM:
//  - removes hop-by-hop fields (Connection and every field it names, Keep-Alive, Proxy-Connection,
//    Proxy-Authenticate, Proxy-Authorization, TE, Trailer, Transfer-Encoding, Upgrade); for a
//    WebSocket upgrade keeps "Upgrade: websocket" and sets "Connection: Upgrade". Host and
//    Content-Length are never removed because Connection names them;
//  - appends the client to X-Forwarded-For and Forwarded (RFC 7239, IPv6 as "[addr]"), sets
//    X-Forwarded-Proto and X-Forwarded-Host (the Host as received);
//  - keeps Host, or rewrites it to the upstream authority when !preserve_host.
// Evaluates IsWebSocketUpgrade on the fields itself. Pure; no shared state.
void PrepareUpstreamRequest(boost::beast::http::fields& fields, const ForwardContext& context);

// Removes hop-by-hop fields from a VM's response. With `websocket_accepted` (a 101 answer to a
// forwarded WebSocket upgrade) Upgrade and Connection are kept.
void PrepareDownstreamResponse(boost::beast::http::fields& fields, bool websocket_accepted);

// The same rules on raw header lists, writing "Name: value\r\n" lines (no blank line) straight
// into `out`: what the proxy runs per request, without building a field container.
bool IsWebSocketUpgrade(std::span<const RawHeader> headers);
// As PrepareUpstreamRequest, and Expect is never forwarded (the proxy answers 100-continue
// itself). `websocket` is IsWebSocketUpgrade(headers), computed once by the caller.
void AppendUpstreamRequestFields(std::string& out, std::span<const RawHeader> headers,
                                 const ForwardContext& context, bool websocket);
// As PrepareDownstreamResponse.
void AppendDownstreamResponseFields(std::string& out, std::span<const RawHeader> headers,
                                    bool websocket_accepted);

// "addr:port", or "[addr]:port" for IPv6.
std::string FormatAuthority(std::string_view address, std::uint16_t port);

}  // namespace decloud::agent::domain::ingress
