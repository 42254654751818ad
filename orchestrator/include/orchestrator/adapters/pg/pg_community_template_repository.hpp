#pragma once

#include "orchestrator/adapters/pg/pg_pool.hpp"
#include "orchestrator/ports/community_template_repository.hpp"

namespace decloud::orchestrator::adapters::pg {

// CommunityTemplateRepository on PostgreSQL (tables of migration 0010). Each method is one
// transaction; publishes of one name are serialised by a row lock on the name. Blocking;
// thread-safe.
class PgCommunityTemplateRepository final : public ports::CommunityTemplateRepository {
  public:
    explicit PgCommunityTemplateRepository(PgPool& pool) : pool_(pool) {}

    // ports::CommunityTemplateRepository
    common::Result<ports::CommunityTemplate> Publish(const ports::NewCommunityTemplate& version,
                                                     common::TimePoint now) override;
    common::Result<ports::CommunityTemplate> Get(const std::string& name,
                                                 std::int64_t version) override;
    common::Result<std::vector<ports::CommunityTemplate>> List(
        const std::optional<std::pair<std::string, std::int64_t>>& after,
        std::size_t limit) override;
    common::Result<ports::CommunityTemplate> Deprecate(const std::string& author,
                                                       const std::string& name,
                                                       std::int64_t version,
                                                       common::TimePoint now) override;

  private:
    PgPool& pool_;
};

}  // namespace decloud::orchestrator::adapters::pg
