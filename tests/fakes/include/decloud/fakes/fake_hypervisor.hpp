#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "agent/ports/hypervisor.hpp"
#include "agent/ports/image_store.hpp"

namespace decloud::fakes {

// A hypervisor in memory for unit tests of the agent's app layer: domains are map entries with
// the same idempotency rules as the port promises. Calls are recorded; a failure can be
// injected for the next call of a kind.
class FakeHypervisor final : public agent::ports::Hypervisor {
  public:
    // agent::ports::Hypervisor
    common::Result<agent::ports::DomainInfo> Create(const agent::ports::VmSpec& spec) override;
    common::Status Start(const std::string& vm_id) override;
    common::Status Stop(const std::string& vm_id, std::chrono::seconds grace) override;
    common::Status Reboot(const std::string& vm_id) override;
    common::Status Delete(const std::string& vm_id) override;
    common::Result<agent::ports::DomainInfo> Describe(const std::string& vm_id) override;
    common::Result<std::vector<agent::ports::DomainInfo>> List() override;
    common::Result<std::string> BootLog(const std::string& vm_id, std::size_t max_bytes) override;

    // The guest of `vm_id` stops by itself (powered off or crashed), having written `console`.
    void GuestStops(const std::string& vm_id, std::string console);
    // Runs once, after the next List has taken its snapshot and before it returns (outside the
    // lock): to interleave a command with a report.
    std::function<void()> after_next_list;

    // The next call named `operation` ("create", "start", ...) fails with `error`.
    void FailNext(const std::string& operation, common::Error error);
    std::vector<std::string> Calls() const;
    std::map<std::string, agent::ports::VmSpec> Specs() const;
    std::size_t DomainCount() const;

  private:
    common::Status Injected(const std::string& operation);

    mutable std::mutex mutex_;
    std::map<std::string, agent::ports::DomainInfo> domains_;
    std::map<std::string, agent::ports::VmSpec> specs_;
    std::map<std::string, std::string> consoles_;
    std::map<std::string, common::Error> failures_;
    std::vector<std::string> calls_;
};

// Images by name, each "present" with a disk path under /images.
class FakeImageStore final : public agent::ports::ImageStore {
  public:
    explicit FakeImageStore(std::vector<std::string> names) : names_(std::move(names)) {}
    common::Result<agent::ports::Image> Find(const std::string& name) override;

  private:
    std::vector<std::string> names_;
};

}  // namespace decloud::fakes
