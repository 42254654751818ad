#include "orchestrator/app/marketplace_service.hpp"

#include <algorithm>
#include <cctype>

namespace decloud::orchestrator::app {

using common::Error;
using common::Result;

namespace {

bool SameWallet(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

}  // namespace

MarketplaceService::MarketplaceService(ports::MarketplaceRepository& market, VmService& vms,
                                       ports::RelayRepository* relays, const common::Clock& clock,
                                       MarketplaceServiceOptions options)
    : market_(market), vms_(vms), relays_(relays), clock_(clock), options_(std::move(options)) {}

MarketListing MarketplaceService::Listing(ports::MarketNode node, std::uint32_t vm_cores,
                                          domain::QualityTier tier) const {
    MarketListing l;
    l.hourly_price_micro_usdc = domain::HourlyPrice(vm_cores, tier, node.compute_points,
                                                    node.cpu_cores, node.price_per_point);
    l.node = std::move(node);
    return l;
}

Result<MarketListingPage> MarketplaceService::Search(const domain::MarketFilter& filter,
                                                     const std::string& cursor) {
    if (auto st = domain::Validate(filter); !st) return st.error();
    std::optional<domain::MarketCursor> after;
    if (!cursor.empty()) {
        auto decoded = domain::DecodeCursor(cursor, filter);
        if (!decoded) return decoded.error();
        after = std::move(*decoded);
    }
    auto page = market_.Search(filter, after);
    if (!page) return page.error();
    MarketListingPage out;
    out.listings.reserve(page->nodes.size());
    for (auto& n : page->nodes)
        out.listings.push_back(Listing(std::move(n), filter.vm_cores, filter.tier));
    if (page->next) out.next_cursor = domain::EncodeCursor(*page->next);
    return out;
}

Result<std::vector<MarketListing>> MarketplaceService::Featured(std::uint32_t vm_cores,
                                                                domain::QualityTier tier) {
    if (vm_cores < 1 || vm_cores > 1024) return Error::InvalidArgument("cores: 1 to 1024");
    auto nodes = market_.Featured(options_.featured.count);
    if (!nodes) return nodes.error();
    std::vector<MarketListing> out;
    out.reserve(nodes->size());
    for (auto& n : *nodes) out.push_back(Listing(std::move(n), vm_cores, tier));
    return out;
}

Result<ports::MarketNode> MarketplaceService::Profile(const std::string& node_id) {
    return market_.Get(node_id);
}

Result<ports::MarketNode> MarketplaceService::UpdateProfile(const std::string& wallet,
                                                            const std::string& node_id,
                                                            const domain::NodeProfile& profile) {
    auto operator_wallet = market_.OperatorOf(node_id);
    if (!operator_wallet) return operator_wallet.error();
    if (!SameWallet(*operator_wallet, wallet))
        return Error::PermissionDenied("only the node's operator wallet may change its profile");
    if (auto st = domain::Validate(profile); !st) return st.error();
    const auto now = clock_.Now();
    if (auto st = market_.SaveProfile(node_id, profile, now - options_.uptime_window, now); !st)
        return st.error();
    return market_.Get(node_id);
}

Result<ports::Review> MarketplaceService::AddReview(const std::string& owner,
                                                    const std::string& vm_id, int rating,
                                                    const std::string& text) {
    if (auto st = domain::ValidateReview(rating, text); !st) return st.error();
    return market_.AddReview(owner, vm_id, rating, text, clock_.Now());
}

Result<ports::ReviewSummary> MarketplaceService::Reviews(const std::string& node_id) {
    return market_.Reviews(node_id, options_.max_reviews_listed);
}

Result<MarketQuote> MarketplaceService::Quote(const CreateVmRequest& request) {
    auto quote = vms_.Quote(request);
    if (!quote) return quote.error();
    MarketQuote out;
    out.quote = std::move(*quote);
    if (out.quote.schedule.candidates.empty()) return out;
    const auto& chosen = out.quote.schedule.candidates.front();
    auto node = market_.Get(chosen.node_id);
    // A node registered since the last refresh has no search row yet; the quote stands.
    if (!node && node.error().code != common::ErrorCode::kNotFound) return node.error();
    if (node) {
        out.behind_cgnat = node->behind_cgnat;
        out.node = std::move(*node);
    }
    if (!out.behind_cgnat) return out;
    if (!relays_) {
        out.relay_note = "relays are not configured on this orchestrator";
        return out;
    }
    auto assignments = relays_->ForCgnatNode(chosen.node_id);
    if (!assignments) return assignments.error();
    const auto primary = std::find_if(assignments->begin(), assignments->end(), [](const auto& a) {
        return a.role == domain::RelayRole::kPrimary && domain::IsLive(a.state);
    });
    if (primary == assignments->end()) {
        out.relay_note = "the node is waiting for a relay; its VMs are reachable once it has one";
        return out;
    }
    out.relay_node_id = primary->relay_node_id;
    out.relay_endpoint = primary->relay_endpoint;
    return out;
}

Result<ports::RefreshOutcome> MarketplaceService::Refresh() {
    const auto now = clock_.Now();
    return market_.Refresh(std::nullopt, now - options_.uptime_window, now, options_.featured);
}

}  // namespace decloud::orchestrator::app
