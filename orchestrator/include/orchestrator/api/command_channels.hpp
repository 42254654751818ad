#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "decloud/net/websocket.hpp"

namespace decloud::orchestrator::api {

struct ApiContext;

// The agents' command channels connected to this replica (decision 1: the agent dials out and
// keeps a WebSocket open). Notify(node) pushes the node's pending commands down its channel at
// once; deliveries to one node never overlap, so commands arrive in the order they were issued.
// Thread-safe.
class CommandChannels : public std::enable_shared_from_this<CommandChannels> {
  public:
    CommandChannels(boost::asio::any_io_executor executor, std::shared_ptr<ApiContext> api)
        : executor_(std::move(executor)), api_(std::move(api)) {}

    // A channel replaces an older one of the same node (the agent reconnected).
    void Attach(const std::string& node_id, std::shared_ptr<net::WebSocketConnection> channel);
    // Forgets the channel if it is still the node's current one.
    void Detach(const std::string& node_id, const net::WebSocketConnection* channel);
    void Notify(const std::string& node_id);
    // Puts one message on the node's current channel (console sessions); false if it has none.
    bool Send(const std::string& node_id, std::string text);
    bool IsConnected(const std::string& node_id) const;
    std::size_t Connected() const;

  private:
    struct Entry {
        std::weak_ptr<net::WebSocketConnection> channel;
        bool delivering = false;
        bool again = false;
    };
    boost::asio::awaitable<void> Deliver(std::string node_id);

    boost::asio::any_io_executor executor_;
    std::shared_ptr<ApiContext> api_;
    mutable std::mutex mutex_;
    std::unordered_map<std::string, Entry> channels_;
};

}  // namespace decloud::orchestrator::api
