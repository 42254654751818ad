#pragma once

#include <string>
#include <vector>

#include "agent/domain/relay/wireguard.hpp"
#include "agent/domain/relay/wireguard_key.hpp"
#include "decloud/common/result.hpp"

namespace decloud::agent::ports {

using domain::relay::WireGuardConfig;
using domain::relay::WireGuardKey;
using domain::relay::WireGuardPeer;
using domain::relay::WireGuardPeerState;
using domain::relay::WireGuardState;

// WireGuard interfaces as the relay logic sees them, whatever implements them (wireguard-go over
// its UAPI socket, or the kernel module). The private key is handed in by the agent, which
// generated it; implementations never send it anywhere. Blocking; thread-safe.
class WireGuardControl {
  public:
    virtual ~WireGuardControl() = default;

    // Creates the interface if it does not exist (also when it disappeared behind the agent's
    // back) and makes it exactly `config`: key, listen port, addresses, link up, peer set.
    // Idempotent: applying the same config again changes nothing, and peers that stay keep their
    // sessions, counters and learned endpoints. kInvalidArgument for a bad config, kConflict
    // when the name is taken by something that is not ours to change.
    virtual common::Status Ensure(const WireGuardConfig& config) = 0;
    // Deletes the interface. Removing an interface that does not exist is a success.
    virtual common::Status Remove(const std::string& interface) = 0;
    // The interface now, with its peers' handshakes and counters. kNotFound if it does not exist.
    virtual common::Result<WireGuardState> Read(const std::string& interface) = 0;
    // The relay interfaces (domain::relay::IsRelayInterfaceName) that exist, sorted.
    virtual common::Result<std::vector<std::string>> List() = 0;
};

}  // namespace decloud::agent::ports
