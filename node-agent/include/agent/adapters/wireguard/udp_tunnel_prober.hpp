#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "agent/domain/relay/tunnel_probe.hpp"
#include "agent/ports/tunnel_latency.hpp"
#include "decloud/process/unique_fd.hpp"

namespace decloud::agent::adapters {

struct UdpTunnelProberOptions {
    // The UDP port both ends use: probes go to it, the echo server listens on it. It must lie
    // outside the relay's public port range (a forwarded port would send probes to a VM).
    // 0: any free port for the echo server, and probes go to that port too (tests).
    std::uint16_t port = 51819;
    std::chrono::milliseconds interval{10000};  // between rounds
    std::chrono::milliseconds timeout{1000};    // how long a round waits for echoes
    unsigned probes_per_round = 3;
    // Probes are echoed only when they arrived on an interface this accepts (by name): the
    // relay interfaces, so that the echo is not a service on the host's public addresses.
    std::function<bool(std::string_view interface)> answer_on;
};

// ports::TunnelLatency over UDP: an echo server on `port` (answering only on relay interfaces)
// and a prober thread that sends a round of probes to every watched address each interval and
// times the echoes. If the port is taken, the echo server is off (the peers see this end as not
// measured) and probing still works.
class UdpTunnelProber final : public ports::TunnelLatency {
  public:
    explicit UdpTunnelProber(UdpTunnelProberOptions options);
    // The threads stop and are joined first (jthreads, declared last).
    ~UdpTunnelProber() override = default;
    UdpTunnelProber(const UdpTunnelProber&) = delete;
    UdpTunnelProber& operator=(const UdpTunnelProber&) = delete;

    void Watch(const std::vector<std::string>& addresses) override;
    std::optional<domain::relay::PeerLatency> Latency(const std::string& address) const override;

    bool Echoing() const { return echo_fd_.Get() >= 0; }
    std::uint16_t port() const { return options_.port; }
    // Runs one round now (tests; the thread runs them on its own).
    void ProbeOnce();

  private:
    void EchoLoop(std::stop_token stop);
    void ProbeLoop(std::stop_token stop);

    UdpTunnelProberOptions options_;
    process::UniqueFd echo_fd_;
    process::UniqueFd probe_fd_;
    mutable std::mutex mu_;
    domain::relay::LatencyBook book_;
    std::mutex round_mu_;              // one round at a time (the thread's, or a test's)
    std::uint64_t next_sequence_ = 1;  // guarded by round_mu_
    std::condition_variable_any wake_;
    std::jthread echo_thread_;
    std::jthread probe_thread_;
};

}  // namespace decloud::agent::adapters
