#include "decloud/fakes/in_memory_relay_repository.hpp"

#include <algorithm>
#include <set>

#include "decloud/common/ids.hpp"

namespace decloud::fakes {

using common::Error;
using common::Result;
using common::Status;
using orchestrator::domain::PortMapping;
using orchestrator::domain::PortProtocol;
using orchestrator::domain::RelayAssignment;
using orchestrator::domain::RelayEvent;
using orchestrator::domain::RelayRole;
using orchestrator::domain::RelayState;
namespace domain = orchestrator::domain;
namespace ports = orchestrator::ports;

bool InMemoryRelayRepository::TakeFailure() {
    const bool fail = fail_next_;
    fail_next_ = false;
    return fail;
}

std::string InMemoryRelayRepository::RelayAddress(const std::string& relay_node_id) const {
    const auto it = offers_.find(relay_node_id);
    if (it != offers_.end() && !it->second.offer.endpoint_host.empty())
        return it->second.offer.endpoint_host;
    auto node = nodes_.Get(relay_node_id);
    if (!node) return {};
    return node->reported_ip.empty() ? node->observed_ip : node->reported_ip;
}

const RelayAssignment* InMemoryRelayRepository::LivePrimary(const std::string& node_id) const {
    for (const auto& [id, a] : assignments_)
        if (a.cgnat_node_id == node_id && a.role == RelayRole::kPrimary && domain::IsLive(a.state))
            return &a;
    return nullptr;
}

void InMemoryRelayRepository::SetVmRelays(const std::string& node_id,
                                          const std::string& relay_node_id) {
    for (auto& [id, vm] : vms_)
        if (vm.node_id == node_id) vm.relay_node_id = relay_node_id;
}

Result<ports::RelayOffer> InMemoryRelayRepository::Offer(const std::string& node_id) {
    std::lock_guard lock(mutex_);
    if (TakeFailure()) return Error::Unavailable("injected failure");
    const auto it = offers_.find(node_id);
    if (it == offers_.end()) return Error::NotFound("node " + node_id + " offers no relay");
    return it->second.offer;
}

Status InMemoryRelayRepository::UpsertOffer(const ports::RelayOffer& offer, common::TimePoint now) {
    std::lock_guard lock(mutex_);
    if (TakeFailure()) return Error::Unavailable("injected failure");
    if (!nodes_.Get(offer.node_id))
        return Error::NotFound("no node with id '" + offer.node_id + "'");
    auto& stored = offers_[offer.node_id];
    const bool rotated = stored.offer.wireguard_public_key != offer.wireguard_public_key ||
                         stored.offer.wireguard_port != offer.wireguard_port;
    stored.offer = offer;
    if (!rotated) return common::Ok();
    for (auto& [id, a] : assignments_) {
        if (a.relay_node_id != offer.node_id || !domain::IsLive(a.state)) continue;
        a.relay_public_key = offer.wireguard_public_key;
        a.relay_listen_port = offer.wireguard_port;
        a.relay_endpoint = domain::PublicUrl(RelayAddress(offer.node_id), offer.wireguard_port);
        a.updated_at = now;
        events_[id].push_back(RelayEvent{now, a.state, a.state, a.role, "relay key rotated"});
    }
    return common::Ok();
}

Status InMemoryRelayRepository::SetRelayHealth(const std::string& node_id,
                                               const ports::RelayHealth& health,
                                               common::TimePoint) {
    std::lock_guard lock(mutex_);
    if (TakeFailure()) return Error::Unavailable("injected failure");
    const auto it = offers_.find(node_id);
    if (it == offers_.end()) return Error::NotFound("node " + node_id + " offers no relay");
    it->second.health = health;
    return common::Ok();
}

Result<std::vector<domain::RelayCandidate>> InMemoryRelayRepository::Candidates(common::TimePoint,
                                                                                common::TimePoint) {
    std::lock_guard lock(mutex_);
    if (TakeFailure()) return Error::Unavailable("injected failure");
    std::vector<domain::RelayCandidate> out;
    for (const auto& [node_id, o] : offers_) {
        auto node = nodes_.Get(node_id);
        if (!node) continue;
        domain::RelayCandidate c;
        c.node_id = node_id;
        c.enabled = o.offer.enabled;
        c.online = node->status == domain::NodeStatus::kOnline;
        c.healthy = o.health.healthy;
        c.health_reason = o.health.reason;
        c.behind_cgnat = node->cgnat.behind_cgnat;
        c.requires_relay = node->cgnat.requires_relay;
        c.public_address = RelayAddress(node_id);
        c.wireguard_port = o.offer.wireguard_port;
        c.wireguard_public_key = o.offer.wireguard_public_key;
        c.region = node->region;
        c.uptime_ratio = c.online ? 1.0 : 0.0;
        for (const auto& [id, a] : assignments_)
            if (a.relay_node_id == node_id && domain::IsLive(a.state)) ++c.tunnels;
        c.max_tunnels = o.offer.max_tunnels;
        c.bandwidth_mbps = o.offer.bandwidth_mbps;
        c.bandwidth_used_mbps = o.health.bandwidth_used_mbps;
        out.push_back(std::move(c));
    }
    return out;
}

Result<RelayAssignment> InMemoryRelayRepository::InsertAssignment(const ports::NewAssignment& na,
                                                                  common::TimePoint now) {
    if (!nodes_.Get(na.cgnat_node_id))
        return Error::NotFound("no node with id '" + na.cgnat_node_id + "'");
    const auto offer = offers_.find(na.relay_node_id);
    if (offer == offers_.end() || !offer->second.offer.enabled)
        return Error::Conflict("node " + na.relay_node_id + " offers no relay");
    std::uint32_t tunnels = 0;
    std::vector<std::uint32_t> used;
    for (const auto& [id, a] : assignments_) {
        if (!domain::IsLive(a.state)) continue;
        used.push_back(a.tunnel.block);
        if (a.relay_node_id == na.relay_node_id) ++tunnels;
        if (a.cgnat_node_id == na.cgnat_node_id &&
            (a.role == na.role || a.relay_node_id == na.relay_node_id))
            return Error::Conflict("node " + na.cgnat_node_id + " already has a live " +
                                   std::string(domain::ToString(a.role)) + " on relay " +
                                   a.relay_node_id);
    }
    const auto capacity =
        offer->second.offer.max_tunnels != 0 ? offer->second.offer.max_tunnels : max_tunnels_;
    if (tunnels >= capacity) return Error::Conflict("relay " + na.relay_node_id + " is full");
    auto tunnel = pool_.AllocateLowest(used);
    if (!tunnel) return tunnel.error();
    RelayAssignment a;
    a.id = common::NewUuid();
    a.cgnat_node_id = na.cgnat_node_id;
    a.relay_node_id = na.relay_node_id;
    a.role = na.role;
    a.interface_name = domain::TunnelInterfaceName(tunnel->block);
    a.tunnel = *tunnel;
    a.relay_public_key = offer->second.offer.wireguard_public_key;
    a.cgnat_public_key = na.cgnat_public_key;
    a.relay_listen_port = offer->second.offer.wireguard_port;
    a.relay_endpoint = domain::PublicUrl(RelayAddress(na.relay_node_id), a.relay_listen_port);
    a.state = RelayState::kProvisioning;
    a.state_reason = "assigned";
    a.selection_reason = na.selection_reason;
    a.created_at = a.state_changed_at = a.updated_at = now;
    assignments_[a.id] = a;
    events_[a.id].push_back(RelayEvent{now, std::nullopt, a.state, a.role, na.selection_reason});
    if (a.role == RelayRole::kPrimary) {
        waits_.erase(a.cgnat_node_id);
        SetVmRelays(a.cgnat_node_id, a.relay_node_id);
    }
    return a;
}

Result<RelayAssignment> InMemoryRelayRepository::Assign(const ports::NewAssignment& assignment,
                                                        common::TimePoint now) {
    std::lock_guard lock(mutex_);
    if (TakeFailure()) return Error::Unavailable("injected failure");
    return InsertAssignment(assignment, now);
}

Result<RelayAssignment> InMemoryRelayRepository::Get(const std::string& assignment_id) {
    std::lock_guard lock(mutex_);
    if (TakeFailure()) return Error::Unavailable("injected failure");
    auto found = FindLocked(assignment_id);
    if (!found) return found.error();
    const auto it = *found;
    return it->second;
}

Result<std::vector<RelayAssignment>> InMemoryRelayRepository::ForCgnatNode(
    const std::string& cgnat_node_id) {
    std::lock_guard lock(mutex_);
    if (TakeFailure()) return Error::Unavailable("injected failure");
    std::vector<RelayAssignment> out;
    for (const auto& [id, a] : assignments_)
        if (a.cgnat_node_id == cgnat_node_id && domain::IsLive(a.state)) out.push_back(a);
    std::stable_sort(out.begin(), out.end(), [](const auto& x, const auto& y) {
        return x.role == RelayRole::kPrimary && y.role != RelayRole::kPrimary;
    });
    return out;
}

Result<std::vector<RelayAssignment>> InMemoryRelayRepository::ForRelayNode(
    const std::string& relay_node_id) {
    std::lock_guard lock(mutex_);
    if (TakeFailure()) return Error::Unavailable("injected failure");
    std::vector<RelayAssignment> out;
    for (const auto& [id, a] : assignments_)
        if (a.relay_node_id == relay_node_id && domain::IsLive(a.state)) out.push_back(a);
    return out;
}

Result<std::vector<RelayAssignment>> InMemoryRelayRepository::Live() {
    std::lock_guard lock(mutex_);
    if (TakeFailure()) return Error::Unavailable("injected failure");
    std::vector<RelayAssignment> out;
    for (const auto& [id, a] : assignments_)
        if (domain::IsLive(a.state)) out.push_back(a);
    return out;
}

Result<std::vector<RelayEvent>> InMemoryRelayRepository::Events(const std::string& assignment_id) {
    std::lock_guard lock(mutex_);
    if (TakeFailure()) return Error::Unavailable("injected failure");
    if (auto found = FindLocked(assignment_id); !found) return found.error();
    return events_[assignment_id];
}

Result<std::map<std::string, RelayAssignment>::iterator> InMemoryRelayRepository::FindLocked(
    const std::string& assignment_id) {
    const auto it = assignments_.find(assignment_id);
    if (it == assignments_.end())
        return Error::NotFound("no relay assignment with id '" + assignment_id + "'");
    return it;
}

Result<RelayAssignment> InMemoryRelayRepository::ApplyLocked(const std::string& assignment_id,
                                                             RelayState to,
                                                             const std::string& reason,
                                                             common::TimePoint now) {
    auto& a = assignments_.at(assignment_id);
    auto event = domain::ApplyTransition(a, to, reason, now);
    if (!event) return event.error();
    events_[assignment_id].push_back(*event);
    if (to == RelayState::kRemoved) {
        std::erase_if(mappings_, [&](const auto& kv) { return kv.second.assignment_id == a.id; });
        if (a.role == RelayRole::kPrimary) SetVmRelays(a.cgnat_node_id, "");
    }
    return a;
}

Result<RelayAssignment> InMemoryRelayRepository::Transition(
    const std::string& assignment_id, const std::vector<RelayState>& expected_from, RelayState to,
    const std::string& reason, common::TimePoint now) {
    std::lock_guard lock(mutex_);
    if (TakeFailure()) return Error::Unavailable("injected failure");
    auto found = FindLocked(assignment_id);
    if (!found) return found.error();
    const auto it = *found;
    if (!expected_from.empty() && std::find(expected_from.begin(), expected_from.end(),
                                            it->second.state) == expected_from.end())
        return Error::Conflict("assignment " + assignment_id + " is " +
                               std::string(domain::ToString(it->second.state)));
    return ApplyLocked(assignment_id, to, reason, now);
}

common::Status InMemoryRelayRepository::RecordEvent(const std::string& assignment_id,
                                                    const std::string& reason,
                                                    common::TimePoint now) {
    std::lock_guard lock(mutex_);
    if (TakeFailure()) return Error::Unavailable("injected failure");
    auto found = FindLocked(assignment_id);
    if (!found) return found.error();
    const auto it = *found;
    const auto& a = it->second;
    events_[assignment_id].push_back(RelayEvent{now, a.state, a.state, a.role, reason});
    return common::Ok();
}

Result<RelayAssignment> InMemoryRelayRepository::SetCgnatKey(const std::string& assignment_id,
                                                             const std::string& public_key,
                                                             common::TimePoint now) {
    std::lock_guard lock(mutex_);
    if (TakeFailure()) return Error::Unavailable("injected failure");
    auto found = FindLocked(assignment_id);
    if (!found) return found.error();
    const auto it = *found;
    auto& a = it->second;
    if (a.cgnat_public_key != public_key) {
        a.cgnat_public_key = public_key;
        a.updated_at = now;
        events_[a.id].push_back(RelayEvent{now, a.state, a.state, a.role, "CGNAT key changed"});
    }
    return a;
}

Result<ports::FailoverOutcome> InMemoryRelayRepository::Failover(
    const ports::FailoverRequest& request, common::TimePoint now) {
    std::lock_guard lock(mutex_);
    if (TakeFailure()) return Error::Unavailable("injected failure");
    if (request.promote_assignment_id.empty() == !request.replacement.has_value())
        return Error::InvalidArgument(
            "a failover either promotes the standby or names a replacement, exactly one");
    const auto* failed = LivePrimary(request.cgnat_node_id);
    if (!failed || failed->id != request.failed_assignment_id)
        return Error::Conflict("assignment " + request.failed_assignment_id +
                               " is not the live primary of node " + request.cgnat_node_id);
    // Work on copies: all or nothing.
    const auto saved_assignments = assignments_;
    const auto saved_events = events_;
    const auto saved_mappings = mappings_;
    const auto saved_vms = vms_;
    auto restore = [&](Error e) -> Result<ports::FailoverOutcome> {
        assignments_ = saved_assignments;
        events_ = saved_events;
        mappings_ = saved_mappings;
        vms_ = saved_vms;
        return e;
    };
    std::vector<PortMapping> moving;
    for (const auto& [id, m] : mappings_)
        if (m.assignment_id == failed->id) moving.push_back(m);
    const std::string failed_id = failed->id;
    auto& old = assignments_.at(failed_id);
    auto removed = domain::ApplyTransition(old, RelayState::kRemoved, request.reason, now);
    if (!removed) return restore(removed.error());
    events_[failed_id].push_back(*removed);

    RelayAssignment primary;
    if (!request.promote_assignment_id.empty()) {
        const auto it = assignments_.find(request.promote_assignment_id);
        if (it == assignments_.end() || it->second.cgnat_node_id != request.cgnat_node_id ||
            it->second.role != RelayRole::kStandby || it->second.state != RelayState::kActive)
            return restore(Error::Conflict("assignment " + request.promote_assignment_id +
                                           " is not an active standby of the node"));
        it->second.role = RelayRole::kPrimary;
        it->second.updated_at = now;
        events_[it->first].push_back(RelayEvent{now, RelayState::kActive, RelayState::kActive,
                                                RelayRole::kPrimary,
                                                "promoted to primary: " + request.reason});
        primary = it->second;
    } else {
        auto na = *request.replacement;
        na.role = RelayRole::kPrimary;
        auto created = InsertAssignment(na, now);
        if (!created) return restore(created.error());
        primary = *created;
    }
    std::vector<std::uint16_t> taken;
    for (const auto& [id, m] : mappings_)
        if (m.relay_node_id == primary.relay_node_id) taken.push_back(m.public_port);
    auto& cursor = offers_[primary.relay_node_id].port_cursor;
    auto moves =
        domain::PlanMappingMoves(moving, primary.relay_node_id, primary.id,
                                 RelayAddress(primary.relay_node_id), ports_, taken, cursor);
    if (!moves) return restore(moves.error());
    for (auto& move : *moves) {
        mappings_.erase(move.from.id);
        move.to.id = common::NewUuid();
        move.to.created_at = now;
        mappings_[move.to.id] = move.to;
        cursor = std::uint32_t{move.to.public_port} + 1;
    }
    SetVmRelays(request.cgnat_node_id, primary.relay_node_id);
    ++failovers_;
    return ports::FailoverOutcome{primary, std::move(*moves)};
}

Result<std::vector<RelayAssignment>> InMemoryRelayRepository::Release(
    const std::string& cgnat_node_id, const std::string& reason, common::TimePoint now) {
    std::lock_guard lock(mutex_);
    if (TakeFailure()) return Error::Unavailable("injected failure");
    std::vector<RelayAssignment> out;
    for (auto& [id, a] : assignments_) {
        if (a.cgnat_node_id != cgnat_node_id || !domain::IsLive(a.state)) continue;
        auto released = ApplyLocked(id, RelayState::kRemoved, reason, now);
        if (!released) return released.error();
        out.push_back(*released);
    }
    waits_.erase(cgnat_node_id);
    SetVmRelays(cgnat_node_id, "");
    return out;
}

Status InMemoryRelayRepository::MarkAwaiting(const std::string& cgnat_node_id,
                                             const std::string& reason, common::TimePoint now) {
    std::lock_guard lock(mutex_);
    if (TakeFailure()) return Error::Unavailable("injected failure");
    if (!nodes_.Get(cgnat_node_id))
        return Error::NotFound("no node with id '" + cgnat_node_id + "'");
    auto [it, inserted] = waits_.try_emplace(cgnat_node_id);
    auto& w = it->second;
    if (inserted) {
        w.cgnat_node_id = cgnat_node_id;
        w.since = now;
    }
    w.last_attempt_at = now;
    ++w.attempts;
    w.reason = reason;
    return common::Ok();
}

Result<std::vector<ports::AwaitingRelay>> InMemoryRelayRepository::Awaiting() {
    std::lock_guard lock(mutex_);
    if (TakeFailure()) return Error::Unavailable("injected failure");
    std::vector<ports::AwaitingRelay> out;
    for (const auto& [id, w] : waits_) out.push_back(w);
    std::stable_sort(out.begin(), out.end(),
                     [](const auto& a, const auto& b) { return a.since < b.since; });
    return out;
}

Result<PortMapping> InMemoryRelayRepository::AllocatePortForVm(const std::string& vm_id,
                                                               std::uint16_t vm_port,
                                                               domain::PortProtocol protocol,
                                                               common::TimePoint now) {
    std::lock_guard lock(mutex_);
    if (TakeFailure()) return Error::Unavailable("injected failure");
    const auto vm = vms_.find(vm_id);
    if (vm == vms_.end()) return Error::NotFound("no VM with id '" + vm_id + "'");
    for (const auto& [id, m] : mappings_)
        if (m.vm_id == vm_id && m.vm_port == vm_port && m.protocol == protocol) return m;
    const auto* primary = LivePrimary(vm->second.node_id);
    if (!primary)
        return Error::Unprocessable("node " + vm->second.node_id + " has no relay to map ports on");
    std::vector<std::uint16_t> taken;
    for (const auto& [id, m] : mappings_)
        if (m.relay_node_id == primary->relay_node_id) taken.push_back(m.public_port);
    auto& cursor = offers_[primary->relay_node_id].port_cursor;
    auto port = domain::AllocatePort(ports_, taken, cursor);
    if (!port) return port.error();
    cursor = std::uint32_t{*port} + 1;
    PortMapping m;
    m.id = common::NewUuid();
    m.relay_node_id = primary->relay_node_id;
    m.assignment_id = primary->id;
    m.public_port = *port;
    m.protocol = protocol;
    m.vm_id = vm_id;
    m.vm_port = vm_port;
    m.public_url = domain::PublicUrl(RelayAddress(primary->relay_node_id), *port);
    m.created_at = now;
    mappings_[m.id] = m;
    return m;
}

Result<std::vector<PortMapping>> InMemoryRelayRepository::MappingsForVm(const std::string& vm_id) {
    std::lock_guard lock(mutex_);
    if (TakeFailure()) return Error::Unavailable("injected failure");
    std::vector<PortMapping> out;
    for (const auto& [id, m] : mappings_)
        if (m.vm_id == vm_id) out.push_back(m);
    return out;
}

Result<std::vector<PortMapping>> InMemoryRelayRepository::MappingsForRelay(
    const std::string& relay_node_id) {
    std::lock_guard lock(mutex_);
    if (TakeFailure()) return Error::Unavailable("injected failure");
    std::vector<PortMapping> out;
    for (const auto& [id, m] : mappings_)
        if (m.relay_node_id == relay_node_id) out.push_back(m);
    std::sort(out.begin(), out.end(),
              [](const auto& a, const auto& b) { return a.public_port < b.public_port; });
    return out;
}

Result<std::vector<PortMapping>> InMemoryRelayRepository::RemoveMappingsForVm(
    const std::string& vm_id) {
    std::lock_guard lock(mutex_);
    if (TakeFailure()) return Error::Unavailable("injected failure");
    std::vector<PortMapping> out;
    for (auto it = mappings_.begin(); it != mappings_.end();) {
        if (it->second.vm_id == vm_id) {
            out.push_back(it->second);
            it = mappings_.erase(it);
        } else {
            ++it;
        }
    }
    return out;
}

Result<std::string> InMemoryRelayRepository::AttributeVm(const std::string& vm_id) {
    std::lock_guard lock(mutex_);
    if (TakeFailure()) return Error::Unavailable("injected failure");
    const auto it = vms_.find(vm_id);
    if (it == vms_.end()) return Error::NotFound("no VM with id '" + vm_id + "'");
    const auto* primary = LivePrimary(it->second.node_id);
    it->second.relay_node_id = primary ? primary->relay_node_id : std::string();
    return it->second.relay_node_id;
}

void InMemoryRelayRepository::AddVm(const std::string& vm_id, const std::string& node_id) {
    std::lock_guard lock(mutex_);
    const auto* primary = LivePrimary(node_id);
    vms_[vm_id] = Vm{node_id, primary ? primary->relay_node_id : std::string()};
}

void InMemoryRelayRepository::DeleteVm(const std::string& vm_id) {
    std::lock_guard lock(mutex_);
    vms_.at(vm_id).gone = true;
}

void InMemoryRelayRepository::MoveVm(const std::string& vm_id, const std::string& node_id) {
    std::lock_guard lock(mutex_);
    vms_.at(vm_id).node_id = node_id;
}

Result<PortMapping> InMemoryRelayRepository::RemoveMapping(const std::string& vm_id,
                                                           std::uint16_t vm_port,
                                                           PortProtocol protocol) {
    std::lock_guard lock(mutex_);
    if (TakeFailure()) return Error::Unavailable("injected failure");
    for (auto it = mappings_.begin(); it != mappings_.end(); ++it) {
        if (it->second.vm_id == vm_id && it->second.vm_port == vm_port &&
            it->second.protocol == protocol) {
            auto removed = it->second;
            mappings_.erase(it);
            return removed;
        }
    }
    return Error::NotFound("port " + std::to_string(vm_port) + " of VM " + vm_id +
                           " is not forwarded");
}

Result<std::vector<PortMapping>> InMemoryRelayRepository::PruneMappings() {
    std::lock_guard lock(mutex_);
    if (TakeFailure()) return Error::Unavailable("injected failure");
    std::vector<PortMapping> removed;
    for (auto it = mappings_.begin(); it != mappings_.end();) {
        const auto vm = vms_.find(it->second.vm_id);
        const auto assignment = assignments_.find(it->second.assignment_id);
        const bool stale = vm == vms_.end() || vm->second.gone ||
                           assignment == assignments_.end() ||
                           vm->second.node_id != assignment->second.cgnat_node_id;
        if (stale) {
            removed.push_back(it->second);
            it = mappings_.erase(it);
        } else {
            ++it;
        }
    }
    for (auto& [id, vm] : vms_) {
        if (vm.gone) continue;
        const auto* primary = LivePrimary(vm.node_id);
        vm.relay_node_id = primary ? primary->relay_node_id : std::string();
    }
    return removed;
}

Status InMemoryRelayRepository::RecordLatency(const std::string& assignment_id,
                                              std::uint32_t rtt_us, common::TimePoint now) {
    std::lock_guard lock(mutex_);
    if (TakeFailure()) return Error::Unavailable("injected failure");
    const auto it = assignments_.find(assignment_id);
    if (it == assignments_.end())
        return Error::NotFound("no relay assignment '" + assignment_id + "'");
    it->second.tunnel_rtt_us = rtt_us;
    it->second.tunnel_rtt_at = now;
    return common::Ok();
}

Status InMemoryRelayRepository::RecordTraffic(const std::string& assignment_id,
                                              std::uint64_t rx_bytes, std::uint64_t tx_bytes,
                                              common::TimePoint) {
    std::lock_guard lock(mutex_);
    if (TakeFailure()) return Error::Unavailable("injected failure");
    if (!assignments_.contains(assignment_id))
        return Error::NotFound("no relay assignment '" + assignment_id + "'");
    auto& t = traffic_[assignment_id];
    t.relayed += (rx_bytes >= t.rx ? rx_bytes - t.rx : rx_bytes) +
                 (tx_bytes >= t.tx ? tx_bytes - t.tx : tx_bytes);
    t.rx = rx_bytes;
    t.tx = tx_bytes;
    return common::Ok();
}

Result<orchestrator::ports::RelayTrafficTotals> InMemoryRelayRepository::TrafficTotals() {
    std::lock_guard lock(mutex_);
    if (TakeFailure()) return Error::Unavailable("injected failure");
    orchestrator::ports::RelayTrafficTotals totals;
    for (const auto& [id, t] : traffic_) totals.bytes_relayed += t.relayed;
    totals.failovers = failovers_;
    return totals;
}

Result<orchestrator::ports::KeyRotation> InMemoryRelayRepository::RequestKeyRotation(
    const std::string& node_id, const std::string& reason, common::TimePoint now) {
    std::lock_guard lock(mutex_);
    if (TakeFailure()) return Error::Unavailable("injected failure");
    if (!nodes_.Get(node_id)) return Error::NotFound("no node with id '" + node_id + "'");
    if (const auto it = rotations_.find(node_id); it != rotations_.end()) return it->second;
    orchestrator::ports::KeyRotation r;
    r.node_id = node_id;
    r.reason = reason;
    r.requested_at = r.updated_at = now;
    rotations_[node_id] = r;
    return r;
}

Result<std::vector<orchestrator::ports::KeyRotation>> InMemoryRelayRepository::KeyRotations() {
    std::lock_guard lock(mutex_);
    if (TakeFailure()) return Error::Unavailable("injected failure");
    std::vector<orchestrator::ports::KeyRotation> out;
    for (const auto& [id, r] : rotations_) out.push_back(r);
    return out;
}

Result<std::vector<std::string>> InMemoryRelayRepository::OffersWithoutKey() {
    std::lock_guard lock(mutex_);
    if (TakeFailure()) return Error::Unavailable("injected failure");
    std::vector<std::string> out;
    for (const auto& [id, stored] : offers_)
        if (stored.offer.wireguard_public_key.empty()) out.push_back(id);
    return out;
}

Status InMemoryRelayRepository::SaveKeyRotation(const orchestrator::ports::KeyRotation& rotation,
                                                common::TimePoint now) {
    std::lock_guard lock(mutex_);
    if (TakeFailure()) return Error::Unavailable("injected failure");
    const auto it = rotations_.find(rotation.node_id);
    if (it == rotations_.end())
        return Error::NotFound("no key rotation in progress for node " + rotation.node_id);
    it->second.committing = rotation.committing;
    it->second.next_public_key = rotation.next_public_key;
    it->second.staged_on = rotation.staged_on;
    it->second.updated_at = now;
    return common::Ok();
}

Status InMemoryRelayRepository::FinishKeyRotation(const std::string& node_id) {
    std::lock_guard lock(mutex_);
    if (TakeFailure()) return Error::Unavailable("injected failure");
    rotations_.erase(node_id);
    return common::Ok();
}

Result<std::string> InMemoryRelayRepository::VmRelay(const std::string& vm_id) const {
    std::lock_guard lock(mutex_);
    const auto it = vms_.find(vm_id);
    if (it == vms_.end()) return Error::NotFound("no VM with id '" + vm_id + "'");
    return it->second.relay_node_id;
}

}  // namespace decloud::fakes
