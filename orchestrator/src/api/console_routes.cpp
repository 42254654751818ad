// /api/vms/{id}/console: serial consoles in the browser, bridged over the command channel.

#include "orchestrator/api/console_routes.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "api_support.hpp"
#include "decloud/common/ids.hpp"
#include "decloud/net/blocking.hpp"
#include "orchestrator/api/command_channels.hpp"
#include "orchestrator/api/routes.hpp"

namespace decloud::orchestrator::api {

namespace asio = boost::asio;
using common::Error;
using proto::ConsoleMessage;
using proto::ConsoleMessageType;
using Clock = std::chrono::steady_clock;

namespace {

// A WebSocket close reason must fit in a control frame (123 bytes).
std::string CloseReason(std::string reason) {
    if (reason.size() > 120) reason.resize(120);
    return reason;
}

std::string Seconds(std::chrono::milliseconds d) {
    return std::to_string(std::chrono::duration_cast<std::chrono::seconds>(d).count()) + " s";
}

}  // namespace

struct ConsoleBridge::Session {
    std::string id;
    std::string vm_id;
    std::string node_id;
    std::shared_ptr<net::WebSocketConnection> browser;
    Clock::time_point started;
    // Guarded by the bridge's mutex.
    bool ended = false;
    bool opened = false;  // the agent answered console.opened
    Clock::time_point last_activity;
};

std::size_t ConsoleBridge::Sessions() const {
    std::lock_guard lock(mutex_);
    return sessions_.size();
}

void ConsoleBridge::EndLocked(std::shared_ptr<Session> session, const std::string& reason) {
    session->ended = true;
    sessions_.erase(session->id);
    if (auto it = by_vm_.find(session->vm_id); it != by_vm_.end() && it->second == session->id)
        by_vm_.erase(it);
    session->browser->Close(CloseReason(reason));
    spdlog::info("console session {} of VM {} ended: {}", session->id, session->vm_id, reason);
}

asio::awaitable<void> ConsoleBridge::Serve(std::string vm_id, std::string node_id,
                                           std::shared_ptr<net::WebSocketConnection> browser) {
    auto self = shared_from_this();
    auto session = std::make_shared<Session>();
    session->id = common::NewUuid();
    session->vm_id = vm_id;
    session->node_id = node_id;
    session->browser = browser;
    session->started = Clock::now();
    session->last_activity = session->started;
    auto to_agent = [&](ConsoleMessageType type, std::string data, std::string reason) {
        ConsoleMessage m;
        m.type = type;
        m.session = session->id;
        m.vm_id = vm_id;
        m.data = std::move(data);
        m.reason = std::move(reason);
        return channels_.Send(node_id, proto::ToJson(m).dump());
    };
    {
        std::lock_guard lock(mutex_);
        if (auto it = by_vm_.find(vm_id); it != by_vm_.end()) {
            auto older = sessions_.at(it->second);
            EndLocked(older, "another console session of this VM took over");
        }
        sessions_.emplace(session->id, session);
        by_vm_[vm_id] = session->id;
    }
    spdlog::info("console session {} of VM {} on node {} opening", session->id, vm_id, node_id);
    if (!to_agent(ConsoleMessageType::kOpen, {}, {})) {
        std::lock_guard lock(mutex_);
        if (!session->ended) EndLocked(session, "the VM's node is not connected");
        co_return;
    }
    asio::co_spawn(executor_, Watch(session), asio::detached);

    std::string end_reason = "the browser closed the console";
    for (;;) {
        auto message = co_await browser->Read();
        if (!message) break;
        auto parsed = proto::ParseJson(*message);
        auto input = parsed ? proto::DecodeBrowserConsoleInput(*parsed)
                            : common::Result<std::string>(parsed.error());
        if (!input) {
            end_reason = "bad message from the browser: " + input.error().message;
            break;
        }
        {
            std::lock_guard lock(mutex_);
            if (session->ended) break;
            session->last_activity = Clock::now();
        }
        if (input->empty()) continue;  // a keep-alive
        if (!to_agent(ConsoleMessageType::kInput, std::move(*input), {})) {
            end_reason = "the VM's node disconnected";
            break;
        }
    }
    std::lock_guard lock(mutex_);
    if (!session->ended) {
        // The agent still has it open: tell it to let go of the console.
        to_agent(ConsoleMessageType::kClose, {}, end_reason);
        EndLocked(session, end_reason);
    }
}

// Looks at the session's limits at least once a second (so it needs no cancellation from other
// threads) and ends it when one is reached.
asio::awaitable<void> ConsoleBridge::Watch(std::shared_ptr<Session> session) {
    auto self = shared_from_this();
    asio::steady_timer timer(executor_);
    for (;;) {
        Clock::time_point deadline;
        {
            std::lock_guard lock(mutex_);
            if (session->ended) co_return;
            const auto now = Clock::now();
            std::string reason;
            if (!session->opened && now >= session->started + options_.open_timeout)
                reason = "the VM's node did not open the console within " +
                         Seconds(options_.open_timeout);
            else if (now >= session->started + options_.max_duration)
                reason = "console sessions last at most " + Seconds(options_.max_duration);
            else if (now >= session->last_activity + options_.idle_timeout)
                reason = "idle for " + Seconds(options_.idle_timeout);
            if (!reason.empty()) {
                ConsoleMessage close;
                close.type = ConsoleMessageType::kClose;
                close.session = session->id;
                close.reason = reason;
                channels_.Send(session->node_id, proto::ToJson(close).dump());
                EndLocked(session, reason);
                co_return;
            }
            deadline =
                std::min({now + std::chrono::seconds{1}, session->started + options_.max_duration,
                          session->last_activity + options_.idle_timeout});
            if (!session->opened)
                deadline = std::min(deadline, session->started + options_.open_timeout);
        }
        timer.expires_at(deadline);
        co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    }
}

void ConsoleBridge::OnAgentMessage(const std::string& node_id, const ConsoleMessage& message) {
    std::lock_guard lock(mutex_);
    auto it = sessions_.find(message.session);
    // Unknown: already ended here (a close crossed the agent's message), or not ours.
    if (it == sessions_.end() || it->second->node_id != node_id) return;
    auto session = it->second;
    switch (message.type) {
        case ConsoleMessageType::kOpened:
            session->opened = true;
            session->last_activity = Clock::now();
            return;
        case ConsoleMessageType::kOutput:
            session->last_activity = Clock::now();
            session->browser->Send(
                proto::BrowserConsoleOutput(message.data, message.dropped).dump());
            return;
        case ConsoleMessageType::kClosed:
            EndLocked(session, message.reason.empty() ? "the node ended the console session"
                                                      : message.reason);
            return;
        case ConsoleMessageType::kOpen:
        case ConsoleMessageType::kInput:
        case ConsoleMessageType::kClose:
            spdlog::warn("console: node {} sent {}; ignored", node_id, ToString(message.type));
            return;
    }
}

void ConsoleBridge::OnChannelClosed(const std::string& node_id) {
    std::lock_guard lock(mutex_);
    std::vector<std::shared_ptr<Session>> ending;
    for (const auto& [id, session] : sessions_)
        if (session->node_id == node_id) ending.push_back(session);
    for (const auto& session : ending) EndLocked(session, "the VM's node disconnected");
}

namespace {

// The caller's session from the Authorization header or the access_token query parameter.
asio::awaitable<common::Result<app::Principal>> ConsoleUser(ApiContext& api,
                                                            const net::RequestContext& ctx) {
    std::string token(BearerToken(ctx.request));
    if (token.empty()) token = QueryParam(ctx.request.target(), "access_token");
    if (token.empty())
        co_return Error::Unauthenticated(
            "sign in first: send 'Authorization: Bearer <token>' or ?access_token=<token>");
    co_return co_await net::RunBlocking(*api.blocking,
                                        [&] { return api.auth->Authenticate(token); });
}

// The caller's VM with the node it runs on, or the reason there is no console to open.
asio::awaitable<common::Result<ports::VmRecord>> ConsoleVm(ApiContext& api,
                                                           const net::RequestContext& ctx) {
    auto who = co_await ConsoleUser(api, ctx);
    if (!who) co_return who.error();
    const std::string id(ctx.Param("id"));
    auto vm = co_await net::RunBlocking(*api.blocking,
                                        [&] { return api.vms->Get(who->wallet_address, id); });
    if (!vm) co_return vm.error();
    if (vm->node_id.empty()) co_return Error::Conflict("the VM is not placed on a node yet");
    if (!api.consoles || !api.channels || !api.channels->IsConnected(vm->node_id))
        co_return Error::Unavailable(
            "the VM's node is not connected to this orchestrator; try again shortly");
    co_return vm;
}

}  // namespace

void AddConsoleRoutes(net::Router& router, std::shared_ptr<ApiContext> api) {
    router.AddWebSocket(
        "/api/vms/{id}/console",
        [api](net::RequestContext& ctx,
              std::shared_ptr<net::WebSocketConnection> ws) -> asio::awaitable<void> {
            // Checked again: the VM may have moved between the upgrade check and now.
            auto vm = co_await ConsoleVm(*api, ctx);
            if (!vm) {
                ws->Close(CloseReason(vm.error().message));
                co_return;
            }
            auto serving = api->consoles->Serve(vm->id, vm->node_id, ws);
            co_await std::move(serving);
        },
        [api](net::RequestContext& ctx) -> asio::awaitable<std::optional<net::Response>> {
            auto vm = co_await ConsoleVm(*api, ctx);
            if (!vm) co_return ErrorResponse(ctx, vm.error());
            co_return std::nullopt;
        });
}

}  // namespace decloud::orchestrator::api
