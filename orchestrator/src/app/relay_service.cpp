#include "orchestrator/app/relay_service.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
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

constexpr std::uint32_t kCgnatKeepaliveSeconds = 25;  // keeps the carrier's NAT mapping open

// A base64 X25519 key as agents send it (44 characters, one '=' of padding).
bool LooksLikeWireGuardKey(const std::string& key) {
    if (key.size() != 44 || key.back() != '=') return false;
    return std::all_of(key.begin(), key.end() - 1, [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/';
    });
}

const proto::RelayInterfaceReport* FindInterface(const proto::RelayReport& report,
                                                 const std::string& name) {
    for (const auto& i : report.interfaces)
        if (i.interface == name) return &i;
    return nullptr;
}

const proto::RelayPeerReport* FindPeer(const proto::RelayInterfaceReport& seen,
                                       const std::string& key) {
    for (const auto& p : seen.peers)
        if (p.public_key == key) return &p;
    return nullptr;
}

std::string InTunnel(const std::string& address) {
    return address + "/" + std::to_string(domain::kTunnelPrefixLength);
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
    Result<RelayReconcileResult> result = RelayReconcileResult{};
    auto locked = relays_.WithMonitorLock([&] { result = ReconcileHoldingLock(); });
    if (!locked) return locked.error();
    if (!*locked) {
        RelayReconcileResult idle;
        idle.ran = false;
        result = idle;
    }
    // Every replica, whether it ran the pass or not, learns which nodes take part now: its
    // heartbeats decide from that whether a node's relay state must be exchanged.
    if (auto st = RefreshExchangeHints(); !st)
        spdlog::warn("refreshing which nodes take part in relays failed: {}", st.error().message);
    return result;
}

Result<RelayReconcileResult> RelayService::ReconcileHoldingLock() {
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
        // Its agent's key goes on the offer with its next heartbeat.
        std::lock_guard lock(mu_);
        recorded_keys_.erase(node.id);
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

    // Recovery, on the assignments as they are after this pass.
    live = relays_.Live();
    if (!live) return live.error();
    std::unordered_map<std::string, bool> online;
    for (const auto& node : all) online[node.id] = node.status == domain::NodeStatus::kOnline;
    by_cgnat.clear();
    for (const auto& a : *live) by_cgnat[a.cgnat_node_id].push_back(a);
    for (const auto& node : all) {
        const auto it = by_cgnat.find(node.id);
        if (it != by_cgnat.end()) Recover(node, it->second, online, *candidates, now, result);
    }
    // Ports of VMs deleted or moved stop being forwarded; VMs count on their node's relay.
    if (auto pruned = relays_.PruneMappings()) {
        result.mappings_pruned = pruned->size();
        for (const auto& m : *pruned)
            spdlog::info("public port {} on relay {} released: VM {} was deleted or moved",
                         m.public_port, m.relay_node_id, m.vm_id);
    } else {
        spdlog::warn("pruning relay port mappings failed: {}", pruned.error().message);
    }
    return result;
}

common::Status RelayService::RefreshExchangeHints() {
    auto live = relays_.Live();
    if (!live) return live.error();
    std::unordered_set<std::string> involved;
    std::unordered_set<std::string> live_ids;
    for (const auto& a : *live) {
        involved.insert(a.cgnat_node_id);
        involved.insert(a.relay_node_id);
        live_ids.insert(a.id);
    }
    // A node rotating its key exchanges relay state even when it carries no tunnel.
    bool rotating = true;  // when unknown, heartbeats keep looking
    if (auto rotations = relays_.KeyRotations()) {
        for (const auto& r : *rotations) involved.insert(r.node_id);
        rotating = !rotations->empty();
    } else {
        spdlog::warn("reading key rotations failed: {}", rotations.error().message);
    }
    // An offer still without a key (made by whichever replica ran the pass) gets it from its
    // node's next report here too: that report must reach the database.
    auto keyless = relays_.OffersWithoutKey();
    if (!keyless)
        spdlog::warn("reading relay offers without a key failed: {}", keyless.error().message);
    std::lock_guard lock(mu_);
    if (keyless)
        for (const auto& id : *keyless) recorded_keys_.erase(id);
    rotations_hint_ = rotating;
    std::erase_if(learned_endpoints_,
                  [&](const auto& entry) { return !live_ids.contains(entry.first); });
    // A node that stopped taking part gets one more exchange, which empties its relay state.
    for (const auto& id : involved_)
        if (!involved.contains(id)) recorded_keys_.erase(id);
    involved_ = std::move(involved);
    return common::Ok();
}

void RelayService::Recover(const domain::Node& node, const std::vector<RelayAssignment>& live,
                           const std::unordered_map<std::string, bool>& online,
                           std::vector<domain::RelayCandidate>& candidates, common::TimePoint now,
                           RelayReconcileResult& result) {
    const RelayAssignment* primary = nullptr;
    const RelayAssignment* standby = nullptr;
    for (const auto& a : live) (a.role == RelayRole::kPrimary ? primary : standby) = &a;
    auto health = [&](const RelayAssignment& a) {
        const auto it = online.find(a.relay_node_id);
        return domain::AssignmentHealth{a, it != online.end() && it->second};
    };
    domain::RelayRequest request;
    request.cgnat_node_id = node.id;
    request.region = node.region;
    for (const RelayAssignment* subject : {primary, standby}) {
        if (!subject) continue;
        const RelayAssignment* other = subject == primary ? standby : primary;
        std::optional<domain::AssignmentHealth> other_health;
        if (other) other_health = health(*other);
        const auto decision = domain::DecideRecovery(health(*subject), other_health, request,
                                                     candidates, options_.policy, now);
        using domain::RecoveryAction;
        if (decision.action == RecoveryAction::kRepair) {
            auto r = relays_.Transition(subject->id,
                                        {RelayState::kProvisioning, RelayState::kActive,
                                         RelayState::kDegraded, RelayState::kRepairing},
                                        RelayState::kRepairing, decision.reason, now);
            if (r) {
                ++result.repairs;
                spdlog::info("relay assignment {} repairing (attempt {}): {}", subject->id,
                             r->repair_attempts, decision.reason);
            }
        } else if (decision.action == RecoveryAction::kReplaceStandby) {
            auto r =
                relays_.Transition(subject->id, {}, RelayState::kRemoved, decision.reason, now);
            if (r)
                spdlog::info("standby {} of node {} removed: {}", subject->id, node.id,
                             decision.reason);
        } else if (decision.action == RecoveryAction::kPromoteStandby ||
                   decision.action == RecoveryAction::kReplacePrimary) {
            ports::FailoverRequest failover;
            failover.cgnat_node_id = node.id;
            failover.failed_assignment_id = subject->id;
            failover.reason = decision.reason;
            if (decision.action == RecoveryAction::kPromoteStandby) {
                failover.promote_assignment_id = decision.promote_assignment_id;
            } else {
                ports::NewAssignment replacement;
                replacement.cgnat_node_id = node.id;
                replacement.relay_node_id = decision.replacement->relay.node_id;
                replacement.selection_reason = decision.replacement->reason;
                replacement.cgnat_public_key = subject->cgnat_public_key;
                failover.replacement = std::move(replacement);
                CountTunnel(candidates, decision.replacement->relay.node_id);
            }
            auto r = relays_.Failover(failover, now);
            if (!r) {
                spdlog::warn("failover of node {} failed: {}", node.id, r.error().message);
                return;
            }
            ++result.failovers;
            spdlog::info("node {} failed over to relay {} ({} port mapping(s) moved): {}", node.id,
                         r->primary.relay_node_id, r->moves.size(), decision.reason);
            return;  // the rest is judged on the next pass, on the new assignments
        }
    }
}

bool RelayService::NeedsRelayExchange(const std::string& node_id,
                                      const proto::RelayReport& report) {
    if (!report.interfaces.empty() || !report.next_public_key.empty()) return true;
    std::lock_guard lock(mu_);
    if (involved_.contains(node_id)) return true;
    const auto it = recorded_keys_.find(node_id);
    return it == recorded_keys_.end() || it->second != report.public_key;
}

common::Status RelayService::RecordReport(const std::string& node_id,
                                          const proto::RelayReport& report) {
    const auto now = clock_.Now();
    const bool valid_key = LooksLikeWireGuardKey(report.public_key);
    if (!report.public_key.empty() && !valid_key)
        return Error::InvalidArgument("relay.publicKey: not a base64 WireGuard key");
    bool key_recorded = false;
    {
        std::lock_guard lock(mu_);
        const auto it = recorded_keys_.find(node_id);
        key_recorded = it != recorded_keys_.end() && it->second == report.public_key;
    }
    if (valid_key && !key_recorded) {
        auto offer = relays_.Offer(node_id);
        if (offer && offer->wireguard_public_key != report.public_key) {
            offer->wireguard_public_key = report.public_key;
            if (auto st = relays_.UpsertOffer(*offer, now); !st) return st;
        } else if (!offer && offer.error().code != common::ErrorCode::kNotFound) {
            return offer.error();
        }
    }
    auto as_cgnat = relays_.ForCgnatNode(node_id);
    if (!as_cgnat) return as_cgnat.error();
    for (auto& a : *as_cgnat) {
        if (valid_key && a.cgnat_public_key != report.public_key) {
            auto updated = relays_.SetCgnatKey(a.id, report.public_key, now);
            if (!updated) return updated.error();
            a = std::move(*updated);
        }
        if (a.relay_public_key.empty()) continue;
        const auto* seen = FindInterface(report, a.interface_name);
        const auto* peer = seen ? FindPeer(*seen, a.relay_public_key) : nullptr;
        JudgeTunnel(a, seen, peer, now);
        RecordLatency(a, peer, now);
    }
    auto as_relay = relays_.ForRelayNode(node_id);
    if (!as_relay) return as_relay.error();
    const auto relay_interface = domain::RelayInterfaceName(node_id);
    const auto* relay_seen = FindInterface(report, relay_interface);
    for (const auto& a : *as_relay) {
        if (a.cgnat_public_key.empty()) continue;
        const auto* peer = relay_seen ? FindPeer(*relay_seen, a.cgnat_public_key) : nullptr;
        JudgeTunnel(a, relay_seen, peer, now);
        RecordLatency(a, peer, now);
        if (peer && (peer->rx_bytes > 0 || peer->tx_bytes > 0) &&
            DueAndMark(last_traffic_, a.id, options_.traffic_interval, now)) {
            if (auto st = relays_.RecordTraffic(a.id, peer->rx_bytes, peer->tx_bytes, now); !st)
                spdlog::warn("relay assignment {}: recording traffic failed: {}", a.id,
                             st.error().message);
        }
        if (peer && !peer->endpoint.empty()) {
            std::lock_guard lock(mu_);
            learned_endpoints_[a.id] = peer->endpoint;
        }
    }
    if (DueAndMark(last_port_audit_, node_id, options_.port_audit_interval, now))
        AuditForwards(node_id, report, *as_cgnat, *as_relay, now);
    // A rotation that cannot move on now is retried with the next report; the tunnels' state
    // above is recorded regardless.
    if (auto st = AdvanceRotations(node_id, report, *as_cgnat, *as_relay, now); !st)
        spdlog::warn("node {}: key rotation: {}", node_id, st.error().message);
    if (valid_key) {
        std::lock_guard lock(mu_);
        recorded_keys_[node_id] = report.public_key;
    }
    return common::Ok();
}

common::Status RelayService::AdvanceRotations(const std::string& node_id,
                                              const proto::RelayReport& report,
                                              const std::vector<RelayAssignment>& as_cgnat,
                                              const std::vector<RelayAssignment>& as_relay,
                                              common::TimePoint now) {
    if (!RotationsMayBeInProgress()) return common::Ok();
    auto rotations = relays_.KeyRotations();
    if (!rotations) return rotations.error();
    if (rotations->empty()) return common::Ok();
    std::unordered_map<std::string, ports::KeyRotation> by_node;
    for (auto& r : *rotations) by_node.emplace(r.node_id, std::move(r));
    std::set<std::string> changed;

    // The node's own rotation: its staged key reported, or the switch done.
    if (const auto it = by_node.find(node_id); it != by_node.end()) {
        auto& r = it->second;
        if (r.committing && report.public_key == r.next_public_key) {
            if (auto st = relays_.FinishKeyRotation(node_id); !st) return st;
            spdlog::info("node {} rotated its WireGuard key to {}", node_id, r.next_public_key);
            by_node.erase(it);
        } else if (!r.committing && LooksLikeWireGuardKey(report.next_public_key) &&
                   report.next_public_key != r.next_public_key &&
                   report.next_public_key != report.public_key) {
            r.next_public_key = report.next_public_key;
            r.staged_on.clear();
            changed.insert(node_id);
        }
    }
    // Rotations of the other ends of this node's tunnels that this agent has staged.
    auto staged_here = [&](const RelayAssignment& a, const std::string& other,
                           const std::string& interface) {
        const auto it = by_node.find(other);
        if (it == by_node.end() || it->second.next_public_key.empty()) return;
        auto& r = it->second;
        if (std::find(r.staged_on.begin(), r.staged_on.end(), a.id) != r.staged_on.end()) return;
        const auto* seen = FindInterface(report, interface);
        if (!seen || !FindPeer(*seen, r.next_public_key)) return;
        r.staged_on.push_back(a.id);
        changed.insert(other);
    };
    for (const auto& a : as_cgnat) staged_here(a, a.relay_node_id, a.interface_name);
    const auto relay_interface = domain::RelayInterfaceName(node_id);
    for (const auto& a : as_relay) staged_here(a, a.cgnat_node_id, relay_interface);

    // A rotation commits once every live tunnel of its node has the next key at its other end.
    for (const auto& id : changed) {
        auto& r = by_node.at(id);
        if (!r.committing && !r.next_public_key.empty()) {
            auto mine_cgnat = relays_.ForCgnatNode(id);
            if (!mine_cgnat) return mine_cgnat.error();
            auto mine_relay = relays_.ForRelayNode(id);
            if (!mine_relay) return mine_relay.error();
            bool everywhere = true;
            for (const auto* list : {&*mine_cgnat, &*mine_relay})
                for (const auto& a : *list)
                    if (std::find(r.staged_on.begin(), r.staged_on.end(), a.id) ==
                        r.staged_on.end())
                        everywhere = false;
            if (everywhere) {
                r.committing = true;
                spdlog::info("node {}: next WireGuard key staged on all {} tunnel(s); committing",
                             id, mine_cgnat->size() + mine_relay->size());
            }
        }
        if (auto st = relays_.SaveKeyRotation(r, now); !st) return st;
    }
    return common::Ok();
}

bool RelayService::RotationsMayBeInProgress() const {
    std::lock_guard lock(mu_);
    return rotations_hint_;
}

common::Status RelayService::CheckNodeVisible(const std::string& node_id,
                                              const RelayViewer& viewer) {
    auto node = nodes_.Get(node_id);
    if (!node) return node.error();
    if (!viewer.admin && node->operator_wallet != viewer.wallet_address)
        return Error::NotFound("no node with id '" + node_id + "'");
    return common::Ok();
}

Result<ports::KeyRotation> RelayService::RequestKeyRotation(const std::string& node_id,
                                                            const RelayViewer& viewer,
                                                            const std::string& reason) {
    if (reason.size() > kMaxReasonLength)
        return Error::InvalidArgument("reason: at most 500 characters");
    if (auto st = CheckNodeVisible(node_id, viewer); !st) return st.error();
    auto rotation = relays_.RequestKeyRotation(
        node_id, reason.empty() ? "requested by " + viewer.wallet_address : reason, clock_.Now());
    if (!rotation) return rotation;
    spdlog::info("node {}: WireGuard key rotation requested ({})", node_id, rotation->reason);
    // Its next heartbeats exchange relay state with this replica until the rotation is done.
    std::lock_guard lock(mu_);
    recorded_keys_.erase(node_id);
    involved_.insert(node_id);
    rotations_hint_ = true;
    return rotation;
}

Result<std::optional<ports::KeyRotation>> RelayService::KeyRotationOf(const std::string& node_id,
                                                                      const RelayViewer& viewer) {
    if (auto st = CheckNodeVisible(node_id, viewer); !st) return st.error();
    auto rotations = relays_.KeyRotations();
    if (!rotations) return rotations.error();
    for (auto& r : *rotations)
        if (r.node_id == node_id) return std::optional<ports::KeyRotation>(std::move(r));
    return std::optional<ports::KeyRotation>();
}

bool RelayService::DueAndMark(std::unordered_map<std::string, common::TimePoint>& last,
                              const std::string& key, common::Duration interval,
                              common::TimePoint now) {
    std::lock_guard lock(mu_);
    const auto it = last.find(key);
    if (it != last.end() && now - it->second < interval) return false;
    last[key] = now;
    return true;
}

// An agent reads its forwards back from the kernel when it reports, and the next heartbeat reply
// re-applies the desired ones over what it read, so a difference (a rule deleted by hand, a
// mapping allocated after the report) normally heals by itself: the first one is recorded in
// the assignment's events. One that is still there at the next audit is repaired, which counts
// towards failing over to another relay.
void RelayService::AuditForwards(const std::string& node_id, const proto::RelayReport& report,
                                 const std::vector<RelayAssignment>& as_cgnat,
                                 const std::vector<RelayAssignment>& as_relay,
                                 common::TimePoint now) {
    struct Check {
        const RelayAssignment* assignment;
        const proto::RelayInterfaceReport* seen;
        std::size_t desired;
    };
    std::vector<Check> checks;
    if (!as_relay.empty()) {
        // The relay side: one interface carries the ports of every tunnel.
        auto mappings = relays_.MappingsForRelay(node_id);
        if (!mappings) {
            spdlog::warn("node {}: port audit: {}", node_id, mappings.error().message);
            return;
        }
        std::unordered_set<std::string> ids;
        for (const auto& a : as_relay) ids.insert(a.id);
        std::size_t desired = 0;
        for (const auto& m : *mappings) desired += ids.contains(m.assignment_id) ? 1 : 0;
        const auto* seen = FindInterface(report, domain::RelayInterfaceName(node_id));
        for (const auto& a : as_relay) checks.push_back({&a, seen, desired});
    }
    for (const auto& a : as_cgnat) {
        if (a.role != RelayRole::kPrimary) continue;
        auto mappings = relays_.MappingsForRelay(a.relay_node_id);
        if (!mappings) {
            spdlog::warn("node {}: port audit: {}", node_id, mappings.error().message);
            return;
        }
        std::size_t desired = 0;
        for (const auto& m : *mappings)
            desired += m.assignment_id == a.id && !m.vm_address.empty() ? 1 : 0;
        checks.push_back({&a, FindInterface(report, a.interface_name), desired});
    }
    for (const auto& [a, seen, desired] : checks) {
        // A missing interface is the tunnel judge's business, not a forwarding difference.
        if (!seen || !domain::IsLive(a->state)) continue;
        const bool differs = seen->forwards != desired;
        bool differed_before = false;
        {
            std::lock_guard lock(mu_);
            differed_before = forwards_differed_.contains(a->id);
            if (differs) {
                forwards_differed_.insert(a->id);
            } else {
                forwards_differed_.erase(a->id);
            }
        }
        if (!differs) continue;
        const std::string what = "port audit: " + std::to_string(seen->forwards) + " of " +
                                 std::to_string(desired) + " forwards installed on " +
                                 seen->interface + " of node " + node_id;
        if (!differed_before) {
            spdlog::info("relay assignment {}: {}", a->id, what);
            if (auto st = relays_.RecordEvent(a->id, what + "; the node re-applies them", now); !st)
                spdlog::warn("relay assignment {}: {}", a->id, st.error().message);
            continue;
        }
        if (auto repaired = Repair(a->id, what + " at two audits in a row"); !repaired)
            spdlog::warn("relay assignment {}: repair after the port audit: {}", a->id,
                         repaired.error().message);
    }
}

void RelayService::RecordLatency(const RelayAssignment& a, const proto::RelayPeerReport* peer,
                                 common::TimePoint now) {
    if (!peer || !peer->rtt_us || peer->unanswered_probe_rounds > 0) return;
    if (!DueAndMark(last_latency_, a.id, options_.traffic_interval, now)) return;
    if (auto st = relays_.RecordLatency(a.id, *peer->rtt_us, now); !st)
        spdlog::warn("relay assignment {}: recording latency failed: {}", a.id, st.error().message);
}

void RelayService::JudgeTunnel(const RelayAssignment& a, const proto::RelayInterfaceReport* seen,
                               const proto::RelayPeerReport* peer, common::TimePoint now) {
    std::optional<common::TimePoint> handshake;
    if (peer && peer->latest_handshake_unix > 0)
        handshake = common::TimePoint{} + std::chrono::seconds{peer->latest_handshake_unix};
    // Handshakes only prove the keys agree; probes that stopped coming back prove packets no
    // longer cross. Such a tunnel is not fresh, whatever its handshakes say.
    const auto limit = options_.unanswered_probe_rounds_before_degraded;
    const bool silent = limit > 0 && peer && peer->unanswered_probe_rounds >= limit;
    const bool fresh = handshake && now - *handshake <= options_.handshake_stale_after && !silent;
    // Only a handshake after the tunnel's last change counts as recovery: the other end may
    // still remember one from before a fault. Agents report whole seconds, so one in the same
    // second as the change counts (a relay interface recreated by the same heartbeat that
    // reported it missing shakes hands within milliseconds, then not again for two minutes).
    if (fresh && *handshake + std::chrono::seconds{1} > a.state_changed_at &&
        a.state != RelayState::kActive) {
        auto r = relays_.Transition(
            a.id, {RelayState::kProvisioning, RelayState::kDegraded, RelayState::kRepairing},
            RelayState::kActive, "handshake at " + common::FormatRfc3339(*handshake), now);
        if (r) spdlog::info("relay assignment {} active", a.id);
        return;
    }
    if (fresh || a.state != RelayState::kActive) return;
    std::string why;
    if (!seen) {
        why = "interface missing";
    } else if (!peer) {
        why = "peer missing on " + seen->interface;
    } else if (!handshake) {
        why = "no handshake on " + seen->interface;
    } else if (silent) {
        why = "no echo over " + seen->interface + " for " +
              std::to_string(peer->unanswered_probe_rounds) +
              " latency probe rounds although its handshakes are fresh";
    } else {
        why = "latest handshake on " + seen->interface + " " +
              std::to_string(
                  std::chrono::duration_cast<std::chrono::seconds>(now - *handshake).count()) +
              " s ago";
    }
    if (seen && !seen->error.empty()) why += " (" + seen->error + ")";
    auto r = relays_.Transition(a.id, {RelayState::kActive}, RelayState::kDegraded, why, now);
    if (r) spdlog::info("relay assignment {} degraded: {}", a.id, why);
}

Result<proto::RelayDesiredState> RelayService::DesiredState(const std::string& node_id) {
    proto::RelayDesiredState out;
    std::vector<ports::KeyRotation> none;
    auto rotations = RotationsMayBeInProgress() ? relays_.KeyRotations()
                                                : Result<std::vector<ports::KeyRotation>>(none);
    if (!rotations) return rotations.error();
    std::unordered_map<std::string, const ports::KeyRotation*> rotation_of;
    for (const auto& r : *rotations) rotation_of[r.node_id] = &r;
    if (const auto it = rotation_of.find(node_id); it != rotation_of.end()) {
        out.key_rotation = it->second->committing ? "commit" : "stage";
        if (it->second->committing) out.next_public_key = it->second->next_public_key;
    }
    // While the other end rotates its key, its next key is a successor peer of the current one.
    auto add_successor = [&](proto::RelayInterfaceSpec& spec, const std::string& other) {
        const auto it = rotation_of.find(other);
        if (it == rotation_of.end() || it->second->next_public_key.empty()) return;
        auto successor = spec.peers.back();
        if (successor.public_key == it->second->next_public_key) return;
        successor.replaces = successor.public_key;
        successor.public_key = it->second->next_public_key;
        spec.peers.push_back(std::move(successor));
    };
    // The relay role: one interface, one peer per CGNAT tunnel whose key is known.
    auto as_relay = relays_.ForRelayNode(node_id);
    if (!as_relay) return as_relay.error();
    if (!as_relay->empty()) {
        proto::RelayInterfaceSpec spec;
        spec.interface = domain::RelayInterfaceName(node_id);
        std::unordered_map<std::string, const RelayAssignment*> by_id;
        for (const auto& a : *as_relay) {
            by_id[a.id] = &a;
            spec.listen_port = a.relay_listen_port;
            spec.addresses.push_back(InTunnel(a.tunnel.relay_address));
            if (a.cgnat_public_key.empty()) continue;
            std::string endpoint;
            {
                std::lock_guard lock(mu_);
                if (auto it = learned_endpoints_.find(a.id); it != learned_endpoints_.end())
                    endpoint = it->second;
            }
            spec.peers.push_back({a.cgnat_public_key,
                                  std::move(endpoint),
                                  {a.tunnel.cgnat_address + "/32"},
                                  kCgnatKeepaliveSeconds,
                                  ""});
            add_successor(spec, a.cgnat_node_id);
        }
        auto mappings = relays_.MappingsForRelay(node_id);
        if (!mappings) return mappings.error();
        for (const auto& m : *mappings) {
            const auto it = by_id.find(m.assignment_id);
            if (it == by_id.end()) continue;
            // The public port travels unchanged; the CGNAT node maps it to the VM.
            out.forwards.push_back({spec.interface, m.public_port,
                                    std::string(domain::ToString(m.protocol)),
                                    it->second->tunnel.cgnat_address, m.public_port});
        }
        out.interfaces.push_back(std::move(spec));
    }
    // The CGNAT role: one interface per tunnel; the primary's carries the VMs' ports.
    auto as_cgnat = relays_.ForCgnatNode(node_id);
    if (!as_cgnat) return as_cgnat.error();
    for (const auto& a : *as_cgnat) {
        proto::RelayInterfaceSpec spec;
        spec.interface = a.interface_name;
        spec.addresses.push_back(InTunnel(a.tunnel.cgnat_address));
        if (!a.relay_public_key.empty() && !a.relay_endpoint.empty()) {
            spec.peers.push_back({a.relay_public_key,
                                  a.relay_endpoint,
                                  {a.tunnel.relay_address + "/32"},
                                  kCgnatKeepaliveSeconds,
                                  ""});
            add_successor(spec, a.relay_node_id);
        }
        if (a.role == RelayRole::kPrimary) {
            auto mappings = relays_.MappingsForRelay(a.relay_node_id);
            if (!mappings) return mappings.error();
            for (const auto& m : *mappings) {
                if (m.assignment_id != a.id || m.vm_address.empty()) continue;
                out.forwards.push_back({a.interface_name, m.public_port,
                                        std::string(domain::ToString(m.protocol)), m.vm_address,
                                        m.vm_port});
            }
        }
        out.interfaces.push_back(std::move(spec));
    }
    return out;
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

Result<std::vector<domain::PortMapping>> RelayService::MappingsForVm(const std::string& vm_id) {
    return relays_.MappingsForVm(vm_id);
}

Result<domain::PortMapping> RelayService::RemoveVmPort(const std::string& vm_id,
                                                       std::uint16_t vm_port,
                                                       domain::PortProtocol protocol) {
    return relays_.RemoveMapping(vm_id, vm_port, protocol);
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
    auto totals = relays_.TrafficTotals();
    if (!totals) return totals.error();
    stats.bytes_relayed = totals->bytes_relayed;
    stats.failovers = totals->failovers;
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
