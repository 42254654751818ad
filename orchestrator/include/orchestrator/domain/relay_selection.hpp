#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "decloud/common/clock.hpp"

namespace decloud::orchestrator::domain {

// A node that offered to relay, as relay selection sees it (the repository assembles it from
// the node, its relay offer and the live assignments on it).
struct RelayCandidate {
    std::string node_id;
    bool enabled = false;         // the operator offers this node as a relay
    bool online = false;          // heartbeats are arriving
    bool healthy = false;         // the relay role itself works (set by the health monitor)
    std::string health_reason;    // why not, when not healthy
    bool behind_cgnat = false;    // from the node's CGNAT assessment
    bool requires_relay = false;  // from the node's CGNAT assessment: not reachable inbound
    std::string public_address;   // what CGNAT nodes dial and users reach; empty: unknown
    std::uint16_t wireguard_port = 0;
    std::string wireguard_public_key;
    std::string region;
    double uptime_ratio = 0;                // 0..1 over the uptime window
    std::uint32_t tunnels = 0;              // live assignments on it, either role
    std::uint32_t max_tunnels = 0;          // 0: RelayPolicy::max_tunnels_per_relay
    std::uint32_t bandwidth_mbps = 0;       // what the operator offers for relaying; 0: unknown
    std::uint32_t bandwidth_used_mbps = 0;  // measured recently (0 when not measured)
};

struct RelayPolicy {
    std::uint32_t max_tunnels_per_relay = 50;  // CGNAT tunnels one relay carries, either role
    std::uint32_t tunnel_bandwidth_mbps = 10;  // reserved per tunnel when judging spare bandwidth
    std::uint32_t max_repair_attempts = 3;     // then fail over
    common::Duration provisioning_timeout = std::chrono::minutes{3};  // then repair
    common::Duration degraded_grace = std::chrono::minutes{1};  // to recover alone, then repair
    common::Duration repair_timeout = std::chrono::minutes{2};  // per attempt, then the next one
    // The standby is ranked like the primary (the CGNAT node's region first: most failures are
    // of one node, and after a failover the traffic should stay close). Set this to rank relays
    // outside the primary's region first for the standby, trading latency for surviving the
    // loss of a whole region.
    bool standby_prefers_other_region = false;
};

// Why a node cannot relay for this CGNAT node; kNone when it can. In the order of the checks:
// a later reason means the node came closer to qualifying.
enum class RelayExclusion {
    kNone,
    kSelf,      // the CGNAT node itself
    kExcluded,  // the caller ruled it out (the failed relay, the other role's relay)
    kDisabled,  // does not offer to relay
    kOffline,
    kBehindCgnat,  // behind CGNAT itself
    kNotPublic,    // not reachable inbound, or no public address known
    kUnhealthy,
    kFull,       // no spare tunnel capacity
    kBandwidth,  // no spare bandwidth (or none reported)
};
inline constexpr std::size_t kRelayExclusionCount =
    static_cast<std::size_t>(RelayExclusion::kBandwidth) + 1;
std::string_view ToString(RelayExclusion reason);

// What is being looked for.
struct RelayRequest {
    std::string cgnat_node_id;
    std::string region;                         // the CGNAT node's; preferred for its relays
    std::vector<std::string> exclude_node_ids;  // never choose these
    // Never choose a relay at one of these public addresses (the other role's relay, so that
    // primary and standby are not one machine under two node ids).
    std::vector<std::string> exclude_addresses;
};

struct RelayCheck {
    RelayExclusion reason = RelayExclusion::kNone;
    std::string detail;  // "at capacity: 50 of 50 tunnels"
    bool ok() const { return reason == RelayExclusion::kNone; }
};
RelayCheck CheckRelayCandidate(const RelayRequest& request, const RelayCandidate& candidate,
                               const RelayPolicy& policy);

// The tunnel capacity of a candidate: its own maximum, else the policy's.
std::uint32_t TunnelCapacity(const RelayCandidate& candidate, const RelayPolicy& policy);

struct RelayChoice {
    RelayCandidate relay;
    // Why this one, for the record: "relay n2: lowest load 3/50 tunnels among 4 candidates,
    // same region eu-west, uptime 99.2%".
    std::string reason;
};

struct RelayExclusionEntry {
    std::string node_id;
    RelayExclusion reason = RelayExclusion::kNone;
    std::string detail;
};

struct RelaySelection {
    std::optional<RelayChoice> primary;
    std::optional<RelayChoice> standby;
    std::string standby_reason;  // why there is none, when there is none but one was wanted
    // Every node that could not be chosen at all, most relevant first (by reason from
    // kBandwidth down to kSelf, then node id), with counts per reason.
    std::vector<RelayExclusionEntry> exclusions;
    std::array<std::size_t, kRelayExclusionCount> excluded{};
    std::size_t candidates_considered = 0;
    std::size_t qualified = 0;

    std::size_t ExcludedCount(RelayExclusion reason) const {
        return excluded[static_cast<std::size_t>(reason)];
    }
};

// Ranks the qualified candidates: lowest load first (live tunnels / capacity, compared as exact
// fractions), then same region as the CGNAT node, then higher uptime, then node id, and takes
// the best as primary. With `want_standby`, the best remaining one on another node and another
// public address becomes the standby (ranked the same way, or other regions first, see
// RelayPolicy). Pure and deterministic.
RelaySelection SelectRelays(const RelayRequest& request, std::span<const RelayCandidate> candidates,
                            const RelayPolicy& policy, bool want_standby);

// A standby chosen after the fact, next to an existing primary (the request excludes the
// primary's node and address): ranked like SelectRelays ranks standbys, with relays outside
// `primary_region` first when the policy says so. Fills `standby` (and `standby_reason` when
// there is none); `primary` stays empty.
RelaySelection SelectStandby(const RelayRequest& request,
                             std::span<const RelayCandidate> candidates, const RelayPolicy& policy,
                             std::string_view primary_region);

// One line for the awaiting_relay record when there is no primary: "no relay for node X: 3
// relays are offline, 1 relay is at capacity (50 tunnels)". An empty candidate list says so.
std::string ExplainNoRelay(const RelayRequest& request, const RelaySelection& selection);

}  // namespace decloud::orchestrator::domain
