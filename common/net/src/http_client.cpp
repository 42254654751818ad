#include "decloud/net/http_client.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
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
    if (out.scheme == "https")
        return Error::InvalidArgument("https is not supported yet; use http");
    if (out.scheme != "http")
        return Error::InvalidArgument("'" + std::string(text) + "': scheme must be http");
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
          options(o),
          stream(executor) {}

    asio::strand<asio::any_io_executor> executor;
    std::string host;
    std::uint16_t port;
    ClientOptions options;
    beast::tcp_stream stream;
    beast::flat_buffer buffer;
    bool connected = false;
};

HttpClient::HttpClient(asio::any_io_executor executor, std::string host, std::uint16_t port,
                       ClientOptions options)
    : state_(std::make_shared<State>(executor, std::move(host), port, options)) {}

HttpClient::~HttpClient() {
    boost::system::error_code ec;
    state_->stream.socket().close(ec);
}

void HttpClient::Close() {
    asio::post(state_->executor, [state = state_] {
        boost::system::error_code ec;
        state->stream.socket().close(ec);
        state->connected = false;
    });
}

namespace {

Error MapError(const boost::system::error_code& ec, std::string_view what, const std::string& host,
               std::uint16_t port) {
    const std::string where = host + ":" + std::to_string(port);
    if (ec == beast::error::timeout)
        return Error::Timeout(std::string(what) + " " + where + " timed out");
    return Error::Unavailable(std::string(what) + " " + where + ": " + ec.message());
}

}  // namespace

asio::awaitable<Result<Response>> HttpClient::Send(Request request) {
    auto state = state_;
    request.set(http::field::host, state->host + ":" + std::to_string(state->port));
    if (request.find(http::field::user_agent) == request.end())
        request.set(http::field::user_agent, "decloud");
    request.keep_alive(true);
    request.prepare_payload();

    for (int attempt = 0; attempt < 2; ++attempt) {
        const bool reused = state->connected;
        if (!state->connected) {
            tcp::resolver resolver(state->executor);
            auto [rec, endpoints] = co_await resolver.async_resolve(
                state->host, std::to_string(state->port), asio::as_tuple(asio::use_awaitable));
            if (rec) co_return MapError(rec, "resolve", state->host, state->port);
            state->stream.expires_after(state->options.connect_timeout);
            auto [cec, ep] = co_await state->stream.async_connect(
                endpoints, asio::as_tuple(asio::use_awaitable));
            if (cec) {
                boost::system::error_code ignored;
                state->stream.socket().close(ignored);
                co_return MapError(cec, "connect to", state->host, state->port);
            }
            boost::system::error_code opt_ec;
            state->stream.socket().set_option(tcp::no_delay(true), opt_ec);
            state->buffer.clear();
            state->connected = true;
        }
        state->stream.expires_after(state->options.request_timeout);
        auto [wec, wn] =
            co_await http::async_write(state->stream, request, asio::as_tuple(asio::use_awaitable));
        http::response_parser<http::string_body> parser;
        parser.body_limit(state->options.body_limit);
        boost::system::error_code rec;
        if (!wec) {
            auto [ec, n] = co_await http::async_read(state->stream, state->buffer, parser,
                                                     asio::as_tuple(asio::use_awaitable));
            rec = ec;
        }
        const auto ec = wec ? wec : rec;
        if (ec) {
            boost::system::error_code ignored;
            state->stream.socket().close(ignored);
            state->connected = false;
            // A keep-alive connection the server already closed: try once on a fresh one.
            const bool stale = reused && ec != beast::error::timeout && !parser.is_header_done();
            if (stale && attempt == 0) continue;
            if (ec == http::error::body_limit)
                co_return Error::Unavailable("response from " + state->host +
                                             " exceeds the body limit");
            co_return MapError(ec, "request to", state->host, state->port);
        }
        Response response = parser.release();
        if (!response.keep_alive()) {
            boost::system::error_code ignored;
            state->stream.socket().close(ignored);
            state->connected = false;
        }
        co_return response;
    }
    co_return Error::Unavailable("request to " + state->host + " failed");
}

}  // namespace decloud::net
