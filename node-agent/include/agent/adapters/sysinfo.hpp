#pragma once

#include <cstdint>
#include <mutex>
#include <string>

#include "decloud/common/result.hpp"
#include "decloud/proto/node_messages.hpp"

namespace decloud::agent::adapters {

// Where the host's facts are read from; tests point these at a fake tree.
struct SysinfoPaths {
    std::string proc = "/proc";
    std::string sys = "/sys";
    std::string dev_kvm = "/dev/kvm";
    std::string pci_ids = "/usr/share/misc/pci.ids";
};

// CPU (model, physical cores, threads, vmx/svm), memory, the filesystem of `storage_path` (or of
// its nearest existing parent), GPUs and accelerators from PCI sysfs, and whether KVM works.
common::Result<proto::NodeResources> DiscoverResources(const SysinfoPaths& paths,
                                                       const std::string& storage_path);

// True if /dev/kvm opens, reports API version 12 and can create a VM. A /dev/kvm that exists
// but cannot create a VM (nested virtualisation off, as in many cloud VMs) is not usable.
bool KvmUsable(const std::string& dev_kvm);

// Current usage for heartbeats. CPU percent is measured between consecutive calls (0 on the
// first). Thread-safe.
class UsageSampler {
  public:
    UsageSampler(SysinfoPaths paths, std::string storage_path);
    proto::NodeUsage Sample(std::uint32_t running_vms);

  private:
    SysinfoPaths paths_;
    std::string storage_path_;
    std::mutex mutex_;
    std::uint64_t last_busy_ = 0;
    std::uint64_t last_total_ = 0;
};

}  // namespace decloud::agent::adapters
