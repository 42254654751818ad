#pragma once

#include "orchestrator/adapters/pg/pg_pool.hpp"
#include "orchestrator/ports/marketplace_repository.hpp"

namespace decloud::orchestrator::adapters::pg {

struct PgMarketplaceRepositoryOptions {
    std::uint64_t host_reserved_memory_mib = 1024;  // as the scheduler counts it (vms.*)
};

// MarketplaceRepository on PostgreSQL (tables of migration 0007). Each method is one
// transaction; blocking; thread-safe.
class PgMarketplaceRepository final : public ports::MarketplaceRepository {
  public:
    PgMarketplaceRepository(PgPool& pool, PgMarketplaceRepositoryOptions options = {})
        : pool_(pool), options_(options) {}

    // ports::MarketplaceRepository
    common::Result<ports::RefreshOutcome> Refresh(const std::optional<std::string>& node_id,
                                                  common::TimePoint uptime_since,
                                                  common::TimePoint now,
                                                  const domain::FeaturedRule& rule) override;
    common::Result<ports::MarketPage> Search(
        const domain::MarketFilter& filter,
        const std::optional<domain::MarketCursor>& after) override;
    common::Result<std::vector<ports::MarketNode>> Featured(std::size_t limit) override;
    common::Result<ports::MarketNode> Get(const std::string& node_id) override;
    common::Result<std::string> OperatorOf(const std::string& node_id) override;
    common::Status SaveProfile(const std::string& node_id, const domain::NodeProfile& profile,
                               common::TimePoint uptime_since, common::TimePoint now) override;
    common::Result<ports::Review> AddReview(const std::string& owner, const std::string& vm_id,
                                            int rating, const std::string& text,
                                            common::TimePoint now) override;
    common::Result<ports::ReviewSummary> Reviews(const std::string& node_id,
                                                 std::size_t limit) override;

  private:
    PgPool& pool_;
    PgMarketplaceRepositoryOptions options_;
};

}  // namespace decloud::orchestrator::adapters::pg
