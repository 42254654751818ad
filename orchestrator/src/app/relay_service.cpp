#include "orchestrator/app/relay_service.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <set>
#include <unordered_map>

namespace decloud::orchestrator::app {

using common::Error;
using common::Result;
using domain::RelayAssignment;
using domain::RelayRole;
using domain::RelayState;

namespace {

constexpr std::size_t kNodePage = 500;
constexpr std::size_t kMaxReasonLength = 500;

const domain::RelayCandidate* FindCandidate(const std::vector<domain::RelayCandidate>& candidates,
                                            const std::string& node_id) {
    const auto it = std::find_if(candidates.begin(), candidates.end(),
                                 [&](const auto& c) { return c.node_id == node_id; });
    return it == candidates.end() ? nullptr : &*it;
}

// The tunnel just created counts against its relay for the rest of the pass.
void CountTunnel(std::vector<domain::RelayCandidate>& candidates, const std::string& relay_id) {
    for (auto& c : candidates)
        if (c.node_id == relay_id) ++c.tunnels;
}

}  // namespace

RelayService::RelayService(ports::RelayRepository& relays, ports::NodeRepository& nodes,
                           const common::Clock& clock, RelayServiceOptions options)
    : relays_(relays), nodes_(nodes), clock_(clock), options_(std::move(options)) {}

Result<std::vector<domain::RelayCandidate>> RelayService::LoadCandidates(common::TimePoint now) {
    return relays_.Candidates(now - options_.uptime_window, now);
}

Result<RelayAssignOutcome> RelayService::AssignRelays(const std::string& cgnat_node_id) {
    auto node = nodes_.Get(cgnat_node_id);
    if (!node) return node.error();
    if (!node->cgnat.requires_relay)
        return Error::Unprocessable("node " + cgnat_node_id +
                                    " does not require a relay: " + node->cgnat.reason);
    auto live = relays_.ForCgnatNode(cgnat_node_id);
    if (!live) return live.error();
    const auto now = clock_.Now();
    auto candidates = LoadCandidates(now);
    if (!candidates) return candidates.error();
    return AssignWith(*node, *live, *candidates, now);
}

Result<RelayAssignOutcome> RelayService::AssignWith(const domain::Node& node,
                                                    const std::vector<RelayAssignment>& live,
                                                    std::vector<domain::RelayCandidate>& candidates,
                                                    common::TimePoint now) {
    const RelayAssignment* primary = nullptr;
    const RelayAssignment* standby = nullptr;
    for (const auto& a : live) {
        if (a.role == RelayRole::kPrimary) primary = &a;
        if (a.role == RelayRole::kStandby) standby = &a;
    }
    RelayAssignOutcome out;
    if (primary && (standby || !options_.want_standby)) return out;

    domain::RelayRequest request;
    request.cgnat_node_id = node.id;
    request.region = node.region;
    // Never put both roles on one machine: exclude the other role's relay and its address.
    for (const auto* other : {primary, standby}) {
        if (!other) continue;
        request.exclude_node_ids.push_back(other->relay_node_id);
        if (const auto* c = FindCandidate(candidates, other->relay_node_id);
            c && !c->public_address.empty())
            request.exclude_addresses.push_back(c->public_address);
    }

    auto assign = [&](const domain::RelayChoice& choice,
                      RelayRole role) -> Result<RelayAssignment> {
        ports::NewAssignment na;
        na.cgnat_node_id = node.id;
        na.role = role;
        na.relay_node_id = choice.relay.node_id;
        na.selection_reason = choice.reason;
        auto created = relays_.Assign(na, now);
        if (created) CountTunnel(candidates, created->relay_node_id);
        return created;
    };

    if (!primary) {
        const auto selection = domain::SelectRelays(request, candidates, options_.policy,
                                                    options_.want_standby && standby == nullptr);
        if (!selection.primary) {
            out.awaiting_reason = domain::ExplainNoRelay(request, selection);
            if (auto st = relays_.MarkAwaiting(node.id, out.awaiting_reason, now); !st)
                return st.error();
            spdlog::debug("node {} awaits a relay: {}", node.id, out.awaiting_reason);
            return out;
        }
        auto created = assign(*selection.primary, RelayRole::kPrimary);
        if (!created) return created.error();
        spdlog::info("node {}: primary relay {} ({})", node.id, created->relay_node_id,
                     created->selection_reason);
        out.primary = std::move(*created);
        if (selection.standby) {
            // A missing standby is not fatal: the next pass tries again.
            if (auto sb = assign(*selection.standby, RelayRole::kStandby)) {
                out.standby = std::move(*sb);
            } else {
                spdlog::warn("node {}: standby relay not assigned: {}", node.id,
                             sb.error().message);
            }
        }
        return out;
    }

    // A primary without a standby: add one next to it.
    request.exclude_node_ids.push_back(primary->relay_node_id);
    const auto* primary_relay = FindCandidate(candidates, primary->relay_node_id);
    const std::string primary_region = primary_relay ? primary_relay->region : node.region;
    const auto selection =
        domain::SelectStandby(request, candidates, options_.policy, primary_region);
    if (!selection.standby) return out;
    auto created = assign(*selection.standby, RelayRole::kStandby);
    if (!created) return created.error();
    spdlog::info("node {}: standby relay {} ({})", node.id, created->relay_node_id,
                 created->selection_reason);
    out.standby = std::move(*created);
    return out;
}

Result<std::size_t> RelayService::RetryAwaiting() {
    auto waiting = relays_.Awaiting();
    if (!waiting) return waiting.error();
    std::size_t assigned = 0;
    for (const auto& w : *waiting) {
        auto r = AssignRelays(w.cgnat_node_id);
        if (!r) {
            spdlog::warn("relay retry for node {} failed: {}", w.cgnat_node_id, r.error().message);
            continue;
        }
        if (r->primary) ++assigned;
    }
    return assigned;
}

Result<RelayReconcileResult> RelayService::Reconcile() {
    const auto now = clock_.Now();
    std::vector<domain::Node> all;
    ports::NodeListQuery query;
    query.limit = kNodePage;
    for (;;) {
        auto page = nodes_.List(query);
        if (!page) return page.error();
        all.insert(all.end(), page->begin(), page->end());
        if (page->size() < query.limit) break;
        query.after_id = page->back().id;
    }
    auto candidates = LoadCandidates(now);
    if (!candidates) return candidates.error();
    auto live = relays_.Live();
    if (!live) return live.error();
    std::unordered_map<std::string, std::vector<RelayAssignment>> by_cgnat;
    for (auto& a : *live) by_cgnat[a.cgnat_node_id].push_back(std::move(a));
    auto waiting = relays_.Awaiting();
    if (!waiting) return waiting.error();
    std::set<std::string> awaiting_ids;
    for (const auto& w : *waiting) awaiting_ids.insert(w.cgnat_node_id);

    RelayReconcileResult result;
    auto release = [&](const std::string& node_id, const std::string& reason) {
        if (auto r = Release(node_id, reason)) {
            ++result.released;
        } else {
            spdlog::warn("releasing relays of node {} failed: {}", node_id, r.error().message);
        }
    };
    // First the public nodes: offers made now count as candidates for the CGNAT nodes below.
    for (const auto& node : all) {
        if (node.cgnat.requires_relay) continue;
        // Re-registered as publicly reachable: it needs its tunnels no more, nor waits.
        if (by_cgnat.contains(node.id) || awaiting_ids.contains(node.id))
            release(node.id, "node is publicly reachable now: " + node.cgnat.reason);
        if (!options_.auto_offer || node.cgnat.behind_cgnat || FindCandidate(*candidates, node.id))
            continue;
        ports::RelayOffer offer;
        offer.node_id = node.id;
        offer.wireguard_port = options_.offer_wireguard_port;
        offer.bandwidth_mbps = options_.offer_bandwidth_mbps;
        if (auto st = relays_.UpsertOffer(offer, now); !st) {
            spdlog::warn("relay offer for node {} failed: {}", node.id, st.error().message);
            continue;
        }
        ++result.offered;
        spdlog::info("node {} offered as a relay", node.id);
    }
    if (result.offered > 0) {
        candidates = LoadCandidates(now);
        if (!candidates) return candidates.error();
    }

    static const std::vector<RelayAssignment> kNone;
    for (const auto& node : all) {
        if (!node.cgnat.requires_relay) continue;
        const auto it = by_cgnat.find(node.id);
        const bool has_live = it != by_cgnat.end();
        const auto last_seen = node.last_heartbeat_at.value_or(node.registered_at);
        if (node.status == domain::NodeStatus::kOffline &&
            now - last_seen >= options_.release_after_offline) {
            if (has_live || awaiting_ids.contains(node.id))
                release(node.id, "node offline since " + common::FormatRfc3339(last_seen));
            continue;
        }
        if (has_live)
            std::stable_sort(
                it->second.begin(), it->second.end(), [](const auto& a, const auto& b) {
                    return a.role == RelayRole::kPrimary && b.role != RelayRole::kPrimary;
                });
        auto r = AssignWith(node, has_live ? it->second : kNone, *candidates, now);
        if (!r) {
            spdlog::warn("relay assignment for node {} failed: {}", node.id, r.error().message);
            continue;
        }
        result.assigned += (r->primary ? 1 : 0) + (r->standby ? 1 : 0);
        if (r->awaiting_reason.empty()) continue;
        ++result.awaiting;
        // Once per wait, not on every retry.
        if (!awaiting_ids.contains(node.id))
            spdlog::info("node {} awaits a relay: {}", node.id, r->awaiting_reason);
    }
    return result;
}

Result<domain::PortMapping> RelayService::AllocatePortForVm(const std::string& vm_id,
                                                            std::uint16_t vm_port,
                                                            domain::PortProtocol protocol) {
    if (vm_port == 0) return Error::InvalidArgument("vm port: between 1 and 65535");
    return relays_.AllocatePortForVm(vm_id, vm_port, protocol, clock_.Now());
}

Result<std::vector<domain::PortMapping>> RelayService::ReleaseVm(const std::string& vm_id) {
    return relays_.RemoveMappingsForVm(vm_id);
}

Result<std::vector<RelayAssignment>> RelayService::Release(const std::string& cgnat_node_id,
                                                           const std::string& reason) {
    auto released = relays_.Release(cgnat_node_id, reason, clock_.Now());
    if (released && !released->empty())
        spdlog::info("node {}: {} relay assignment(s) released: {}", cgnat_node_id,
                     released->size(), reason);
    return released;
}

Result<RelayAssignment> RelayService::Repair(const std::string& assignment_id,
                                             const std::string& reason) {
    if (reason.empty() || reason.size() > kMaxReasonLength)
        return Error::InvalidArgument("reason: 1 to 500 characters");
    auto current = relays_.Get(assignment_id);
    if (!current) return current.error();
    if (!domain::IsLive(current->state))
        return Error::Conflict("assignment " + assignment_id +
                               " is removed: " + current->state_reason);
    auto repaired =
        relays_.Transition(assignment_id,
                           {RelayState::kProvisioning, RelayState::kActive, RelayState::kDegraded,
                            RelayState::kRepairing},
                           RelayState::kRepairing, "repair requested: " + reason, clock_.Now());
    if (repaired)
        spdlog::info("relay assignment {} under repair (attempt {}): {}", assignment_id,
                     repaired->repair_attempts, reason);
    return repaired;
}

Result<std::vector<std::string>> RelayService::OwnedNodeIds(const std::string& wallet) {
    std::vector<std::string> out;
    ports::NodeListQuery query;
    query.limit = kNodePage;
    query.operator_wallet = wallet;
    for (;;) {
        auto page = nodes_.List(query);
        if (!page) return page.error();
        for (const auto& n : *page) out.push_back(n.id);
        if (page->size() < query.limit) break;
        query.after_id = page->back().id;
    }
    return out;
}

Result<std::vector<RelayAssignment>> RelayService::List(const RelayViewer& viewer) {
    auto live = relays_.Live();
    if (!live || viewer.admin) return live;
    auto owned = OwnedNodeIds(viewer.wallet_address);
    if (!owned) return owned.error();
    const std::set<std::string> mine(owned->begin(), owned->end());
    std::vector<RelayAssignment> out;
    for (auto& a : *live)
        if (mine.contains(a.cgnat_node_id) || mine.contains(a.relay_node_id))
            out.push_back(std::move(a));
    return out;
}

Result<RelayDetail> RelayService::Get(const std::string& assignment_id, const RelayViewer& viewer) {
    auto assignment = relays_.Get(assignment_id);
    if (!assignment) return assignment.error();
    if (!viewer.admin) {
        bool involved = false;
        for (const auto& id : {assignment->cgnat_node_id, assignment->relay_node_id}) {
            auto node = nodes_.Get(id);
            if (node && node->operator_wallet == viewer.wallet_address) involved = true;
        }
        if (!involved)
            return Error::NotFound("no relay assignment with id '" + assignment_id + "'");
    }
    RelayDetail detail;
    auto events = relays_.Events(assignment_id);
    if (!events) return events.error();
    detail.events = std::move(*events);
    if (assignment->role == RelayRole::kPrimary && domain::IsLive(assignment->state)) {
        auto mappings = relays_.MappingsForRelay(assignment->relay_node_id);
        if (!mappings) return mappings.error();
        for (auto& m : *mappings)
            if (m.assignment_id == assignment_id) detail.mappings.push_back(std::move(m));
    }
    detail.assignment = std::move(*assignment);
    return detail;
}

Result<RelayStats> RelayService::Stats() {
    RelayStats stats;
    auto live = relays_.Live();
    if (!live) return live.error();
    std::set<std::string> relays, served;
    for (const auto& a : *live) {
        relays.insert(a.relay_node_id);
        ++stats.assignments;
        if (a.role == RelayRole::kPrimary) {
            ++stats.primaries;
            served.insert(a.cgnat_node_id);
        } else {
            ++stats.standbys;
        }
        switch (a.state) {
            case RelayState::kProvisioning:
                ++stats.provisioning;
                break;
            case RelayState::kActive:
                ++stats.active;
                break;
            case RelayState::kDegraded:
                ++stats.degraded;
                break;
            case RelayState::kRepairing:
                ++stats.repairing;
                break;
            case RelayState::kRemoved:
                break;
        }
    }
    stats.relays = relays.size();
    stats.cgnat_nodes_served = served.size();
    for (const auto& relay : relays) {
        auto mappings = relays_.MappingsForRelay(relay);
        if (!mappings) return mappings.error();
        stats.port_mappings += mappings->size();
    }
    const auto now = clock_.Now();
    auto candidates = LoadCandidates(now);
    if (!candidates) return candidates.error();
    stats.offers = static_cast<std::size_t>(std::count_if(candidates->begin(), candidates->end(),
                                                          [](const auto& c) { return c.enabled; }));
    auto waiting = relays_.Awaiting();
    if (!waiting) return waiting.error();
    stats.awaiting = waiting->size();
    return stats;
}

}  // namespace decloud::orchestrator::app
