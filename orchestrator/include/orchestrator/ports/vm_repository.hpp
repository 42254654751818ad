#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "decloud/common/clock.hpp"
#include "decloud/common/result.hpp"
#include "orchestrator/domain/scheduling.hpp"
#include "orchestrator/domain/vm.hpp"

namespace decloud::orchestrator::ports {

struct VmRecord {
    std::string id;
    std::string owner_wallet;
    std::string name;
    std::string node_id;  // empty until placed
    domain::VmState state = domain::VmState::kPending;
    std::string state_reason;
    domain::VmRequirements requirements;  // cores, memory, disk, tier, gpu, region, tags, target
    std::string image;
    std::string template_id;                                    // empty: none
    nlohmann::json template_params = nlohmann::json::object();  // without secret ones
    std::vector<std::string> ssh_key_ids;
    std::optional<std::string> encrypted_password;  // ECIES ciphertext, hex; never decrypted here
    std::string user_data;
    std::uint64_t points = 0;
    std::uint32_t gpu_count = 0;
    std::uint64_t hourly_rate_micro_usdc = 0;
    std::string idempotency_key;
    std::vector<std::string> addresses;
    bool node_offline = false;
    bool boot_log_kept = false;  // its guest stopped by itself once: see BootLog
    common::TimePoint created_at{};
    common::TimePoint updated_at{};
};

struct VmEvent {
    common::TimePoint at{};
    std::optional<domain::VmState> from;
    domain::VmState to = domain::VmState::kPending;
    std::string reason;
};

struct NodeCommand {
    std::string id;
    std::string node_id;
    std::string vm_id;
    std::string type;  // create_vm, start_vm, stop_vm, reboot_vm, delete_vm
    nlohmann::json payload = nlohmann::json::object();
    common::TimePoint created_at{};
    int attempts = 0;
};

// A state change with the command that carries it to the VM's node (none for e.g. failed).
struct VmTransition {
    std::vector<domain::VmState> expected_from;  // refused with kConflict if the VM is elsewhere
    domain::VmState to = domain::VmState::kPending;
    std::string reason;
    std::optional<NodeCommand> command;
};

struct VmListQuery {
    std::string owner_wallet;
    std::size_t limit = 100;
    std::string after_id;
    bool include_deleted = false;
};

// What the agent says about one of its domains.
// The node saw the guest stop without being asked to (see proto::GuestStop).
struct ReportedGuestStop {
    std::string id;  // the agent's UUID of this stop
    std::string boot_log;
    std::optional<std::uint64_t> ran_for_s;
};

struct ReportedDomain {
    std::string vm_id;
    std::string state;  // "running", "stopped", ... (agent's DomainState)
    std::vector<std::string> addresses;
    std::optional<ReportedGuestStop> stopped_by_itself;
};

// What the guest wrote on its console before it last stopped by itself.
struct BootLogRecord {
    std::string vm_id;
    common::TimePoint captured_at;
    std::optional<std::uint64_t> ran_for_s;
    std::string text;
};

struct ReconcileOutcome {
    std::vector<std::string> lost;         // VMs we expected on the node that it no longer has
    std::vector<std::string> unknown;      // domains on the node no VM of ours owns there
    std::vector<std::string> state_fixed;  // VMs whose state followed the node's report
    std::vector<std::string> destroying;   // unknown domains past the grace: delete_vm queued
};

// VMs, their history and the node command queue. Blocking, thread-safe; times come from the
// caller's clock. Every user-facing read is scoped by owner, so another user's VM is not found.
class VmRepository {
  public:
    virtual ~VmRepository() = default;

    // Online nodes with their capacity and what is reserved on them now, for the scheduler.
    virtual common::Result<std::vector<domain::NodeCapacity>> SchedulableNodes(
        common::TimePoint uptime_since, common::TimePoint now) = 0;

    // Inserts the VM placed on vm.node_id in state provisioning, with its events and the
    // create command, after re-checking under a lock on the node row that it still fits
    // (kConflict "node is full" otherwise, so concurrent creates never oversubscribe).
    // If the owner already has a VM with the same idempotency key, returns that VM instead.
    // kUnprocessable when the owner already has `max_per_owner` VMs that are not deleted.
    virtual common::Result<VmRecord> InsertPlaced(const VmRecord& vm, const NodeCommand& create,
                                                  std::size_t max_per_owner,
                                                  common::TimePoint now) = 0;
    virtual common::Result<VmRecord> FindByIdempotencyKey(const std::string& owner,
                                                          const std::string& key) = 0;

    virtual common::Result<VmRecord> Get(const std::string& owner, const std::string& vm_id) = 0;
    virtual common::Result<VmRecord> GetAny(const std::string& vm_id) = 0;
    virtual common::Result<std::vector<VmRecord>> List(const VmListQuery& query) = 0;
    virtual common::Result<std::vector<VmEvent>> Events(const std::string& vm_id) = 0;

    // Applies a transition atomically (row lock on the VM), with its event and command. Open
    // commands for the same VM are superseded by the new one.
    virtual common::Result<VmRecord> Transition(const std::string& vm_id,
                                                const VmTransition& transition,
                                                common::TimePoint now) = 0;

    // Pending commands of a node (and delivered ones not acknowledged for `redeliver_after`),
    // oldest first, marked delivered.
    virtual common::Result<std::vector<NodeCommand>> TakeCommands(const std::string& node_id,
                                                                  std::size_t limit,
                                                                  common::Duration redeliver_after,
                                                                  common::TimePoint now) = 0;
    // Nodes with commands to deliver now (for the heartbeat path's cache).
    virtual common::Result<std::vector<std::string>> NodesWithCommands(
        common::Duration redeliver_after, common::TimePoint now) = 0;

    // Records the agent's result of a command and moves its VM accordingly: create/start ->
    // running, stop -> stopped, delete -> deleted, failure -> failed with the agent's message.
    // A result for a superseded or already completed command changes nothing (at least once).
    // kNotFound unless the command belongs to `node_id`.
    virtual common::Status CompleteCommand(const std::string& node_id,
                                           const std::string& command_id, bool success,
                                           const std::string& message,
                                           const std::vector<std::string>& addresses,
                                           common::TimePoint now) = 0;

    // Compares the node's report with the VMs placed there (see ReconcileOutcome). VMs changed
    // within `settle_time` are not judged (a command may be in flight); a domain nobody owns
    // gets a delete_vm command once it has been reported for `orphan_grace`. A guest reported
    // stopped by itself has its boot log kept (replacing an earlier one) and, if running, is
    // stopped at once with domain::GuestStopReason.
    virtual common::Result<ReconcileOutcome> Reconcile(const std::string& node_id,
                                                       const std::vector<ReportedDomain>& domains,
                                                       common::Duration settle_time,
                                                       common::Duration orphan_grace,
                                                       common::TimePoint now) = 0;

    // The last boot log kept for a VM (not scoped by owner: the service checks); kNotFound if
    // none was ever kept.
    virtual common::Result<BootLogRecord> BootLog(const std::string& vm_id) = 0;

    // Marks the VMs of nodes that went offline (or came back) so.
    virtual common::Status SetNodeOffline(const std::vector<std::string>& node_ids, bool offline,
                                          common::TimePoint now) = 0;
};

}  // namespace decloud::orchestrator::ports
