#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "decloud/common/clock.hpp"
#include "decloud/common/result.hpp"
#include "orchestrator/domain/relay.hpp"
#include "orchestrator/domain/relay_failover.hpp"
#include "orchestrator/domain/relay_selection.hpp"

namespace decloud::orchestrator::ports {

// A public node's offer to relay, as its agent reports it.
struct RelayOffer {
    std::string node_id;
    bool enabled = true;
    std::string wireguard_public_key;  // the relay interface's key (base64); may change: rotation
    std::uint16_t wireguard_port = 51820;
    std::string endpoint_host;      // empty: the node's reported, else observed, address
    std::uint32_t max_tunnels = 0;  // 0: the configured default
    std::uint32_t bandwidth_mbps = 0;
};

// What the health monitor concluded about a relay node's relay role.
struct RelayHealth {
    bool healthy = true;
    std::string reason;
    std::uint32_t bandwidth_used_mbps = 0;
};

// Traffic figures over every assignment, removed ones included.
struct RelayTrafficTotals {
    std::uint64_t bytes_relayed = 0;
    std::uint64_t failovers = 0;  // primaries abandoned for another relay
};

// A WireGuard key rotation in progress for one node (see RelayService::RequestKeyRotation).
struct KeyRotation {
    std::string node_id;
    bool committing = false;             // false: staging
    std::string next_public_key;         // reported by the node's agent; empty until then
    std::vector<std::string> staged_on;  // live assignments whose other end has it staged
    std::string reason;
    common::TimePoint requested_at{};
    common::TimePoint updated_at{};
};

// A tunnel to create for a CGNAT node on the relay chosen by domain::SelectRelays.
struct NewAssignment {
    std::string cgnat_node_id;
    domain::RelayRole role = domain::RelayRole::kPrimary;
    std::string relay_node_id;
    std::string selection_reason;  // domain::RelayChoice::reason
    std::string cgnat_public_key;  // may be empty until the CGNAT agent reports it
};

// A CGNAT node that needs a primary relay and found none.
struct AwaitingRelay {
    std::string cgnat_node_id;
    common::TimePoint since{};
    common::TimePoint last_attempt_at{};
    std::uint32_t attempts = 0;
    std::string reason;
};

// Moves a CGNAT node off its primary (domain::DecideRecovery's kPromoteStandby or
// kReplacePrimary): set exactly one of promote_assignment_id and replacement.
struct FailoverRequest {
    std::string cgnat_node_id;
    std::string failed_assignment_id;  // the live primary being abandoned
    std::string reason;
    std::string promote_assignment_id;         // an active standby of the same node
    std::optional<NewAssignment> replacement;  // a new primary (its role is forced to primary)
};

struct FailoverOutcome {
    domain::RelayAssignment primary;         // the new primary
    std::vector<domain::MappingMove> moves;  // port mappings moved to it (public URLs change)
};

// Relay offers, relay assignments (WireGuard tunnels) with their history, port mappings on
// relays, nodes awaiting a relay, and each VM's relay. Blocking and thread-safe; times come from
// the caller's clock. Tunnel blocks and public ports are allocated inside the database
// transaction that stores them, so concurrent callers (threads or orchestrator replicas) never
// receive the same one; a failed call writes nothing.
class RelayRepository {
  public:
    virtual ~RelayRepository() = default;

    // Runs `body` holding the cluster-wide lock of the relay monitor (assignment, repair,
    // failover, release); false without running it when another replica holds it.
    virtual common::Result<bool> WithMonitorLock(const std::function<void()>& body) = 0;

    // Records or updates a node's relay offer (kNotFound for an unknown node). A changed key or
    // port is copied onto the node's live assignments, each with an event (key rotation).
    // Withdrawing it (enabled = false) stops new assignments; live ones stay until released or
    // failed over.
    // The node's offer as stored; kNotFound when it offers none.
    virtual common::Result<RelayOffer> Offer(const std::string& node_id) = 0;
    virtual common::Status UpsertOffer(const RelayOffer& offer, common::TimePoint now) = 0;
    // kNotFound if the node has no offer.
    virtual common::Status SetRelayHealth(const std::string& node_id, const RelayHealth& health,
                                          common::TimePoint now) = 0;
    // Every node with an offer, as relay selection sees it (uptime over [uptime_since, now]).
    virtual common::Result<std::vector<domain::RelayCandidate>> Candidates(
        common::TimePoint uptime_since, common::TimePoint now) = 0;

    // Creates a tunnel in state provisioning: locks the relay's offer row and re-checks that it
    // is enabled and has a tunnel free (kConflict "relay ... is full" otherwise), allocates the
    // lowest free /30 of the pool (kUnprocessable when exhausted), and takes the relay's key and
    // port. kConflict if the node already has a live assignment in that role or on that relay.
    // A primary ends the node's wait (relay_waits) and becomes the relay of the node's VMs.
    virtual common::Result<domain::RelayAssignment> Assign(const NewAssignment& assignment,
                                                           common::TimePoint now) = 0;

    virtual common::Result<domain::RelayAssignment> Get(const std::string& assignment_id) = 0;
    // Live assignments of a CGNAT node, primary first.
    virtual common::Result<std::vector<domain::RelayAssignment>> ForCgnatNode(
        const std::string& cgnat_node_id) = 0;
    // Live assignments carried by a relay node (the peers its agent should have), by id.
    virtual common::Result<std::vector<domain::RelayAssignment>> ForRelayNode(
        const std::string& relay_node_id) = 0;
    // Every live assignment, by id (for the relay monitor).
    virtual common::Result<std::vector<domain::RelayAssignment>> Live() = 0;
    // Oldest first.
    virtual common::Result<std::vector<domain::RelayEvent>> Events(
        const std::string& assignment_id) = 0;

    // Records an event on the assignment that leaves its state as it is (an observation).
    virtual common::Status RecordEvent(const std::string& assignment_id, const std::string& reason,
                                       common::TimePoint now) = 0;
    // Applies a state change under a row lock (domain::ApplyTransition; kConflict when it is not
    // allowed or the assignment is not in one of `expected_from`, when that is not empty).
    // Going to removed deletes the assignment's port mappings, and for a primary clears its
    // node's VMs' relay.
    virtual common::Result<domain::RelayAssignment> Transition(
        const std::string& assignment_id, const std::vector<domain::RelayState>& expected_from,
        domain::RelayState to, const std::string& reason, common::TimePoint now) = 0;

    // The relay's WireGuard counters for the tunnel's peer (both directions, since the interface
    // was created): adds what moved since the last call to the tunnel's bytes relayed (a counter
    // that went backwards was reset: all of it is new), derives the tunnel's rate, and sets the
    // relay's bandwidth in use to the sum over its live tunnels. kNotFound for an unknown id.
    virtual common::Status RecordTraffic(const std::string& assignment_id, std::uint64_t rx_bytes,
                                         std::uint64_t tx_bytes, common::TimePoint now) = 0;
    virtual common::Result<RelayTrafficTotals> TrafficTotals() = 0;
    // The tunnel's round trip as an agent measured it (see RelayAssignment::tunnel_rtt_us).
    // kNotFound for an unknown id.
    virtual common::Status RecordLatency(const std::string& assignment_id, std::uint32_t rtt_us,
                                         common::TimePoint now) = 0;

    // Key rotations. Request: starts one in staging, or returns the one in progress (kNotFound
    // for an unknown node). Save: stores state, next key and staged_on of a rotation in
    // progress (kNotFound when it is no longer). Finish: the node uses its new key; the row goes.
    virtual common::Result<KeyRotation> RequestKeyRotation(const std::string& node_id,
                                                           const std::string& reason,
                                                           common::TimePoint now) = 0;
    virtual common::Result<std::vector<KeyRotation>> KeyRotations() = 0;
    // Nodes whose relay offer has no WireGuard key yet (their agent's next report brings it).
    virtual common::Result<std::vector<std::string>> OffersWithoutKey() = 0;
    virtual common::Status SaveKeyRotation(const KeyRotation& rotation, common::TimePoint now) = 0;
    virtual common::Status FinishKeyRotation(const std::string& node_id) = 0;

    // Records the CGNAT end's (new) public key, with an event when it changes.
    virtual common::Result<domain::RelayAssignment> SetCgnatKey(const std::string& assignment_id,
                                                                const std::string& public_key,
                                                                common::TimePoint now) = 0;

    // In one transaction: the failed primary goes to removed; the standby is promoted (it must
    // be active) or the replacement is assigned as in Assign; the port mappings move to the new
    // primary's relay (domain::PlanMappingMoves: kUnprocessable, nothing changed, if they do not
    // fit); the node's VMs now count on the new relay. kConflict if `failed_assignment_id` is not
    // the node's live primary.
    virtual common::Result<FailoverOutcome> Failover(const FailoverRequest& request,
                                                     common::TimePoint now) = 0;

    // The CGNAT node leaves: every live assignment of it goes to removed with `reason`, their
    // port mappings are deleted, its VMs have no relay and it waits no more. Returns what was
    // released (state removed).
    virtual common::Result<std::vector<domain::RelayAssignment>> Release(
        const std::string& cgnat_node_id, const std::string& reason, common::TimePoint now) = 0;

    // Records (or refreshes: attempts + 1, reason) that the node waits for a primary relay.
    virtual common::Status MarkAwaiting(const std::string& cgnat_node_id, const std::string& reason,
                                        common::TimePoint now) = 0;
    // Oldest wait first.
    virtual common::Result<std::vector<AwaitingRelay>> Awaiting() = 0;

    // A public port on the relay of the VM's node (its live primary) forwarded to `vm_port`:
    // the existing mapping if there is one, else a free port of the configured range picked
    // under a lock on the relay (kUnprocessable when the range is full, or when the node has
    // no relay; kConflict for a VM that is deleted, deleting or failed; kNotFound for no VM).
    // The mapping's public_url is "{relay public address}:{port}".
    virtual common::Result<domain::PortMapping> AllocatePortForVm(const std::string& vm_id,
                                                                  std::uint16_t vm_port,
                                                                  domain::PortProtocol protocol,
                                                                  common::TimePoint now) = 0;
    virtual common::Result<std::vector<domain::PortMapping>> MappingsForVm(
        const std::string& vm_id) = 0;
    // What the relay's agent should forward (its desired state), by public port.
    virtual common::Result<std::vector<domain::PortMapping>> MappingsForRelay(
        const std::string& relay_node_id) = 0;
    // When the VM is deleted or moves to another node; returns what was removed.
    virtual common::Result<std::vector<domain::PortMapping>> RemoveMappingsForVm(
        const std::string& vm_id) = 0;

    // Sets the VM's relay (revenue attribution) from its node's live primary, or none; returns
    // the relay node id or "" (for VMs placed after their node got its relay).
    virtual common::Result<std::string> AttributeVm(const std::string& vm_id) = 0;
    // Stops forwarding one port of the VM; returns the mapping removed (kNotFound when that port
    // is not forwarded).
    virtual common::Result<domain::PortMapping> RemoveMapping(const std::string& vm_id,
                                                              std::uint16_t vm_port,
                                                              domain::PortProtocol protocol) = 0;
    // Housekeeping, in one transaction: deletes the mappings of VMs that were deleted or failed or
    // that no longer run on the CGNAT node of the tunnel they go through, and sets every live VM's
    // relay from its node's live primary (revenue attribution). Returns the mappings removed.
    virtual common::Result<std::vector<domain::PortMapping>> PruneMappings() = 0;
};

}  // namespace decloud::orchestrator::ports
