#pragma once

#include <map>
#include <mutex>

#include "orchestrator/ports/node_repository.hpp"

namespace decloud::fakes {

// NodeRepository in memory, for unit tests of the application layer. Follows the port's
// documented semantics; `fail_next` makes the next call return kUnavailable.
class InMemoryNodeRepository final : public orchestrator::ports::NodeRepository {
  public:
    // ports::NodeRepository
    common::Result<orchestrator::ports::RegisterOutcome> Register(
        const orchestrator::domain::NodeRegistration& reg, common::TimePoint now) override;
    common::Result<orchestrator::domain::Node> Get(const std::string& node_id) override;
    common::Result<std::vector<orchestrator::domain::Node>> List(
        const orchestrator::ports::NodeListQuery& query) override;
    common::Result<orchestrator::ports::NodeCredential> GetCredential(
        const std::string& node_id) override;
    common::Result<orchestrator::ports::HeartbeatFlushResult> ApplyHeartbeats(
        std::span<const orchestrator::domain::BufferedHeartbeat> batch,
        common::Duration heartbeat_interval, common::TimePoint now) override;
    common::Result<std::vector<std::string>> MarkStaleOffline(common::TimePoint cutoff,
                                                              common::TimePoint now) override;
    common::Result<std::unordered_map<std::string, orchestrator::ports::NodeHistory>> History(
        std::span<const std::string> node_ids, common::TimePoint since) override;
    common::Status ConsumeOnce(const std::string& token_hash, common::TimePoint expires_at,
                               common::TimePoint now) override;

    void FailNext() { fail_next_ = true; }
    void Remove(const std::string& node_id);
    std::size_t Count() const;
    std::size_t ConsumedTokens() const;

  private:
    struct Stored {
        orchestrator::domain::Node node;
        std::string credential_hash;
        std::vector<orchestrator::domain::AvailabilityInterval> availability;
        std::map<std::string, orchestrator::domain::DailyHeartbeatStats> daily;
    };
    bool TakeFailure();

    mutable std::mutex mutex_;
    std::map<std::string, Stored> nodes_;  // by id
    std::map<std::string, common::TimePoint> tokens_;
    bool fail_next_ = false;
};

}  // namespace decloud::fakes
