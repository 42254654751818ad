#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "decloud/common/clock.hpp"
#include "decloud/common/result.hpp"
#include "decloud/proto/relay_messages.hpp"
#include "orchestrator/domain/relay.hpp"
#include "orchestrator/domain/relay_selection.hpp"
#include "orchestrator/ports/node_repository.hpp"
#include "orchestrator/ports/relay_repository.hpp"

namespace decloud::orchestrator::app {

struct RelayServiceOptions {
    domain::RelayPolicy policy;
    bool want_standby = true;  // give every CGNAT node a standby tunnel next to its primary
    common::Duration uptime_window = std::chrono::days{30};  // for ranking candidates
    // Agents do not report a relay offer of their own yet: with this set, every node that is
    // publicly reachable (not behind CGNAT, no relay needed) is offered as a relay with the
    // defaults below the first time Reconcile sees it. An existing offer is never overwritten.
    bool auto_offer = true;
    std::uint16_t offer_wireguard_port = 51820;
    std::uint32_t offer_bandwidth_mbps = 100;
    // A CGNAT node offline (no heartbeat) this long has its relay assignments released.
    common::Duration release_after_offline = std::chrono::minutes{30};
    // A tunnel whose latest handshake is older than this is degraded. WireGuard renews its
    // session every 2 minutes while keepalives (25 s) flow, so a healthy tunnel never gets there.
    common::Duration handshake_stale_after = std::chrono::minutes{3};
    // How often a node's reported port forwards are compared with the ones it should have.
    common::Duration port_audit_interval = std::chrono::minutes{5};
    // How often a tunnel's transfer counters are turned into traffic and bandwidth figures, and
    // its measured round trip is recorded.
    common::Duration traffic_interval = std::chrono::seconds{30};
    // A tunnel whose peer answered latency probes before but then left this many probe rounds
    // in a row unanswered is degraded (and repaired) although handshakes are fresh: packets no
    // longer cross it. 0: probes never degrade a tunnel.
    std::uint32_t unanswered_probe_rounds_before_degraded = 3;
};

// Who is asking: admins see every relay, an operator the assignments involving a node of theirs
// (as the CGNAT node or as the relay).
struct RelayViewer {
    std::string wallet_address;
    bool admin = false;
};

struct RelayAssignOutcome {
    std::optional<domain::RelayAssignment> primary;  // created now
    std::optional<domain::RelayAssignment> standby;  // created now
    std::string awaiting_reason;                     // set when the node waits for a relay
};

// One assignment with its history and (for a primary) the ports forwarded through it.
struct RelayDetail {
    domain::RelayAssignment assignment;
    std::vector<domain::RelayEvent> events;
    std::vector<domain::PortMapping> mappings;
};

// Platform-wide figures over the live assignments.
struct RelayStats {
    std::size_t relays = 0;              // relay nodes carrying at least one live tunnel
    std::size_t offers = 0;              // nodes offering to relay (enabled offers)
    std::size_t cgnat_nodes_served = 0;  // CGNAT nodes with a live primary
    std::size_t awaiting = 0;            // CGNAT nodes waiting for a relay
    std::size_t assignments = 0;         // live assignments, either role
    std::size_t primaries = 0;
    std::size_t standbys = 0;
    std::size_t provisioning = 0, active = 0, degraded = 0, repairing = 0;
    std::size_t port_mappings = 0;    // public ports forwarded on relays
    std::uint64_t bytes_relayed = 0;  // through every tunnel ever, both directions
    std::uint64_t failovers = 0;      // primaries abandoned for another relay, ever
};

// What one Reconcile pass did.
struct RelayReconcileResult {
    std::size_t offered = 0;          // public nodes given a relay offer
    std::size_t assigned = 0;         // assignments created (primaries and standbys)
    std::size_t awaiting = 0;         // CGNAT nodes left waiting
    std::size_t released = 0;         // CGNAT nodes whose assignments were released
    std::size_t repairs = 0;          // assignments moved to repairing
    std::size_t failovers = 0;        // primaries abandoned for another relay
    std::size_t mappings_pruned = 0;  // ports of deleted or moved VMs no longer forwarded
    bool ran = true;                  // false: another replica holds the monitor's lock
};

// Relay use cases: choosing relays for CGNAT nodes, public ports for their VMs, releasing and
// repairing tunnels, and what the API shows. Every method is blocking (repository calls): run
// it off the I/O threads. Thread-safe as far as the repositories are; time comes from `clock`.
class RelayService {
  public:
    RelayService(ports::RelayRepository& relays, ports::NodeRepository& nodes,
                 const common::Clock& clock, RelayServiceOptions options);

    // Gives a node that requires a relay the tunnels it lacks: a primary (and a standby when
    // wanted) chosen by domain::SelectRelays, or a standby next to an existing primary. With no
    // candidate for the primary the node is recorded as awaiting a relay, with the reason.
    // kUnprocessable for a node that does not require a relay, kNotFound for an unknown node.
    common::Result<RelayAssignOutcome> AssignRelays(const std::string& cgnat_node_id);

    // AssignRelays for every node awaiting a relay, oldest wait first; returns how many got
    // their primary. Failures for single nodes are logged and the others still tried.
    common::Result<std::size_t> RetryAwaiting();

    // The periodic pass (one job): offers public nodes as relays (auto_offer), gives CGNAT nodes
    // without a primary (new registrations, waiting nodes) or without a standby their relays,
    // and releases the assignments of CGNAT nodes offline past release_after_offline or no
    // longer needing a relay. Runs on one replica at a time (RelayRepository::WithMonitorLock);
    // on the others it does nothing and says so (ran = false).
    common::Result<RelayReconcileResult> Reconcile();

    // Heartbeats. True when this agent's relay report needs the database: it has relay
    // interfaces, takes part in a live assignment (as of the last pass on this replica), or
    // reports a key not recorded yet. Most heartbeats stay in memory. Non-blocking.
    bool NeedsRelayExchange(const std::string& node_id, const proto::RelayReport& report);
    // Records an agent's relay report: its WireGuard key (on its offer and its CGNAT tunnels)
    // and what each tunnel's handshakes say: a handshake newer than the tunnel's last change
    // makes it active, a missing or stale one degrades an active tunnel.
    common::Status RecordReport(const std::string& node_id, const proto::RelayReport& report);
    // The complete relay state the node's agent should have, both roles: its relay interface
    // (one peer per CGNAT tunnel with a known key) with the public ports forwarded through it,
    // and one interface per tunnel of its own (primary and standby) with the ports of its VMs
    // forwarded from the primary's tunnel address to the VMs.
    common::Result<proto::RelayDesiredState> DesiredState(const std::string& node_id);

    // A public port on the relay of the VM's node forwarded to `vm_port` (see
    // RelayRepository::AllocatePortForVm); its public_url is shown on the VM.
    common::Result<domain::PortMapping> AllocatePortForVm(const std::string& vm_id,
                                                          std::uint16_t vm_port,
                                                          domain::PortProtocol protocol);
    // The VM was deleted or moved: its public ports are freed.
    common::Result<std::vector<domain::PortMapping>> ReleaseVm(const std::string& vm_id);
    // The VM's forwarded ports, by port.
    common::Result<std::vector<domain::PortMapping>> MappingsForVm(const std::string& vm_id);
    // Stops forwarding one port (kNotFound when it is not forwarded).
    common::Result<domain::PortMapping> RemoveVmPort(const std::string& vm_id,
                                                     std::uint16_t vm_port,
                                                     domain::PortProtocol protocol);
    // The CGNAT node left: its assignments go to removed with `reason`.
    common::Result<std::vector<domain::RelayAssignment>> Release(const std::string& cgnat_node_id,
                                                                 const std::string& reason);
    // An admin asks for a repair: the live assignment moves to repairing (another attempt when
    // it already is) with `reason` (required). kConflict for a removed assignment.
    common::Result<domain::RelayAssignment> Repair(const std::string& assignment_id,
                                                   const std::string& reason);

    // Live assignments the viewer may see, by id.
    common::Result<std::vector<domain::RelayAssignment>> List(const RelayViewer& viewer);
    // One assignment (removed ones too); kNotFound, as for an unknown id, when the viewer may
    // not see it.
    common::Result<RelayDetail> Get(const std::string& assignment_id, const RelayViewer& viewer);
    common::Result<RelayStats> Stats();

    // WireGuard key rotation of a node (its operator or an admin; others: kNotFound), without
    // dropping its tunnels for longer than one handshake: the node's agent stages a next key and
    // reports its public half; the other end of each live tunnel adds it as a successor peer
    // (RelayPeerSpec::replaces) and reports it; then the node switches keys, and each successor
    // takes over its tunnel's addresses on its first handshake. Idempotent while in progress.
    common::Result<ports::KeyRotation> RequestKeyRotation(const std::string& node_id,
                                                          const RelayViewer& viewer,
                                                          const std::string& reason);
    // The rotation in progress for the node, if any (same visibility as RequestKeyRotation).
    common::Result<std::optional<ports::KeyRotation>> KeyRotationOf(const std::string& node_id,
                                                                    const RelayViewer& viewer);

    const RelayServiceOptions& options() const { return options_; }

  private:
    common::Result<RelayReconcileResult> ReconcileHoldingLock();
    // The nodes taking part in live assignments or key rotations (involved_, rotations_hint_),
    // and those whose relay offer waits for their key, from the database; every replica, every
    // pass.
    common::Status RefreshExchangeHints();
    // Moves the key rotations this report concerns forward (see RequestKeyRotation).
    common::Status AdvanceRotations(const std::string& node_id, const proto::RelayReport& report,
                                    const std::vector<domain::RelayAssignment>& as_cgnat,
                                    const std::vector<domain::RelayAssignment>& as_relay,
                                    common::TimePoint now);
    bool RotationsMayBeInProgress() const;
    // kNotFound unless the viewer is an admin or the node's operator.
    common::Status CheckNodeVisible(const std::string& node_id, const RelayViewer& viewer);
    // Recovery of the live assignments of one CGNAT node (domain::DecideRecovery).
    void Recover(const domain::Node& node, const std::vector<domain::RelayAssignment>& live,
                 const std::unordered_map<std::string, bool>& online,
                 std::vector<domain::RelayCandidate>& candidates, common::TimePoint now,
                 RelayReconcileResult& result);
    // Whether `interval` has passed since `key` was last marked in `last` (or it never was);
    // if so, marks it now. Takes mu_.
    bool DueAndMark(std::unordered_map<std::string, common::TimePoint>& last,
                    const std::string& key, common::Duration interval, common::TimePoint now);
    // Compares the forwards `report` says are installed with the ones DesiredState gives the
    // node (domain::AuditForwards); see the definition for what a difference leads to.
    void AuditForwards(const std::string& node_id, const proto::RelayReport& report,
                       const std::vector<domain::RelayAssignment>& as_cgnat,
                       const std::vector<domain::RelayAssignment>& as_relay, common::TimePoint now);
    // Records the round trip `peer` reports for `a`, at most once per traffic_interval.
    void RecordLatency(const domain::RelayAssignment& a, const proto::RelayPeerReport* peer,
                       common::TimePoint now);
    // One tunnel's health as seen by one of its ends: `seen` is that end's interface and `peer`
    // the other end on it (null when missing).
    void JudgeTunnel(const domain::RelayAssignment& a, const proto::RelayInterfaceReport* seen,
                     const proto::RelayPeerReport* peer, common::TimePoint now);
    // AssignRelays with the candidates already loaded (kept up to date as tunnels are added).
    common::Result<RelayAssignOutcome> AssignWith(const domain::Node& node,
                                                  const std::vector<domain::RelayAssignment>& live,
                                                  std::vector<domain::RelayCandidate>& candidates,
                                                  common::TimePoint now);
    common::Result<std::vector<domain::RelayCandidate>> LoadCandidates(common::TimePoint now);
    common::Result<std::vector<std::string>> OwnedNodeIds(const std::string& wallet);

    ports::RelayRepository& relays_;
    ports::NodeRepository& nodes_;
    const common::Clock& clock_;
    RelayServiceOptions options_;

    mutable std::mutex mu_;
    std::unordered_set<std::string> involved_;                    // nodes in live assignments
    std::unordered_map<std::string, std::string> recorded_keys_;  // node -> key recorded
    // Assignment id -> the CGNAT end's endpoint as its relay last saw it (the carrier NAT's
    // public side of that tunnel). Given back to the relay so that a relay interface created
    // anew dials the CGNAT node at once instead of waiting minutes for the CGNAT side to notice
    // its session is gone. Per tunnel, not per key: the primary and standby tunnels of a CGNAT
    // node share its key but leave through different NAT mappings.
    std::unordered_map<std::string, std::string> learned_endpoints_;
    // Whether a key rotation may be in progress, so heartbeats skip reading rotations when none
    // is (the usual case). Set by a request on this replica; refreshed by every relay pass, so a
    // rotation requested on another replica is seen within one reconcile interval.
    bool rotations_hint_ = false;
    std::unordered_map<std::string, common::TimePoint> last_port_audit_;  // node -> last audit
    std::unordered_set<std::string> forwards_differed_;  // assignments off at their last audit
    std::unordered_map<std::string, common::TimePoint> last_traffic_;  // assignment -> recorded
    std::unordered_map<std::string, common::TimePoint> last_latency_;  // assignment -> recorded
};

}  // namespace decloud::orchestrator::app
