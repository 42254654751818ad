#include "agent/app/vm_manager.hpp"

#include <spdlog/spdlog.h>

#include <string_view>
#include <unordered_set>

#include "decloud/common/ids.hpp"

namespace decloud::agent::app {

using common::Error;
using nlohmann::json;

namespace {

bool IsDnsLabel(std::string_view s) {
    if (s.empty() || s.size() > 63 || s.front() == '-' || s.back() == '-') return false;
    for (char c : s)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
    return true;
}

}  // namespace

std::string RenderMetaData(const std::string& vm_id, const std::string& hostname) {
    // Plain "key: value" YAML: the id is a UUID and the host name a DNS label (both checked),
    // so nothing here needs quoting, and the simplest NoCloud readers understand it too.
    return "instance-id: " + vm_id + "\nlocal-hostname: " + hostname + "\n";
}

std::string RenderNetworkConfig() {
    return json{{"version", 2},
                {"ethernets",
                 {{"primary", {{"match", {{"name", "e*"}}}, {"dhcp4", true}, {"dhcp6", true}}}}}}
               .dump() +
           "\n";
}

VmManager::VmManager(ports::Hypervisor& hypervisor, ports::ImageStore& images,
                     VmManagerOptions options, ResultSink sink)
    : hypervisor_(hypervisor),
      images_(images),
      options_(std::move(options)),
      sink_(std::move(sink)),
      worker_([this] { Work(); }) {}

VmManager::~VmManager() { Shutdown(); }

void VmManager::Shutdown() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
        queue_.clear();
        queued_ids_.clear();
    }
    wake_.notify_all();
    if (worker_.joinable() && worker_.get_id() != std::this_thread::get_id()) worker_.join();
}

void VmManager::Submit(std::vector<proto::Command> commands) {
    std::vector<proto::CommandResult> repeats;
    {
        std::lock_guard lock(mutex_);
        for (auto& c : commands) {
            if (auto it = results_.find(c.id); it != results_.end()) {
                repeats.push_back(it->second);  // delivered again: our result was lost on the way
                continue;
            }
            if (!queued_ids_.insert(c.id).second) continue;  // already waiting or running
            queue_.push_back(std::move(c));
        }
    }
    wake_.notify_one();
    for (auto& r : repeats) sink_(std::move(r));
}

std::size_t VmManager::Backlog() const {
    std::lock_guard lock(mutex_);
    return queue_.size() + (busy_ ? 1 : 0);
}

void VmManager::Remember(const std::string& id, const proto::CommandResult& result) {
    std::lock_guard lock(mutex_);
    results_[id] = result;
    results_order_.push_back(id);
    while (results_order_.size() > options_.remembered_results) {
        results_.erase(results_order_.front());
        results_order_.pop_front();
    }
}

void VmManager::Work() {
    for (;;) {
        proto::Command command;
        {
            std::unique_lock lock(mutex_);
            wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
            if (stopping_) return;
            command = std::move(queue_.front());
            queue_.pop_front();
            busy_ = true;
        }
        proto::CommandResult result;
        try {
            result = Execute(command);
        } catch (const std::exception& e) {
            // A command must never take the agent down; report it as failed.
            result.command_id = command.id;
            result.success = false;
            result.message = std::string("agent error: ") + e.what();
        }
        Remember(command.id, result);
        {
            std::lock_guard lock(mutex_);
            queued_ids_.erase(command.id);
            busy_ = false;
        }
        sink_(std::move(result));
    }
}

common::Result<ports::DomainInfo> VmManager::Create(const proto::CreateVmPayload& p) {
    if (!IsDnsLabel(p.hostname))
        return Error::InvalidArgument("hostname '" + p.hostname + "' is not a DNS label");
    // Applying the same create again must find the domain, not refuse it for lack of room.
    auto existing = hypervisor_.Describe(p.vm_id);
    if (existing) {
        ports::VmSpec known;
        known.vm_id = p.vm_id;
        return hypervisor_.Create(known);
    }
    if (existing.error().code != common::ErrorCode::kNotFound) return existing.error();

    auto domains = hypervisor_.List();
    if (!domains) return domains.error();
    std::uint64_t memory = 0;
    std::uint64_t vcpus = 0;
    for (const auto& d : *domains) {
        memory += d.memory_mib;
        vcpus += d.vcpus;
    }
    if (options_.max_memory_mib != 0 && memory + p.memory_mib > options_.max_memory_mib)
        return Error::Unprocessable(
            "this node has " +
            std::to_string(options_.max_memory_mib - std::min(memory, options_.max_memory_mib)) +
            " MiB of memory left for VMs; the VM needs " + std::to_string(p.memory_mib) + " MiB");
    if (options_.max_vcpus != 0 && vcpus + p.cpu_cores > options_.max_vcpus)
        return Error::Unprocessable(
            "this node has " +
            std::to_string(options_.max_vcpus -
                           std::min<std::uint64_t>(vcpus, options_.max_vcpus)) +
            " vCPUs left for VMs; the VM needs " + std::to_string(p.cpu_cores));
    auto image = images_.Find(p.image);
    if (!image) return image.error();

    ports::VmSpec spec;
    spec.vm_id = p.vm_id;
    spec.name = p.name;
    spec.vcpus = p.cpu_cores;
    spec.memory_mib = p.memory_mib;
    spec.disk_gib = p.disk_gib;
    spec.base_image = image->disk;
    spec.kernel_boot = image->kernel_boot;
    spec.seed.meta_data = RenderMetaData(p.vm_id, p.hostname);
    spec.seed.user_data = p.user_data.empty() ? "#cloud-config\n{}\n" : p.user_data;
    spec.seed.network_config = RenderNetworkConfig();
    spec.network = options_.network;
    spec.ingress_ports = p.ingress_ports;
    return hypervisor_.Create(spec);
}

proto::CommandResult VmManager::Execute(const proto::Command& command) {
    proto::CommandResult result;
    result.command_id = command.id;
    const auto fail = [&](const std::string& message) {
        result.success = false;
        result.message = message;
        spdlog::warn("command {} ({}) failed: {}", command.id, command.type, message);
        return result;
    };
    const auto done = [&](const std::string& message) {
        result.success = true;
        result.message = message;
        spdlog::info("command {} ({}): {}", command.id, command.type, message);
        return result;
    };

    if (command.type == proto::kCreateVm) {
        auto payload = proto::DecodeCreateVmPayload(command.payload);
        if (!payload) return fail(payload.error().message);
        auto domain = Create(*payload);
        if (!domain) return fail(domain.error().message);
        NoteStarted(payload->vm_id);
        result.data =
            json{{"addresses", domain->addresses}, {"state", ports::ToString(domain->state)}};
        return done("VM " + payload->vm_id + " created and started");
    }
    auto ref = proto::DecodeVmRefPayload(command.payload);
    if (!ref) return fail(ref.error().message);
    common::Status st;
    std::string what;
    // Marked before the call: a report listing the domain stopped mid-way must not take it for
    // a guest that stopped by itself.
    if (command.type == proto::kStopVm || command.type == proto::kDeleteVm)
        NoteStopping(ref->vm_id, command.type == proto::kDeleteVm);
    if (command.type == proto::kStartVm) {
        st = hypervisor_.Start(ref->vm_id);
        what = "started";
    } else if (command.type == proto::kStopVm) {
        st = hypervisor_.Stop(ref->vm_id, std::chrono::seconds{ref->grace_seconds});
        what = "stopped";
    } else if (command.type == proto::kRebootVm) {
        st = hypervisor_.Reboot(ref->vm_id);
        what = "rebooted";
    } else if (command.type == proto::kDeleteVm) {
        st = hypervisor_.Delete(ref->vm_id);
        what = "deleted";
    } else {
        return fail("this agent does not know the command type '" + command.type + "'");
    }
    if (!st) return fail(st.error().message);
    if (command.type == proto::kStartVm || command.type == proto::kRebootVm) {
        NoteStarted(ref->vm_id);
        if (auto d = hypervisor_.Describe(ref->vm_id))
            result.data = json{{"addresses", d->addresses}, {"state", ports::ToString(d->state)}};
    }
    return done("VM " + ref->vm_id + " " + what);
}

void VmManager::NoteStarted(const std::string& vm_id) {
    std::lock_guard lock(mutex_);
    started_[vm_id] = options_.clock();
    stopped_by_command_.erase(vm_id);
    unsent_stops_.erase(vm_id);  // that boot's log is gone with the restart
}

void VmManager::NoteStopping(const std::string& vm_id, bool deleting) {
    std::lock_guard lock(mutex_);
    started_.erase(vm_id);
    stopped_by_command_.insert(vm_id);
    if (deleting) unsent_stops_.erase(vm_id);
}

common::Result<proto::VmReport> VmManager::Report() {
    auto domains = hypervisor_.List();
    if (!domains) return domains.error();
    // Guests that stopped by themselves since the last report: their logs are read without the
    // lock (a file read), then recorded unless a command moved the VM on in the meantime.
    std::vector<std::pair<std::string, std::optional<std::uint64_t>>> newly_stopped;
    {
        std::lock_guard lock(mutex_);
        const auto now = options_.clock();
        for (const auto& d : *domains) {
            const bool down =
                d.state == ports::DomainState::kStopped || d.state == ports::DomainState::kCrashed;
            const auto it = started_.find(d.vm_id);
            if (!down) {
                // Running, but not started by a command we know of (found after a restart):
                // watched from now on, unless a command stopped it after the listing was taken.
                if (it == started_.end() && !stopped_by_command_.contains(d.vm_id))
                    started_.emplace(d.vm_id, std::nullopt);
                continue;
            }
            if (it == started_.end()) continue;
            std::optional<std::uint64_t> ran_for;
            if (it->second)
                ran_for = static_cast<std::uint64_t>(
                    std::chrono::duration_cast<std::chrono::seconds>(now - *it->second).count());
            newly_stopped.emplace_back(d.vm_id, ran_for);
        }
    }
    for (const auto& [vm_id, ran_for] : newly_stopped) {
        auto log = hypervisor_.BootLog(vm_id, options_.boot_log_bytes);
        if (!log)
            spdlog::warn("VM {} stopped by itself; no boot log: {}", vm_id, log.error().message);
        std::lock_guard lock(mutex_);
        if (started_.erase(vm_id) == 0) continue;  // stopped, deleted or restarted meanwhile
        spdlog::warn("VM {} stopped by itself{}", vm_id,
                     ran_for ? " " + std::to_string(*ran_for) + " s after it was started" : "");
        unsent_stops_[vm_id] =
            proto::GuestStop{common::NewUuid(), log ? std::move(*log) : std::string(), ran_for};
    }

    proto::VmReport report;
    std::lock_guard lock(mutex_);
    std::size_t logs = 0;
    for (const auto& d : *domains) {
        proto::ReportedVm vm{d.vm_id, std::string(ports::ToString(d.state)), d.addresses, {}};
        if (const auto it = unsent_stops_.find(d.vm_id);
            it != unsent_stops_.end() && logs < options_.boot_logs_per_report) {
            vm.stopped_by_itself = it->second;
            ++logs;
        }
        report.domains.push_back(std::move(vm));
    }
    // Forget domains that are gone (deleted by hand, say).
    std::unordered_set<std::string_view> listed;
    for (const auto& d : *domains) listed.insert(d.vm_id);
    const auto absent = [&](const std::string& vm_id) { return !listed.contains(vm_id); };
    const auto gone = [&](const auto& entry) { return absent(entry.first); };
    std::erase_if(unsent_stops_, gone);
    std::erase_if(started_, gone);
    std::erase_if(stopped_by_command_, absent);
    return report;
}

void VmManager::ReportDelivered(const proto::VmReport& report) {
    std::lock_guard lock(mutex_);
    for (const auto& d : report.domains) {
        if (!d.stopped_by_itself) continue;
        // The stop's id says whether it is the one still unsent (not a newer one).
        const auto it = unsent_stops_.find(d.vm_id);
        if (it != unsent_stops_.end() && it->second.id == d.stopped_by_itself->id)
            unsent_stops_.erase(it);
    }
}

}  // namespace decloud::agent::app
