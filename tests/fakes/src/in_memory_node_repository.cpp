#include "decloud/fakes/in_memory_node_repository.hpp"

#include "decloud/common/ids.hpp"
#include "orchestrator/domain/node_health.hpp"

namespace decloud::fakes {

using common::Error;
using common::Result;
using namespace orchestrator;

bool InMemoryNodeRepository::TakeFailure() {
    if (!fail_next_) return false;
    fail_next_ = false;
    return true;
}

Result<ports::RegisterOutcome> InMemoryNodeRepository::Register(const domain::NodeRegistration& reg,
                                                                common::TimePoint now) {
    std::lock_guard lock(mutex_);
    if (TakeFailure()) return Error::Unavailable("injected failure");
    Stored* existing = nullptr;
    for (auto& [id, s] : nodes_) {
        if (s.node.public_key == reg.public_key) existing = &s;
    }
    const bool created = existing == nullptr;
    if (created) {
        const auto id = common::NewUuid();
        existing = &nodes_[id];
        existing->node.id = id;
        existing->node.registered_at = now;
        existing->node.status = domain::NodeStatus::kOffline;
    }
    auto& n = existing->node;
    n.public_key = reg.public_key;
    n.operator_wallet = reg.operator_wallet;
    n.reported_ip = reg.reported_ip;
    n.observed_ip = reg.observed_ip;
    n.region = reg.region;
    n.tags = reg.tags;
    n.resources = reg.resources;
    n.compute = reg.compute;
    n.agent_version = reg.agent_version;
    n.cgnat_override = reg.cgnat_override;
    n.cgnat = reg.cgnat;
    n.price_per_point_micro_usdc = reg.price_per_point_micro_usdc;
    n.updated_at = now;
    existing->credential_hash = reg.credential_hash;
    return ports::RegisterOutcome{n, created};
}

Result<domain::Node> InMemoryNodeRepository::Get(const std::string& node_id) {
    std::lock_guard lock(mutex_);
    if (TakeFailure()) return Error::Unavailable("injected failure");
    const auto it = nodes_.find(node_id);
    if (it == nodes_.end()) return Error::NotFound("no node with id '" + node_id + "'");
    return it->second.node;
}

Result<std::vector<domain::Node>> InMemoryNodeRepository::List(const ports::NodeListQuery& query) {
    std::lock_guard lock(mutex_);
    if (TakeFailure()) return Error::Unavailable("injected failure");
    std::vector<domain::Node> out;
    for (auto it = nodes_.upper_bound(query.after_id);
         it != nodes_.end() && out.size() < query.limit; ++it) {
        const auto& n = it->second.node;
        if (query.status && n.status != *query.status) continue;
        if (!query.operator_wallet.empty() && n.operator_wallet != query.operator_wallet) continue;
        out.push_back(n);
    }
    return out;
}

Result<ports::NodeCredential> InMemoryNodeRepository::GetCredential(const std::string& node_id) {
    std::lock_guard lock(mutex_);
    if (TakeFailure()) return Error::Unavailable("injected failure");
    const auto it = nodes_.find(node_id);
    if (it == nodes_.end()) return Error::NotFound("no node with id '" + node_id + "'");
    return ports::NodeCredential{node_id, it->second.credential_hash};
}

Result<ports::HeartbeatFlushResult> InMemoryNodeRepository::ApplyHeartbeats(
    std::span<const domain::BufferedHeartbeat> batch, common::Duration interval,
    common::TimePoint) {
    std::lock_guard lock(mutex_);
    if (TakeFailure()) return Error::Unavailable("injected failure");
    ports::HeartbeatFlushResult result;
    for (const auto& hb : batch) {
        const auto it = nodes_.find(hb.node_id);
        if (it == nodes_.end()) {
            ++result.unknown_nodes;
            continue;
        }
        auto& s = it->second;
        const auto missed =
            domain::MissedHeartbeats(s.node.last_heartbeat_at, hb.first_at, interval);
        auto& day = s.daily[domain::UtcDay(hb.last_at)];
        day.day = domain::UtcDay(hb.last_at);
        day.heartbeats += hb.count;
        day.missed += missed;
        if (s.node.status != domain::NodeStatus::kOnline) {
            s.node.status = domain::NodeStatus::kOnline;
            s.availability.push_back({hb.first_at, std::nullopt});
            result.came_online.push_back(hb.node_id);
        }
        s.node.last_heartbeat_at = hb.last_at;
        s.node.usage = hb.usage;
        if (!hb.agent_version.empty()) s.node.agent_version = hb.agent_version;
        ++result.nodes_updated;
    }
    return result;
}

Result<std::vector<std::string>> InMemoryNodeRepository::MarkStaleOffline(common::TimePoint cutoff,
                                                                          common::TimePoint) {
    std::lock_guard lock(mutex_);
    if (TakeFailure()) return Error::Unavailable("injected failure");
    std::vector<std::string> out;
    for (auto& [id, s] : nodes_) {
        if (s.node.status != domain::NodeStatus::kOnline) continue;
        if (s.node.last_heartbeat_at && *s.node.last_heartbeat_at >= cutoff) continue;
        s.node.status = domain::NodeStatus::kOffline;
        for (auto& iv : s.availability) {
            if (!iv.end) iv.end = s.node.last_heartbeat_at.value_or(iv.start);
        }
        out.push_back(id);
    }
    return out;
}

Result<std::unordered_map<std::string, ports::NodeHistory>> InMemoryNodeRepository::History(
    std::span<const std::string> node_ids, common::TimePoint since) {
    std::lock_guard lock(mutex_);
    if (TakeFailure()) return Error::Unavailable("injected failure");
    std::unordered_map<std::string, ports::NodeHistory> out;
    const auto first_day = domain::UtcDay(since);
    for (const auto& id : node_ids) {
        const auto it = nodes_.find(id);
        if (it == nodes_.end()) continue;
        auto& h = out[id];
        for (const auto& iv : it->second.availability) {
            if (!iv.end || *iv.end > since) h.availability.push_back(iv);
        }
        for (const auto& [day, stats] : it->second.daily) {
            if (day >= first_day) h.daily.push_back(stats);
        }
    }
    return out;
}

common::Status InMemoryNodeRepository::ConsumeOnce(const std::string& token_hash,
                                                   common::TimePoint expires_at,
                                                   common::TimePoint now) {
    std::lock_guard lock(mutex_);
    if (TakeFailure()) return Error::Unavailable("injected failure");
    std::erase_if(tokens_, [now](const auto& kv) { return kv.second <= now; });
    if (!tokens_.emplace(token_hash, expires_at).second) return Error::Conflict("already used");
    return common::Ok();
}

void InMemoryNodeRepository::Remove(const std::string& node_id) {
    std::lock_guard lock(mutex_);
    nodes_.erase(node_id);
}

std::size_t InMemoryNodeRepository::Count() const {
    std::lock_guard lock(mutex_);
    return nodes_.size();
}

std::size_t InMemoryNodeRepository::ConsumedTokens() const {
    std::lock_guard lock(mutex_);
    return tokens_.size();
}

}  // namespace decloud::fakes
