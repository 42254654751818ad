#pragma once

// Private: the Beast-backed WebSocketConnection shared by server and client sides.

#include <atomic>
#include <deque>
#include <mutex>

#include <boost/asio/strand.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket/stream.hpp>

#include "decloud/net/websocket.hpp"

namespace decloud::net::detail {

namespace websocket = beast::websocket;

class BeastWebSocket final : public WebSocketConnection {
  public:
    explicit BeastWebSocket(websocket::stream<beast::tcp_stream> ws);

    asio::awaitable<common::Result<std::string>> Read() override;
    void Send(std::string text) override;
    void Close(std::string reason = {}) override;
    bool IsOpen() const override { return open_.load(); }

    // Close with a given code (server shutdown uses going_away).
    void CloseWith(websocket::close_code code, std::string reason);
    websocket::stream<beast::tcp_stream>& stream() { return ws_; }

  private:
    void StartWriter();
    asio::awaitable<void> WriteLoop();

    websocket::stream<beast::tcp_stream> ws_;
    beast::flat_buffer read_buffer_;
    std::deque<std::string> queue_;  // touched only on the strand
    bool writing_ = false;
    bool close_requested_ = false;
    websocket::close_reason close_reason_;
    std::atomic<bool> open_{true};
};

}  // namespace decloud::net::detail
