#include "websocket_impl.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/websocket.hpp>

namespace decloud::net {

namespace detail {

using common::Error;
using tcp = asio::ip::tcp;

BeastWebSocket::BeastWebSocket(websocket::stream<beast::tcp_stream> ws) : ws_(std::move(ws)) {
    ws_.text(true);
}

asio::awaitable<common::Result<std::string>> BeastWebSocket::Read() {
    read_buffer_.clear();
    auto [ec, n] = co_await ws_.async_read(read_buffer_, asio::as_tuple(asio::use_awaitable));
    if (ec) {
        open_ = false;
        if (ec == websocket::error::closed)
            co_return Error::Unavailable(
                "closed: " + std::string(ws_.reason().reason.data(), ws_.reason().reason.size()));
        co_return Error::Unavailable("websocket: " + ec.message());
    }
    co_return beast::buffers_to_string(read_buffer_.data());
}

void BeastWebSocket::Send(std::string text) {
    asio::post(
        ws_.get_executor(), [self = std::static_pointer_cast<BeastWebSocket>(shared_from_this()),
                             text = std::move(text)]() mutable {
            if (!self->open_ || self->close_requested_) return;
            if (self->queue_.size() >= kMaxQueued) {
                spdlog::warn("websocket peer is not reading; closing it");
                self->CloseWith(websocket::close_code::policy_error, "too many queued messages");
                return;
            }
            self->queue_.push_back(std::move(text));
            self->StartWriter();
        });
}

void BeastWebSocket::Close(std::string reason) {
    CloseWith(websocket::close_code::normal, std::move(reason));
}

void BeastWebSocket::CloseWith(websocket::close_code code, std::string reason) {
    asio::post(ws_.get_executor(),
               [self = std::static_pointer_cast<BeastWebSocket>(shared_from_this()), code,
                reason = std::move(reason)]() mutable {
                   if (self->close_requested_ || !self->open_) return;
                   self->close_requested_ = true;
                   self->close_reason_ = websocket::close_reason(code, reason);
                   self->StartWriter();
               });
}

void BeastWebSocket::StartWriter() {
    if (writing_) return;
    writing_ = true;
    asio::co_spawn(
        ws_.get_executor(),
        [self = std::static_pointer_cast<BeastWebSocket>(shared_from_this())] {
            return self->WriteLoop();
        },
        asio::detached);
}

asio::awaitable<void> BeastWebSocket::WriteLoop() {
    while (!queue_.empty() && open_) {
        auto [ec, n] = co_await ws_.async_write(asio::buffer(queue_.front()),
                                                asio::as_tuple(asio::use_awaitable));
        queue_.pop_front();
        if (ec) {
            open_ = false;
            queue_.clear();
            break;
        }
    }
    if (close_requested_ && open_) {
        auto [ec] = co_await ws_.async_close(close_reason_, asio::as_tuple(asio::use_awaitable));
        open_ = false;
        if (ec && ec != asio::error::operation_aborted) beast::get_lowest_layer(ws_).close();
    }
    writing_ = false;
}

}  // namespace detail

asio::awaitable<common::Result<std::shared_ptr<WebSocketConnection>>> ConnectWebSocket(
    asio::any_io_executor executor, std::string host, std::uint16_t port, std::string target,
    std::vector<std::pair<std::string, std::string>> headers, ClientOptions options) {
    namespace websocket = beast::websocket;
    using tcp = asio::ip::tcp;
    auto strand = asio::make_strand(executor);
    tcp::resolver resolver(strand);
    auto [rec, results] = co_await resolver.async_resolve(host, std::to_string(port),
                                                          asio::as_tuple(asio::use_awaitable));
    if (rec) co_return common::Error::Unavailable("resolve " + host + ": " + rec.message());
    beast::tcp_stream stream(strand);
    stream.expires_after(options.connect_timeout);
    auto [cec, ep] = co_await stream.async_connect(results, asio::as_tuple(asio::use_awaitable));
    if (cec) {
        if (cec == beast::error::timeout) co_return common::Error::Timeout("connect timed out");
        co_return common::Error::Unavailable("connect: " + cec.message());
    }
    websocket::stream<beast::tcp_stream> ws(std::move(stream));
    ws.set_option(websocket::stream_base::decorator([headers](websocket::request_type& req) {
        for (const auto& [k, v] : headers) req.set(k, v);
    }));
    beast::get_lowest_layer(ws).expires_after(options.request_timeout);
    auto [hec] = co_await ws.async_handshake(host + ":" + std::to_string(port), target,
                                             asio::as_tuple(asio::use_awaitable));
    if (hec) {
        if (hec == beast::error::timeout)
            co_return common::Error::Timeout("websocket handshake timed out");
        co_return common::Error::Unavailable("websocket handshake: " + hec.message());
    }
    beast::get_lowest_layer(ws).expires_never();
    ws.set_option(websocket::stream_base::timeout::suggested(beast::role_type::client));
    ws.read_message_max(options.body_limit);
    co_return std::shared_ptr<WebSocketConnection>(
        std::make_shared<detail::BeastWebSocket>(std::move(ws)));
}

}  // namespace decloud::net
