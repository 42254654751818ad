#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "decloud/common/result.hpp"

namespace decloud::orchestrator::domain {

// How much a VM's vCPUs may be overcommitted on a node. Memory and disk never are.
enum class QualityTier { kGuaranteed, kStandard, kBalanced, kBurstable };
std::string_view ToString(QualityTier tier);  // "guaranteed", "standard", "balanced", "burstable"
std::optional<QualityTier> ParseQualityTier(std::string_view text);

// Overcommit ratio as a fraction: Guaranteed 1:1, Standard 3/2, Balanced 2:1, Burstable 4:1.
struct TierRatio {
    std::uint32_t numerator = 1;
    std::uint32_t denominator = 1;
};
TierRatio RatioOf(QualityTier tier);

// Compute points a VM consumes on a node: ceil(cores x node points per core / tier ratio),
// where node points per core = node total points / node physical cores (integer arithmetic,
// rounded up so that a node is never oversubscribed by rounding). Evaluated as one exact fraction,
// ceil(cores x points x den / (node cores x num)), so only the final result is rounded. A node
// reporting 0 cores has no defined points per core: the result is UINT64_MAX (never fits).
std::uint64_t PointsConsumed(std::uint32_t vm_cores, std::uint64_t node_points,
                             std::uint32_t node_cores, QualityTier tier);

struct GpuRequirement {
    std::uint32_t count = 1;
    std::string vendor;  // empty: any; compared case-insensitively ("NVIDIA")
    std::string model;   // empty: any; substring match, case-insensitive
};

// What a VM asks of a node.
struct VmRequirements {
    std::uint32_t cores = 1;
    std::uint64_t memory_mib = 512;
    std::uint64_t disk_gib = 10;
    QualityTier tier = QualityTier::kStandard;
    std::optional<GpuRequirement> gpu;
    std::string region;             // empty: any; exact match
    std::vector<std::string> tags;  // the node must carry all of them (exact match)
    std::string target_node_id;     // non-empty: only this node
    bool require_kvm = false;
};

struct NodeGpu {
    std::string vendor;
    std::string model;
    bool allocated = false;
};

// A node as the scheduler sees it: its capacity and what is already reserved on it.
struct NodeCapacity {
    std::string node_id;
    bool online = false;
    std::uint64_t compute_points = 0;  // total schedulable CPU points
    std::uint32_t cpu_cores = 0;       // physical cores
    std::uint64_t memory_mib = 0;      // total schedulable
    std::uint64_t disk_gib = 0;        // total schedulable
    std::uint64_t reserved_points = 0;
    std::uint64_t reserved_memory_mib = 0;
    std::uint64_t reserved_disk_gib = 0;
    std::vector<NodeGpu> gpus;
    std::string region;
    std::vector<std::string> tags;
    bool kvm_available = false;
    std::uint64_t price_per_point_micro_usdc = 0;  // per compute point per hour
    double uptime_ratio = 0;                       // 0..1 over 30 days
};

// Why a node cannot take a VM; kNone when it can. The order is the order of the checks: filters
// (target, online, KVM, region, tags) before capacity (CPU, memory, disk, GPU). A later reason
// means the node came closer to fitting, so it is the more relevant one to report.
enum class RejectReason {
    kNone,
    kNotTarget,
    kOffline,
    kNoKvm,
    kRegion,
    kTags,
    kCpu,
    kMemory,
    kDisk,
    kGpu,
};
inline constexpr std::size_t kRejectReasonCount = static_cast<std::size_t>(RejectReason::kGpu) + 1;
std::string_view ToString(RejectReason reason);

// Checks one node; the detail says what is short ("needs 300 points, 120 free").
struct FitCheck {
    RejectReason reason = RejectReason::kNone;
    std::string detail;
    std::uint64_t points = 0;  // points the VM would consume on this node
    bool ok() const { return reason == RejectReason::kNone; }
};
FitCheck CheckFit(const VmRequirements& vm, const NodeCapacity& node);

// Hourly price of `points` on `node`: points x node price per point (saturating).
std::uint64_t HourlyRate(std::uint64_t points, const NodeCapacity& node);

struct ScoringWeights {
    double price = 0.4;   // cheaper hourly rate scores higher
    double spread = 0.4;  // emptier node (after placement) scores higher
    double uptime = 0.2;
};

// The score Schedule gives a node that fits (`points` from CheckFit), higher is better; in [0, 1]
// when the weights sum to 1. Each part is in [0, 1]: price is min-max normalised over the hourly
// rates of all nodes that fit (`min_rate`..`max_rate`; 1 when they are all equal), spread is the
// mean free fraction of CPU points and memory after placement, uptime is the node's ratio.
double ScoreNode(const VmRequirements& vm, const NodeCapacity& node, std::uint64_t points,
                 std::uint64_t min_rate, std::uint64_t max_rate, const ScoringWeights& weights);

struct Placement {
    std::string node_id;
    std::uint64_t points = 0;
    std::uint64_t hourly_rate_micro_usdc = 0;  // points x node price per point
    double score = 0;
};

struct Rejection {
    std::string node_id;
    RejectReason reason = RejectReason::kNone;
    std::string detail;
};

// The outcome of one scheduling decision: placements best first (at most `max_candidates`),
// and for nodes that could not take the VM, why (at most `max_rejections`, most relevant
// first: nodes that failed on capacity before nodes that failed on filters; precisely, by
// reason from kGpu down to kNotTarget, then by node id). `rejected` counts every rejected node
// by reason, including those not listed.
struct ScheduleResult {
    std::vector<Placement> candidates;
    std::vector<Rejection> rejections;
    std::array<std::size_t, kRejectReasonCount> rejected{};  // indexed by RejectReason
    std::size_t nodes_considered = 0;

    std::size_t RejectedCount(RejectReason reason) const {
        return rejected[static_cast<std::size_t>(reason)];
    }
};

struct ScheduleOptions {
    ScoringWeights weights;
    std::size_t max_candidates = 3;
    std::size_t max_rejections = 5;
};

// Pure and deterministic (ties broken by node id). O(nodes) with no allocation per rejected node
// beyond the bounded rejection list; fit for 100,000 nodes per call.
ScheduleResult Schedule(const VmRequirements& vm, std::span<const NodeCapacity> nodes,
                        const ScheduleOptions& options = {});

// A one-line human explanation for a 422 when no candidate exists, from the rejection counts
// (or the listed rejections when there are no counts), most relevant reason first
// ("no node can take 4 cores at standard: 12 nodes lack memory (needs 8192 MiB) ...").
std::string ExplainNoPlacement(const VmRequirements& vm, const ScheduleResult& result);

}  // namespace decloud::orchestrator::domain
