#pragma once

#include <vector>

#include "agent/domain/ingress/routing.hpp"
#include "agent/ports/hypervisor.hpp"

namespace decloud::agent::app {

// The ingress proxy's routing table from what libvirt says runs on this node: every running
// DeCloud domain that has an address (IPv4 preferred), reachable by id, and by its display name
// when that name is a DNS label not used by another VM, on its ingress ports (the first one the
// default; port 80 for a VM without any). Never fails: a domain that cannot be
// routed is left out.
domain::ingress::RoutingTable RoutesFromDomains(const std::vector<ports::DomainInfo>& domains);

}  // namespace decloud::agent::app
