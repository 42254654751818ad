#pragma once

#include "orchestrator/adapters/pg/pg_pool.hpp"
#include "orchestrator/ports/node_repository.hpp"

namespace decloud::orchestrator::adapters::pg {

// NodeRepository on PostgreSQL. Each method is one transaction; blocking; thread-safe.
class PgNodeRepository final : public ports::NodeRepository {
  public:
    explicit PgNodeRepository(PgPool& pool) : pool_(pool) {}

    // ports::NodeRepository
    common::Result<ports::RegisterOutcome> Register(const domain::NodeRegistration& reg,
                                                    common::TimePoint now) override;
    common::Result<domain::Node> Get(const std::string& node_id) override;
    common::Result<std::vector<domain::Node>> List(const ports::NodeListQuery& query) override;
    common::Result<ports::NodeCredential> GetCredential(const std::string& node_id) override;
    common::Result<ports::HeartbeatFlushResult> ApplyHeartbeats(
        std::span<const domain::BufferedHeartbeat> batch, common::Duration heartbeat_interval,
        common::TimePoint now) override;
    common::Result<std::vector<std::string>> MarkStaleOffline(common::TimePoint cutoff,
                                                              common::TimePoint now) override;
    common::Result<std::unordered_map<std::string, ports::NodeHistory>> History(
        std::span<const std::string> node_ids, common::TimePoint since) override;
    common::Status ConsumeOnce(const std::string& token_hash, common::TimePoint expires_at,
                               common::TimePoint now) override;

  private:
    PgPool& pool_;
};

}  // namespace decloud::orchestrator::adapters::pg
