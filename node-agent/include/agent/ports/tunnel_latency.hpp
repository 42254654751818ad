#pragma once

#include <optional>
#include <string>
#include <vector>

#include "agent/domain/relay/tunnel_probe.hpp"

namespace decloud::agent::ports {

// Round-trip latency to the tunnel addresses of this agent's WireGuard peers, measured in the
// background. Thread-safe; never blocks on the network.
class TunnelLatency {
  public:
    virtual ~TunnelLatency() = default;
    // The peers' tunnel addresses to measure from now on (others are dropped).
    virtual void Watch(const std::vector<std::string>& addresses) = 0;
    // What is known of `address`; nullopt when it is not watched.
    virtual std::optional<domain::relay::PeerLatency> Latency(const std::string& address) const = 0;
};

}  // namespace decloud::agent::ports
