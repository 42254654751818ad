#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "agent/ports/hypervisor.hpp"
#include "agent/ports/image_store.hpp"
#include "decloud/proto/node_messages.hpp"
#include "decloud/proto/vm_messages.hpp"

namespace decloud::agent::app {

struct VmManagerOptions {
    std::uint64_t max_memory_mib = 0;  // memory VMs may use together on this host
    std::uint32_t max_vcpus = 0;       // vCPUs VMs may have together (overcommit included)
    std::string network = "default";   // libvirt network VMs join
    std::size_t remembered_results = 1024;
    // The tail of a stopped guest's console log sent to the orchestrator, and for how many such
    // guests at most in one report (the rest go in the next ones).
    std::size_t boot_log_bytes = proto::kMaxBootLogBytes;
    std::size_t boot_logs_per_report = 8;
    std::function<std::chrono::steady_clock::time_point()> clock = [] {
        return std::chrono::steady_clock::now();
    };
};

// Applies the orchestrator's VM commands to the hypervisor, one at a time, in the order they
// arrive, on a worker thread of its own (hypervisor calls block). Commands are delivered at
// least once: a command id seen before gets its earlier result again instead of running twice,
// and every operation is idempotent on the hypervisor anyway. Each result goes to `sink`.
// A guest that stops although no command stopped it (it powered off or crashed, typically a boot
// that failed) is noticed by the next Report, which carries its console log until the
// orchestrator has accepted one report with it (ReportDelivered).
class VmManager {
  public:
    using ResultSink = std::function<void(proto::CommandResult)>;

    VmManager(ports::Hypervisor& hypervisor, ports::ImageStore& images, VmManagerOptions options,
              ResultSink sink);
    ~VmManager();
    VmManager(const VmManager&) = delete;
    VmManager& operator=(const VmManager&) = delete;

    // Thread-safe, never blocks on the hypervisor.
    void Submit(std::vector<proto::Command> commands);
    // Blocking: every DeCloud domain on this host, for the orchestrator's reconciliation.
    common::Result<proto::VmReport> Report();
    // The orchestrator accepted `report`: the guest stops it carried are not sent again.
    void ReportDelivered(const proto::VmReport& report);
    // Blocking: runs one command now (the worker's step; public for tests).
    proto::CommandResult Execute(const proto::Command& command);
    // Commands queued or running.
    std::size_t Backlog() const;
    // Stops the worker after the command in progress; queued ones are dropped (they will be
    // delivered again).
    void Shutdown();

  private:
    void Work();
    common::Result<ports::DomainInfo> Create(const proto::CreateVmPayload& p);
    void Remember(const std::string& id, const proto::CommandResult& result);
    // Bookkeeping of which guests run because a command started them (under mutex_).
    void NoteStarted(const std::string& vm_id);
    void NoteStopping(const std::string& vm_id, bool deleting);

    ports::Hypervisor& hypervisor_;
    ports::ImageStore& images_;
    VmManagerOptions options_;
    ResultSink sink_;

    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<proto::Command> queue_;
    std::unordered_set<std::string> queued_ids_;
    std::unordered_map<std::string, proto::CommandResult> results_;  // recent, by command id
    std::deque<std::string> results_order_;
    // Guests that should be running: since when, if this agent started them (nullopt: found
    // running). A stopped domain listed here stopped by itself.
    std::unordered_map<std::string, std::optional<std::chrono::steady_clock::time_point>> started_;
    std::unordered_map<std::string, proto::GuestStop> unsent_stops_;
    // Stopped or deleted by a command and not started since: a report whose listing was taken
    // just before such a stop must not start watching the guest again.
    std::unordered_set<std::string> stopped_by_command_;
    bool busy_ = false;
    bool stopping_ = false;
    std::thread worker_;
};

// The NoCloud meta-data and network-config the agent writes next to the user-data.
std::string RenderMetaData(const std::string& vm_id, const std::string& hostname);
std::string RenderNetworkConfig();

}  // namespace decloud::agent::app
