#include "decloud/fakes/fake_hypervisor.hpp"

#include <algorithm>
#include <utility>

namespace decloud::fakes {

using agent::ports::DomainInfo;
using agent::ports::DomainState;
using common::Error;

common::Status FakeHypervisor::Injected(const std::string& operation) {
    calls_.push_back(operation);
    auto it = failures_.find(operation);
    if (it == failures_.end()) return common::Ok();
    auto error = it->second;
    failures_.erase(it);
    return error;
}

common::Result<DomainInfo> FakeHypervisor::Create(const agent::ports::VmSpec& spec) {
    std::lock_guard lock(mutex_);
    if (auto st = Injected("create"); !st) return st.error();
    auto it = domains_.find(spec.vm_id);
    if (it != domains_.end()) {
        it->second.state = DomainState::kRunning;
        return it->second;
    }
    DomainInfo d;
    d.vm_id = spec.vm_id;
    d.name = spec.name;
    d.ingress_ports = spec.ingress_ports;
    d.state = DomainState::kRunning;
    d.vcpus = spec.vcpus;
    d.memory_mib = spec.memory_mib;
    d.addresses = {"192.168.122." + std::to_string(10 + domains_.size())};
    domains_[spec.vm_id] = d;
    specs_[spec.vm_id] = spec;
    return d;
}

common::Status FakeHypervisor::Start(const std::string& vm_id) {
    std::lock_guard lock(mutex_);
    if (auto st = Injected("start"); !st) return st;
    auto it = domains_.find(vm_id);
    if (it == domains_.end()) return Error::NotFound("no domain for VM " + vm_id);
    it->second.state = DomainState::kRunning;
    consoles_.erase(vm_id);
    return common::Ok();
}

common::Status FakeHypervisor::Stop(const std::string& vm_id, std::chrono::seconds) {
    std::lock_guard lock(mutex_);
    if (auto st = Injected("stop"); !st) return st;
    auto it = domains_.find(vm_id);
    if (it == domains_.end()) return Error::NotFound("no domain for VM " + vm_id);
    it->second.state = DomainState::kStopped;
    return common::Ok();
}

common::Status FakeHypervisor::Reboot(const std::string& vm_id) {
    std::lock_guard lock(mutex_);
    if (auto st = Injected("reboot"); !st) return st;
    if (!domains_.contains(vm_id)) return Error::NotFound("no domain for VM " + vm_id);
    return common::Ok();
}

common::Status FakeHypervisor::Delete(const std::string& vm_id) {
    std::lock_guard lock(mutex_);
    if (auto st = Injected("delete"); !st) return st;
    domains_.erase(vm_id);
    specs_.erase(vm_id);
    consoles_.erase(vm_id);
    return common::Ok();
}

common::Result<DomainInfo> FakeHypervisor::Describe(const std::string& vm_id) {
    std::lock_guard lock(mutex_);
    auto it = domains_.find(vm_id);
    if (it == domains_.end()) return Error::NotFound("no domain for VM " + vm_id);
    return it->second;
}

common::Result<std::vector<DomainInfo>> FakeHypervisor::List() {
    std::vector<DomainInfo> out;
    std::function<void()> hook;
    {
        std::lock_guard lock(mutex_);
        if (auto st = Injected("list"); !st) return st.error();
        for (const auto& [id, d] : domains_) out.push_back(d);
        hook = std::exchange(after_next_list, nullptr);
    }
    if (hook) hook();
    return out;
}

common::Result<std::string> FakeHypervisor::BootLog(const std::string& vm_id,
                                                    std::size_t max_bytes) {
    std::lock_guard lock(mutex_);
    if (auto st = Injected("boot_log"); !st) return st.error();
    if (!domains_.contains(vm_id)) return Error::NotFound("no domain for VM " + vm_id);
    const auto& console = consoles_[vm_id];
    return console.size() <= max_bytes ? console : console.substr(console.size() - max_bytes);
}

void FakeHypervisor::GuestStops(const std::string& vm_id, std::string console) {
    std::lock_guard lock(mutex_);
    domains_.at(vm_id).state = DomainState::kStopped;
    consoles_[vm_id] = std::move(console);
}

void FakeHypervisor::FailNext(const std::string& operation, common::Error error) {
    std::lock_guard lock(mutex_);
    failures_[operation] = std::move(error);
}

std::vector<std::string> FakeHypervisor::Calls() const {
    std::lock_guard lock(mutex_);
    return calls_;
}

std::map<std::string, agent::ports::VmSpec> FakeHypervisor::Specs() const {
    std::lock_guard lock(mutex_);
    return specs_;
}

std::size_t FakeHypervisor::DomainCount() const {
    std::lock_guard lock(mutex_);
    return domains_.size();
}

common::Result<agent::ports::Image> FakeImageStore::Find(const std::string& name) {
    if (std::find(names_.begin(), names_.end(), name) == names_.end())
        return Error::NotFound("this node has no image '" + name + "'");
    return agent::ports::Image{name, "/images/" + name + "/disk.qcow2", std::nullopt};
}

}  // namespace decloud::fakes
