#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "decloud/common/result.hpp"

namespace decloud::agent::ports {

// First-boot configuration of a VM, as a cloud-init NoCloud seed (an ISO labelled "cidata").
struct CloudInitSeed {
    std::string meta_data;       // YAML: instance-id, local-hostname
    std::string user_data;       // "#cloud-config ..." as rendered from the template
    std::string network_config;  // YAML, network-config v2; empty: leave it out of the seed
};

// Boots a kernel directly instead of the disk's boot loader (small appliances, test guests).
struct DirectKernelBoot {
    std::string kernel;  // host path
    std::string initrd;  // host path, may be empty
    std::string cmdline;
};

// Everything the agent needs to create one VM. Strings come from users (name) and must never be
// able to change the structure of the domain XML or reach a shell.
struct VmSpec {
    std::string vm_id;  // orchestrator's UUID; the libvirt domain is named "decloud-<vm_id>"
    std::string name;   // the user's display name, any text; kept in the domain metadata
    std::uint32_t vcpus = 1;
    std::uint64_t memory_mib = 512;
    std::uint64_t disk_gib = 1;  // virtual size of the qcow2 overlay
    std::string base_image;      // host path of the shared base image the overlay sits on
    std::optional<DirectKernelBoot> kernel_boot;
    CloudInitSeed seed;
    std::string network = "default";           // libvirt network the VM's one NIC joins
    std::vector<std::uint16_t> ingress_ports;  // kept in the metadata for the ingress routes
};

enum class DomainState { kRunning, kStopped, kPaused, kCrashed, kOther };
std::string_view ToString(DomainState state);

// A domain that belongs to DeCloud (found by its metadata), as libvirt sees it now.
struct DomainInfo {
    std::string vm_id;
    std::string name;  // the user's display name, from the metadata
    DomainState state = DomainState::kOther;
    std::uint32_t vcpus = 0;       // as defined
    std::uint64_t memory_mib = 0;  // as defined
    std::string mac;
    std::vector<std::string> addresses;        // IPv4/IPv6 from the DHCP lease or the guest agent
    std::vector<std::uint16_t> ingress_ports;  // as created; the first is the default port
};

// The hypervisor as the agent's app layer sees it. Every operation is idempotent, so commands
// delivered at least once can be applied again without harm. Blocking; thread-safe.
class Hypervisor {
  public:
    virtual ~Hypervisor() = default;

    // Creates the overlay disk, the seed ISO and the domain, and starts it. If a domain for
    // spec.vm_id already exists it is left as it is (started if stopped) and described.
    virtual common::Result<DomainInfo> Create(const VmSpec& spec) = 0;
    // kNotFound if there is no such domain. Starting a running domain is a success.
    virtual common::Status Start(const std::string& vm_id) = 0;
    // ACPI shutdown, then a hard power-off if the guest has not stopped within `grace`.
    // Stopping a stopped domain is a success.
    virtual common::Status Stop(const std::string& vm_id, std::chrono::seconds grace) = 0;
    virtual common::Status Reboot(const std::string& vm_id) = 0;
    // Powers off, undefines the domain and removes its overlay and seed. Deleting a VM that is
    // already gone is a success.
    virtual common::Status Delete(const std::string& vm_id) = 0;

    virtual common::Result<DomainInfo> Describe(const std::string& vm_id) = 0;
    // All DeCloud domains on this host (domains without our metadata are not listed).
    virtual common::Result<std::vector<DomainInfo>> List() = 0;
    // What the guest wrote on its serial console since it was last started, as readable text
    // (see domain::ReadableConsoleText), at most the last `max_bytes` of it. kNotFound when the
    // VM has no domain or no console log is kept for it.
    virtual common::Result<std::string> BootLog(const std::string& vm_id,
                                                std::size_t max_bytes) = 0;
};

}  // namespace decloud::agent::ports
