#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "decloud/common/clock.hpp"
#include "decloud/common/result.hpp"
#include "orchestrator/domain/port_pool.hpp"
#include "orchestrator/domain/relay.hpp"
#include "orchestrator/domain/relay_selection.hpp"

namespace decloud::orchestrator::domain {

// One live assignment as the relay monitor sees it.
struct AssignmentHealth {
    RelayAssignment assignment;
    bool relay_online = true;  // the relay node's heartbeats are arriving
};

enum class RecoveryAction {
    kNone,            // healthy, or give the current step more time
    kRepair,          // send a repair command and move to (or stay in) repairing
    kPromoteStandby,  // the primary is lost: its active standby takes over
    kReplacePrimary,  // the primary is lost, no standby to promote: a new primary on `replacement`
    kReplaceStandby,  // the standby is lost: remove it; a new one on `replacement` if any
    kWait,            // the primary is lost and no relay can take over now: keep it, retry later
};
std::string_view ToString(RecoveryAction action);

struct RecoveryDecision {
    RecoveryAction action = RecoveryAction::kNone;
    std::string reason;
    std::string promote_assignment_id;       // kPromoteStandby
    std::optional<RelayChoice> replacement;  // kReplacePrimary (always), kReplaceStandby (maybe)
};

// What to do about `subject`, a live assignment of `request.cgnat_node_id`; `other` is that
// node's assignment in the other role, if any. Rules, in order:
//  - the relay node is offline: fail over at once;
//  - repairing with max_repair_attempts used and the last one older than repair_timeout: fail over;
//  - repairing, the last attempt older than repair_timeout: repair again (attempt n+1 of N);
//  - degraded for degraded_grace, or provisioning for provisioning_timeout: repair;
//  - otherwise: nothing.
// Failing over a standby is kReplaceStandby. Failing over a primary promotes the standby when it
// is active on an online relay, else picks a new primary among `candidates` (never the failing
// relay, nor the standby's node or address), else kWait with ExplainNoRelay's text.
RecoveryDecision DecideRecovery(const AssignmentHealth& subject,
                                const std::optional<AssignmentHealth>& other,
                                const RelayRequest& request,
                                std::span<const RelayCandidate> candidates,
                                const RelayPolicy& policy, common::TimePoint now);

// A mapping moving to another relay. `to` has the new relay, assignment, port and URL; its id
// and creation time are left for the repository.
struct MappingMove {
    PortMapping from;
    PortMapping to;
};

// Where the mappings of a failed-over primary go on the new relay: each keeps its public port
// number when that port is in `range` and free there (only the address in its URL changes),
// the others get ports by AllocatePorts from `hint`. `taken` are the new relay's ports in use.
// All or nothing: kUnprocessable when the new relay has too few free ports.
common::Result<std::vector<MappingMove>> PlanMappingMoves(
    std::span<const PortMapping> mappings, const std::string& new_relay_node_id,
    const std::string& new_assignment_id, std::string_view new_relay_address,
    const PortRange& range, std::span<const std::uint16_t> taken, std::uint32_t hint);

}  // namespace decloud::orchestrator::domain
