#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <boost/asio/thread_pool.hpp>

#include "agent/app/registration.hpp"
#include "decloud/net/http_client.hpp"
#include "decloud/net/websocket.hpp"
#include "decloud/proto/console_messages.hpp"
#include "decloud/proto/vm_messages.hpp"

namespace decloud::agent::app {

struct LinkOptions {
    std::string orchestrator_host;
    std::uint16_t orchestrator_port = 8080;
    std::string base_path;  // path prefix of the orchestrator URL, usually empty
    std::string agent_version;
    double heartbeat_jitter = 0.1;  // ± fraction of the interval
    std::chrono::milliseconds initial_backoff{1'000};
    std::chrono::milliseconds max_backoff{60'000};
    // Every this many heartbeats the agent also reports its VMs (and after every command).
    std::uint32_t report_every_heartbeats = 4;
    // Keep the command channel (a WebSocket) open so commands arrive at once; heartbeat
    // replies still carry them when the channel is down.
    bool command_channel = true;
    net::ClientOptions http;
};

// What the link reports about itself (for /healthz and logs). Thread-safe snapshot.
struct LinkStatus {
    bool registered = false;
    std::string node_id;
    bool behind_cgnat = false;
    std::string cgnat_reason;
    std::uint64_t heartbeats_sent = 0;
    std::uint64_t failures = 0;
    std::string last_error;
    std::chrono::steady_clock::time_point last_success{};
    bool channel_open = false;
    std::uint64_t channel_commands = 0;  // commands received on the channel
};

// The agent's half of decision 1: it always dials out. Registers with the node key, then
// heartbeats at the interval the orchestrator asks for (with jitter). When the orchestrator is
// unreachable it backs off exponentially and keeps trying; when the orchestrator answers 401 or
// 404 (it forgot the node or the token) it registers again. Never throws out of Run().
class OrchestratorLink {
  public:
    using UsageSource = std::function<proto::NodeUsage()>;
    using Clock = std::function<common::TimePoint()>;
    // Receives the commands a heartbeat brought (on the link's executor; must not block).
    using CommandHandler = std::function<void(std::vector<proto::Command>)>;
    // Produces the report of this node's VMs (blocking is fine: it runs on `blocking`).
    using ReportSource = std::function<common::Result<proto::VmReport>()>;
    // Told which report the orchestrator accepted (on the link's executor; must not block).
    using ReportDelivered = std::function<void(const proto::VmReport&)>;

    OrchestratorLink(boost::asio::any_io_executor executor, LinkOptions options,
                     crypto::Ed25519KeyPair key, NodeProfile profile,
                     proto::NodeResources resources, proto::ComputeScore compute, UsageSource usage,
                     Clock clock);

    // Set before Run(). Without them the agent heartbeats but manages no VMs.
    void SetCommandHandler(CommandHandler handler) { command_handler_ = std::move(handler); }
    void SetReportSource(ReportSource source, boost::asio::thread_pool& blocking,
                         ReportDelivered delivered = {}) {
        report_source_ = std::move(source);
        report_delivered_ = std::move(delivered);
        blocking_ = &blocking;
    }
    // Relaying (both roles): the heartbeat carries `report()` and hands the relay state the
    // orchestrator answers with to `apply` (both blocking: they run on `blocking`).
    using RelayReportSource = std::function<proto::RelayReport()>;
    using RelayStateHandler = std::function<void(const proto::RelayDesiredState&)>;
    void SetRelayHooks(RelayReportSource report, RelayStateHandler apply,
                       boost::asio::thread_pool& blocking) {
        relay_report_ = std::move(report);
        relay_apply_ = std::move(apply);
        relay_blocking_ = &blocking;
    }
    // Console messages (proto/console_messages.hpp) arriving on the command channel go to
    // `on_message` (on the link's executor; must not block) with a `send` that answers on the
    // same channel; `on_channel_closed` runs whenever that channel closes.
    using ConsoleSend = std::function<void(std::string)>;
    using ConsoleHandler = std::function<void(proto::ConsoleMessage, ConsoleSend)>;
    void SetConsoleHooks(ConsoleHandler on_message, std::function<void()> on_channel_closed) {
        console_handler_ = std::move(on_message);
        console_channel_closed_ = std::move(on_channel_closed);
    }
    // Thread-safe: queues a command result for the orchestrator and wakes the link, which sends
    // it (and a fresh VM report) at once, keeping it until the orchestrator has accepted it.
    void PostResult(proto::CommandResult result);

    // Runs until Stop(); spawn it with co_spawn.
    boost::asio::awaitable<void> Run();
    // Keeps the command channel open while registered, reconnecting with back-off; runs until
    // Stop(). Spawn it beside Run() (same executor).
    boost::asio::awaitable<void> RunChannel();
    void Stop();
    LinkStatus Status() const;

  private:
    enum class Outcome { kOk, kRejected, kRetry };
    boost::asio::awaitable<Outcome> Register();
    boost::asio::awaitable<Outcome> Heartbeat();
    boost::asio::awaitable<void> Wait(std::chrono::milliseconds delay);
    boost::asio::awaitable<Outcome> SendResults();
    boost::asio::awaitable<Outcome> SendReport();
    boost::asio::awaitable<Outcome> Post(std::string path, std::string body);
    void NoteFailure(const std::string& what);

    boost::asio::any_io_executor executor_;
    LinkOptions options_;
    crypto::Ed25519KeyPair key_;
    NodeProfile profile_;
    proto::NodeResources resources_;
    proto::ComputeScore compute_;
    UsageSource usage_;
    Clock clock_;
    net::HttpClient client_;
    boost::asio::steady_timer timer_;
    std::mt19937_64 random_;
    std::atomic<bool> stopping_{false};
    std::atomic<bool> wake_pending_{false};

    CommandHandler command_handler_;
    ConsoleHandler console_handler_;
    std::function<void()> console_channel_closed_;
    ReportSource report_source_;
    ReportDelivered report_delivered_;
    boost::asio::thread_pool* blocking_ = nullptr;
    RelayReportSource relay_report_;
    RelayStateHandler relay_apply_;
    boost::asio::thread_pool* relay_blocking_ = nullptr;
    std::deque<proto::CommandResult> outbox_;  // guarded by status_mutex_
    boost::asio::steady_timer channel_timer_;
    std::shared_ptr<net::WebSocketConnection> channel_;
    bool report_due_ = false;  // guarded by status_mutex_
    std::uint32_t heartbeats_since_report_ = 0;

    std::string node_token_;
    std::chrono::milliseconds interval_{15'000};
    mutable std::mutex status_mutex_;
    LinkStatus status_;
};

}  // namespace decloud::agent::app
