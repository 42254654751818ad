#pragma once

#include <map>
#include <mutex>
#include <string>

#include "agent/domain/relay/wireguard_key.hpp"
#include "agent/ports/port_forwarder.hpp"
#include "agent/ports/wireguard_control.hpp"
#include "decloud/common/result.hpp"
#include "decloud/proto/relay_messages.hpp"

namespace decloud::agent::app {

// Both relay roles of an agent: converges its WireGuard interfaces and port forwards on the
// state the orchestrator sends with each heartbeat, and reports what is really there.
//
// Forwards on a relay interface (dcr...) go to `relay_forwards` (public port -> the CGNAT node's
// tunnel address, same port); forwards on a CGNAT interface (dcc...) go to `cgnat_forwards`
// (tunnel port -> the VM's address and port). The two are separate nftables tables, so a host
// can serve both roles. Blocking (runs on the agent's blocking pool); thread-safe.
class RelayAgent {
  public:
    RelayAgent(ports::WireGuardControl& wireguard, ports::PortForwarder& relay_forwards,
               ports::PortForwarder& cgnat_forwards, domain::relay::WireGuardKey private_key);

    // Makes the relay interfaces and forwards exactly `desired`: interfaces and forwards it
    // does not list are removed. Every interface is handled on its own: one that fails is
    // reported (Report().interfaces[].error) and the others still converge. The status is the
    // first failure, if any.
    common::Status Apply(const proto::RelayDesiredState& desired);

    // The interfaces as they are now (handshakes, counters, forwards read back).
    proto::RelayReport Report();

    std::string PublicKey() const { return public_key_; }

  private:
    common::Status ApplyInterface(const proto::RelayInterfaceSpec& spec,
                                  const std::vector<proto::RelayForward>& forwards);
    ports::PortForwarder* ForwarderFor(const std::string& interface);

    ports::WireGuardControl& wireguard_;
    ports::PortForwarder& relay_forwards_;
    ports::PortForwarder& cgnat_forwards_;
    domain::relay::WireGuardKey private_key_;
    std::string public_key_;
    std::mutex mu_;
    std::map<std::string, std::string> errors_;  // interface -> last failure
};

}  // namespace decloud::agent::app
