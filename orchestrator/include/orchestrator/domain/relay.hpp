#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "decloud/common/clock.hpp"
#include "decloud/common/result.hpp"
#include "orchestrator/domain/address_pool.hpp"

namespace decloud::orchestrator::domain {

// The life of a relay assignment (one WireGuard tunnel between a CGNAT node and a relay node).
// Every change is stored with its time and reason (relay_assignment_events).
//   provisioning -> active            both ends are up (a handshake was seen)
//   active -> degraded -> active      the tunnel went quiet, then recovered by itself
//   provisioning | active | degraded -> repairing -> active     a repair command worked
//   repairing -> repairing            another repair attempt (counted)
//   any live state -> removed         released, failed over, or replaced; terminal
// Two self-transitions are recorded as events without a change of state: active -> active (a
// standby promoted to primary, a key rotated) and repairing -> repairing (the next attempt).
// "Failed over" is not a state of its own: the abandoned assignment goes to removed with the
// reason, and the CGNAT node's new primary starts in provisioning (or, a promoted standby, stays
// active).
enum class RelayState { kProvisioning, kActive, kDegraded, kRepairing, kRemoved };
std::string_view ToString(RelayState state);
std::optional<RelayState> ParseRelayState(std::string_view text);

bool IsLive(RelayState state);  // everything but removed

// The allowed transitions, in one table; kConflict naming both states otherwise.
common::Status CheckTransition(RelayState from, RelayState to);

// Repair attempts after moving from -> to with `attempts` before: entering repairing starts at
// 1, repairing -> repairing adds one, active resets to 0, anything else keeps the count.
std::uint32_t RepairAttemptsAfter(RelayState from, RelayState to, std::uint32_t attempts);

// A CGNAT node has at most one live primary (carries its traffic and port mappings) and at most
// one live standby (a warm tunnel to a second relay, promoted on failover).
enum class RelayRole { kPrimary, kStandby };
std::string_view ToString(RelayRole role);
std::optional<RelayRole> ParseRelayRole(std::string_view text);

enum class PortProtocol { kTcp, kUdp };
std::string_view ToString(PortProtocol protocol);
std::optional<PortProtocol> ParsePortProtocol(std::string_view text);

struct RelayAssignment {
    std::string id;  // UUID
    std::string cgnat_node_id;
    std::string relay_node_id;
    RelayRole role = RelayRole::kPrimary;
    std::string interface_name;  // the CGNAT side's WireGuard interface (TunnelInterfaceName)
    TunnelAddresses tunnel;
    // WireGuard public keys (base64). Private keys never leave their agents; empty until the
    // end has reported its key.
    std::string relay_public_key;
    std::string cgnat_public_key;
    std::string relay_endpoint;  // "host:port" the CGNAT side dials ("[v6]:port" for IPv6)
    std::uint16_t relay_listen_port = 0;
    RelayState state = RelayState::kProvisioning;
    std::string state_reason;
    std::string selection_reason;  // why this relay was chosen (RelayChoice::reason)
    std::uint32_t repair_attempts = 0;
    common::TimePoint created_at{};
    // The last transition, self-transitions included (each repair attempt restarts the clock).
    common::TimePoint state_changed_at{};
    common::TimePoint updated_at{};
    // Round trip over the tunnel as an agent at either end last measured it (UDP probes to the
    // other end's tunnel address), and when it was recorded; empty until first measured.
    std::optional<std::uint32_t> tunnel_rtt_us;
    std::optional<common::TimePoint> tunnel_rtt_at;
};

struct RelayEvent {
    common::TimePoint at{};
    std::optional<RelayState> from;  // empty for the creation
    RelayState to = RelayState::kProvisioning;
    RelayRole role = RelayRole::kPrimary;  // the role after the event
    std::string reason;
    friend bool operator==(const RelayEvent&, const RelayEvent&) = default;
};

// Moves `assignment` to `to` at `now` (state, reason, state_changed_at, updated_at, repair
// attempts; the role is left alone) and returns the event to record; kConflict, leaving it
// unchanged, if the transition is not allowed.
common::Result<RelayEvent> ApplyTransition(RelayAssignment& assignment, RelayState to,
                                           std::string reason, common::TimePoint now);

// A public port on a relay forwarded through the tunnel to a VM's port on the CGNAT node.
struct PortMapping {
    std::string id;  // UUID
    std::string relay_node_id;
    std::string assignment_id;  // the primary assignment it travels through
    std::uint16_t public_port = 0;
    PortProtocol protocol = PortProtocol::kTcp;
    std::string vm_id;
    std::uint16_t vm_port = 0;
    std::string public_url;  // PublicUrl(relay's public address, public_port)
    common::TimePoint created_at{};
    // The VM's IPv4 address on its node as its agent last reported it ("" while unknown): where
    // the CGNAT node forwards the port. Read with the mapping, never stored with it.
    std::string vm_address;
};

// "{relay public address}:{port}", shown on the VM: "203.0.113.7:30001"; IPv6 in brackets
// ("[2001:db8::1]:30001"); a host name as it is.
std::string PublicUrl(std::string_view relay_address, std::uint16_t port);

// Revenue of a VM on a CGNAT node: the node's operator keeps 80%, its relay gets 20%.
inline constexpr std::uint32_t kRelayShareBasisPoints = 2000;  // of 10,000

struct RevenueSplit {
    std::uint64_t node_micro_usdc = 0;
    std::uint64_t relay_micro_usdc = 0;
    friend bool operator==(const RevenueSplit&, const RevenueSplit&) = default;
};

// Splits `amount`: relay = floor(amount x share / 10,000), node = the rest, so the two always
// add up to `amount` exactly. `relay_share_bps` above 10,000 counts as 10,000.
RevenueSplit SplitRelayRevenue(std::uint64_t amount,
                               std::uint32_t relay_share_bps = kRelayShareBasisPoints);

// The split of one more charge for a VM that has already had `earlier_total` split, such that the
// relay's running total is always floor(total x share / 10,000): rounding never accumulates
// against the relay (a VM charged 1 micro-USDC an hour still pays its relay 1 every 5 hours).
// The two parts add up to `amount` exactly; the running total is computed in 128 bits.
RevenueSplit SplitRelayRevenueIncrement(std::uint64_t earlier_total, std::uint64_t amount,
                                        std::uint32_t relay_share_bps = kRelayShareBasisPoints);

}  // namespace decloud::orchestrator::domain
