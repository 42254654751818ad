#include "decloud/net/http_client.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/src.hpp>  // Boost.URL is compiled into this translation unit only

namespace decloud::net {

using common::Error;
using common::Result;
using tcp = asio::ip::tcp;

Result<HttpUrl> ParseHttpUrl(std::string_view text) {
    auto parsed = boost::urls::parse_uri(text);
    if (!parsed) return Error::InvalidArgument("'" + std::string(text) + "' is not a URL");
    const auto& url = *parsed;
    HttpUrl out;
    out.scheme = url.scheme();
    if (out.scheme != "http" && out.scheme != "https")
        return Error::InvalidArgument("'" + std::string(text) + "': scheme must be http or https");
    out.port = out.scheme == "https" ? 443 : 80;
    out.host = url.host_address();
    if (url.host_type() == boost::urls::host_type::ipv6) {
        // host_address() of [::1] is "::1"; keep it bracket-free for the resolver.
        out.host = url.host_address();
    }
    if (out.host.empty())
        return Error::InvalidArgument("'" + std::string(text) + "': host missing");
    if (url.has_port()) {
        const auto port = url.port_number();
        if (port == 0) return Error::InvalidArgument("'" + std::string(text) + "': invalid port");
        out.port = port;
    }
    out.base_path = url.path();
    while (!out.base_path.empty() && out.base_path.back() == '/') out.base_path.pop_back();
    if (url.has_query() || url.has_fragment())
        return Error::InvalidArgument("'" + std::string(text) + "': no query or fragment allowed");
    return out;
}

struct HttpClient::State {
    State(asio::any_io_executor ex, std::string h, std::uint16_t p, ClientOptions o)
        : executor(asio::make_strand(ex)),
          host(std::move(h)),
          port(p),
          options(std::move(o)),
          stream(executor) {}

    // The TCP stream under TLS or alone; timeouts and closing act on it.
    beast::tcp_stream& tcp() { return tls_stream ? tls_stream->next_layer() : stream; }
    void CloseSocket() {
        boost::system::error_code ec;
        tcp().socket().close(ec);
        connected = false;
    }

    asio::strand<asio::any_io_executor> executor;
    std::string host;
    std::uint16_t port;
    ClientOptions options;
    beast::tcp_stream stream;  // plain HTTP
    std::unique_ptr<asio::ssl::context> tls_context;
    // A TLS session cannot be reused after its connection closed: recreated on every connect.
    std::optional<beast::ssl_stream<beast::tcp_stream>> tls_stream;
    beast::flat_buffer buffer;
    bool connected = false;
};

HttpClient::HttpClient(asio::any_io_executor executor, std::string host, std::uint16_t port,
                       ClientOptions options)
    : state_(std::make_shared<State>(executor, std::move(host), port, std::move(options))) {}

HttpClient::~HttpClient() { state_->CloseSocket(); }

void HttpClient::Close() {
    asio::post(state_->executor, [state = state_] { state->CloseSocket(); });
}

namespace {

Error MapError(const boost::system::error_code& ec, std::string_view what, const std::string& host,
               std::uint16_t port) {
    const std::string where = host + ":" + std::to_string(port);
    if (ec == beast::error::timeout)
        return Error::Timeout(std::string(what) + " " + where + " timed out");
    return Error::Unavailable(std::string(what) + " " + where + ": " + ec.message());
}

Result<std::unique_ptr<asio::ssl::context>> MakeTlsContext(const ClientOptions& options) {
    auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
    ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                     asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                     asio::ssl::context::no_tlsv1_1);
    ctx->set_verify_mode(asio::ssl::verify_peer);
    boost::system::error_code ec;
    if (options.ca_file.empty())
        ctx->set_default_verify_paths(ec);
    else
        ctx->load_verify_file(options.ca_file, ec);
    if (ec)
        return Error::InvalidArgument("TLS trust store " +
                                      (options.ca_file.empty() ? "(system)" : options.ca_file) +
                                      ": " + ec.message());
    return ctx;
}

// Connects (and for TLS, handshakes with SNI and host name verification).
asio::awaitable<boost::system::error_code> Connect(HttpClient::State& state,
                                                   const tcp::resolver::results_type& endpoints) {
    if (state.options.tls) {
        state.tls_stream.emplace(state.executor, *state.tls_context);
        boost::system::error_code not_ip;
        asio::ip::make_address(state.host, not_ip);
        // SNI names hosts only; RFC 6066 leaves IP literals out.
        if (not_ip &&
            // SSL_set_tlsext_host_name() without the macro's C cast.
            !SSL_ctrl(state.tls_stream->native_handle(), SSL_CTRL_SET_TLSEXT_HOSTNAME,
                      TLSEXT_NAMETYPE_host_name, const_cast<char*>(state.host.c_str())))
            co_return boost::system::error_code(static_cast<int>(::ERR_get_error()),
                                                asio::error::get_ssl_category());
        state.tls_stream->set_verify_callback(asio::ssl::host_name_verification(state.host));
    } else {
        state.tls_stream.reset();
    }
    state.tcp().expires_after(state.options.connect_timeout);
    auto [cec, ep] =
        co_await state.tcp().async_connect(endpoints, asio::as_tuple(asio::use_awaitable));
    if (cec || !state.tls_stream) co_return cec;
    auto [hec] = co_await state.tls_stream->async_handshake(asio::ssl::stream_base::client,
                                                            asio::as_tuple(asio::use_awaitable));
    co_return hec;
}

}  // namespace

asio::awaitable<Result<Response>> HttpClient::Send(Request request) {
    auto state = state_;
    const bool ipv6 = state->host.find(':') != std::string::npos;
    request.set(http::field::host,
                (ipv6 ? "[" + state->host + "]" : state->host) + ":" + std::to_string(state->port));
    if (request.find(http::field::user_agent) == request.end())
        request.set(http::field::user_agent, "decloud");
    request.keep_alive(true);
    request.prepare_payload();

    if (state->options.tls && !state->tls_context) {
        auto ctx = MakeTlsContext(state->options);
        if (!ctx) co_return ctx.error();
        state->tls_context = std::move(*ctx);
    }

    for (int attempt = 0; attempt < 2; ++attempt) {
        const bool reused = state->connected;
        if (!state->connected) {
            tcp::resolver resolver(state->executor);
            auto [rec, endpoints] = co_await resolver.async_resolve(
                state->host, std::to_string(state->port), asio::as_tuple(asio::use_awaitable));
            if (rec) co_return MapError(rec, "resolve", state->host, state->port);
            if (auto cec = co_await Connect(*state, endpoints)) {
                state->CloseSocket();
                co_return MapError(cec, state->options.tls ? "TLS connection to" : "connect to",
                                   state->host, state->port);
            }
            boost::system::error_code opt_ec;
            state->tcp().socket().set_option(tcp::no_delay(true), opt_ec);
            state->buffer.clear();
            state->connected = true;
        }
        state->tcp().expires_after(state->options.request_timeout);
        http::response_parser<http::string_body> parser;
        parser.body_limit(state->options.body_limit);
        boost::system::error_code wec, rec;
        if (state->tls_stream) {
            std::tie(wec, std::ignore) = co_await http::async_write(
                *state->tls_stream, request, asio::as_tuple(asio::use_awaitable));
            if (!wec)
                std::tie(rec, std::ignore) = co_await http::async_read(
                    *state->tls_stream, state->buffer, parser, asio::as_tuple(asio::use_awaitable));
        } else {
            std::tie(wec, std::ignore) = co_await http::async_write(
                state->stream, request, asio::as_tuple(asio::use_awaitable));
            if (!wec)
                std::tie(rec, std::ignore) = co_await http::async_read(
                    state->stream, state->buffer, parser, asio::as_tuple(asio::use_awaitable));
        }
        const auto ec = wec ? wec : rec;
        if (ec) {
            state->CloseSocket();
            // A keep-alive connection the server already closed: try once on a fresh one.
            const bool stale = reused && ec != beast::error::timeout && !parser.is_header_done();
            if (stale && attempt == 0) continue;
            if (ec == http::error::body_limit)
                co_return Error::Unavailable("response from " + state->host +
                                             " exceeds the body limit");
            co_return MapError(ec, "request to", state->host, state->port);
        }
        Response response = parser.release();
        if (!response.keep_alive()) state->CloseSocket();
        co_return response;
    }
    co_return Error::Unavailable("request to " + state->host + " failed");
}

}  // namespace decloud::net
