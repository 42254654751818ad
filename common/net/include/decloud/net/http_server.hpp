#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/verb.hpp>
#include <nlohmann/json.hpp>

namespace prometheus {
class Registry;
}

namespace decloud::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

class WebSocketConnection;

// What a handler gets besides the request. Lives until the handler's coroutine completes.
struct RequestContext {
    const Request& request;
    std::vector<std::pair<std::string, std::string>> params;  // path parameters, percent-decoded
    std::string request_id;  // the client's X-Request-Id if sane, else generated; echoed back
    asio::ip::address remote_address;
    std::string route;  // the matched pattern, e.g. "/api/nodes/{id}/heartbeat"
    std::uint16_t remote_port = 0;

    std::string_view Param(std::string_view name) const;
};

using Handler = std::function<asio::awaitable<Response>(RequestContext&)>;
using WebSocketHandler =
    std::function<asio::awaitable<void>(RequestContext&, std::shared_ptr<WebSocketConnection>)>;
// Runs before a WebSocket upgrade is accepted; a response returned here is sent instead.
using UpgradeCheck = std::function<asio::awaitable<std::optional<Response>>(RequestContext&)>;

// Route table: built before the server starts, then read-only (shared by all sessions).
// Patterns are absolute paths whose "{name}" segments capture one path segment each.
class Router {
  public:
    void Add(http::verb method, std::string_view pattern, Handler handler);
    void AddWebSocket(std::string_view pattern, WebSocketHandler handler, UpgradeCheck check = {});

    struct Match {
        const Handler* handler = nullptr;
        const WebSocketHandler* websocket = nullptr;
        const UpgradeCheck* upgrade_check = nullptr;
        std::string route;
        std::vector<std::pair<std::string, std::string>> params;
        std::string allow;  // methods the path supports, when it matched but the method did not
    };
    // `path` excludes the query string.
    Match Find(http::verb method, std::string_view path, bool websocket_upgrade) const;

    struct RouteInfo {
        http::verb method;  // http::verb::get for WebSocket routes
        std::string pattern;
        bool websocket = false;
    };
    // Every route in the order it was added (for checking the API description against it).
    std::vector<RouteInfo> Routes() const;

  private:
    struct Segment {
        std::string text;
        bool capture = false;
    };
    struct Route {
        http::verb method;
        std::string pattern;
        std::vector<Segment> segments;
        Handler handler;
        WebSocketHandler websocket;
        UpgradeCheck upgrade_check;
    };
    static std::vector<Segment> Parse(std::string_view pattern);
    static bool MatchSegments(const Route& route, const std::vector<std::string_view>& parts,
                              std::vector<std::pair<std::string, std::string>>& params);
    std::vector<Route> routes_;
    std::vector<Route> websocket_routes_;
};

// JSON response with the request's HTTP version and keep-alive; Content-Length set.
Response MakeJson(const Request& req, http::status status, const nlohmann::json& body);
// RFC 9457 problem details (application/problem+json):
// {"type":"about:blank","title","status","detail","requestId"}.
Response MakeProblem(const Request& req, http::status status, std::string_view title,
                     std::string_view detail, std::string_view request_id);

struct ServerOptions {
    std::string address = "127.0.0.1";
    std::uint16_t port = 0;  // 0: any free port (Start returns it)
    std::size_t body_limit = 1024 * 1024;
    std::size_t header_limit = 16 * 1024;
    // Once a request's first bytes arrive, all of it must arrive within read_timeout.
    std::chrono::milliseconds read_timeout{30'000};
    // A keep-alive connection waiting for its next request is closed after idle_timeout.
    std::chrono::milliseconds idle_timeout{75'000};
    std::chrono::milliseconds shutdown_grace{10'000};
    std::size_t threads_hint = 1;
};

// HTTP/1.1 server with WebSocket upgrade. Each connection is one coroutine on its own strand,
// so the io_context may be run by several threads. Thread-safe: Shutdown may be called from any
// thread.
class HttpServer {
  public:
    HttpServer(asio::io_context& ioc, ServerOptions options, std::shared_ptr<const Router> router,
               std::shared_ptr<prometheus::Registry> registry = nullptr);
    ~HttpServer();
    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;

    // Binds, listens and starts accepting; returns the bound port. Throws on bind failure.
    std::uint16_t Start();
    // Stops accepting; requests in flight complete (answered with Connection: close), idle
    // connections are closed, WebSockets get a "going away" close; after shutdown_grace the rest
    // are cut. `done` runs on the io_context once every connection has ended.
    void Shutdown(std::function<void()> done);

    class Impl;

  private:
    std::shared_ptr<Impl> impl_;
};

}  // namespace decloud::net
