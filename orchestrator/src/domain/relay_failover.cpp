#include "orchestrator/domain/relay_failover.hpp"

#include <algorithm>
#include <chrono>

namespace decloud::orchestrator::domain {

namespace {

const RelayCandidate* FindCandidate(std::span<const RelayCandidate> candidates,
                                    const std::string& node_id) {
    for (const RelayCandidate& c : candidates) {
        if (c.node_id == node_id) return &c;
    }
    return nullptr;
}

std::string Seconds(common::Duration d) {
    return std::to_string(std::chrono::duration_cast<std::chrono::seconds>(d).count()) + " s";
}

// Excludes the relay of `a` (node and, when known, public address) from `request`.
void Exclude(RelayRequest& request, const RelayAssignment& a,
             std::span<const RelayCandidate> candidates) {
    request.exclude_node_ids.push_back(a.relay_node_id);
    if (const RelayCandidate* c = FindCandidate(candidates, a.relay_node_id);
        c && !c->public_address.empty())
        request.exclude_addresses.push_back(c->public_address);
}

RecoveryDecision FailOver(const AssignmentHealth& subject,
                          const std::optional<AssignmentHealth>& other, RelayRequest request,
                          std::span<const RelayCandidate> candidates, const RelayPolicy& policy,
                          const std::string& why) {
    const RelayAssignment& a = subject.assignment;
    RecoveryDecision d;
    Exclude(request, a, candidates);
    if (other) Exclude(request, other->assignment, candidates);

    if (a.role == RelayRole::kStandby) {
        d.action = RecoveryAction::kReplaceStandby;
        const RelayCandidate* primary =
            other ? FindCandidate(candidates, other->assignment.relay_node_id) : nullptr;
        auto selection =
            SelectStandby(request, candidates, policy, primary ? primary->region : std::string());
        d.replacement = std::move(selection.standby);
        d.reason = "standby relay " + a.relay_node_id + " lost (" + why + "); " +
                   (d.replacement ? "replaced by " + d.replacement->reason
                                  : "no replacement: " + selection.standby_reason);
        return d;
    }

    if (other && other->assignment.role == RelayRole::kStandby &&
        other->assignment.state == RelayState::kActive && other->relay_online) {
        d.action = RecoveryAction::kPromoteStandby;
        d.promote_assignment_id = other->assignment.id;
        d.reason = "primary relay " + a.relay_node_id + " lost (" + why + "); standby relay " +
                   other->assignment.relay_node_id + " takes over";
        return d;
    }

    auto selection = SelectRelays(request, candidates, policy, false);
    if (!selection.primary) {
        d.action = RecoveryAction::kWait;
        d.reason = "primary relay " + a.relay_node_id + " lost (" + why +
                   "), nothing to fail over to: " + ExplainNoRelay(request, selection);
        return d;
    }
    d.action = RecoveryAction::kReplacePrimary;
    d.replacement = std::move(selection.primary);
    d.reason = "primary relay " + a.relay_node_id + " lost (" + why + "); failing over to " +
               d.replacement->reason;
    return d;
}

RecoveryDecision Repair(const RelayAssignment& a, const RelayPolicy& policy, std::string why) {
    const std::uint32_t attempt = a.state == RelayState::kRepairing ? a.repair_attempts + 1 : 1;
    return RecoveryDecision{
        .action = RecoveryAction::kRepair,
        .reason = std::move(why) + "; repair attempt " + std::to_string(attempt) + " of " +
                  std::to_string(policy.max_repair_attempts),
        .promote_assignment_id = {},
        .replacement = std::nullopt,
    };
}

}  // namespace

std::string_view ToString(RecoveryAction action) {
    switch (action) {
        case RecoveryAction::kNone:
            return "none";
        case RecoveryAction::kRepair:
            return "repair";
        case RecoveryAction::kPromoteStandby:
            return "promote_standby";
        case RecoveryAction::kReplacePrimary:
            return "replace_primary";
        case RecoveryAction::kReplaceStandby:
            return "replace_standby";
        case RecoveryAction::kWait:
            return "wait";
    }
    return "unknown";
}

RecoveryDecision DecideRecovery(const AssignmentHealth& subject,
                                const std::optional<AssignmentHealth>& other,
                                const RelayRequest& request,
                                std::span<const RelayCandidate> candidates,
                                const RelayPolicy& policy, common::TimePoint now) {
    const RelayAssignment& a = subject.assignment;
    if (!IsLive(a.state)) return {};
    if (!subject.relay_online)
        return FailOver(subject, other, request, candidates, policy,
                        "relay node " + a.relay_node_id + " is offline");
    const common::Duration in_state = now - a.state_changed_at;
    switch (a.state) {
        case RelayState::kRepairing:
            if (in_state < policy.repair_timeout) return {};
            if (a.repair_attempts >= policy.max_repair_attempts)
                return FailOver(subject, other, request, candidates, policy,
                                "repair failed " + std::to_string(a.repair_attempts) +
                                    (a.repair_attempts == 1 ? " time" : " times"));
            return Repair(a, policy,
                          "repair attempt " + std::to_string(a.repair_attempts) +
                              " did not bring the tunnel up within " +
                              Seconds(policy.repair_timeout));
        case RelayState::kDegraded:
            if (in_state < policy.degraded_grace) return {};
            return Repair(a, policy, "degraded for " + Seconds(in_state));
        case RelayState::kProvisioning:
            if (in_state < policy.provisioning_timeout) return {};
            return Repair(a, policy, "still provisioning after " + Seconds(in_state));
        case RelayState::kActive:
        case RelayState::kRemoved:
            return {};
    }
    return {};
}

common::Result<std::vector<MappingMove>> PlanMappingMoves(
    std::span<const PortMapping> mappings, const std::string& new_relay_node_id,
    const std::string& new_assignment_id, std::string_view new_relay_address,
    const PortRange& range, std::span<const std::uint16_t> taken, std::uint32_t hint) {
    std::vector<std::uint16_t> in_use(taken.begin(), taken.end());
    std::sort(in_use.begin(), in_use.end());
    std::vector<std::optional<std::uint16_t>> port(mappings.size());
    std::vector<std::uint16_t> kept;
    std::size_t missing = 0;
    for (std::size_t i = 0; i < mappings.size(); ++i) {
        const std::uint16_t p = mappings[i].public_port;
        const bool free = range.Contains(p) &&
                          !std::binary_search(in_use.begin(), in_use.end(), p) &&
                          std::find(kept.begin(), kept.end(), p) == kept.end();
        if (free) {
            port[i] = p;
            kept.push_back(p);
        } else {
            ++missing;
        }
    }
    if (missing > 0) {
        in_use.insert(in_use.end(), kept.begin(), kept.end());
        auto fresh = AllocatePorts(range, in_use, hint, missing);
        if (!fresh)
            return common::Error::Unprocessable("cannot move " + std::to_string(mappings.size()) +
                                                " port mappings to relay " + new_relay_node_id +
                                                ": " + fresh.error().message);
        std::size_t next = 0;
        for (auto& p : port) {
            if (!p) p = (*fresh)[next++];
        }
    }
    std::vector<MappingMove> moves;
    moves.reserve(mappings.size());
    for (std::size_t i = 0; i < mappings.size(); ++i) {
        PortMapping to = mappings[i];
        to.id.clear();
        to.created_at = {};
        to.relay_node_id = new_relay_node_id;
        to.assignment_id = new_assignment_id;
        to.public_port = *port[i];
        to.public_url = PublicUrl(new_relay_address, to.public_port);
        moves.push_back({mappings[i], std::move(to)});
    }
    return moves;
}

}  // namespace decloud::orchestrator::domain
