#pragma once

#include <optional>
#include <string>
#include <vector>

#include "decloud/common/clock.hpp"
#include "decloud/common/result.hpp"
#include "orchestrator/app/vm_service.hpp"
#include "orchestrator/domain/marketplace.hpp"
#include "orchestrator/ports/marketplace_repository.hpp"
#include "orchestrator/ports/relay_repository.hpp"

namespace decloud::orchestrator::app {

struct MarketplaceServiceOptions {
    domain::FeaturedRule featured;
    common::Duration uptime_window = std::chrono::days{30};
    std::size_t max_reviews_listed = 50;
};

// A search result: the node and the hourly price of the VM size asked for on it.
struct MarketListing {
    ports::MarketNode node;
    std::uint64_t hourly_price_micro_usdc = 0;
};

struct MarketListingPage {
    std::vector<MarketListing> listings;
    std::string next_cursor;  // empty on the last page
};

// A VM quote with what the marketplace adds: the chosen node's relay when it is behind CGNAT.
struct MarketQuote {
    VmQuote quote;
    std::optional<ports::MarketNode> node;  // the chosen node, when one fits
    bool behind_cgnat = false;
    std::string relay_node_id;   // the live primary relay the node's traffic goes through
    std::string relay_endpoint;  // its WireGuard endpoint
    std::string relay_note;      // why there is no relay, for a CGNAT node without one
};

// The node marketplace: search, featured nodes, operator profiles, reputation and reviews.
// Blocking (repository calls): run off the I/O threads. Thread-safe.
class MarketplaceService {
  public:
    MarketplaceService(ports::MarketplaceRepository& market, VmService& vms,
                       ports::RelayRepository* relays, const common::Clock& clock,
                       MarketplaceServiceOptions options);

    // Validates the filter and the cursor (kInvalidArgument), then one page.
    common::Result<MarketListingPage> Search(const domain::MarketFilter& filter,
                                             const std::string& cursor);
    common::Result<std::vector<MarketListing>> Featured(std::uint32_t vm_cores,
                                                        domain::QualityTier tier);
    // The node's public profile with its reputation (kNotFound for an unknown node).
    common::Result<ports::MarketNode> Profile(const std::string& node_id);
    // Only the node's operator wallet (kPermissionDenied otherwise; kNotFound unknown node).
    common::Result<ports::MarketNode> UpdateProfile(const std::string& wallet,
                                                    const std::string& node_id,
                                                    const domain::NodeProfile& profile);
    common::Result<ports::Review> AddReview(const std::string& owner, const std::string& vm_id,
                                            int rating, const std::string& text);
    common::Result<ports::ReviewSummary> Reviews(const std::string& node_id);
    // Where a VM would go, its price and relay; creates nothing.
    common::Result<MarketQuote> Quote(const CreateVmRequest& request);

    // Rebuilds every search row and the featured marks (the periodic job).
    common::Result<ports::RefreshOutcome> Refresh();

    const MarketplaceServiceOptions& options() const { return options_; }

  private:
    MarketListing Listing(ports::MarketNode node, std::uint32_t vm_cores,
                          domain::QualityTier tier) const;

    ports::MarketplaceRepository& market_;
    VmService& vms_;
    ports::RelayRepository* relays_;
    const common::Clock& clock_;
    MarketplaceServiceOptions options_;
};

}  // namespace decloud::orchestrator::app
