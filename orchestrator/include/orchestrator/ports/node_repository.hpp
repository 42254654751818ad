#pragma once

#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "decloud/common/result.hpp"
#include "orchestrator/domain/node.hpp"

namespace decloud::orchestrator::ports {

struct RegisterOutcome {
    domain::Node node;
    bool created = false;  // false: an existing node (same public key) was updated
};

struct NodeListQuery {
    std::size_t limit = 100;
    std::string after_id;  // cursor: ids greater than this, ordered by id
    std::optional<domain::NodeStatus> status;
    std::string operator_wallet;  // empty: any
};

struct NodeCredential {
    std::string node_id;
    std::string credential_hash;  // hex SHA-256 of the node token
};

struct NodeHistory {
    std::vector<domain::AvailabilityInterval> availability;
    std::vector<domain::DailyHeartbeatStats> daily;
};

struct HeartbeatFlushResult {
    std::size_t nodes_updated = 0;
    std::size_t unknown_nodes = 0;  // node ids in the batch that no longer exist
    std::vector<std::string> came_online;
};

// Nodes and their heartbeat history. All methods are blocking and thread-safe; run them off the
// I/O threads. Times are passed in (from the injected clock), never taken from the database.
class NodeRepository {
  public:
    virtual ~NodeRepository() = default;

    // Inserts a node, or updates the one with the same public key (keeping its id and history)
    // and replaces its credential. A new node starts offline until its first heartbeat.
    virtual common::Result<RegisterOutcome> Register(const domain::NodeRegistration& reg,
                                                     common::TimePoint now) = 0;

    virtual common::Result<domain::Node> Get(const std::string& node_id) = 0;
    virtual common::Result<std::vector<domain::Node>> List(const NodeListQuery& query) = 0;

    // kNotFound if the node does not exist.
    virtual common::Result<NodeCredential> GetCredential(const std::string& node_id) = 0;

    // Applies a batch in one transaction: last heartbeat, usage and agent version per node;
    // nodes not online become online and open an availability interval at first_at; daily
    // counters get the heartbeats and the missed slots (domain::MissedHeartbeats against the
    // stored last heartbeat). Entries for unknown nodes are skipped and counted.
    virtual common::Result<HeartbeatFlushResult> ApplyHeartbeats(
        std::span<const domain::BufferedHeartbeat> batch, common::Duration heartbeat_interval,
        common::TimePoint now) = 0;

    // Marks online nodes whose last heartbeat is before `cutoff` offline and closes their open
    // availability interval at that last heartbeat. Runs under a transaction-scoped advisory
    // lock; if another replica holds it, does nothing and returns an empty list.
    virtual common::Result<std::vector<std::string>> MarkStaleOffline(common::TimePoint cutoff,
                                                                      common::TimePoint now) = 0;

    // For each node: availability intervals that end after `since` (or are open) and daily
    // counters for days >= since's day, both oldest first. One round-trip for a whole page of
    // nodes; ids without history (or unknown) are absent from the map.
    virtual common::Result<std::unordered_map<std::string, NodeHistory>> History(
        std::span<const std::string> node_ids, common::TimePoint since) = 0;

    // Records a one-time token (e.g. a registration signature's hash) until `expires_at`;
    // kConflict if it was already recorded and has not expired. Expired ones are purged.
    virtual common::Status ConsumeOnce(const std::string& token_hash, common::TimePoint expires_at,
                                       common::TimePoint now) = 0;
};

}  // namespace decloud::orchestrator::ports
