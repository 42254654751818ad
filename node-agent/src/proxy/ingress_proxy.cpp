#include "agent/proxy/ingress_proxy.hpp"

#include <sched.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <nlohmann/json.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/rfc7230.hpp>
#include <boost/beast/http/status.hpp>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <mutex>
#include <unordered_map>
#include <unordered_set>
#include <variant>

#include "agent/domain/ingress/forwarding.hpp"
#include "agent/domain/ingress/http1.hpp"
#include "byte_buffer.hpp"

namespace decloud::agent::proxy {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
namespace http = boost::beast::http;
namespace ingress = domain::ingress;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using boost::system::error_code;
using common::Error;
using common::Result;
using namespace asio::experimental::awaitable_operators;

namespace {

constexpr auto kAwait = asio::as_tuple(asio::use_awaitable);
// Per direction of a WebSocket tunnel: WebSocket messages are small; large ones take a few reads.
constexpr std::size_t kTunnelBufferSize = 8 * 1024;

std::string ProblemResponse(unsigned status, std::string_view title, std::string_view detail,
                            bool close) {
    const std::string body = nlohmann::json{
        {"type", "about:blank"},
        {"title", title},
        {"status", status},
        {"detail", detail}}.dump();
    const auto reason = http::obsolete_reason(static_cast<http::status>(status));
    std::string out;
    out.reserve(160 + body.size());
    out.append("HTTP/1.1 ").append(std::to_string(status)).append(" ");
    out.append(reason.data(), reason.size());
    out.append("\r\nContent-Type: application/problem+json\r\nContent-Length: ");
    out.append(std::to_string(body.size())).append("\r\n");
    if (close) out.append("Connection: close\r\n");
    out.append("\r\n").append(body);
    return out;
}

// Readable while idle means the VM closed the connection or sent something unasked: unusable.
bool IdleConnectionUsable(tcp::socket& socket) {
    char byte;
    const auto n = ::recv(socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

// Idle keep-alive connections to VM ports, most recently used first. One thread.
//
// A connection is checked when it is taken for a request with a body, which could not be sent
// again, and when it has been idle for a second or more, long enough for a VM to time it out
// (and maybe say so with a 408). A request without a body taking a connection idle for less
// saves that system call, which matters under load: if the VM has closed it meanwhile, the request
// fails before any response byte and is retried on a new connection (ResponseOutcome::kRetry).
// The sweep drops those that the VM closed or wrote to unasked while they waited.
class UpstreamPool {
  public:
    static constexpr Clock::duration kUncheckedReuseWithin = std::chrono::seconds{1};

    explicit UpstreamPool(std::size_t max_per_key) : max_per_key_(max_per_key) {}

    // A pooled connection, if any, checked as described above (always with `check`).
    std::optional<tcp::socket> Take(const std::string& key, bool check) {
        const auto it = idle_.find(key);
        if (it == idle_.end()) return std::nullopt;
        auto& sockets = it->second;
        const auto now = Clock::now();
        while (!sockets.empty()) {
            const bool recent = now - sockets.back().since < kUncheckedReuseWithin;
            tcp::socket socket = std::move(sockets.back().socket);
            sockets.pop_back();
            if ((recent && !check) || IdleConnectionUsable(socket)) return socket;
            error_code ignored;
            socket.close(ignored);
        }
        return std::nullopt;
    }

    void Put(const std::string& key, tcp::socket socket) {
        auto& sockets = idle_[key];
        if (sockets.size() >= max_per_key_) {
            error_code ignored;
            sockets.front().socket.close(ignored);
            sockets.erase(sockets.begin());
        }
        sockets.push_back({std::move(socket), Clock::now()});
    }

    // Closes connections idle for longer than `max_idle`, or closed by the VM.
    void Sweep(Clock::duration max_idle) {
        const auto now = Clock::now();
        for (auto it = idle_.begin(); it != idle_.end();) {
            auto& sockets = it->second;
            std::erase_if(sockets, [&](Idle& idle) {
                if (now - idle.since < max_idle && IdleConnectionUsable(idle.socket)) return false;
                error_code ignored;
                idle.socket.close(ignored);
                return true;
            });
            it = sockets.empty() ? idle_.erase(it) : std::next(it);
        }
    }

    void Clear() {
        for (auto& [key, sockets] : idle_) {
            for (auto& idle : sockets) {
                error_code ignored;
                idle.socket.close(ignored);
            }
        }
        idle_.clear();
    }

    bool empty() const { return idle_.empty(); }

  private:
    struct Idle {
        tcp::socket socket;
        Clock::time_point since;
    };
    std::size_t max_per_key_;
    std::unordered_map<std::string, std::vector<Idle>> idle_;
};

class SessionBase {
  public:
    virtual ~SessionBase() = default;
    virtual void Abort() = 0;
};

}  // namespace

struct IngressProxy::Impl : std::enable_shared_from_this<IngressProxy::Impl> {
    Impl(asio::io_context& io_context, IngressSettings proxy_settings)
        : io(io_context),
          settings(std::move(proxy_settings)),
          acceptor(io_context),
          pool(settings.max_idle_upstream_connections),
          pool_sweeper(io_context) {}

    asio::io_context& io;
    const IngressSettings settings;
    tcp::acceptor acceptor;
    std::atomic<std::uint16_t> bound_port{0};
    std::atomic<std::shared_ptr<const ingress::RoutingTable>> routes{
        std::make_shared<const ingress::RoutingTable>()};
    std::mutex tls_mutex;
    std::shared_ptr<ssl::context> tls;  // null: plain HTTP
    BlockPool blocks;
    UpstreamPool pool;
    asio::steady_timer pool_sweeper;
    bool sweeping = false;
    std::unordered_set<SessionBase*> sessions;
    bool stopped = false;

    std::atomic<std::uint64_t> requests{0};
    std::atomic<std::uint64_t> websockets_active{0};
    std::atomic<std::uint64_t> upstream_connects{0};
    std::array<std::atomic<std::uint64_t>, 5> responses_by_class{};  // 1xx .. 5xx
    std::atomic<std::uint64_t> gateway_errors{0};
    std::atomic<std::uint64_t> connections_open{0};  // admitted client connections
    std::atomic<std::uint64_t> connections_refused{0};
    std::unordered_map<std::string, std::size_t> connections_by_client;  // io thread only

    enum class Admission { kAdmitted, kTooManyFromClient, kTooMany };

    // A new client connection counts against max_connections and, unless it comes from a
    // trusted proxy (which speaks for many clients), against max_connections_per_client.
    Admission Admit(const std::string& client, bool trusted) {
        if (connections_open.load(std::memory_order_relaxed) >= settings.max_connections) {
            ++connections_refused;
            return Admission::kTooMany;
        }
        if (!trusted) {
            auto& count = connections_by_client[client];
            if (count >= settings.max_connections_per_client) {
                ++connections_refused;
                return Admission::kTooManyFromClient;
            }
            ++count;
        }
        ++connections_open;
        return Admission::kAdmitted;
    }

    void Release(const std::string& client, bool trusted) {
        --connections_open;
        if (trusted) return;
        const auto it = connections_by_client.find(client);
        if (it != connections_by_client.end() && --it->second == 0) connections_by_client.erase(it);
    }

    // Counts a final response head (or 101) sent to a client; `from_proxy`: the proxy's own.
    void CountResponse(unsigned status, bool from_proxy) {
        if (status >= 100 && status < 600) {
            responses_by_class[status / 100 - 1].fetch_add(1, std::memory_order_relaxed);
        }
        if (from_proxy && (status == 502 || status == 504)) {
            gateway_errors.fetch_add(1, std::memory_order_relaxed);
        }
    }

    std::shared_ptr<ssl::context> CurrentTls() {
        std::lock_guard lock(tls_mutex);
        return tls;
    }

    void ReturnToPool(const std::string& key, tcp::socket socket) {
        if (stopped) return;
        pool.Put(key, std::move(socket));
        if (!sweeping) {
            sweeping = true;
            asio::co_spawn(io, SweepLoop(shared_from_this()), asio::detached);
        }
    }

    static asio::awaitable<void> SweepLoop(std::shared_ptr<Impl> self) {
        const auto max_idle =
            std::min<Clock::duration>(self->settings.idle_timeout, std::chrono::seconds{4});
        while (!self->stopped && !self->pool.empty()) {
            self->pool_sweeper.expires_after(max_idle / 2);
            co_await self->pool_sweeper.async_wait(kAwait);
            self->pool.Sweep(max_idle);
        }
        self->sweeping = false;
    }

    asio::awaitable<void> AcceptLoop();
};

namespace {

// The upstream side's outcome of one exchange.
enum class ResponseOutcome {
    kComplete,  // a whole response went to the client
    kClosed,    // the client's connection must close (response cut short, or close-delimited)
    kRetry,     // a reused VM connection died or timed out before answering: try a fresh one
    kUpgraded,  // 101 for a WebSocket: bytes are tunnelled from now on
};

template <class Stream>
class Session final : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
  public:
    static constexpr bool kTls = !std::is_same_v<Stream, tcp::socket>;

    Session(std::shared_ptr<IngressProxy::Impl> proxy, tcp::socket socket,
            std::shared_ptr<ssl::context> tls)
        : proxy_(std::move(proxy)),
          tls_(std::move(tls)),
          client_(MakeStream(std::move(socket), tls_.get())),
          upstream_(proxy_->io),
          watchdog_(proxy_->io),
          client_side_done_(proxy_->io),
          early_read_done_(proxy_->io) {
        error_code ec;
        const auto peer = Socket().remote_endpoint(ec);
        if (!ec) {
            client_address_ = peer.address().to_string();
            const auto& trusted = proxy_->settings.trusted_proxies;
            client_trusted_ =
                std::find(trusted.begin(), trusted.end(), client_address_) != trusted.end();
        }
        proxy_->sessions.insert(this);
        admission_ = proxy_->Admit(client_address_, client_trusted_);
    }

    ~Session() override {
        if (admission_ == Admission::kAdmitted) proxy_->Release(client_address_, client_trusted_);
        proxy_->sessions.erase(this);
    }

    void Abort() override {
        closed_ = true;
        error_code ignored;
        Socket().close(ignored);
        upstream_.close(ignored);
        watchdog_.cancel();
    }

    asio::awaitable<void> Run() {
        auto self = this->shared_from_this();
        Touch();
        if (admission_ != Admission::kAdmitted) {
            co_await TurnAway();
            co_return;
        }
        asio::co_spawn(proxy_->io, Watchdog(self), asio::detached);
        if constexpr (kTls) {
            auto [ec] = co_await client_.async_handshake(ssl::stream_base::server, kAwait);
            if (ec) {
                Close();
                co_return;
            }
        }
        while (!closed_) {
            phase_ = Phase::kWaitingForRequest;
            const auto head_end = co_await ReadRequestHead();
            if (!head_end) break;
            Touch();
            phase_ = Phase::kExchange;
            exchange_start_ = Clock::now();
            ArmEarlierDeadline(exchange_start_ + proxy_->settings.total_timeout);
            ++proxy_->requests;
            const bool keep_going = co_await Exchange(*head_end);
            if (proxy_->settings.access_log) LogAccess();
            if (!keep_going) break;
            if (!early_read_pending_) input_.ReleaseIfEmptyAndAbove(16 * 1024);
        }
        if constexpr (kTls) {
            if (!closed_) {
                // close_notify, bounded by the watchdog like any other write.
                phase_ = Phase::kWaitingForRequest;
                co_await client_.async_shutdown(kAwait);
            }
        }
        Close();
    }

  private:
    enum class Phase { kWaitingForRequest, kExchange, kTunnel };
    using Admission = IngressProxy::Impl::Admission;

    // A connection over the limits: a plain one is told why (one non-blocking send, then what it
    // sent is drained for a moment), a TLS one is closed before any handshake work.
    asio::awaitable<void> TurnAway() {
        if constexpr (!kTls) {
            const bool per_client = admission_ == Admission::kTooManyFromClient;
            const auto text =
                per_client ? ProblemResponse(
                                 429, "Too Many Requests",
                                 "this address already has " +
                                     std::to_string(proxy_->settings.max_connections_per_client) +
                                     " connections open to this node",
                                 true)
                           : ProblemResponse(503, "Service Unavailable",
                                             "the node's ingress has " +
                                                 std::to_string(proxy_->settings.max_connections) +
                                                 " connections open, its limit",
                                             true);
            SendAtOnce(text);
            error_code ignored;
            // Closing with the client's request unread would reset the connection and could
            // take the answer with it: read and drop what comes for a moment first.
            client_.shutdown(tcp::socket::shutdown_send, ignored);
            asio::steady_timer linger(proxy_->io, std::chrono::milliseconds{500});
            auto drain = [this]() -> asio::awaitable<void> {
                std::array<char, 4096> sink;
                while (true) {
                    auto [ec, n] = co_await client_.async_read_some(asio::buffer(sink), kAwait);
                    if (ec) co_return;
                }
            };
            co_await (drain() || linger.async_wait(kAwait));
        }
        Close();
        co_return;
    }

    static Stream MakeStream(tcp::socket socket, ssl::context* tls) {
        if constexpr (kTls) {
            return Stream(std::move(socket), *tls);
        } else {
            (void)tls;
            return socket;
        }
    }

    tcp::socket& Socket() {
        if constexpr (kTls) {
            return client_.next_layer();
        } else {
            return client_;
        }
    }

    void Touch() { last_progress_ = Clock::now(); }

    // --- counters and the access log

    void Answered(unsigned status, bool from_proxy) {
        log_status_ = status;
        proxy_->CountResponse(status, from_proxy);
    }

    // The proxy's own answer to a request that never became an exchange (a head too large or too
    // slow): counted and recorded like any request's.
    void AnswerOutsideExchange(unsigned status, Clock::time_point since) {
        ++proxy_->requests;
        exchange_start_ = since;
        BeginAccessRecord();
        Answered(status, true);
    }

    // Best effort, for a client about to be disconnected: one non-blocking send of a short answer
    // (plain connections only), nothing waited for.
    void SendAtOnce(const std::string& text) {
        if constexpr (!kTls) {
            const auto sent = ::send(Socket().native_handle(), text.data(), text.size(),
                                     MSG_DONTWAIT | MSG_NOSIGNAL);
            if (sent > 0) log_bytes_ += static_cast<std::uint64_t>(sent);
        }
    }

    void BeginAccessRecord() {
        log_status_ = 0;
        log_bytes_ = 0;
        if (!proxy_->settings.access_log) return;
        log_method_ = "-";
        log_target_ = "-";
        log_host_.clear();
        log_vm_.clear();
        log_port_ = 0;
    }

    // status 0: nothing was answered (the client went away first).
    void LogAccess() const {
        const auto micros =
            std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - exchange_start_)
                .count();
        const auto or_dash = [](const std::string& text) -> std::string_view {
            return text.empty() ? std::string_view("-") : std::string_view(text);
        };
        spdlog::info(
            "ingress access: {} \"{} {}\" host={} vm={} port={} status={} bytes={} ms={:.3f}",
            or_dash(client_address_), log_method_, log_target_, or_dash(log_host_),
            or_dash(log_vm_), log_port_, log_status_, log_bytes_,
            static_cast<double>(micros) / 1000.0);
    }

    void Close() {
        if (closed_) return;
        closed_ = true;
        error_code ignored;
        Socket().shutdown(tcp::socket::shutdown_both, ignored);
        Socket().close(ignored);
        upstream_.close(ignored);
        watchdog_.cancel();
    }

    // --- timeouts: one timer per connection, re-armed only when it fires or a sooner deadline
    // appears, so steady traffic costs no timer operations.

    Clock::time_point Due() const {
        const auto& s = proxy_->settings;
        switch (phase_) {
            case Phase::kWaitingForRequest: {
                auto due = last_progress_ + s.idle_timeout;
                if (head_started_) due = std::min(due, head_start_ + s.header_timeout);
                return due;
            }
            case Phase::kExchange: {
                auto due =
                    std::min(last_progress_ + s.idle_timeout, exchange_start_ + s.total_timeout);
                if (connecting_) due = std::min(due, connect_start_ + s.connect_timeout);
                return due;
            }
            case Phase::kTunnel:
                return last_progress_ + s.websocket_idle_timeout;
        }
        return last_progress_ + s.idle_timeout;
    }

    void ArmEarlierDeadline(Clock::time_point due) {
        if (due < watchdog_.expiry()) watchdog_.expires_at(due);  // wakes the watchdog to re-plan
    }

    static asio::awaitable<void> Watchdog(std::shared_ptr<Session> self) {
        while (!self->closed_) {
            self->watchdog_.expires_at(self->Due());
            co_await self->watchdog_.async_wait(kAwait);
            if (self->closed_) break;
            if (Clock::now() >= self->Due()) self->OnTimeout();
        }
    }

    void OnTimeout() {
        timed_out_ = true;
        error_code ignored;
        if (phase_ == Phase::kExchange && !response_started_) {
            // The exchange answers 504 on the client connection, which stays usable for that.
            upstream_.cancel(ignored);
            upstream_.close(ignored);
            // A client that stopped sending its body is not waited for either.
            Socket().cancel(ignored);
        } else {
            if (phase_ == Phase::kWaitingForRequest && head_started_) RefuseSlowHead();
            Close();
        }
    }

    // A request head that trickled in for longer than header_timeout: 408 (a client this slow
    // to send is not waited for to read either).
    void RefuseSlowHead() {
        AnswerOutsideExchange(408, head_start_);
        SendAtOnce(ProblemResponse(408, "Request Timeout",
                                   "the request head did not arrive whole within " +
                                       std::to_string(proxy_->settings.header_timeout.count()) +
                                       " ms",
                                   true));
        if (proxy_->settings.access_log) LogAccess();
    }

    // --- client I/O

    template <class Buffers>
    asio::awaitable<error_code> WriteClient(
        Buffers buffers) {  // by value: outlives the caller's temporaries
        auto [ec, n] = co_await asio::async_write(client_, buffers, kAwait);
        log_bytes_ += n;
        if (!ec) Touch();
        co_return ec;
    }

    asio::awaitable<error_code> WriteClientText(std::string text) {
        auto op = WriteClient(asio::buffer(text));
        co_return co_await std::move(op);
    }

    asio::awaitable<std::size_t> ReadClientSome() {
        auto [data, room] =
            input_.Prepare(16 * 1024, proxy_->settings.max_header_bytes + BlockPool::kBlockSize);
        auto [ec, n] = co_await client_.async_read_some(asio::buffer(data, room), kAwait);
        if (ec) co_return 0;
        input_.Commit(n);
        Touch();
        co_return n;
    }

    // Reads until a whole request head is buffered; answers 400/431 itself for what cannot be
    // a request. nullopt: the connection is done.
    asio::awaitable<std::optional<std::size_t>> ReadRequestHead() {
        // (Checked here first: a coroutine call per request costs a frame allocation.)
        if (early_read_pending_ && !co_await AwaitEarlyRead()) co_return std::nullopt;
        if (early_read_failed_) co_return std::nullopt;
        std::size_t searched = 0;
        while (true) {
            const auto data = input_.Data();
            const auto from = searched > 3 ? searched - 3 : 0;
            const auto end = ingress::FindHeadEnd(data.substr(from));
            if (end != std::string_view::npos) {
                head_started_ = false;
                co_return from + end;
            }
            if (!data.empty() && !head_started_) {
                // Part of a head: from now on it has header_timeout to be whole. (A head that
                // arrives in one piece never gets here: no timer work on the usual path.)
                head_started_ = true;
                head_start_ = Clock::now();
                ArmEarlierDeadline(head_start_ + proxy_->settings.header_timeout);
            }
            searched = data.size();
            if (data.size() >= proxy_->settings.max_header_bytes) {
                AnswerOutsideExchange(431, Clock::now());
                auto op = WriteClientText(ProblemResponse(
                    431, "Request Header Fields Too Large",
                    "the request head exceeds " +
                        std::to_string(proxy_->settings.max_header_bytes) + " bytes",
                    true));
                co_await std::move(op);
                if (proxy_->settings.access_log) LogAccess();
                co_return std::nullopt;
            }
            const auto n = co_await ReadClientSome();
            if (n == 0) co_return std::nullopt;
        }
    }

    asio::awaitable<bool> Refuse(unsigned status, std::string title, std::string detail) {
        response_started_ = true;
        Answered(status, true);
        auto op = WriteClientText(ProblemResponse(status, title, detail, true));
        co_await std::move(op);
        co_return false;
    }

    // --- one request and its response

    asio::awaitable<bool> Exchange(std::size_t head_end) {
        BeginAccessRecord();
        response_started_ = false;
        timed_out_ = false;
        body_error_.reset();
        const std::string_view head_text = input_.Data().substr(0, head_end);
        if (auto parsed = ingress::ParseRequestHead(head_text, request_head_); !parsed) {
            auto op = Refuse(400, "Bad Request", parsed.error().message);
            co_return co_await std::move(op);
        }
        const ingress::RequestHead* head = &request_head_;
        if (proxy_->settings.access_log) {
            log_method_.assign(head->method);
            log_target_.assign(head->target);
        }
        auto framing = ingress::CheckRequestHeaders(head->headers);
        if (!framing) {
            auto op = Refuse(400, "Bad Request", framing.error().message);
            co_return co_await std::move(op);
        }

        std::string_view host;
        bool expect_continue = false;
        client_keep_alive_ = head->version_minor == 1;
        client_http10_ = head->version_minor == 0;
        for (const auto& [name, value] : head->headers) {
            if (boost::beast::iequals(name, "host")) {
                host = value;
                if (proxy_->settings.access_log) log_host_.assign(value);
            } else if (boost::beast::iequals(name, "expect")) {
                if (!boost::beast::iequals(value, "100-continue")) {
                    auto op = Refuse(417, "Expectation Failed", "only 100-continue is supported");
                    co_return co_await std::move(op);
                }
                expect_continue = head->version_minor == 1;  // answered here, not forwarded
            } else if (boost::beast::iequals(name, "connection")) {
                for (auto token : http::token_list(value)) {
                    if (boost::beast::iequals(token, "close")) client_keep_alive_ = false;
                }
            }
        }

        const auto routes = proxy_->routes.load();
        auto decision =
            ingress::Route({head->method, head->target, host}, *routes, proxy_->settings.routing);
        if (auto* refusal = std::get_if<ingress::Refusal>(&decision)) {
            const auto reason = http::obsolete_reason(static_cast<http::status>(refusal->status));
            auto op = Refuse(refusal->status, std::string(reason.data(), reason.size()),
                             refusal->detail.empty() ? refusal->title : refusal->detail);
            co_return co_await std::move(op);
        }
        const auto& upstream = std::get<ingress::Upstream>(decision);
        if (proxy_->settings.access_log) {
            log_vm_.assign(upstream.vm_id);
            log_port_ = upstream.port;
        }

        websocket_ =
            ingress::IsWebSocketUpgrade(std::span<const ingress::RawHeader>(head->headers));
        ingress::ForwardContext context;
        context.client_address = client_address_;
        context.proto = kTls ? "https" : "http";
        context.upstream_address = upstream.address;
        context.upstream_port = upstream.port;
        context.preserve_host = proxy_->settings.preserve_host;
        context.trust_forwarded = client_trusted_;

        // Reused between exchanges: no allocation per request once warm.
        std::string& upstream_head = upstream_head_;
        upstream_head.clear();
        upstream_head.append(head->method).append(" ");
        upstream.AppendTarget(upstream_head);
        upstream_head.append(" HTTP/1.1\r\n");
        ingress::AppendUpstreamRequestFields(upstream_head, head->headers, context, websocket_);
        if (framing->kind == ingress::RequestFraming::Kind::kChunked) {
            upstream_head.append("Transfer-Encoding: chunked\r\n");
        }
        upstream_head.append("\r\n");
        request_method_is_head_ = head->method == "HEAD";
        input_.Consume(head_end);  // `head` and `head_text` point into it: not used below

        // The request body: how much of it is already here, and is it well-formed so far?
        request_framing_ = *framing;
        body_remaining_ = framing->kind == ingress::RequestFraming::Kind::kContentLength
                              ? framing->content_length
                              : 0;
        scanner_ = ingress::ChunkedScanner{};
        body_done_ = framing->kind == ingress::RequestFraming::Kind::kNone ||
                     (framing->kind == ingress::RequestFraming::Kind::kContentLength &&
                      body_remaining_ == 0);
        const auto first_part = TakeBufferedBody();
        if (!first_part) {
            auto op = Refuse(400, "Bad Request", first_part.error().message);
            co_return co_await std::move(op);
        }

        char port_digits[8];
        const auto port_end =
            std::to_chars(port_digits, port_digits + sizeof port_digits, upstream.port).ptr;
        pool_key_.assign(upstream.address)
            .append("|")
            .append(port_digits, static_cast<std::size_t>(port_end - port_digits));
        const auto endpoint =
            tcp::endpoint(asio::ip::make_address(upstream.address), upstream.port);
        const bool has_body = framing->kind != ingress::RequestFraming::Kind::kNone &&
                              !(framing->kind == ingress::RequestFraming::Kind::kContentLength &&
                                framing->content_length == 0);

        for (int attempt = 0;; ++attempt) {
            bool reused = false;
            if (!websocket_ && attempt == 0) {
                if (auto pooled = proxy_->pool.Take(pool_key_, /*check=*/has_body)) {
                    upstream_ = std::move(*pooled);
                    reused = true;
                }
            }
            if (!reused) {
                auto op = Connect(endpoint);
                const auto connected = co_await std::move(op);
                if (!connected) {
                    const bool timeout =
                        timed_out_ || connected.error().code == common::ErrorCode::kTimeout;
                    auto refuse =
                        Refuse(timeout ? 504 : 502, timeout ? "Gateway Timeout" : "Bad Gateway",
                               connected.error().message);
                    co_return co_await std::move(refuse);
                }
            }
            if (expect_continue && has_body && attempt == 0) {
                auto op = WriteClientText("HTTP/1.1 100 Continue\r\n\r\n");
                if (co_await std::move(op)) co_return false;
            }
            const std::array<asio::const_buffer, 2> out{
                asio::buffer(upstream_head), asio::buffer(first_part->data(), first_part->size())};
            auto [write_ec, written] = co_await asio::async_write(upstream_, out, kAwait);
            if (write_ec) {
                error_code ignored;
                upstream_.close(ignored);
                if (reused && !has_body) continue;
                auto refuse =
                    Refuse(timed_out_ ? 504 : 502, timed_out_ ? "Gateway Timeout" : "Bad Gateway",
                           "sending the request to the VM failed: " + write_ec.message());
                co_return co_await std::move(refuse);
            }
            Touch();
            if (!body_done_) ConsumeBufferedBody(first_part->size());

            auto response = ResponseSide(reused && !has_body);
            StartClientSide();
            const auto outcome = co_await std::move(response);
            response_over_ = true;
            if (client_side_running_) co_await StopClientSide();
            if (client_gone_) {
                // The client went away: the VM's request was cancelled with its connection.
                Close();
                co_return false;
            }
            if (outcome == ResponseOutcome::kRetry) {
                error_code ignored;
                upstream_.close(ignored);
                continue;
            }
            if (outcome == ResponseOutcome::kUpgraded) {
                auto tunnel = Tunnel();
                co_await std::move(tunnel);
                co_return false;
            }
            const bool reusable_client = outcome == ResponseOutcome::kComplete &&
                                         client_keep_alive_ && body_done_ && !body_error_;
            if (upstream_reusable_ && body_done_) {
                proxy_->ReturnToPool(pool_key_, std::move(upstream_));
                upstream_ = tcp::socket(proxy_->io);
            } else {
                error_code ignored;
                upstream_.close(ignored);
            }
            co_return reusable_client;
        }
    }

    asio::awaitable<Result<void>> Connect(tcp::endpoint endpoint) {
        connecting_ = true;
        connect_start_ = Clock::now();
        ArmEarlierDeadline(connect_start_ + proxy_->settings.connect_timeout);
        upstream_ = tcp::socket(proxy_->io);
        auto [ec] = co_await upstream_.async_connect(endpoint, kAwait);
        connecting_ = false;
        if (timed_out_) {
            co_return Error::Timeout("the VM did not accept a connection to port " +
                                     std::to_string(endpoint.port()) + " in time");
        }
        if (ec) {
            co_return Error::Unavailable("the VM refused the connection to port " +
                                         std::to_string(endpoint.port()) + ": " + ec.message());
        }
        ++proxy_->upstream_connects;
        error_code ignored;
        upstream_.set_option(tcp::no_delay(true), ignored);
        upstream_.non_blocking(true, ignored);  // for ResponseSide's first read
        Touch();
        co_return Result<void>{};
    }

    // --- request body (client to VM)

    // The part of the buffered input that belongs to the request body, checked.
    Result<std::string_view> TakeBufferedBody() {
        if (body_done_) return std::string_view{};
        const auto data = input_.Data();
        if (request_framing_.kind == ingress::RequestFraming::Kind::kContentLength) {
            return data.substr(
                0, static_cast<std::size_t>(std::min<std::uint64_t>(body_remaining_, data.size())));
        }
        auto progress = scanner_.Feed(data);
        if (!progress) return progress.error();
        chunked_done_pending_ = progress->done;
        return data.substr(0, progress->consumed);
    }

    void ConsumeBufferedBody(std::size_t n) {
        input_.Consume(n);
        if (request_framing_.kind == ingress::RequestFraming::Kind::kContentLength) {
            body_remaining_ -= n;
            body_done_ = body_remaining_ == 0;
        } else {
            body_done_ = chunked_done_pending_;
        }
    }

    // The client side of an exchange runs beside the response side: it moves the rest of the
    // request body and notices a client that goes away (closing the VM connection, which ends the
    // response side). The response side's end stops it: with response_over_ set, the exchange
    // calls StopClientSide while the body coroutine still runs, which waits until it has ended.
    void StartClientSide() {
        client_gone_ = false;
        response_over_ = false;
        if (!body_done_) {
            client_side_running_ = true;
            asio::co_spawn(proxy_->io, ClientSide(),
                           [self = this->shared_from_this()](std::exception_ptr) {
                               self->client_side_running_ = false;
                               self->client_side_done_.cancel();
                           });
        }
        // Without a body to move, the client is watched only once the response keeps us
        // waiting (ResponseSide): a quick answer costs no read of the client that finds nothing.
    }

    asio::awaitable<void> StopClientSide() {
        error_code ignored;
        Socket().cancel(ignored);
        if (!body_done_) upstream_.cancel(ignored);
        while (client_side_running_) {
            client_side_done_.expires_at(Clock::time_point::max());
            co_await client_side_done_.async_wait(kAwait);
        }
    }

    // Moves the rest of the request body to the VM; ends early when stopped, on a bad body, when
    // the VM stops reading or when the client goes away.
    asio::awaitable<void> ClientSide() {
        while (!body_done_) {
            if (input_.empty()) {
                const auto n = co_await ReadClientSome();
                if (n == 0) {
                    // Stopped, timed out (the response side answers 504) or the client is gone.
                    if (!timed_out_ && !response_over_) {
                        client_gone_ = true;
                        error_code ignored;
                        upstream_.close(ignored);
                    }
                    co_return;
                }
            }
            const auto part = TakeBufferedBody();
            if (!part) {
                body_error_ = part.error().message;
                error_code ignored;
                upstream_.close(ignored);  // the response side answers 400
                co_return;
            }
            auto [ec, n] = co_await asio::async_write(
                upstream_, asio::buffer(part->data(), part->size()), kAwait);
            if (ec) {
                // The VM stopped reading (it may have answered early): its response tells.
                body_aborted_ = true;
                co_return;
            }
            Touch();
            ConsumeBufferedBody(part->size());
        }
        if (!response_over_) WatchClientGone();
    }

    // While a response is on its way, a client that closes its connection has the VM's
    // connection closed too (which cancels the request there). The watch is the read of the next
    // request, started early: its bytes land in the input buffer as usual, and an end of stream
    // before the response is complete means the client is gone. No extra system call, no
    // coroutine; ReadRequestHead waits for it instead of reading itself. While the request body
    // still flows, ClientSide reads the client and watches it afterwards.
    void WatchClientGone() {
        if (!input_.empty() || early_read_pending_ || websocket_ || !body_done_) return;
        early_read_pending_ = true;
        early_read_failed_ = false;
        auto [data, room] =
            input_.Prepare(16 * 1024, proxy_->settings.max_header_bytes + BlockPool::kBlockSize);
        client_.async_read_some(asio::buffer(data, room), [self = this->shared_from_this()](
                                                              error_code ec, std::size_t n) {
            self->early_read_pending_ = false;
            if (!ec) {
                self->input_.Commit(n);
                self->Touch();
            } else if (ec == asio::error::operation_aborted &&
                       (self->response_over_ || self->timed_out_)) {
                // Stopped on purpose: ReadRequestHead simply reads again.
            } else {
                self->early_read_failed_ = true;
                if (!self->response_over_ && !self->timed_out_ && !self->closed_) {
                    self->client_gone_ = true;
                    error_code ignored;
                    self->upstream_.close(ignored);
                }
            }
            self->early_read_done_.cancel();
        });
    }

    // Waits for an early read (see WatchClientGone); false if it ended the connection.
    asio::awaitable<bool> AwaitEarlyRead() {
        while (early_read_pending_) {
            early_read_done_.expires_at(Clock::time_point::max());
            co_await early_read_done_.async_wait(kAwait);
        }
        co_return !early_read_failed_;
    }

    // --- response (VM to client)

    asio::awaitable<ResponseOutcome> ResponseSide(bool retryable) {
        upstream_reusable_ = false;
        response_started_ = false;
        auto block = proxy_->blocks.Acquire();
        std::size_t filled = 0;
        ingress::ResponseHead& head = response_head_parsed_;  // reused: no allocation
        std::size_t head_end = 0;
        bool received_any = false;
        while (true) {
            // Read until a final (or 101) response head is complete.
            const auto end = ingress::FindHeadEnd(std::string_view(block.data(), filled));
            if (end == std::string_view::npos) {
                if (filled == BlockPool::kBlockSize) {
                    auto op = FailExchange(502, "the VM's response head is too large");
                    co_return co_await std::move(op);
                }
                const auto room =
                    asio::buffer(block.data() + filled, BlockPool::kBlockSize - filled);
                // The answer is often there already (the request went out a turn of the event
                // loop ago): try without waiting; only if it is not, watch the client and wait.
                error_code ec;
                std::size_t n = upstream_.read_some(room, ec);
                if (ec == asio::error::would_block || ec == asio::error::try_again) {
                    WatchClientGone();
                    std::tie(ec, n) = co_await upstream_.async_read_some(room, kAwait);
                }
                if (ec) {
                    if (retryable && !received_any && !timed_out_ && !body_error_ &&
                        (ec == asio::error::eof || ec == asio::error::connection_reset)) {
                        co_return ResponseOutcome::kRetry;
                    }
                    auto op = FailExchange(
                        0, "the VM closed the connection before answering: " + ec.message());
                    co_return co_await std::move(op);
                }
                received_any = true;
                filled += n;
                Touch();
                continue;
            }
            auto parsed = ingress::ParseResponseHead(std::string_view(block.data(), end), head);
            if (!parsed) {
                auto op = FailExchange(
                    502, "the VM sent a malformed response: " + parsed.error().message);
                co_return co_await std::move(op);
            }
            if (head.status >= 100 && head.status < 200 && head.status != 101) {
                // Interim responses (100 Continue was answered by us) are not passed on.
                std::memmove(block.data(), block.data() + end, filled - end);
                filled -= end;
                continue;
            }
            head_end = end;
            break;
        }
        if (retryable && head.status == 408) {
            // A reused connection's 408 is the VM closing it for idleness, not an answer to this
            // request, which it says it did not receive: sent again (RFC 9110 15.5.9).
            co_return ResponseOutcome::kRetry;
        }

        auto framing =
            ingress::CheckResponseHeaders(head, request_method_is_head_ ? "HEAD" : "GET");
        if (!framing) {
            auto op =
                FailExchange(502, "the VM sent a malformed response: " + framing.error().message);
            co_return co_await std::move(op);
        }
        const bool upgraded = head.status == 101;
        if (upgraded && (!websocket_ || !ingress::IsWebSocketUpgrade(
                                            std::span<const ingress::RawHeader>(head.headers)))) {
            auto op = FailExchange(502, "the VM switched protocols without a WebSocket upgrade");
            co_return co_await std::move(op);
        }

        // HTTP/1.0 clients and close-delimited bodies end with the connection.
        using Kind = ingress::ResponseFraming::Kind;
        const bool dechunk = client_http10_ && framing->kind == Kind::kChunked;
        bool close_client = !client_keep_alive_ || framing->kind == Kind::kUntilClose || dechunk;
        if (!body_done_) close_client = true;  // the VM answered before the whole body arrived
        std::string& out = response_head_;
        out.clear();
        out.append("HTTP/1.1 ")
            .append(std::to_string(head.status))
            .append(" ")
            .append(head.reason)
            .append("\r\n");
        ingress::AppendDownstreamResponseFields(out, head.headers, upgraded);
        if (framing->kind == Kind::kChunked && !dechunk)
            out.append("Transfer-Encoding: chunked\r\n");
        if (close_client && !upgraded) out.append("Connection: close\r\n");
        out.append("\r\n");

        response_started_ = true;
        Answered(head.status, false);
        std::string_view rest(block.data() + head_end, filled - head_end);
        if (upgraded) {
            // Bytes the VM sent right after its 101 belong to the tunnel.
            upstream_leftover_.assign(rest.begin(), rest.end());
            auto op = WriteClient(asio::buffer(out));
            if (co_await std::move(op)) co_return ResponseOutcome::kClosed;
            co_return ResponseOutcome::kUpgraded;
        }

        // Body, streamed through the block with bounded memory.
        std::uint64_t remaining =
            framing->kind == Kind::kContentLength ? framing->content_length : 0;
        ingress::ChunkedScanner scanner;
        std::vector<ingress::ChunkedScanner::Span> spans;
        bool complete = framing->kind == Kind::kNone ||
                        (framing->kind == Kind::kContentLength && remaining == 0);
        bool extra_bytes = false;
        bool first = true;
        while (true) {
            // What of `rest` belongs to the body.
            std::string_view body;
            if (framing->kind == Kind::kContentLength) {
                body = rest.substr(
                    0, static_cast<std::size_t>(std::min<std::uint64_t>(remaining, rest.size())));
                remaining -= body.size();
                complete = remaining == 0;
            } else if (framing->kind == Kind::kChunked) {
                spans.clear();
                auto progress = scanner.Feed(rest, dechunk ? &spans : nullptr);
                if (!progress) {
                    if (first) {
                        auto op = FailExchange(502, "the VM sent a malformed chunked body: " +
                                                        progress.error().message);
                        co_return co_await std::move(op);
                    }
                    Close();
                    co_return ResponseOutcome::kClosed;
                }
                body = rest.substr(0, progress->consumed);
                complete = progress->done;
            } else if (framing->kind == Kind::kUntilClose) {
                body = rest;
            }
            if (body.size() < rest.size()) extra_bytes = true;

            auto& buffers = write_buffers_;
            buffers.clear();
            if (first) buffers.push_back(asio::buffer(out));
            if (dechunk) {
                for (const auto& span : spans)
                    buffers.push_back(asio::buffer(body.data() + span.offset, span.size));
            } else if (!body.empty()) {
                buffers.push_back(asio::buffer(body.data(), body.size()));
            }
            first = false;
            if (!buffers.empty()) {
                auto [write_ec, written] = co_await asio::async_write(client_, buffers, kAwait);
                log_bytes_ += written;
                if (write_ec) {
                    Close();
                    co_return ResponseOutcome::kClosed;
                }
                Touch();
            }
            if (complete || extra_bytes) break;
            WatchClientGone();
            auto [ec, n] = co_await upstream_.async_read_some(
                asio::buffer(block.data(), BlockPool::kBlockSize), kAwait);
            if (ec) {
                if (framing->kind == Kind::kUntilClose && ec == asio::error::eof) {
                    complete = true;
                    break;
                }
                // Cut short: the client must not take a partial body for a whole one.
                Close();
                co_return ResponseOutcome::kClosed;
            }
            Touch();
            rest = std::string_view(block.data(), n);
        }
        upstream_reusable_ = complete && !extra_bytes && framing->keep_alive && !body_aborted_ &&
                             framing->kind != Kind::kUntilClose;
        co_return close_client ? ResponseOutcome::kClosed : ResponseOutcome::kComplete;
    }

    // Answers the client with a problem when nothing was sent yet; `status` 0 picks 502/504/400
    // from what happened.
    asio::awaitable<ResponseOutcome> FailExchange(unsigned status, std::string detail) {
        error_code ignored;
        upstream_.close(ignored);
        if (response_started_ || closed_) {
            Close();
            co_return ResponseOutcome::kClosed;
        }
        std::string title = "Bad Gateway";
        if (body_error_) {
            status = 400;
            title = "Bad Request";
            detail = *body_error_;
        } else if (timed_out_) {
            status = 504;
            title = "Gateway Timeout";
            detail = "the VM did not answer in time";
        } else if (status == 0) {
            status = 502;
        }
        response_started_ = true;
        Answered(status, true);
        auto op = WriteClientText(ProblemResponse(status, title, detail, true));
        co_await std::move(op);
        co_return ResponseOutcome::kClosed;
    }

    // --- WebSocket: after both handshakes, bytes go through unchanged, so frames, fragmentation,
    // ping/pong and close codes arrive exactly as sent.

    asio::awaitable<void> Tunnel() {
        phase_ = Phase::kTunnel;
        Touch();
        ++proxy_->websockets_active;
        // What arrived early on either side goes first.
        if (!input_.empty()) {
            const auto data = input_.Data();
            auto [ec, n] = co_await asio::async_write(
                upstream_, asio::buffer(data.data(), data.size()), kAwait);
            input_.Consume(data.size());
            if (ec) {
                --proxy_->websockets_active;
                Close();
                co_return;
            }
        }
        input_.ReleaseIfEmptyAndAbove(0);
        if (!upstream_leftover_.empty()) {
            auto op = WriteClient(asio::buffer(upstream_leftover_));
            const auto ec = co_await std::move(op);
            upstream_leftover_.clear();
            upstream_leftover_.shrink_to_fit();
            if (ec) {
                --proxy_->websockets_active;
                Close();
                co_return;
            }
        }
        auto both = ClientToUpstream() && UpstreamToClient();
        co_await std::move(both);
        --proxy_->websockets_active;
        Close();
    }

    asio::awaitable<void> ClientToUpstream() {
        // A small buffer per direction, held for the tunnel's life: reading straight into it
        // costs fewer system calls than waiting for readiness first, and idle memory stays low.
        const auto buffer = std::make_unique_for_overwrite<char[]>(kTunnelBufferSize);
        while (!closed_) {
            auto [read_ec, n] = co_await client_.async_read_some(
                asio::buffer(buffer.get(), kTunnelBufferSize), kAwait);
            if (read_ec) break;
            Touch();
            auto [ec, written] =
                co_await asio::async_write(upstream_, asio::buffer(buffer.get(), n), kAwait);
            if (ec) {
                Close();
                co_return;
            }
        }
        error_code ignored;
        upstream_.shutdown(tcp::socket::shutdown_send, ignored);
    }

    asio::awaitable<void> UpstreamToClient() {
        const auto buffer = std::make_unique_for_overwrite<char[]>(kTunnelBufferSize);
        while (!closed_) {
            auto [read_ec, n] = co_await upstream_.async_read_some(
                asio::buffer(buffer.get(), kTunnelBufferSize), kAwait);
            if (read_ec) break;
            Touch();
            auto op = WriteClient(asio::buffer(buffer.get(), n));
            if (co_await std::move(op)) {
                Close();
                co_return;
            }
        }
        error_code ignored;
        if constexpr (kTls) {
            Close();
        } else {
            Socket().shutdown(tcp::socket::shutdown_send, ignored);
        }
    }

    std::shared_ptr<IngressProxy::Impl> proxy_;
    std::shared_ptr<ssl::context> tls_;  // keeps the context of this connection alive
    Stream client_;
    tcp::socket upstream_;
    asio::steady_timer watchdog_;
    asio::steady_timer client_side_done_;  // woken when the client side of an exchange ends
    asio::steady_timer early_read_done_;   // woken when WatchClientGone's read completes
    std::string client_address_;
    bool client_trusted_ = false;
    ByteBuffer input_;
    std::string pool_key_;  // the VM address and port of the last exchange, for the pool
    std::string upstream_leftover_;
    std::string upstream_head_;
    std::string response_head_;
    ingress::RequestHead request_head_;           // the request being forwarded (views into input_)
    ingress::ResponseHead response_head_parsed_;  // the VM's response head (views into a block)
    std::vector<asio::const_buffer> write_buffers_;

    Phase phase_ = Phase::kWaitingForRequest;
    Clock::time_point last_progress_;
    Clock::time_point exchange_start_;
    Clock::time_point connect_start_;
    Admission admission_ = Admission::kTooMany;
    Clock::time_point head_start_;  // when the first byte of a still-partial request head came
    bool head_started_ = false;
    bool connecting_ = false;
    bool closed_ = false;
    bool timed_out_ = false;
    bool response_started_ = false;
    bool client_keep_alive_ = true;
    bool client_http10_ = false;
    bool websocket_ = false;
    bool request_method_is_head_ = false;
    bool upstream_reusable_ = false;
    bool client_side_running_ = false;
    bool client_gone_ = false;
    bool early_read_pending_ = false;  // WatchClientGone's read into input_ is under way
    bool early_read_failed_ = false;
    bool response_over_ = false;

    ingress::RequestFraming request_framing_;
    std::uint64_t body_remaining_ = 0;
    ingress::ChunkedScanner scanner_;
    bool chunked_done_pending_ = false;
    bool body_done_ = true;
    bool body_aborted_ = false;
    std::optional<std::string> body_error_;

    // The exchange as the access log and the counters see it (names and target only with the
    // access log on: they are copied out of the request, which the exchange consumes).
    std::string log_method_;
    std::string log_target_;
    std::string log_host_;
    std::string log_vm_;
    std::uint16_t log_port_ = 0;
    unsigned log_status_ = 0;
    std::uint64_t log_bytes_ = 0;
};

}  // namespace

asio::awaitable<void> IngressProxy::Impl::AcceptLoop() {
    auto self = shared_from_this();
    while (!stopped) {
        auto [ec, socket] = co_await acceptor.async_accept(kAwait);
        if (stopped) break;
        if (ec) {
            if (ec == asio::error::operation_aborted) break;
            // Out of descriptors or a transient error: back off briefly instead of spinning.
            spdlog::warn("ingress: accept failed: {}", ec.message());
            asio::steady_timer pause(io, std::chrono::milliseconds{50});
            co_await pause.async_wait(kAwait);
            continue;
        }
        error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);
        if (auto context = CurrentTls()) {
            using TlsSession = Session<ssl::stream<tcp::socket>>;
            auto session = std::make_shared<TlsSession>(self, std::move(socket), context);
            asio::co_spawn(io, session->Run(), asio::detached);
        } else {
            auto session = std::make_shared<Session<tcp::socket>>(self, std::move(socket), nullptr);
            asio::co_spawn(io, session->Run(), asio::detached);
        }
    }
}

namespace {

Result<std::shared_ptr<ssl::context>> LoadTls(const TlsFiles& files) {
    auto context = std::make_shared<ssl::context>(ssl::context::tls_server);
    context->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                         ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                         ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
    error_code ec;
    context->use_certificate_chain_file(files.certificate_chain_file, ec);
    if (ec) {
        return Error::InvalidArgument("cannot load TLS certificate " +
                                      files.certificate_chain_file + ": " + ec.message());
    }
    context->use_private_key_file(files.private_key_file, ssl::context::pem, ec);
    if (ec) {
        return Error::InvalidArgument("cannot load TLS key " + files.private_key_file + ": " +
                                      ec.message());
    }
    if (SSL_CTX_check_private_key(context->native_handle()) != 1) {
        return Error::InvalidArgument("TLS key " + files.private_key_file +
                                      " does not match certificate " +
                                      files.certificate_chain_file);
    }
    return context;
}

}  // namespace

IngressProxy::IngressProxy(asio::io_context& io, IngressSettings settings)
    : impl_(std::make_shared<Impl>(io, std::move(settings))) {}

IngressProxy::~IngressProxy() { Stop(); }

Result<void> IngressProxy::Start() {
    if (impl_->settings.tls) {
        auto tls = LoadTls(*impl_->settings.tls);
        if (!tls) return tls.error();
        std::lock_guard lock(impl_->tls_mutex);
        impl_->tls = std::move(*tls);
    }
    error_code ec;
    const auto address = asio::ip::make_address(impl_->settings.listen_address, ec);
    if (ec)
        return Error::InvalidArgument("bad ingress listen address " +
                                      impl_->settings.listen_address);
    const tcp::endpoint endpoint(address, impl_->settings.listen_port);
    auto& acceptor = impl_->acceptor;
    acceptor.open(endpoint.protocol(), ec);
    if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor.bind(endpoint, ec);
    if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
        return Error::Unavailable("ingress cannot listen on " + impl_->settings.listen_address +
                                  ":" + std::to_string(impl_->settings.listen_port) + ": " +
                                  ec.message());
    }
    impl_->bound_port = acceptor.local_endpoint().port();
    asio::co_spawn(impl_->io, impl_->AcceptLoop(), asio::detached);
    return {};
}

std::uint16_t IngressProxy::port() const { return impl_->bound_port; }

void IngressProxy::UpdateRoutes(ingress::RoutingTable table) {
    impl_->routes.store(std::make_shared<const ingress::RoutingTable>(std::move(table)));
}

Result<void> IngressProxy::ReloadTls() {
    if (!impl_->settings.tls)
        return Error::InvalidArgument("the ingress listener has no TLS configured");
    auto tls = LoadTls(*impl_->settings.tls);
    if (!tls) return tls.error();
    std::lock_guard lock(impl_->tls_mutex);
    impl_->tls = std::move(*tls);
    return {};
}

void IngressProxy::Stop() {
    asio::post(impl_->io, [impl = impl_] {
        if (impl->stopped) return;
        impl->stopped = true;
        error_code ignored;
        impl->acceptor.close(ignored);
        impl->pool_sweeper.cancel();
        impl->pool.Clear();
        // Abort may end a session and erase it from the set: iterate over a copy.
        const std::vector<SessionBase*> sessions(impl->sessions.begin(), impl->sessions.end());
        for (auto* session : sessions) session->Abort();
    });
}

void RunEventLoop(asio::io_context& io, std::chrono::microseconds busy_poll) {
    if (busy_poll <= std::chrono::microseconds::zero()) {
        io.run();
        return;
    }
    while (!io.stopped()) {
        // Sleeps until the next event, then serves what is ready and keeps looking for more.
        if (io.run_one() == 0) break;
        auto last_event = Clock::now();
        while (!io.stopped()) {
            if (io.poll() > 0) {
                last_event = Clock::now();
            } else if (Clock::now() - last_event >= busy_poll) {
                break;
            } else {
                ::sched_yield();
            }
        }
    }
}

void RaiseOpenFileLimit() {
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &limit);
    }
}

IngressProxy::Stats IngressProxy::stats() const {
    Stats stats{impl_->requests.load(), impl_->websockets_active.load(),
                impl_->upstream_connects.load()};
    for (std::size_t i = 0; i < stats.responses_by_class.size(); ++i) {
        stats.responses_by_class[i] = impl_->responses_by_class[i].load();
    }
    stats.gateway_errors = impl_->gateway_errors.load();
    stats.connections_open = impl_->connections_open.load();
    stats.connections_refused = impl_->connections_refused.load();
    return stats;
}

}  // namespace decloud::agent::proxy
