#pragma once

#include <array>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "orchestrator/domain/node.hpp"

namespace decloud::orchestrator::app {

// Heartbeats received since the last flush, folded per node, so the database sees one row per
// node per flush instead of one round-trip per heartbeat. Thread-safe; sharded to keep the
// I/O threads from contending on one lock.
class HeartbeatBuffer {
  public:
    void Record(const std::string& node_id, const proto::NodeUsage& usage,
                const std::string& agent_version, common::TimePoint at);
    // Takes everything recorded so far; the buffer is empty afterwards.
    std::vector<domain::BufferedHeartbeat> Drain();
    // Puts a batch that could not be written back, merged with anything newer.
    void Restore(std::vector<domain::BufferedHeartbeat> batch);
    std::size_t Size() const;

  private:
    static constexpr std::size_t kShards = 16;
    struct Shard {
        mutable std::mutex mutex;
        std::unordered_map<std::string, domain::BufferedHeartbeat> pending;
    };
    Shard& ShardFor(const std::string& node_id);
    std::array<Shard, kShards> shards_;
};

}  // namespace decloud::orchestrator::app
