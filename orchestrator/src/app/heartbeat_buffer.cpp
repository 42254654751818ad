#include "orchestrator/app/heartbeat_buffer.hpp"

#include <functional>

namespace decloud::orchestrator::app {

HeartbeatBuffer::Shard& HeartbeatBuffer::ShardFor(const std::string& node_id) {
    return shards_[std::hash<std::string>{}(node_id) % kShards];
}

void HeartbeatBuffer::Record(const std::string& node_id, const proto::NodeUsage& usage,
                             const std::string& agent_version, common::TimePoint at) {
    auto& shard = ShardFor(node_id);
    std::lock_guard lock(shard.mutex);
    auto [it, inserted] = shard.pending.try_emplace(node_id);
    auto& hb = it->second;
    if (inserted) {
        hb.node_id = node_id;
        hb.first_at = at;
        hb.last_at = at;
    } else {
        hb.first_at = std::min(hb.first_at, at);
        hb.last_at = std::max(hb.last_at, at);
    }
    ++hb.count;
    hb.usage = usage;
    hb.agent_version = agent_version;
}

std::vector<domain::BufferedHeartbeat> HeartbeatBuffer::Drain() {
    std::vector<domain::BufferedHeartbeat> out;
    for (auto& shard : shards_) {
        std::unordered_map<std::string, domain::BufferedHeartbeat> taken;
        {
            std::lock_guard lock(shard.mutex);
            taken.swap(shard.pending);
        }
        out.reserve(out.size() + taken.size());
        for (auto& [id, hb] : taken) out.push_back(std::move(hb));
    }
    return out;
}

void HeartbeatBuffer::Restore(std::vector<domain::BufferedHeartbeat> batch) {
    for (auto& old : batch) {
        auto& shard = ShardFor(old.node_id);
        std::lock_guard lock(shard.mutex);
        auto [it, inserted] = shard.pending.try_emplace(old.node_id, old);
        if (inserted) continue;
        // Newer heartbeats are already buffered: keep their usage, widen the span and count.
        auto& hb = it->second;
        hb.first_at = std::min(hb.first_at, old.first_at);
        hb.last_at = std::max(hb.last_at, old.last_at);
        hb.count += old.count;
    }
}

std::size_t HeartbeatBuffer::Size() const {
    std::size_t n = 0;
    for (const auto& shard : shards_) {
        std::lock_guard lock(shard.mutex);
        n += shard.pending.size();
    }
    return n;
}

}  // namespace decloud::orchestrator::app
