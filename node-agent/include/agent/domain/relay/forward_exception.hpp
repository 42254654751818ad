#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace decloud::agent::domain::relay {

// libvirt's NAT networks guard their bridge with a reject, in the `ip filter` table's FORWARD
// chain, of every new connection into the bridge that libvirt did not start itself; a
// connection a CGNAT node DNATs from its tunnel to a VM is one. No rule in our own tables can
// undo a reject in another table, so the agent keeps one exception in that FORWARD chain,
// ahead of libvirt's jumps: connections arriving on a CGNAT tunnel interface and DNATed are
// accepted. It is written with iptables itself (libvirt's own tool for that table), so that
// libvirt can go on reading and changing the table.
inline constexpr std::string_view kForwardExceptionComment = "decloud-relay-dnat";

// The rule's match and target, as iptables arguments after "-I FORWARD 1" or "-D FORWARD".
std::vector<std::string> ForwardExceptionRule();

enum class ForwardExceptionStep {
    kNone,       // as wanted
    kInsert,     // add it first in FORWARD
    kMoveToTop,  // it is there but after a libvirt jump (libvirt started later): re-insert
    kRemove,     // not wanted (no CGNAT tunnel any more) but there
};

// What to do, from `iptables -S FORWARD` (one "-P"/"-A" line per rule) and whether the agent has
// CGNAT tunnels.
ForwardExceptionStep DecideForwardException(std::string_view forward_listing, bool wanted);

}  // namespace decloud::agent::domain::relay
