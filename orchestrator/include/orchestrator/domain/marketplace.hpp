#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "decloud/common/result.hpp"
#include "orchestrator/domain/scheduling.hpp"

namespace decloud::orchestrator::domain {

// Marketplace sort keys; each has a natural direction (price ascending, the others descending)
// that `descending` in MarketFilter overrides.
enum class MarketSort { kPrice, kUptime, kFreeCapacity, kComputePoints };
std::string_view ToString(MarketSort sort);  // "price", "uptime", "free", "points"
std::optional<MarketSort> ParseMarketSort(std::string_view text);

inline constexpr std::size_t kMaxMarketTags = 16;
inline constexpr std::size_t kMaxMarketPageSize = 100;

// What a marketplace search asks for. Empty/unset members do not filter.
struct MarketFilter {
    std::vector<std::string> tags_all;  // the node carries every one
    std::vector<std::string> tags_any;  // the node carries at least one
    std::string region;
    std::optional<std::uint64_t> min_price;  // micro-USDC per compute point per hour
    std::optional<std::uint64_t> max_price;
    std::optional<bool> has_gpu;
    std::string gpu_vendor;  // case-insensitive exact ("nvidia")
    std::string gpu_model;   // case-insensitive substring ("4090")
    std::optional<std::uint32_t> min_gpu_count;
    std::optional<std::uint32_t> min_uptime_bp;    // 30-day uptime, basis points (9500 = 95 %)
    std::optional<std::uint64_t> min_free_points;  // at `tier`
    std::optional<std::uint64_t> min_free_memory_mib;
    std::optional<std::uint64_t> min_free_disk_gib;
    QualityTier tier = QualityTier::kStandard;  // the tier free points are counted at
    std::optional<bool> behind_cgnat;
    bool featured_only = false;
    MarketSort sort = MarketSort::kPrice;
    bool descending = false;
    std::size_t limit = 20;
    std::uint32_t vm_cores = 1;  // VM size whose hourly price each result shows
};

// Range and consistency checks: min <= max, limit 1..100, at most 16 tags per list with the
// node tag syntax, region syntax, uptime <= 10000, vm_cores 1..1024, GPU strings <= 64 chars.
common::Status Validate(const MarketFilter& filter);

// Free points at a tier as raw node points: a VM at `tier` consumes points / tier ratio, so
// `points` free at that tier needs ceil(points x den / num) raw points free.
std::uint64_t RawPointsFor(std::uint64_t points_at_tier, QualityTier tier);

// Where the next page starts: the last row's sort key and id, bound to the query that made it.
struct MarketCursor {
    MarketSort sort = MarketSort::kPrice;
    bool descending = false;
    std::int64_t key = 0;
    std::string node_id;
    std::uint64_t query_hash = 0;  // QueryHash of the filter; a cursor only continues its query
};
// A fingerprint of everything in the filter but the limit.
std::uint64_t QueryHash(const MarketFilter& filter);
// Opaque text (base64url of JSON).
std::string EncodeCursor(const MarketCursor& cursor);
// kInvalidArgument for anything not made by EncodeCursor for this filter.
common::Result<MarketCursor> DecodeCursor(std::string_view text, const MarketFilter& filter);

// Who gets featured: nodes at or above `min_uptime_bp`, best uptime first (then most completed
// VMs, then id), at most `count` of them.
struct FeaturedRule {
    std::uint32_t min_uptime_bp = 9500;
    std::size_t count = 20;
};

// Uptime ratio (0..1) as basis points, rounded down (so 94.999 % is not 95 %), clamped.
std::uint32_t UptimeBasisPoints(double ratio);

// Hourly price of a VM of `cores` at `tier` on a node: PointsConsumed x price per point
// (saturating); UINT64_MAX when the node has no cores.
std::uint64_t HourlyPrice(std::uint32_t cores, QualityTier tier, std::uint64_t node_points,
                          std::uint32_t node_cores, std::uint64_t price_per_point);

// Operator profile of a node.
struct NodeProfile {
    std::string display_name;       // 1..64 printable characters, no control characters
    std::string description;        // up to 2000 characters, no control characters except newline
    std::vector<std::string> tags;  // node tag syntax, at most 16
    std::optional<std::uint64_t> price_per_point_micro_usdc;  // unset: unchanged
};
inline constexpr std::uint64_t kMaxPricePerPoint = 1'000'000'000;  // 1,000 USDC per point-hour
common::Status Validate(const NodeProfile& profile);

// A review of a node by the owner of a VM that ran there.
inline constexpr std::size_t kMaxReviewLength = 1000;
common::Status ValidateReview(int rating, std::string_view text);

}  // namespace decloud::orchestrator::domain
