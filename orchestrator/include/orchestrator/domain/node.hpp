#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "decloud/common/clock.hpp"
#include "decloud/proto/node_messages.hpp"

namespace decloud::orchestrator::domain {

enum class NodeStatus { kOnline, kOffline };
std::string_view ToString(NodeStatus s);
std::optional<NodeStatus> ParseNodeStatus(std::string_view s);

// Why a node needs (or does not need) a relay; decided at registration.
struct CgnatAssessment {
    bool behind_cgnat = false;
    bool requires_relay = false;
    std::string reason;  // human-readable, e.g. "reported address 100.64.1.2 is in CGNAT space"
    friend bool operator==(const CgnatAssessment&, const CgnatAssessment&) = default;
};

// A node as the orchestrator stores it.
struct Node {
    std::string id;  // UUID
    std::string public_key;
    std::string operator_wallet;  // EIP-55 checksummed
    std::string reported_ip;
    std::string observed_ip;
    std::string region;
    std::vector<std::string> tags;
    proto::NodeResources resources;
    proto::ComputeScore compute;
    std::string agent_version;
    std::optional<bool> cgnat_override;  // operator's manual flag, if any
    CgnatAssessment cgnat;
    std::uint64_t price_per_point_micro_usdc = 0;  // per compute point per hour
    NodeStatus status = NodeStatus::kOffline;
    common::TimePoint registered_at{};
    common::TimePoint updated_at{};
    std::optional<common::TimePoint> last_heartbeat_at;
    proto::NodeUsage usage;
};

// What registration writes; the repository fills id/timestamps on first insert.
struct NodeRegistration {
    std::string public_key;
    std::string operator_wallet;
    std::string reported_ip;
    std::string observed_ip;
    std::string region;
    std::vector<std::string> tags;
    proto::NodeResources resources;
    proto::ComputeScore compute;
    std::string agent_version;
    std::optional<bool> cgnat_override;
    CgnatAssessment cgnat;
    std::uint64_t price_per_point_micro_usdc = 0;
    std::string credential_hash;  // hex SHA-256 of the node token issued now
};

// One node's heartbeats received since the last flush, folded together.
struct BufferedHeartbeat {
    std::string node_id;
    common::TimePoint first_at{};
    common::TimePoint last_at{};
    std::uint32_t count = 0;
    proto::NodeUsage usage;  // the latest
    std::string agent_version;
};

// A span of time a node was online; `end` empty while it still is.
struct AvailabilityInterval {
    common::TimePoint start{};
    std::optional<common::TimePoint> end;
    friend bool operator==(const AvailabilityInterval&, const AvailabilityInterval&) = default;
};

struct DailyHeartbeatStats {
    std::string day;  // YYYY-MM-DD (UTC)
    std::uint64_t heartbeats = 0;
    std::uint64_t missed = 0;
    friend bool operator==(const DailyHeartbeatStats&, const DailyHeartbeatStats&) = default;
};

}  // namespace decloud::orchestrator::domain
