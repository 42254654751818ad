#pragma once

#include <boost/asio/io_context.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/domain/ingress/routing.hpp"
#include "decloud/common/result.hpp"

namespace decloud::agent::proxy {

struct TlsFiles {
    std::string certificate_chain_file;  // PEM
    std::string private_key_file;        // PEM
};

struct IngressSettings {
    std::string listen_address = "0.0.0.0";
    std::uint16_t listen_port = 8080;  // 0: any free port (see IngressProxy::port)
    domain::ingress::RoutingConfig routing;
    bool preserve_host = true;  // false: Host becomes the VM's "address:port"
    // Clients (IP literals) whose X-Forwarded-Proto/-Host are kept: a TLS proxy in front.
    std::vector<std::string> trusted_proxies;
    std::chrono::milliseconds connect_timeout{5'000};
    // No byte moved in either direction for this long ends an HTTP exchange (504 if no response
    // began) or an idle keep-alive connection.
    std::chrono::milliseconds idle_timeout{60'000};
    // A request head must be whole this long after its first byte arrived, however steadily the
    // bytes trickle (slow-header attacks); 408 and the connection closed otherwise.
    std::chrono::milliseconds header_timeout{30'000};
    // A whole HTTP exchange, request line to last response byte (WebSockets excepted).
    std::chrono::milliseconds total_timeout{100'000};
    std::chrono::milliseconds websocket_idle_timeout{600'000};
    std::size_t max_header_bytes = 64 * 1024;
    // Client connections open at once, in all and from one address (trusted proxies excepted):
    // past them a connection gets 503 or 429 and is closed.
    std::size_t max_connections = 20'000;
    std::size_t max_connections_per_client = 512;
    std::size_t max_idle_upstream_connections = 64;  // per VM address and port
    std::optional<TlsFiles> tls;
    // One log line per request (client, request line, Host, VM and port, status, bytes sent,
    // duration), at info level on the process's logger.
    bool access_log = false;
};

// The node's ingress: HTTP and WebSocket from the Internet to the VMs this node runs, routed by
// path or Host (agent/domain/ingress/routing.hpp), never to anything else. Runs on the io_context
// it is given; every public member may be called from any thread.
class IngressProxy {
  public:
    IngressProxy(boost::asio::io_context& io, IngressSettings settings);
    ~IngressProxy();
    IngressProxy(const IngressProxy&) = delete;
    IngressProxy& operator=(const IngressProxy&) = delete;

    // Binds and starts accepting. Fails with a clear message on a bad address, a port in use, or
    // unreadable TLS files.
    common::Result<void> Start();
    // The bound port (useful with listen_port 0).
    std::uint16_t port() const;

    // Replaces the routing table; requests already routed keep their upstream.
    void UpdateRoutes(domain::ingress::RoutingTable table);
    // Re-reads the TLS certificate and key; connections accepted afterwards use them. On failure
    // the previous pair stays in use.
    common::Result<void> ReloadTls();
    // Stops accepting and closes every connection.
    void Stop();

    struct Stats {
        std::uint64_t requests = 0;           // HTTP exchanges forwarded or refused
        std::uint64_t websockets_active = 0;  // bridged WebSocket pairs now
        std::uint64_t upstream_connects = 0;  // new TCP connections to VMs (pool misses)
        // Response heads sent to clients by class, [0] 1xx (101 for WebSockets) to [4] 5xx: the
        // VMs' answers and the proxy's own refusals and problems.
        std::array<std::uint64_t, 5> responses_by_class{};
        std::uint64_t gateway_errors = 0;    // 502/504 the proxy answered: VM refused, reset, slow
        std::uint64_t connections_open = 0;  // client connections now
        std::uint64_t connections_refused = 0;  // over max_connections(_per_client)
    };
    Stats stats() const;

    struct Impl;  // opaque; shared with the connections, which may outlive a Stop

  private:
    std::shared_ptr<Impl> impl_;
};

// Runs `io` until it is stopped, like io.run(). With `busy_poll` above zero the thread keeps
// polling for that long after the last event before it sleeps: a request that arrives meanwhile
// is served without the few dozen microseconds a sleeping thread takes to wake (on a virtual
// machine, often more than all the proxy's own work), at the price of CPU while traffic flows.
// Between polls the thread yields, so it never holds a core another runnable thread wants.
void RunEventLoop(boost::asio::io_context& io, std::chrono::microseconds busy_poll);

// Raises this process's open-file soft limit to its hard limit: every bridged WebSocket holds two
// descriptors, and the usual soft limit of 1024 is too low for a proxy.
void RaiseOpenFileLimit();

}  // namespace decloud::agent::proxy
