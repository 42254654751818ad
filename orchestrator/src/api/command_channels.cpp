#include "orchestrator/api/command_channels.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include "decloud/net/blocking.hpp"
#include "decloud/proto/vm_messages.hpp"
#include "orchestrator/api/routes.hpp"

namespace decloud::orchestrator::api {

namespace asio = boost::asio;

void CommandChannels::Attach(const std::string& node_id,
                             std::shared_ptr<net::WebSocketConnection> channel) {
    std::shared_ptr<net::WebSocketConnection> replaced;
    {
        std::lock_guard lock(mutex_);
        auto& entry = channels_[node_id];
        replaced = entry.channel.lock();
        entry.channel = std::move(channel);
    }
    if (replaced) replaced->Close("replaced by a newer channel of this node");
}

void CommandChannels::Detach(const std::string& node_id, const net::WebSocketConnection* channel) {
    std::lock_guard lock(mutex_);
    auto it = channels_.find(node_id);
    if (it == channels_.end()) return;
    auto current = it->second.channel.lock();
    if (current && current.get() != channel) return;  // a newer channel took over
    if (it->second.delivering) {
        it->second.channel.reset();  // the running delivery ends and erases it
        return;
    }
    channels_.erase(it);
}

bool CommandChannels::Send(const std::string& node_id, std::string text) {
    std::shared_ptr<net::WebSocketConnection> channel;
    {
        std::lock_guard lock(mutex_);
        auto it = channels_.find(node_id);
        if (it != channels_.end()) channel = it->second.channel.lock();
    }
    if (!channel || !channel->IsOpen()) return false;
    channel->Send(std::move(text));
    return true;
}

bool CommandChannels::IsConnected(const std::string& node_id) const {
    std::lock_guard lock(mutex_);
    auto it = channels_.find(node_id);
    return it != channels_.end() && !it->second.channel.expired();
}

std::size_t CommandChannels::Connected() const {
    std::lock_guard lock(mutex_);
    std::size_t n = 0;
    for (const auto& [id, entry] : channels_)
        if (!entry.channel.expired()) ++n;
    return n;
}

void CommandChannels::Notify(const std::string& node_id) {
    {
        std::lock_guard lock(mutex_);
        auto it = channels_.find(node_id);
        if (it == channels_.end() || it->second.channel.expired()) return;
        if (it->second.delivering) {
            it->second.again = true;  // the running delivery takes another round
            return;
        }
        it->second.delivering = true;
    }
    asio::co_spawn(executor_, Deliver(node_id), asio::detached);
}

asio::awaitable<void> CommandChannels::Deliver(std::string node_id) {
    auto self = shared_from_this();
    for (;;) {
        std::shared_ptr<net::WebSocketConnection> channel;
        {
            std::lock_guard lock(mutex_);
            auto& entry = channels_[node_id];
            entry.again = false;
            channel = entry.channel.lock();
            if (!channel || !channel->IsOpen()) {
                channels_.erase(node_id);
                co_return;
            }
        }
        try {
            auto commands = co_await net::RunBlocking(
                *api_->blocking, [&] { return api_->vms->TakeCommands(node_id); });
            if (!commands) {
                spdlog::warn("commands for node {} not pushed: {}", node_id,
                             commands.error().message);
            } else if (!commands->empty()) {
                channel->Send(proto::ToJson(proto::ChannelPush{std::move(*commands)}).dump());
            }
        } catch (const std::exception& e) {
            // Delivered again after vms.command_redelivery; never take the replica down.
            spdlog::error("pushing commands to node {}: {}", node_id, e.what());
        }
        std::lock_guard lock(mutex_);
        auto it = channels_.find(node_id);
        if (it == channels_.end()) co_return;
        if (!it->second.again) {
            it->second.delivering = false;
            if (it->second.channel.expired()) channels_.erase(it);
            co_return;
        }
    }
}

}  // namespace decloud::orchestrator::api
