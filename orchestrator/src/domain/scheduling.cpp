#include "orchestrator/domain/scheduling.hpp"

#include <algorithm>
#include <limits>
#include <utility>

namespace decloud::orchestrator::domain {

namespace {

// Points x cores x ratio can exceed 64 bits before the division brings it back.
__extension__ typedef unsigned __int128 Uint128;

constexpr std::uint64_t kMaxU64 = std::numeric_limits<std::uint64_t>::max();

std::uint64_t Saturate(Uint128 value) {
    return value > kMaxU64 ? kMaxU64 : static_cast<std::uint64_t>(value);
}

std::uint64_t Free(std::uint64_t total, std::uint64_t reserved) {
    return reserved >= total ? 0 : total - reserved;
}

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (Lower(a[i]) != Lower(b[i])) return false;
    }
    return true;
}

bool ContainsIgnoreCase(std::string_view haystack, std::string_view needle) {
    if (needle.size() > haystack.size()) return false;
    for (std::size_t start = 0; start + needle.size() <= haystack.size(); ++start) {
        if (EqualsIgnoreCase(haystack.substr(start, needle.size()), needle)) return true;
    }
    return false;
}

bool GpuMatches(const NodeGpu& gpu, const GpuRequirement& want) {
    if (gpu.allocated) return false;
    if (!want.vendor.empty() && !EqualsIgnoreCase(gpu.vendor, want.vendor)) return false;
    return want.model.empty() || ContainsIgnoreCase(gpu.model, want.model);
}

// Stops counting at `enough`: the hot path only needs to know whether there are enough.
std::uint32_t FreeMatchingGpus(const NodeCapacity& node, const GpuRequirement& want,
                               std::uint32_t enough) {
    std::uint32_t found = 0;
    for (const NodeGpu& gpu : node.gpus) {
        if (found >= enough) break;
        if (GpuMatches(gpu, want)) ++found;
    }
    return found;
}

bool HasTag(const NodeCapacity& node, const std::string& tag) {
    return std::find(node.tags.begin(), node.tags.end(), tag) != node.tags.end();
}

bool HasAllTags(const NodeCapacity& node, const std::vector<std::string>& tags) {
    return std::all_of(tags.begin(), tags.end(),
                       [&](const std::string& tag) { return HasTag(node, tag); });
}

// The checks of CheckFit without the detail text, so that Schedule allocates nothing for a
// node it rejects. `points` is set once the checks reach the CPU.
RejectReason Evaluate(const VmRequirements& vm, const NodeCapacity& node, std::uint64_t& points) {
    if (!vm.target_node_id.empty() && node.node_id != vm.target_node_id) {
        return RejectReason::kNotTarget;
    }
    if (!node.online) return RejectReason::kOffline;
    if (vm.require_kvm && !node.kvm_available) return RejectReason::kNoKvm;
    if (!vm.region.empty() && node.region != vm.region) return RejectReason::kRegion;
    if (!HasAllTags(node, vm.tags)) return RejectReason::kTags;
    points = PointsConsumed(vm.cores, node.compute_points, node.cpu_cores, vm.tier);
    if (points > Free(node.compute_points, node.reserved_points)) return RejectReason::kCpu;
    if (vm.memory_mib > Free(node.memory_mib, node.reserved_memory_mib)) {
        return RejectReason::kMemory;
    }
    if (vm.disk_gib > Free(node.disk_gib, node.reserved_disk_gib)) return RejectReason::kDisk;
    if (vm.gpu && FreeMatchingGpus(node, *vm.gpu, vm.gpu->count) < vm.gpu->count) {
        return RejectReason::kGpu;
    }
    return RejectReason::kNone;
}

// "2 NVIDIA A100 GPUs", "1 GPU".
std::string DescribeGpus(std::uint32_t count, const GpuRequirement& want) {
    std::string text = std::to_string(count);
    for (const std::string* part : {&want.vendor, &want.model}) {
        if (part->empty()) continue;
        text += ' ';
        text += *part;
    }
    text += count == 1 ? " GPU" : " GPUs";
    return text;
}

std::string JoinMissingTags(const VmRequirements& vm, const NodeCapacity& node) {
    std::string text;
    for (const std::string& tag : vm.tags) {
        if (HasTag(node, tag)) continue;
        if (!text.empty()) text += ", ";
        text += tag;
    }
    return text;
}

std::string Detail(const VmRequirements& vm, const NodeCapacity& node, RejectReason reason,
                   std::uint64_t points) {
    switch (reason) {
        case RejectReason::kNone:
            return {};
        case RejectReason::kNotTarget:
            return "not the requested node " + vm.target_node_id;
        case RejectReason::kOffline:
            return "node is offline";
        case RejectReason::kNoKvm:
            return "KVM is not available";
        case RejectReason::kRegion:
            return "in region " + (node.region.empty() ? std::string("(none)") : node.region) +
                   ", needs " + vm.region;
        case RejectReason::kTags:
            return "lacks tags " + JoinMissingTags(vm, node);
        case RejectReason::kCpu:
            if (node.cpu_cores == 0) return "node reports no CPU cores";
            return "needs " + std::to_string(points) + " points, " +
                   std::to_string(Free(node.compute_points, node.reserved_points)) + " free";
        case RejectReason::kMemory:
            return "needs " + std::to_string(vm.memory_mib) + " MiB memory, " +
                   std::to_string(Free(node.memory_mib, node.reserved_memory_mib)) + " free";
        case RejectReason::kDisk:
            return "needs " + std::to_string(vm.disk_gib) + " GiB disk, " +
                   std::to_string(Free(node.disk_gib, node.reserved_disk_gib)) + " free";
        case RejectReason::kGpu: {
            const auto free =
                FreeMatchingGpus(node, *vm.gpu, std::numeric_limits<std::uint32_t>::max());
            return "needs " + DescribeGpus(vm.gpu->count, *vm.gpu) + ", " + std::to_string(free) +
                   " free";
        }
    }
    return {};
}

double PriceScore(std::uint64_t rate, std::uint64_t min_rate, std::uint64_t max_rate) {
    if (max_rate <= min_rate) return 1.0;
    const std::uint64_t clamped = std::clamp(rate, min_rate, max_rate);
    return static_cast<double>(max_rate - clamped) / static_cast<double>(max_rate - min_rate);
}

double FreeFractionAfter(std::uint64_t total, std::uint64_t reserved, std::uint64_t adding) {
    const std::uint64_t used = Saturate(Uint128{reserved} + adding);
    if (total == 0 || used >= total) return 0.0;
    return static_cast<double>(total - used) / static_cast<double>(total);
}

// The part of the score that does not depend on the other nodes. Schedule and ScoreNode both
// combine it with the price part through Combine, so that their scores are bit for bit equal.
double RestScore(const VmRequirements& vm, const NodeCapacity& node, std::uint64_t points,
                 const ScoringWeights& weights) {
    const double spread =
        (FreeFractionAfter(node.compute_points, node.reserved_points, points) +
         FreeFractionAfter(node.memory_mib, node.reserved_memory_mib, vm.memory_mib)) /
        2.0;
    // Written so that NaN counts as 0.
    const double uptime = node.uptime_ratio > 0.0 ? std::min(node.uptime_ratio, 1.0) : 0.0;
    return weights.spread * spread + weights.uptime * uptime;
}

double Combine(double price_part, double rest, const ScoringWeights& weights) {
    return weights.price * price_part + rest;
}

// The tie-break everywhere: node id, then position for duplicate ids, so that the outcome
// depends on nothing but the input.
bool IdBefore(std::span<const NodeCapacity> nodes, std::size_t a, std::size_t b) {
    const int by_id = nodes[a].node_id.compare(nodes[b].node_id);
    return by_id != 0 ? by_id < 0 : a < b;
}

struct Feasible {
    std::size_t index = 0;
    std::uint64_t rate = 0;
    double rest = 0;
};

struct Scored {
    double score = 0;
    std::size_t index = 0;
};

struct Kept {
    RejectReason reason = RejectReason::kNone;
    std::size_t index = 0;
};

// Keeps the `limit` best of what it is offered in a heap whose top is the worst kept, so that
// most offers cost one comparison. `better(a, b)` is a strict weak order, best first.
template <class T, class Better>
class BoundedBest {
  public:
    // `most` bounds how many will ever be offered, so that a huge limit allocates nothing extra.
    BoundedBest(std::size_t limit, std::size_t most, Better better)
        : limit_(limit), better_(better) {
        items_.reserve(std::min(limit, most));
    }

    void Offer(const T& item) {
        if (limit_ == 0) return;
        if (items_.size() < limit_) {
            items_.push_back(item);
            std::push_heap(items_.begin(), items_.end(), better_);
        } else if (better_(item, items_.front())) {
            std::pop_heap(items_.begin(), items_.end(), better_);
            items_.back() = item;
            std::push_heap(items_.begin(), items_.end(), better_);
        }
    }

    // Best first; leaves this empty.
    std::vector<T> TakeSorted() {
        std::sort_heap(items_.begin(), items_.end(), better_);
        return std::move(items_);
    }

  private:
    std::size_t limit_;
    Better better_;
    std::vector<T> items_;
};

std::string Plural(std::size_t n, std::string_view one, std::string_view many) {
    std::string text = std::to_string(n);
    text += ' ';
    text += n == 1 ? one : many;
    return text;
}

std::string DescribeVm(const VmRequirements& vm) {
    std::string text = Plural(vm.cores, "core", "cores");
    text += ", " + std::to_string(vm.memory_mib) + " MiB memory, " + std::to_string(vm.disk_gib) +
            " GiB disk";
    if (vm.gpu) text += ", " + DescribeGpus(vm.gpu->count, *vm.gpu);
    text += " at ";
    text += ToString(vm.tier);
    return text;
}

std::string JoinTags(const std::vector<std::string>& tags) {
    std::string text;
    for (const std::string& tag : tags) {
        if (!text.empty()) text += ", ";
        text += tag;
    }
    return text;
}

std::string CountPhrase(const VmRequirements& vm, RejectReason reason, std::size_t n) {
    const std::string lack = Plural(n, "node lacks ", "nodes lack ");
    const std::string are = Plural(n, "node is ", "nodes are ");
    switch (reason) {
        case RejectReason::kNone:
            return {};
        case RejectReason::kNotTarget:
            return are + "not the requested node " + vm.target_node_id;
        case RejectReason::kOffline:
            return are + "offline";
        case RejectReason::kNoKvm:
            return lack + "KVM";
        case RejectReason::kRegion:
            return are + "outside region " + vm.region;
        case RejectReason::kTags:
            return lack + (vm.tags.size() == 1 ? "tag " : "tags ") + JoinTags(vm.tags);
        case RejectReason::kCpu:
            return lack + "CPU points";
        case RejectReason::kMemory:
            return lack + "memory (needs " + std::to_string(vm.memory_mib) + " MiB)";
        case RejectReason::kDisk:
            return lack + "disk (needs " + std::to_string(vm.disk_gib) + " GiB)";
        case RejectReason::kGpu:
            return lack + "GPUs (needs " +
                   (vm.gpu ? DescribeGpus(vm.gpu->count, *vm.gpu) : std::string("GPUs")) + " free)";
    }
    return {};
}

}  // namespace

std::string_view ToString(QualityTier tier) {
    switch (tier) {
        case QualityTier::kGuaranteed:
            return "guaranteed";
        case QualityTier::kStandard:
            return "standard";
        case QualityTier::kBalanced:
            return "balanced";
        case QualityTier::kBurstable:
            return "burstable";
    }
    return "unknown";
}

std::optional<QualityTier> ParseQualityTier(std::string_view text) {
    for (const QualityTier tier : {QualityTier::kGuaranteed, QualityTier::kStandard,
                                   QualityTier::kBalanced, QualityTier::kBurstable}) {
        if (EqualsIgnoreCase(ToString(tier), text)) return tier;
    }
    return std::nullopt;
}

TierRatio RatioOf(QualityTier tier) {
    switch (tier) {
        case QualityTier::kGuaranteed:
            return {1, 1};
        case QualityTier::kStandard:
            return {3, 2};
        case QualityTier::kBalanced:
            return {2, 1};
        case QualityTier::kBurstable:
            return {4, 1};
    }
    return {1, 1};
}

std::uint64_t PointsConsumed(std::uint32_t vm_cores, std::uint64_t node_points,
                             std::uint32_t node_cores, QualityTier tier) {
    if (node_cores == 0) return kMaxU64;
    const TierRatio ratio = RatioOf(tier);
    const Uint128 numerator = Uint128{vm_cores} * node_points * ratio.denominator;
    const Uint128 denominator = Uint128{node_cores} * ratio.numerator;
    return Saturate((numerator + denominator - 1) / denominator);
}

std::string_view ToString(RejectReason reason) {
    switch (reason) {
        case RejectReason::kNone:
            return "none";
        case RejectReason::kNotTarget:
            return "not_target";
        case RejectReason::kOffline:
            return "offline";
        case RejectReason::kNoKvm:
            return "no_kvm";
        case RejectReason::kRegion:
            return "region";
        case RejectReason::kTags:
            return "tags";
        case RejectReason::kCpu:
            return "cpu";
        case RejectReason::kMemory:
            return "memory";
        case RejectReason::kDisk:
            return "disk";
        case RejectReason::kGpu:
            return "gpu";
    }
    return "unknown";
}

FitCheck CheckFit(const VmRequirements& vm, const NodeCapacity& node) {
    FitCheck check;
    check.reason = Evaluate(vm, node, check.points);
    check.detail = Detail(vm, node, check.reason, check.points);
    return check;
}

std::uint64_t HourlyRate(std::uint64_t points, const NodeCapacity& node) {
    return Saturate(Uint128{points} * node.price_per_point_micro_usdc);
}

double ScoreNode(const VmRequirements& vm, const NodeCapacity& node, std::uint64_t points,
                 std::uint64_t min_rate, std::uint64_t max_rate, const ScoringWeights& weights) {
    return Combine(PriceScore(HourlyRate(points, node), min_rate, max_rate),
                   RestScore(vm, node, points, weights), weights);
}

ScheduleResult Schedule(const VmRequirements& vm, std::span<const NodeCapacity> nodes,
                        const ScheduleOptions& options) {
    ScheduleResult result;
    result.nodes_considered = nodes.size();

    const auto more_relevant = [nodes](const Kept& a, const Kept& b) {
        if (a.reason != b.reason) return a.reason > b.reason;
        return IdBefore(nodes, a.index, b.index);
    };
    BoundedBest<Kept, decltype(more_relevant)> kept(options.max_rejections, nodes.size(),
                                                    more_relevant);

    // Pass 1 over the nodes: filter, and remember what the score needs of each node that fits.
    // The price part is normalised over all of them, so scoring waits for pass 2.
    std::vector<Feasible> feasible;
    feasible.reserve(nodes.size());
    std::uint64_t min_rate = kMaxU64;
    std::uint64_t max_rate = 0;
    for (std::size_t i = 0; i < nodes.size(); ++i) {
        const NodeCapacity& node = nodes[i];
        std::uint64_t points = 0;
        const RejectReason reason = Evaluate(vm, node, points);
        if (reason != RejectReason::kNone) {
            ++result.rejected[static_cast<std::size_t>(reason)];
            kept.Offer({reason, i});
            continue;
        }
        const std::uint64_t rate = HourlyRate(points, node);
        min_rate = std::min(min_rate, rate);
        max_rate = std::max(max_rate, rate);
        feasible.push_back({i, rate, RestScore(vm, node, points, options.weights)});
    }

    // Pass 2 over the compact list of nodes that fit: top-K by score, ties by node id.
    const auto better = [nodes](const Scored& a, const Scored& b) {
        if (a.score != b.score) return a.score > b.score;
        return IdBefore(nodes, a.index, b.index);
    };
    BoundedBest<Scored, decltype(better)> best(options.max_candidates, feasible.size(), better);
    for (const Feasible& f : feasible) {
        best.Offer(
            {Combine(PriceScore(f.rate, min_rate, max_rate), f.rest, options.weights), f.index});
    }

    for (const Scored& s : best.TakeSorted()) {
        const NodeCapacity& node = nodes[s.index];
        const std::uint64_t points =
            PointsConsumed(vm.cores, node.compute_points, node.cpu_cores, vm.tier);
        result.candidates.push_back({node.node_id, points, HourlyRate(points, node), s.score});
    }
    // Only the rejections that are reported get their text.
    for (const Kept& k : kept.TakeSorted()) {
        const NodeCapacity& node = nodes[k.index];
        const std::uint64_t points =
            PointsConsumed(vm.cores, node.compute_points, node.cpu_cores, vm.tier);
        result.rejections.push_back({node.node_id, k.reason, Detail(vm, node, k.reason, points)});
    }
    return result;
}

std::string ExplainNoPlacement(const VmRequirements& vm, const ScheduleResult& result) {
    std::array<std::size_t, kRejectReasonCount> counts = result.rejected;
    if (std::all_of(counts.begin(), counts.end(), [](std::size_t n) { return n == 0; })) {
        for (const Rejection& r : result.rejections) ++counts[static_cast<std::size_t>(r.reason)];
    }

    std::string text = "no node can take " + DescribeVm(vm) + ": ";
    bool any = false;
    // Most relevant first: the reason a node reached last in the checks.
    for (std::size_t r = kRejectReasonCount; r-- > 1;) {
        if (counts[r] == 0) continue;
        if (any) text += ", ";
        text += CountPhrase(vm, static_cast<RejectReason>(r), counts[r]);
        any = true;
    }
    if (!any) text += "no nodes are available";
    return text;
}

}  // namespace decloud::orchestrator::domain
