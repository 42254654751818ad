#include "decloud/net/http_server.hpp"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket.hpp>

#include <mutex>
#include <unordered_map>

#include "decloud/common/ids.hpp"
#include "websocket_impl.hpp"

namespace decloud::net {

using tcp = asio::ip::tcp;
namespace websocket = beast::websocket;

namespace {

bool SaneRequestId(std::string_view id) {
    if (id.empty() || id.size() > 64) return false;
    return std::all_of(id.begin(), id.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '.' || c == '_' || c == '-';
    });
}

bool IsDisconnect(const boost::system::error_code& ec) {
    return ec == http::error::end_of_stream || ec == http::error::partial_message ||
           ec == asio::error::eof || ec == asio::error::connection_reset ||
           ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor ||
           ec == asio::error::broken_pipe || ec == asio::error::not_connected;
}

// Request counters and latency per (method, route, status), created on first use and cached so
// the hot path does one hash lookup instead of building a label map.
class HttpMetrics {
  public:
    explicit HttpMetrics(prometheus::Registry& registry)
        : requests_(prometheus::BuildCounter()
                        .Name("decloud_http_requests_total")
                        .Help("HTTP requests served, by method, route pattern and status")
                        .Register(registry)),
          durations_(prometheus::BuildHistogram()
                         .Name("decloud_http_request_duration_seconds")
                         .Help("Time from a request's arrival to its response being written")
                         .Register(registry)),
          connections_(prometheus::BuildGauge()
                           .Name("decloud_http_connections")
                           .Help("Open HTTP and WebSocket connections")
                           .Register(registry)
                           .Add({})) {}

    void Observe(std::string_view method, const std::string& route, unsigned status,
                 double seconds) {
        std::string key;
        key.reserve(method.size() + route.size() + 6);
        key.append(method).append(" ").append(route);
        const auto route_key_size = key.size();
        key.append(" ").append(std::to_string(status));
        prometheus::Counter* counter;
        prometheus::Histogram* histogram;
        {
            std::lock_guard lock(mutex_);
            auto c = counters_.find(key);
            if (c == counters_.end()) {
                c = counters_
                        .emplace(key, &requests_.Add({{"method", std::string(method)},
                                                      {"route", route},
                                                      {"status", std::to_string(status)}}))
                        .first;
            }
            counter = c->second;
            const auto route_key = key.substr(0, route_key_size);
            auto h = histograms_.find(route_key);
            if (h == histograms_.end()) {
                static const prometheus::Histogram::BucketBoundaries kBuckets{
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
                h = histograms_
                        .emplace(route_key,
                                 &durations_.Add(
                                     {{"method", std::string(method)}, {"route", route}}, kBuckets))
                        .first;
            }
            histogram = h->second;
        }
        counter->Increment();
        histogram->Observe(seconds);
    }

    prometheus::Gauge& connections() { return connections_; }

  private:
    prometheus::Family<prometheus::Counter>& requests_;
    prometheus::Family<prometheus::Histogram>& durations_;
    prometheus::Gauge& connections_;
    std::mutex mutex_;
    std::unordered_map<std::string, prometheus::Counter*> counters_;
    std::unordered_map<std::string, prometheus::Histogram*> histograms_;
};

class Session;

}  // namespace

class HttpServer::Impl : public std::enable_shared_from_this<HttpServer::Impl> {
  public:
    Impl(asio::io_context& ioc, ServerOptions options, std::shared_ptr<const Router> router,
         std::shared_ptr<prometheus::Registry> registry)
        : ioc_(ioc),
          options_(std::move(options)),
          router_(std::move(router)),
          registry_(std::move(registry)),
          strand_(asio::make_strand(ioc)),
          acceptor_(strand_),
          grace_timer_(strand_) {
        if (registry_) metrics_ = std::make_unique<HttpMetrics>(*registry_);
    }

    std::uint16_t Start();
    void Shutdown(std::function<void()> done);
    void Unregister(Session* session);
    bool stopping() const { return stopping_.load(); }

    const ServerOptions& options() const { return options_; }
    const Router& router() const { return *router_; }
    HttpMetrics* metrics() { return metrics_.get(); }

  private:
    asio::awaitable<void> AcceptLoop();
    void MaybeDoneLocked();

    asio::io_context& ioc_;
    ServerOptions options_;
    std::shared_ptr<const Router> router_;
    std::shared_ptr<prometheus::Registry> registry_;
    std::unique_ptr<HttpMetrics> metrics_;
    asio::strand<asio::io_context::executor_type> strand_;  // acceptor and grace timer live here
    tcp::acceptor acceptor_;
    asio::steady_timer grace_timer_;

    std::mutex mutex_;
    std::unordered_map<Session*, std::weak_ptr<Session>> sessions_;
    std::vector<std::function<void()>> done_;  // every Shutdown caller is told
    bool done_called_ = false;
    std::atomic<bool> stopping_{false};
};

namespace {

class Session : public std::enable_shared_from_this<Session> {
  public:
    Session(std::shared_ptr<HttpServer::Impl> server, tcp::socket socket)
        : server_(std::move(server)), stream_(std::move(socket)) {
        boost::system::error_code ec;
        const auto ep = stream_.socket().remote_endpoint(ec);
        if (!ec) {
            remote_ = ep.address();
            remote_port_ = ep.port();
        }
    }

    asio::any_io_executor executor() { return stream_.get_executor(); }

    asio::awaitable<void> Run() {
        auto self = shared_from_this();
        if (auto* m = server_->metrics()) m->connections().Increment();
        try {
            co_await Serve();
        } catch (const std::exception& e) {
            spdlog::error("http session from {}: {}", remote_.to_string(), e.what());
        }
        boost::system::error_code ec;
        if (!ws_) {
            stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
            stream_.socket().close(ec);
        }
        if (auto* m = server_->metrics()) m->connections().Decrement();
        server_->Unregister(this);
    }

    // On the session's strand: idle connections close now, busy ones after their response.
    void BeginShutdown() {
        asio::post(executor(), [self = shared_from_this()] {
            boost::system::error_code ec;
            if (self->ws_) {
                self->ws_->CloseWith(websocket::close_code::going_away, "server shutting down");
            } else if (self->idle_) {
                self->stream_.socket().close(ec);
            }
        });
    }

    void ForceClose() {
        asio::post(executor(), [self = shared_from_this()] {
            boost::system::error_code ec;
            if (self->ws_)
                beast::get_lowest_layer(self->ws_->stream()).socket().close(ec);
            else
                self->stream_.socket().close(ec);
        });
    }

  private:
    asio::awaitable<void> Serve() {
        const auto& options = server_->options();
        beast::flat_buffer buffer;
        for (;;) {
            idle_ = true;
            if (server_->stopping()) co_return;
            if (buffer.size() == 0) {
                // Wait for the next request's first bytes; the idle timeout applies here only.
                stream_.expires_after(options.idle_timeout);
                auto [ec, n] = co_await stream_.async_read_some(
                    buffer.prepare(8192), asio::as_tuple(asio::use_awaitable));
                if (ec) co_return;
                buffer.commit(n);
            }
            idle_ = false;

            http::request_parser<http::string_body> parser;
            parser.body_limit(options.body_limit);
            parser.header_limit(static_cast<std::uint32_t>(options.header_limit));
            stream_.expires_after(options.read_timeout);
            auto [ec, n] = co_await http::async_read(stream_, buffer, parser,
                                                     asio::as_tuple(asio::use_awaitable));
            const auto started = std::chrono::steady_clock::now();
            if (ec) {
                co_await RefuseUnreadable(ec, parser);
                co_return;
            }
            Request& req = parser.get();
            std::string request_id(req[kRequestIdHeader]);
            if (!SaneRequestId(request_id)) request_id = common::RandomHex(8);

            if (req.find(http::field::transfer_encoding) != req.end() && !parser.chunked()) {
                co_await WriteAndClose(
                    MakeProblem(req, http::status::bad_request, "Bad request",
                                "Transfer-Encoding other than chunked is not accepted", request_id),
                    request_id);
                co_return;
            }

            const std::string_view target = req.target();
            const auto path = target.substr(0, target.find('?'));
            if (websocket::is_upgrade(req)) {
                auto match = server_->router().Find(http::verb::get, path, true);
                if (match.websocket) {
                    co_await Upgrade(req, std::move(match), std::move(request_id));
                    co_return;
                }
            }

            std::string route;
            Response resp = co_await Dispatch(req, path, request_id, route);
            resp.keep_alive(req.keep_alive() && !server_->stopping());
            resp.set(kRequestIdHeader, request_id);
            resp.set(http::field::server, "decloud");
            resp.prepare_payload();
            const auto status = resp.result_int();
            const bool keep_alive = resp.keep_alive();
            stream_.expires_after(options.read_timeout);
            auto [wec, wn] =
                co_await http::async_write(stream_, resp, asio::as_tuple(asio::use_awaitable));
            const double seconds =
                std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
            if (auto* m = server_->metrics())
                m->Observe(req.method_string(), route, status, seconds);
            if (status >= 500)
                spdlog::warn("request {} {} {} -> {} ({:.1f} ms)", request_id, req.method_string(),
                             target, status, seconds * 1000);
            else
                spdlog::debug("request {} {} {} -> {} ({:.1f} ms)", request_id, req.method_string(),
                              target, status, seconds * 1000);
            if (wec || !keep_alive) co_return;
        }
    }

    asio::awaitable<Response> Dispatch(Request& req, std::string_view path,
                                       const std::string& request_id, std::string& route) {
        auto match = server_->router().Find(req.method(), path, false);
        route = match.route.empty() ? "unmatched" : match.route;
        if (!match.handler) {
            if (!match.allow.empty()) {
                auto resp = MakeProblem(
                    req, http::status::method_not_allowed, "Method not allowed",
                    std::string(req.method_string()) + " is not supported here; use " + match.allow,
                    request_id);
                resp.set(http::field::allow, match.allow);
                co_return resp;
            }
            co_return MakeProblem(req, http::status::not_found, "Not found",
                                  "no resource at " + std::string(path), request_id);
        }
        RequestContext ctx{req, std::move(match.params), request_id, remote_, route, remote_port_};
        std::string failure;
        try {
            co_return co_await (*match.handler)(ctx);
        } catch (const std::exception& e) {
            failure = e.what();
        }
        spdlog::error("request {} {} {}: handler failed: {}", request_id, req.method_string(),
                      route, failure);
        co_return MakeProblem(
            req, http::status::internal_server_error, "Internal error",
            "the server failed to handle this request; quote the request id when reporting it",
            request_id);
    }

    // The request could not be read whole: say why where that helps, then close.
    asio::awaitable<void> RefuseUnreadable(const boost::system::error_code& ec,
                                           http::request_parser<http::string_body>& parser) {
        if (IsDisconnect(ec)) co_return;
        Request placeholder{http::verb::get, "/", 11};
        const Request& req = parser.is_header_done() ? parser.get() : placeholder;
        const auto request_id = common::RandomHex(8);
        const auto& options = server_->options();
        if (ec == http::error::body_limit) {
            co_await WriteAndClose(
                MakeProblem(
                    req, http::status::payload_too_large, "Payload too large",
                    "the request body exceeds " + std::to_string(options.body_limit) + " bytes",
                    request_id),
                request_id);
        } else if (ec == http::error::header_limit) {
            co_await WriteAndClose(
                MakeProblem(
                    req, http::status::request_header_fields_too_large, "Headers too large",
                    "the request headers exceed " + std::to_string(options.header_limit) + " bytes",
                    request_id),
                request_id);
        } else if (ec == beast::error::timeout) {
            // tcp_stream has already closed the socket; a stalled client just loses it.
            spdlog::debug("connection from {} closed: request not received within the read timeout",
                          remote_.to_string());
        } else {
            co_await WriteAndClose(
                MakeProblem(req, http::status::bad_request, "Bad request",
                            "malformed HTTP request: " + ec.message(), request_id),
                request_id);
        }
    }

    asio::awaitable<void> WriteAndClose(Response resp, const std::string& request_id) {
        resp.keep_alive(false);
        resp.set(kRequestIdHeader, request_id);
        stream_.expires_after(std::chrono::seconds{5});
        co_await http::async_write(stream_, resp, asio::as_tuple(asio::use_awaitable));
    }

    asio::awaitable<void> Upgrade(Request& req, Router::Match match, std::string request_id) {
        RequestContext ctx{req,         std::move(match.params), request_id, remote_, match.route,
                           remote_port_};
        if (match.upgrade_check) {
            std::optional<Response> refusal;
            std::string failure;
            try {
                refusal = co_await (*match.upgrade_check)(ctx);
            } catch (const std::exception& e) {
                failure = e.what();
            }
            if (!failure.empty()) {
                spdlog::error("request {} upgrade check failed: {}", request_id, failure);
                refusal = MakeProblem(req, http::status::internal_server_error, "Internal error",
                                      "the upgrade could not be checked", request_id);
            }
            if (refusal) {
                co_await WriteAndClose(std::move(*refusal), request_id);
                co_return;
            }
        }
        stream_.expires_never();
        websocket::stream<beast::tcp_stream> ws(std::move(stream_));
        ws.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
        ws.read_message_max(server_->options().body_limit);
        ws.set_option(
            websocket::stream_base::decorator([request_id](websocket::response_type& res) {
                res.set(kRequestIdHeader, request_id);
                res.set(http::field::server, "decloud");
            }));
        auto [ec] = co_await ws.async_accept(req, asio::as_tuple(asio::use_awaitable));
        if (ec) co_return;
        ws_ = std::make_shared<detail::BeastWebSocket>(std::move(ws));
        if (server_->stopping())
            ws_->CloseWith(websocket::close_code::going_away, "server shutting down");
        std::string failure;
        try {
            co_await (*match.websocket)(ctx, ws_);
        } catch (const std::exception& e) {
            failure = e.what();
        }
        if (!failure.empty())
            spdlog::error("request {} websocket handler failed: {}", request_id, failure);
        ws_->Close();
    }

    static constexpr std::string_view kRequestIdHeader = "X-Request-Id";

    std::shared_ptr<HttpServer::Impl> server_;
    beast::tcp_stream stream_;
    asio::ip::address remote_;
    std::uint16_t remote_port_ = 0;
    bool idle_ = true;
    std::shared_ptr<detail::BeastWebSocket> ws_;
};

}  // namespace

std::uint16_t HttpServer::Impl::Start() {
    const tcp::endpoint endpoint{asio::ip::make_address(options_.address), options_.port};
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    acceptor_.bind(endpoint);
    acceptor_.listen(asio::socket_base::max_listen_connections);
    const auto port = acceptor_.local_endpoint().port();
    asio::co_spawn(
        strand_, [self = shared_from_this()] { return self->AcceptLoop(); }, asio::detached);
    return port;
}

asio::awaitable<void> HttpServer::Impl::AcceptLoop() {
    for (;;) {
        auto [ec, socket] = co_await acceptor_.async_accept(asio::make_strand(ioc_),
                                                            asio::as_tuple(asio::use_awaitable));
        if (stopping_ || !acceptor_.is_open()) break;
        if (ec) {
            // Out of file descriptors and the like: back off briefly instead of spinning.
            spdlog::warn("accept failed: {}", ec.message());
            asio::steady_timer pause(strand_, std::chrono::milliseconds{50});
            co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
            continue;
        }
        boost::system::error_code opt_ec;
        socket.set_option(tcp::no_delay(true), opt_ec);
        auto session = std::make_shared<Session>(shared_from_this(), std::move(socket));
        {
            std::lock_guard lock(mutex_);
            sessions_.emplace(session.get(), session);
        }
        asio::co_spawn(
            session->executor(), [session] { return session->Run(); }, asio::detached);
    }
}

void HttpServer::Impl::Shutdown(std::function<void()> done) {
    asio::post(strand_, [self = shared_from_this(), done = std::move(done)]() mutable {
        std::vector<std::shared_ptr<Session>> sessions;
        {
            std::lock_guard lock(self->mutex_);
            if (self->stopping_) {
                if (self->done_called_) {
                    if (done) asio::post(self->ioc_, std::move(done));
                } else if (done) {
                    self->done_.push_back(std::move(done));
                }
                return;
            }
            self->stopping_ = true;
            if (done) self->done_.push_back(std::move(done));
            for (auto& [ptr, weak] : self->sessions_) {
                if (auto s = weak.lock()) sessions.push_back(std::move(s));
            }
        }
        boost::system::error_code ec;
        self->acceptor_.close(ec);
        for (auto& s : sessions) s->BeginShutdown();
        self->grace_timer_.expires_after(self->options_.shutdown_grace);
        self->grace_timer_.async_wait([self](const boost::system::error_code& wait_ec) {
            if (wait_ec) return;
            std::vector<std::shared_ptr<Session>> remaining;
            {
                std::lock_guard lock(self->mutex_);
                for (auto& [ptr, weak] : self->sessions_) {
                    if (auto s = weak.lock()) remaining.push_back(std::move(s));
                }
            }
            if (!remaining.empty())
                spdlog::warn("shutdown grace over: closing {} connection(s)", remaining.size());
            for (auto& s : remaining) s->ForceClose();
        });
        std::lock_guard lock(self->mutex_);
        self->MaybeDoneLocked();
    });
}

void HttpServer::Impl::Unregister(Session* session) {
    std::lock_guard lock(mutex_);
    sessions_.erase(session);
    MaybeDoneLocked();
}

void HttpServer::Impl::MaybeDoneLocked() {
    if (!stopping_ || done_called_ || !sessions_.empty()) return;
    done_called_ = true;
    asio::post(strand_, [self = shared_from_this()] { self->grace_timer_.cancel(); });
    for (auto& done : done_) asio::post(ioc_, std::move(done));
    done_.clear();
}

HttpServer::HttpServer(asio::io_context& ioc, ServerOptions options,
                       std::shared_ptr<const Router> router,
                       std::shared_ptr<prometheus::Registry> registry)
    : impl_(std::make_shared<Impl>(ioc, std::move(options), std::move(router),
                                   std::move(registry))) {}

HttpServer::~HttpServer() {
    // A server dropped without Shutdown must not keep accepting on a running io_context.
    if (!impl_->stopping()) impl_->Shutdown({});
}

std::uint16_t HttpServer::Start() { return impl_->Start(); }

void HttpServer::Shutdown(std::function<void()> done) { impl_->Shutdown(std::move(done)); }

}  // namespace decloud::net
