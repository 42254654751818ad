#pragma once

#include "orchestrator/adapters/pg/pg_pool.hpp"
#include "orchestrator/ports/vm_repository.hpp"

namespace decloud::orchestrator::adapters::pg {

struct PgVmRepositoryOptions {
    // Memory a node keeps for itself, never given to VMs.
    std::uint64_t host_reserved_memory_mib = 1024;
};

class PgVmRepository final : public ports::VmRepository {
  public:
    explicit PgVmRepository(PgPool& pool, PgVmRepositoryOptions options = {})
        : pool_(pool), options_(options) {}

    // ports::VmRepository
    common::Result<std::vector<domain::NodeCapacity>> SchedulableNodes(
        common::TimePoint uptime_since, common::TimePoint now) override;
    common::Result<ports::VmRecord> InsertPlaced(const ports::VmRecord& vm,
                                                 const ports::NodeCommand& create,
                                                 std::size_t max_per_owner,
                                                 common::TimePoint now) override;
    common::Result<ports::VmRecord> FindByIdempotencyKey(const std::string& owner,
                                                         const std::string& key) override;
    common::Result<ports::VmRecord> Get(const std::string& owner,
                                        const std::string& vm_id) override;
    common::Result<ports::VmRecord> GetAny(const std::string& vm_id) override;
    common::Result<std::vector<ports::VmRecord>> List(const ports::VmListQuery& query) override;
    common::Result<std::vector<ports::VmEvent>> Events(const std::string& vm_id) override;
    common::Result<ports::VmRecord> Transition(const std::string& vm_id,
                                               const ports::VmTransition& transition,
                                               common::TimePoint now) override;
    common::Result<std::vector<ports::NodeCommand>> TakeCommands(const std::string& node_id,
                                                                 std::size_t limit,
                                                                 common::Duration redeliver_after,
                                                                 common::TimePoint now) override;
    common::Result<std::vector<std::string>> NodesWithCommands(common::Duration redeliver_after,
                                                               common::TimePoint now) override;
    common::Status CompleteCommand(const std::string& node_id, const std::string& command_id,
                                   bool success, const std::string& message,
                                   const std::vector<std::string>& addresses,
                                   common::TimePoint now) override;
    common::Result<ports::ReconcileOutcome> Reconcile(
        const std::string& node_id, const std::vector<ports::ReportedDomain>& domains,
        common::Duration settle_time, common::Duration orphan_grace,
        common::TimePoint now) override;
    common::Result<ports::BootLogRecord> BootLog(const std::string& vm_id) override;
    common::Status SetNodeOffline(const std::vector<std::string>& node_ids, bool offline,
                                  common::TimePoint now) override;

  private:
    PgPool& pool_;
    PgVmRepositoryOptions options_;
};

}  // namespace decloud::orchestrator::adapters::pg
