#pragma once

#include "orchestrator/adapters/pg/pg_pool.hpp"
#include "orchestrator/domain/address_pool.hpp"
#include "orchestrator/domain/port_pool.hpp"
#include "orchestrator/ports/relay_repository.hpp"

namespace decloud::orchestrator::adapters::pg {

struct PgRelayRepositoryOptions {
    domain::TunnelAddressPool tunnel_pool = domain::TunnelAddressPool::Default();
    domain::PortRange public_ports{30000, 39999};
    // Tunnels per relay when its offer sets none (domain::RelayPolicy::max_tunnels_per_relay).
    std::uint32_t max_tunnels_per_relay = 50;
};

// RelayRepository on PostgreSQL (migration 0006). Each method is one transaction; blocking;
// thread-safe. Tunnel blocks are allocated under a transaction-scoped advisory lock (one pool
// for the whole platform) and public ports under a row lock on the relay's offer; the unique
// indexes of the schema back both up, so even replicas configured alike cannot collide.
// Lock order, to stay clear of deadlocks: a CGNAT node's assignments, then a relay's offer row,
// then the tunnel pool lock.
class PgRelayRepository final : public ports::RelayRepository {
  public:
    explicit PgRelayRepository(PgPool& pool, PgRelayRepositoryOptions options = {})
        : pool_(pool), options_(std::move(options)) {}

    // ports::RelayRepository
    common::Result<bool> WithMonitorLock(const std::function<void()>& body) override;
    common::Result<ports::RelayOffer> Offer(const std::string& node_id) override;
    common::Status UpsertOffer(const ports::RelayOffer& offer, common::TimePoint now) override;
    common::Status SetRelayHealth(const std::string& node_id, const ports::RelayHealth& health,
                                  common::TimePoint now) override;
    common::Result<std::vector<domain::RelayCandidate>> Candidates(common::TimePoint uptime_since,
                                                                   common::TimePoint now) override;
    common::Result<domain::RelayAssignment> Assign(const ports::NewAssignment& assignment,
                                                   common::TimePoint now) override;
    common::Result<domain::RelayAssignment> Get(const std::string& assignment_id) override;
    common::Result<std::vector<domain::RelayAssignment>> ForCgnatNode(
        const std::string& cgnat_node_id) override;
    common::Result<std::vector<domain::RelayAssignment>> ForRelayNode(
        const std::string& relay_node_id) override;
    common::Result<std::vector<domain::RelayAssignment>> Live() override;
    common::Result<std::vector<domain::RelayEvent>> Events(
        const std::string& assignment_id) override;
    common::Status RecordEvent(const std::string& assignment_id, const std::string& reason,
                               common::TimePoint now) override;
    common::Result<domain::RelayAssignment> Transition(
        const std::string& assignment_id, const std::vector<domain::RelayState>& expected_from,
        domain::RelayState to, const std::string& reason, common::TimePoint now) override;
    common::Result<domain::RelayAssignment> SetCgnatKey(const std::string& assignment_id,
                                                        const std::string& public_key,
                                                        common::TimePoint now) override;
    common::Result<ports::FailoverOutcome> Failover(const ports::FailoverRequest& request,
                                                    common::TimePoint now) override;
    common::Result<std::vector<domain::RelayAssignment>> Release(const std::string& cgnat_node_id,
                                                                 const std::string& reason,
                                                                 common::TimePoint now) override;
    common::Status MarkAwaiting(const std::string& cgnat_node_id, const std::string& reason,
                                common::TimePoint now) override;
    common::Result<std::vector<ports::AwaitingRelay>> Awaiting() override;
    common::Result<domain::PortMapping> AllocatePortForVm(const std::string& vm_id,
                                                          std::uint16_t vm_port,
                                                          domain::PortProtocol protocol,
                                                          common::TimePoint now) override;
    common::Result<std::vector<domain::PortMapping>> MappingsForVm(
        const std::string& vm_id) override;
    common::Result<std::vector<domain::PortMapping>> MappingsForRelay(
        const std::string& relay_node_id) override;
    common::Result<std::vector<domain::PortMapping>> RemoveMappingsForVm(
        const std::string& vm_id) override;
    common::Result<std::string> AttributeVm(const std::string& vm_id) override;
    common::Result<domain::PortMapping> RemoveMapping(const std::string& vm_id,
                                                      std::uint16_t vm_port,
                                                      domain::PortProtocol protocol) override;
    common::Result<std::vector<domain::PortMapping>> PruneMappings() override;
    common::Status RecordLatency(const std::string& assignment_id, std::uint32_t rtt_us,
                                 common::TimePoint now) override;
    common::Status RecordTraffic(const std::string& assignment_id, std::uint64_t rx_bytes,
                                 std::uint64_t tx_bytes, common::TimePoint now) override;
    common::Result<ports::RelayTrafficTotals> TrafficTotals() override;
    common::Result<ports::KeyRotation> RequestKeyRotation(const std::string& node_id,
                                                          const std::string& reason,
                                                          common::TimePoint now) override;
    common::Result<std::vector<ports::KeyRotation>> KeyRotations() override;
    common::Result<std::vector<std::string>> OffersWithoutKey() override;
    common::Status SaveKeyRotation(const ports::KeyRotation& rotation,
                                   common::TimePoint now) override;
    common::Status FinishKeyRotation(const std::string& node_id) override;

  private:
    PgPool& pool_;
    PgRelayRepositoryOptions options_;
};

}  // namespace decloud::orchestrator::adapters::pg
