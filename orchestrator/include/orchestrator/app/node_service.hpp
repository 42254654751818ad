#pragma once

#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "decloud/common/clock.hpp"
#include "decloud/common/result.hpp"
#include "decloud/crypto/crypto.hpp"
#include "orchestrator/app/heartbeat_buffer.hpp"
#include "orchestrator/ports/node_repository.hpp"

namespace decloud::orchestrator::app {

struct NodeServiceOptions {
    common::Duration heartbeat_interval = std::chrono::seconds{15};
    common::Duration offline_after = std::chrono::minutes{2};
    common::Duration registration_max_skew = std::chrono::minutes{5};
    common::Duration uptime_window = std::chrono::days{30};
    // Price per compute point per hour for nodes whose operator set none (micro-USDC).
    std::uint64_t default_price_per_point_micro_usdc = 10;
    // Reserved ranges treated as publicly routable (labs and tests); see domain::AssessCgnat.
    std::vector<std::string> public_ranges;
};

// A node as the API shows it: stored state plus derived health figures.
struct NodeView {
    domain::Node node;
    double uptime_ratio_30d = 0;
    std::uint64_t heartbeats_today = 0;
    std::uint64_t missed_heartbeats_today = 0;
    std::uint64_t missed_heartbeats_30d = 0;
};

struct NodePage {
    std::vector<NodeView> nodes;
    std::string next_cursor;  // empty on the last page
};

// What the heartbeat hot path concluded without touching the database.
enum class FastAuth { kAccepted, kRejected, kUnknown };

// Node registration, heartbeats and health. Methods marked "blocking" call the repository and
// must run off the I/O threads; the others are in-memory and safe on any thread.
class NodeService {
  public:
    NodeService(ports::NodeRepository& repository, const common::Clock& clock,
                NodeServiceOptions options);

    // Blocking. Verifies the node key's signature over the exact body, its freshness and
    // single use, validates the fields, assesses CGNAT and issues a new node token.
    common::Result<proto::RegisterNodeResponse> Register(std::string_view body,
                                                         std::string_view signature_base64,
                                                         std::string_view observed_ip);

    // In-memory: accepts the heartbeat if the token matches the cached credential.
    FastAuth TryHeartbeat(const std::string& node_id, std::string_view token,
                          const proto::HeartbeatRequest& request);
    // Blocking: loads the node's credential, then accepts or refuses the heartbeat.
    common::Result<proto::HeartbeatResponse> HeartbeatAfterLookup(
        const std::string& node_id, std::string_view token, const proto::HeartbeatRequest& request);
    proto::HeartbeatResponse HeartbeatReply() const;
    // Blocking on a cache miss: succeeds only if `token` is node_id's current credential
    // (kUnauthenticated otherwise, kNotFound for a node that is not registered).
    common::Status AuthenticateNode(const std::string& node_id, std::string_view token);

    // Blocking: writes buffered heartbeats (called by the flush job, and at shutdown).
    common::Result<ports::HeartbeatFlushResult> FlushHeartbeats();
    // Blocking: marks nodes without a recent heartbeat offline (the sweeper job).
    common::Result<std::vector<std::string>> SweepOffline();

    common::Result<NodeView> Get(const std::string& node_id);          // blocking
    common::Result<NodePage> List(const ports::NodeListQuery& query);  // blocking

    std::size_t BufferedHeartbeats() const { return buffer_.Size(); }
    const NodeServiceOptions& options() const { return options_; }

  private:
    bool CachedCredentialMatches(const std::string& node_id, std::string_view token) const;
    NodeView MakeView(domain::Node node, const ports::NodeHistory& history,
                      common::TimePoint now) const;
    void CacheCredential(const std::string& node_id, const crypto::Hash256& hash);
    void ForgetCredential(const std::string& node_id);

    ports::NodeRepository& repository_;
    const common::Clock& clock_;
    NodeServiceOptions options_;
    HeartbeatBuffer buffer_;

    mutable std::shared_mutex credentials_mutex_;
    std::unordered_map<std::string, crypto::Hash256> credentials_;  // node id -> SHA-256(token)
};

// Field rules for registration (also used by the agent's setup to check its own config).
common::Status ValidateRegion(std::string_view region);
common::Status ValidateTags(const std::vector<std::string>& tags);

}  // namespace decloud::orchestrator::app
