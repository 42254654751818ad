#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "decloud/common/result.hpp"
#include "decloud/net/http_client.hpp"

namespace decloud::net {

// A WebSocket carrying text messages, either end. Read from one coroutine at a time. Send and
// Close are thread-safe and never block: messages are queued and written one at a time on the
// connection's strand (Beast allows one write in flight). A peer that lets more than
// kMaxQueued messages pile up is disconnected.
class WebSocketConnection : public std::enable_shared_from_this<WebSocketConnection> {
  public:
    static constexpr std::size_t kMaxQueued = 1024;

    virtual ~WebSocketConnection() = default;
    // The next message; kUnavailable (with the close reason) once the connection is closed.
    virtual asio::awaitable<common::Result<std::string>> Read() = 0;
    virtual void Send(std::string text) = 0;
    // Sends a close frame after the queued messages; idempotent.
    virtual void Close(std::string reason = {}) = 0;
    virtual bool IsOpen() const = 0;
};

// Client side: connects to ws://host:port/target with extra handshake headers.
asio::awaitable<common::Result<std::shared_ptr<WebSocketConnection>>> ConnectWebSocket(
    asio::any_io_executor executor, std::string host, std::uint16_t port, std::string target,
    std::vector<std::pair<std::string, std::string>> headers, ClientOptions options = {});

}  // namespace decloud::net
