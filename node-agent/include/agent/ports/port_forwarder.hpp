#pragma once

#include <string>
#include <vector>

#include "agent/domain/relay/port_forwarding.hpp"
#include "decloud/common/result.hpp"

namespace decloud::agent::ports {

using domain::relay::PortMapping;
using domain::relay::Protocol;

// Public ports of a relay forwarded through relay interfaces (see domain/relay/port_forwarding
// for the rules). Mappings are owned per interface; a public port belongs to one interface at a
// time. Every change is one atomic transaction. Blocking; thread-safe.
class PortForwarder {
  public:
    virtual ~PortForwarder() = default;

    // Makes the mappings of `interface` exactly `mappings`, changing only what differs from what
    // this forwarder last applied (falling back to Reconcile when that turns out to be stale).
    // kInvalidArgument for bad mappings, kConflict for a port another interface holds.
    virtual common::Status Apply(const std::string& interface,
                                 const std::vector<PortMapping>& mappings) = 0;
    // Like Apply, but a port another interface holds moves to `interface` in the same atomic
    // change instead of being a kConflict: for a desired state that is authoritative across
    // interfaces, where a failover moves a VM's ports from one tunnel to another and a
    // connection arriving in between must not be refused.
    virtual common::Status Claim(const std::string& interface,
                                 const std::vector<PortMapping>& mappings) = 0;
    // Like Apply, but first reads what is really installed, so changes made behind the agent's
    // back are undone. For start-up and periodic reconciliation.
    virtual common::Status Reconcile(const std::string& interface,
                                     const std::vector<PortMapping>& mappings) = 0;
    // The mappings of `interface` as installed now (read from the system), sorted.
    virtual common::Result<std::vector<PortMapping>> Read(const std::string& interface) = 0;
    // Removes the mappings of `interface` and lets no more traffic through it.
    virtual common::Status Remove(const std::string& interface) = 0;
    // Removes everything this forwarder owns.
    virtual common::Status RemoveAll() = 0;
};

}  // namespace decloud::agent::ports
