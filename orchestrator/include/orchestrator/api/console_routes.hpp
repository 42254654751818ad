#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "decloud/net/http_server.hpp"
#include "decloud/net/websocket.hpp"
#include "decloud/proto/console_messages.hpp"

namespace decloud::orchestrator::api {

struct ApiContext;
class CommandChannels;

struct ConsoleOptions {
    // A session ends after this long without a byte either way...
    std::chrono::milliseconds idle_timeout{std::chrono::minutes{15}};
    // ...and after this long in any case.
    std::chrono::milliseconds max_duration{std::chrono::hours{4}};
    // The agent must answer console.open within this.
    std::chrono::milliseconds open_timeout{std::chrono::seconds{20}};
};

// Bridges browsers' console WebSockets (GET /api/vms/{id}/console) to the VMs' nodes over their
// command channels (proto/console_messages.hpp). One session per VM on this replica: a newer one
// takes over and the older browser gets the close reason "another console session of this VM
// took over" (the agent does the same for its libvirt stream). Every session ends with a close
// frame whose reason says why. Thread-safe.
class ConsoleBridge : public std::enable_shared_from_this<ConsoleBridge> {
  public:
    ConsoleBridge(boost::asio::any_io_executor executor, CommandChannels& channels,
                  ConsoleOptions options = {})
        : executor_(std::move(executor)), channels_(channels), options_(options) {}

    // Serves one browser's console of `vm_id` on `node_id` until either side ends it.
    boost::asio::awaitable<void> Serve(std::string vm_id, std::string node_id,
                                       std::shared_ptr<net::WebSocketConnection> browser);
    // A console message the node sent on its command channel.
    void OnAgentMessage(const std::string& node_id, const proto::ConsoleMessage& message);
    // The node's command channel closed: its sessions end (the agent ended them too).
    void OnChannelClosed(const std::string& node_id);
    std::size_t Sessions() const;

  private:
    struct Session;
    // Mutex held: forgets the session and closes the browser's socket with `reason`.
    void EndLocked(std::shared_ptr<Session> session, const std::string& reason);
    boost::asio::awaitable<void> Watch(std::shared_ptr<Session> session);

    boost::asio::any_io_executor executor_;
    CommandChannels& channels_;
    ConsoleOptions options_;
    mutable std::mutex mutex_;
    std::unordered_map<std::string, std::shared_ptr<Session>> sessions_;  // by session id
    std::unordered_map<std::string, std::string> by_vm_;                  // vm id -> session id
};

// GET /api/vms/{id}/console: the VM's serial console as a WebSocket, for its owner only (others
// get 404). The access token comes as 'Authorization: Bearer <token>' or, for browsers (which
// cannot set headers on a WebSocket), as the query parameter access_token.
void AddConsoleRoutes(net::Router& router, std::shared_ptr<ApiContext> api);

}  // namespace decloud::orchestrator::api
