#pragma once

#include <optional>
#include <string>
#include <vector>

#include "decloud/common/clock.hpp"
#include "decloud/common/result.hpp"
#include "orchestrator/domain/marketplace.hpp"

namespace decloud::orchestrator::ports {

// A node as the marketplace shows it: the search row (as of the last refresh) with the node's
// live status and the capacity its VMs hold right now.
struct MarketNode {
    std::string node_id;
    std::string display_name;
    std::string description;
    std::string region;
    std::vector<std::string> tags;
    std::uint64_t price_per_point = 0;
    std::uint64_t compute_points = 0;
    std::uint32_t cpu_cores = 0;
    std::uint64_t memory_mib = 0;
    std::uint64_t disk_gib = 0;
    std::uint32_t gpu_count = 0;
    std::vector<std::string> gpu_models;  // as the node reports them
    std::vector<std::string> gpu_vendors;
    bool behind_cgnat = false;
    std::uint32_t uptime_bp = 0;
    std::uint64_t vms_hosted = 0;
    std::uint64_t vms_completed = 0;
    bool featured = false;
    // Live at the time of the query.
    bool online = false;
    std::optional<common::TimePoint> last_heartbeat_at;
    std::uint64_t free_points = 0;
    std::uint64_t free_memory_mib = 0;
    std::uint64_t free_disk_gib = 0;
    std::uint32_t free_gpus = 0;
    // Reviews.
    std::uint64_t review_count = 0;
    double average_rating = 0;  // 0 without reviews
    common::TimePoint refreshed_at{};
};

struct MarketPage {
    std::vector<MarketNode> nodes;
    std::optional<domain::MarketCursor> next;  // set when more rows may follow
};

struct Review {
    std::string vm_id;
    std::string node_id;
    std::string owner_wallet;
    int rating = 0;
    std::string text;
    common::TimePoint created_at{};
};

struct ReviewSummary {
    std::vector<Review> reviews;  // newest first, at most the limit asked
    std::uint64_t count = 0;
    double average = 0;  // 0 without reviews
};

struct RefreshOutcome {
    std::size_t nodes = 0;
    std::size_t featured = 0;
};

// The marketplace's store. Blocking, thread-safe; times come from the caller's clock.
class MarketplaceRepository {
  public:
    virtual ~MarketplaceRepository() = default;

    // Rebuilds the search rows of every node (or of one node) from nodes, profiles, VMs and the
    // availability since `uptime_since`, then re-marks the featured nodes by `rule`. Runs under
    // a transaction-scoped advisory lock when refreshing all; another replica holding it makes
    // this a no-op.
    virtual common::Result<RefreshOutcome> Refresh(const std::optional<std::string>& node_id,
                                                   common::TimePoint uptime_since,
                                                   common::TimePoint now,
                                                   const domain::FeaturedRule& rule) = 0;

    // One page of the search, after `after` (keyset on (sort key, node id)). The filter is valid.
    virtual common::Result<MarketPage> Search(const domain::MarketFilter& filter,
                                              const std::optional<domain::MarketCursor>& after) = 0;

    // The featured nodes, best first.
    virtual common::Result<std::vector<MarketNode>> Featured(std::size_t limit) = 0;

    // kNotFound if the node is unknown or has no search row yet.
    virtual common::Result<MarketNode> Get(const std::string& node_id) = 0;

    // The node's operator wallet; kNotFound for an unknown node.
    virtual common::Result<std::string> OperatorOf(const std::string& node_id) = 0;

    // Writes the profile (and the price when set) and refreshes the node's search row.
    virtual common::Status SaveProfile(const std::string& node_id,
                                       const domain::NodeProfile& profile,
                                       common::TimePoint uptime_since, common::TimePoint now) = 0;

    // Inserts a review of the node a VM ran on, checked in one transaction: kNotFound unless the
    // VM exists and belongs to `owner`, kConflict unless it has ended (deleted or failed) and
    // was placed, kConflict if it already has a review.
    virtual common::Result<Review> AddReview(const std::string& owner, const std::string& vm_id,
                                             int rating, const std::string& text,
                                             common::TimePoint now) = 0;

    // kNotFound for an unknown node.
    virtual common::Result<ReviewSummary> Reviews(const std::string& node_id,
                                                  std::size_t limit) = 0;
};

}  // namespace decloud::orchestrator::ports
