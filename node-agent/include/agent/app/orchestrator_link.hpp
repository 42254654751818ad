#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "agent/app/registration.hpp"
#include "decloud/net/http_client.hpp"

namespace decloud::agent::app {

struct LinkOptions {
    std::string orchestrator_host;
    std::uint16_t orchestrator_port = 8080;
    std::string base_path;  // path prefix of the orchestrator URL, usually empty
    std::string agent_version;
    double heartbeat_jitter = 0.1;  // ± fraction of the interval
    std::chrono::milliseconds initial_backoff{1'000};
    std::chrono::milliseconds max_backoff{60'000};
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
};

// The agent's half of decision 1: it always dials out. Registers with the node key, then
// heartbeats at the interval the orchestrator asks for (with jitter). When the orchestrator is
// unreachable it backs off exponentially and keeps trying; when the orchestrator answers 401 or
// 404 (it forgot the node or the token) it registers again. Never throws out of Run().
class OrchestratorLink {
  public:
    using UsageSource = std::function<proto::NodeUsage()>;
    using Clock = std::function<common::TimePoint()>;

    OrchestratorLink(boost::asio::any_io_executor executor, LinkOptions options,
                     crypto::Ed25519KeyPair key, NodeProfile profile,
                     proto::NodeResources resources, proto::ComputeScore compute, UsageSource usage,
                     Clock clock);

    // Runs until Stop(); spawn it with co_spawn.
    boost::asio::awaitable<void> Run();
    void Stop();
    LinkStatus Status() const;

  private:
    enum class Outcome { kOk, kRejected, kRetry };
    boost::asio::awaitable<Outcome> Register();
    boost::asio::awaitable<Outcome> Heartbeat();
    boost::asio::awaitable<void> Wait(std::chrono::milliseconds delay);
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

    std::string node_token_;
    std::chrono::milliseconds interval_{15'000};
    mutable std::mutex status_mutex_;
    LinkStatus status_;
};

}  // namespace decloud::agent::app
