#pragma once

#include <libvirt/libvirt.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "agent/adapters/libvirt/domain_xml.hpp"
#include "agent/adapters/libvirt/vm_storage.hpp"
#include "agent/ports/hypervisor.hpp"

namespace decloud::agent::adapters {

struct LibvirtOptions {
    std::string uri = "qemu:///system";
    // <storage_dir>/<vm_id>/ holds disk.qcow2, seed.iso and console.log
    std::filesystem::path storage_dir;
    std::string domain_type = "qemu";  // "kvm" when the agent's KVM probe succeeded
    std::string arch = "x86_64";
    std::string machine = "q35";
    std::string qemu_img = "qemu-img";
    std::string genisoimage = "genisoimage";
    std::chrono::seconds program_timeout{120};
    // How often Stop looks whether the guest has powered off during its grace period.
    std::chrono::milliseconds poll_interval{250};
};

struct ConnectionCloser {
    void operator()(virConnectPtr conn) const noexcept;
};
struct DomainFreer {
    void operator()(virDomainPtr domain) const noexcept;
};
using ConnectionHandle = std::unique_ptr<virConnect, ConnectionCloser>;
using DomainHandle = std::unique_ptr<virDomain, DomainFreer>;

// ports::Hypervisor on libvirt's C API. Connects lazily and again whenever libvirtd went away
// (a failed call on a dead connection is retried once on a fresh one). Domains are persistent,
// named "decloud-<vm_id>" with the vm id as UUID, and carry our metadata
// (libvirt::kMetadataUri).
// Thread-safe: libvirt calls are serialised on one connection; Create and Delete are serialised
// with each other; Stop's grace period does not hold the connection.
class LibvirtHypervisor final : public ports::Hypervisor {
  public:
    // Throws std::invalid_argument for unusable options (no storage dir, bad domain type).
    explicit LibvirtHypervisor(LibvirtOptions options);
    ~LibvirtHypervisor() override;
    LibvirtHypervisor(const LibvirtHypervisor&) = delete;
    LibvirtHypervisor& operator=(const LibvirtHypervisor&) = delete;

    // ports::Hypervisor
    common::Result<ports::DomainInfo> Create(const ports::VmSpec& spec) override;
    common::Status Start(const std::string& vm_id) override;
    common::Status Stop(const std::string& vm_id, std::chrono::seconds grace) override;
    common::Status Reboot(const std::string& vm_id) override;
    common::Status Delete(const std::string& vm_id) override;
    common::Result<ports::DomainInfo> Describe(const std::string& vm_id) override;
    common::Result<std::vector<ports::DomainInfo>> List() override;
    common::Result<std::string> BootLog(const std::string& vm_id, std::size_t max_bytes) override;

  private:
    // Runs op(connection) with the connection mutex held; reconnects first if the connection is
    // missing or dead, and once more if op failed because the connection died under it.
    template <class Op>
    auto WithConnection(Op&& op) -> decltype(op(std::declval<virConnectPtr>()));
    common::Status EnsureConnectedLocked();

    LibvirtOptions options_;
    libvirt::VmStorage storage_;
    std::mutex mutex_;  // guards conn_ and every call made on it
    ConnectionHandle conn_;
    std::mutex lifecycle_mutex_;  // serialises Create and Delete (they touch files too)
};

}  // namespace decloud::agent::adapters
