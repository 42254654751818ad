#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "agent/domain/relay/wireguard_key.hpp"
#include "agent/ports/forward_exception.hpp"
#include "agent/ports/port_forwarder.hpp"
#include "agent/ports/tunnel_latency.hpp"
#include "agent/ports/wireguard_control.hpp"
#include "agent/ports/wireguard_key_store.hpp"
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
    // `private_key` is the key in use (kept in `keys`, which also keeps a staged next key
    // during a key rotation). `latency`, if given, measures the round trip to every peer's
    // tunnel address; the report carries it per peer. `forward_exception`, if given, is kept
    // present while this node has CGNAT tunnels, so that libvirt's NAT network lets connections
    // forwarded from them reach the VMs.
    RelayAgent(ports::WireGuardControl& wireguard, ports::PortForwarder& relay_forwards,
               ports::PortForwarder& cgnat_forwards, ports::WireGuardKeyStore& keys,
               domain::relay::WireGuardKey private_key, ports::TunnelLatency* latency = nullptr,
               ports::ForwardException* forward_exception = nullptr);

    // Makes the relay interfaces and forwards exactly `desired`: interfaces and forwards it
    // does not list are removed. Every interface is handled on its own: one that fails is
    // reported (Report().interfaces[].error) and the others still converge. The status is the
    // first failure, if any.
    //
    // Key rotation: "stage" makes a next key (reported by Report()); "commit" switches every
    // interface to it. A peer that `replaces` another gets no allowed IPs until its first
    // handshake, then takes the replaced peer's.
    common::Status Apply(const proto::RelayDesiredState& desired);

    // True while a successor peer waits for its first handshake (see PromoteSuccessors).
    bool HasPendingSuccessors() const;
    // Re-applies the interfaces with successor peers still waiting, so that one whose first
    // handshake happened takes over its tunnel's addresses now rather than at the next heartbeat.
    // The agent calls it every second or so while HasPendingSuccessors().
    common::Status PromoteSuccessors();

    // The interfaces as they are now (handshakes, counters, forwards read back).
    proto::RelayReport Report();

    std::string PublicKey() const;

  private:
    common::Status ApplyInterface(const proto::RelayInterfaceSpec& spec,
                                  const std::vector<proto::RelayForward>& forwards);
    void RotateKey(const proto::RelayDesiredState& desired);
    ports::PortForwarder* ForwarderFor(const std::string& interface);

    ports::WireGuardControl& wireguard_;
    ports::PortForwarder& relay_forwards_;
    ports::PortForwarder& cgnat_forwards_;
    ports::WireGuardKeyStore& keys_;
    ports::TunnelLatency* latency_;
    ports::ForwardException* forward_exception_;
    bool exception_wanted_ = false;  // as last ensured
    domain::relay::WireGuardKey private_key_;
    std::string public_key_;
    std::optional<domain::relay::WireGuardKey> staged_key_;
    mutable std::mutex mu_;
    std::map<std::string, std::string> errors_;  // interface -> last failure
    proto::RelayDesiredState last_desired_;
    std::set<std::string> pending_successors_;  // interfaces with a successor not promoted yet
};

}  // namespace decloud::agent::app
