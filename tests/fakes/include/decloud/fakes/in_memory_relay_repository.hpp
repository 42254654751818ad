#pragma once

#include <map>
#include <mutex>

#include "decloud/fakes/in_memory_node_repository.hpp"
#include "orchestrator/domain/address_pool.hpp"
#include "orchestrator/domain/port_pool.hpp"
#include "orchestrator/ports/relay_repository.hpp"

namespace decloud::fakes {

// RelayRepository in memory, for unit tests of the application layer. Follows the port's
// documented semantics (PgRelayRepository is the reference); nodes come from `nodes` (a node is
// online when its status is; uptime is 1 while online, else 0). VMs exist only through AddVm.
// `FailNext` makes the next call return kUnavailable.
class InMemoryRelayRepository final : public orchestrator::ports::RelayRepository {
  public:
    explicit InMemoryRelayRepository(InMemoryNodeRepository& nodes,
                                     orchestrator::domain::TunnelAddressPool pool =
                                         orchestrator::domain::TunnelAddressPool::Default(),
                                     orchestrator::domain::PortRange ports = {30000, 39999},
                                     std::uint32_t max_tunnels = 50)
        : nodes_(nodes), pool_(pool), ports_(ports), max_tunnels_(max_tunnels) {}

    // ports::RelayRepository
    // Free unless a test says another replica holds it.
    common::Result<bool> WithMonitorLock(const std::function<void()>& body) override {
        if (monitor_held_elsewhere) return false;
        body();
        return true;
    }
    bool monitor_held_elsewhere = false;
    common::Result<orchestrator::ports::RelayOffer> Offer(const std::string& node_id) override;
    common::Status UpsertOffer(const orchestrator::ports::RelayOffer& offer,
                               common::TimePoint now) override;
    common::Status SetRelayHealth(const std::string& node_id,
                                  const orchestrator::ports::RelayHealth& health,
                                  common::TimePoint now) override;
    common::Result<std::vector<orchestrator::domain::RelayCandidate>> Candidates(
        common::TimePoint uptime_since, common::TimePoint now) override;
    common::Result<orchestrator::domain::RelayAssignment> Assign(
        const orchestrator::ports::NewAssignment& assignment, common::TimePoint now) override;
    common::Result<orchestrator::domain::RelayAssignment> Get(
        const std::string& assignment_id) override;
    common::Result<std::vector<orchestrator::domain::RelayAssignment>> ForCgnatNode(
        const std::string& cgnat_node_id) override;
    common::Result<std::vector<orchestrator::domain::RelayAssignment>> ForRelayNode(
        const std::string& relay_node_id) override;
    common::Result<std::vector<orchestrator::domain::RelayAssignment>> Live() override;
    common::Result<std::vector<orchestrator::domain::RelayEvent>> Events(
        const std::string& assignment_id) override;
    common::Status RecordEvent(const std::string& assignment_id, const std::string& reason,
                               common::TimePoint now) override;
    common::Result<orchestrator::domain::RelayAssignment> Transition(
        const std::string& assignment_id,
        const std::vector<orchestrator::domain::RelayState>& expected_from,
        orchestrator::domain::RelayState to, const std::string& reason,
        common::TimePoint now) override;
    common::Result<orchestrator::domain::RelayAssignment> SetCgnatKey(
        const std::string& assignment_id, const std::string& public_key,
        common::TimePoint now) override;
    common::Result<orchestrator::ports::FailoverOutcome> Failover(
        const orchestrator::ports::FailoverRequest& request, common::TimePoint now) override;
    common::Result<std::vector<orchestrator::domain::RelayAssignment>> Release(
        const std::string& cgnat_node_id, const std::string& reason,
        common::TimePoint now) override;
    common::Status MarkAwaiting(const std::string& cgnat_node_id, const std::string& reason,
                                common::TimePoint now) override;
    common::Result<std::vector<orchestrator::ports::AwaitingRelay>> Awaiting() override;
    common::Result<orchestrator::domain::PortMapping> AllocatePortForVm(
        const std::string& vm_id, std::uint16_t vm_port,
        orchestrator::domain::PortProtocol protocol, common::TimePoint now) override;
    common::Result<std::vector<orchestrator::domain::PortMapping>> MappingsForVm(
        const std::string& vm_id) override;
    common::Result<std::vector<orchestrator::domain::PortMapping>> MappingsForRelay(
        const std::string& relay_node_id) override;
    common::Result<std::vector<orchestrator::domain::PortMapping>> RemoveMappingsForVm(
        const std::string& vm_id) override;
    common::Result<std::string> AttributeVm(const std::string& vm_id) override;
    common::Result<orchestrator::domain::PortMapping> RemoveMapping(
        const std::string& vm_id, std::uint16_t vm_port,
        orchestrator::domain::PortProtocol protocol) override;
    common::Result<std::vector<orchestrator::domain::PortMapping>> PruneMappings() override;
    common::Status RecordLatency(const std::string& assignment_id, std::uint32_t rtt_us,
                                 common::TimePoint now) override;
    common::Status RecordTraffic(const std::string& assignment_id, std::uint64_t rx_bytes,
                                 std::uint64_t tx_bytes, common::TimePoint now) override;
    common::Result<orchestrator::ports::RelayTrafficTotals> TrafficTotals() override;
    common::Result<orchestrator::ports::KeyRotation> RequestKeyRotation(
        const std::string& node_id, const std::string& reason, common::TimePoint now) override;
    common::Result<std::vector<orchestrator::ports::KeyRotation>> KeyRotations() override;
    common::Result<std::vector<std::string>> OffersWithoutKey() override;
    common::Status SaveKeyRotation(const orchestrator::ports::KeyRotation& rotation,
                                   common::TimePoint now) override;
    common::Status FinishKeyRotation(const std::string& node_id) override;

    // Test set-up: a VM on `node_id` (its relay is set from the node's live primary).
    void AddVm(const std::string& vm_id, const std::string& node_id);
    // Test set-up: the VM was deleted (gone) or moved to `node_id`.
    void DeleteVm(const std::string& vm_id);
    void MoveVm(const std::string& vm_id, const std::string& node_id);
    // The VM's relay for revenue ("" for none); kNotFound for an unknown VM.
    common::Result<std::string> VmRelay(const std::string& vm_id) const;
    void FailNext() { fail_next_ = true; }

  private:
    struct StoredOffer {
        orchestrator::ports::RelayOffer offer;
        orchestrator::ports::RelayHealth health;
        std::uint32_t port_cursor = 0;
    };
    struct Vm {
        std::string node_id;
        std::string relay_node_id;
        bool gone = false;  // deleted or failed
    };
    struct Traffic {
        std::uint64_t rx = 0, tx = 0, relayed = 0;
    };
    std::map<std::string, Traffic> traffic_;  // by assignment id
    std::uint64_t failovers_ = 0;
    std::map<std::string, orchestrator::ports::KeyRotation> rotations_;  // by node id
    bool TakeFailure();
    std::string RelayAddress(const std::string& relay_node_id) const;  // "" if unknown
    const orchestrator::domain::RelayAssignment* LivePrimary(const std::string& node_id) const;
    common::Result<orchestrator::domain::RelayAssignment> InsertAssignment(
        const orchestrator::ports::NewAssignment& assignment, common::TimePoint now);
    // The assignment `assignment_id`, or kNotFound; the caller holds mutex_.
    common::Result<std::map<std::string, orchestrator::domain::RelayAssignment>::iterator>
    FindLocked(const std::string& assignment_id);
    common::Result<orchestrator::domain::RelayAssignment> ApplyLocked(
        const std::string& assignment_id, orchestrator::domain::RelayState to,
        const std::string& reason, common::TimePoint now);
    void SetVmRelays(const std::string& node_id, const std::string& relay_node_id);

    InMemoryNodeRepository& nodes_;
    orchestrator::domain::TunnelAddressPool pool_;
    orchestrator::domain::PortRange ports_;
    std::uint32_t max_tunnels_;

    mutable std::mutex mutex_;
    std::map<std::string, StoredOffer> offers_;                                 // by node id
    std::map<std::string, orchestrator::domain::RelayAssignment> assignments_;  // by id
    std::map<std::string, std::vector<orchestrator::domain::RelayEvent>> events_;
    std::map<std::string, orchestrator::domain::PortMapping> mappings_;  // by id
    std::map<std::string, orchestrator::ports::AwaitingRelay> waits_;    // by node id
    std::map<std::string, Vm> vms_;                                      // by id
    bool fail_next_ = false;
};

}  // namespace decloud::fakes
