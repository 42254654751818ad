#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "agent/ports/hypervisor.hpp"
#include "decloud/common/result.hpp"

namespace decloud::agent::adapters::libvirt {

// The namespace of our <metadata> element; the agent finds its domains again by it.
inline constexpr std::string_view kMetadataUri = "https://decloud.dev/xmlns/vm/1";
inline constexpr std::string_view kMetadataPrefix = "decloud";
inline constexpr std::string_view kDomainNamePrefix = "decloud-";
// Longest display name accepted, in bytes of UTF-8.
inline constexpr std::size_t kMaxNameBytes = 1024;

// The vm id in canonical lowercase form; kInvalidArgument unless it is a UUID (8-4-4-4-12 hex).
common::Result<std::string> CanonicalVmId(std::string_view vm_id);
// "decloud-<vm_id>" for a canonical vm id.
std::string DomainName(std::string_view canonical_vm_id);
// The display name as it is stored: characters that XML 1.0 cannot carry are removed.
std::string StoredName(std::string_view name);
// A locally administered-looking MAC in QEMU's 52:54:00 range, derived from the vm id, so that a
// re-created domain keeps its address.
std::string MacForVm(std::string_view canonical_vm_id);

// Host-side facts the domain XML needs besides the VmSpec.
struct DomainXmlOptions {
    std::string domain_type = "qemu";  // "kvm" where /dev/kvm works, else "qemu" (emulation)
    std::string arch = "x86_64";
    std::string machine = "q35";
    std::string disk_path;  // the VM's qcow2 overlay (absolute)
    std::string seed_path;  // the VM's NoCloud seed ISO (absolute)
    // Where virtlogd copies the serial console's output (absolute; empty: not kept). Truncated
    // at every start, so it holds the latest boot.
    std::string console_log_path;
};

// The libvirt domain XML for `spec`: named DomainName(vm id) with the vm id as its UUID, a virtio
// qcow2 disk, the seed as a read-only SATA CD-ROM (sda), one virtio NIC on spec.network, a pty
// serial console (its output copied to options.console_log_path), optional direct kernel boot, and
// our metadata element. kInvalidArgument for a bad vm id, out-of-range sizes, relative paths or
// control characters in paths, network or command line, or a name longer than kMaxNameBytes.
common::Result<std::string> BuildDomainXml(const ports::VmSpec& spec,
                                           const DomainXmlOptions& options);

struct VmMetadata {
    std::string vm_id;
    std::string name;
    std::vector<std::uint16_t> ingress_ports;
};
// Reads our metadata element as virDomainGetMetadata returns it (any prefix bound to our URI).
common::Result<VmMetadata> ParseMetadata(std::string_view metadata_xml);
// The MAC of the first <interface> in a domain's XML; kNotFound if it has none.
common::Result<std::string> FirstInterfaceMac(std::string_view domain_xml);

}  // namespace decloud::agent::adapters::libvirt
