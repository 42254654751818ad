#include "agent/adapters/libvirt/domain_xml.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <cstdio>

#include "agent/adapters/libvirt/xml.hpp"
#include "decloud/common/ids.hpp"

namespace decloud::agent::adapters::libvirt {

using common::Error;
using common::Result;

namespace {

constexpr std::uint32_t kMaxVcpus = 512;
constexpr std::uint64_t kMinMemoryMib = 16;
constexpr std::uint64_t kMaxMemoryMib = std::uint64_t{16} << 20;  // 16 TiB
constexpr std::uint64_t kMaxDiskGib = std::uint64_t{64} << 10;    // 64 TiB

bool HasControlCharacters(std::string_view s) {
    return std::any_of(s.begin(), s.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u < 0x20 || u == 0x7F;
    });
}

// Paths end up in attributes and in qemu's command line: absolute, valid text, no controls.
common::Status CheckPath(const char* what, std::string_view path) {
    if (path.empty() || path.front() != '/')
        return Error::InvalidArgument(std::string(what) + " must be an absolute path");
    if (HasControlCharacters(path) || !IsValidXmlText(path))
        return Error::InvalidArgument(std::string(what) +
                                      " contains control or invalid characters");
    return common::Ok();
}

common::Status CheckSpec(const ports::VmSpec& spec, const DomainXmlOptions& options) {
    if (options.domain_type != "kvm" && options.domain_type != "qemu")
        return Error::InvalidArgument("domain type must be kvm or qemu, not " +
                                      options.domain_type);
    if (spec.vcpus == 0 || spec.vcpus > kMaxVcpus)
        return Error::InvalidArgument("vcpus must be between 1 and " + std::to_string(kMaxVcpus));
    if (spec.memory_mib < kMinMemoryMib || spec.memory_mib > kMaxMemoryMib)
        return Error::InvalidArgument("memory must be between 16 MiB and 16 TiB");
    if (spec.disk_gib == 0 || spec.disk_gib > kMaxDiskGib)
        return Error::InvalidArgument("disk size must be between 1 GiB and 64 TiB");
    if (spec.name.size() > kMaxNameBytes)
        return Error::InvalidArgument("name longer than " + std::to_string(kMaxNameBytes) +
                                      " bytes");
    if (spec.network.empty() || HasControlCharacters(spec.network) || !IsValidXmlText(spec.network))
        return Error::InvalidArgument("network name is empty or contains invalid characters");
    if (auto st = CheckPath("disk path", options.disk_path); !st) return st;
    if (auto st = CheckPath("seed path", options.seed_path); !st) return st;
    if (!options.console_log_path.empty())
        if (auto st = CheckPath("console log path", options.console_log_path); !st) return st;
    if (spec.kernel_boot) {
        if (auto st = CheckPath("kernel", spec.kernel_boot->kernel); !st) return st;
        if (!spec.kernel_boot->initrd.empty())
            if (auto st = CheckPath("initrd", spec.kernel_boot->initrd); !st) return st;
        if (HasControlCharacters(spec.kernel_boot->cmdline) ||
            !IsValidXmlText(spec.kernel_boot->cmdline))
            return Error::InvalidArgument("kernel command line contains invalid characters");
    }
    for (const auto& part : {options.arch, options.machine})
        if (part.empty() || !std::all_of(part.begin(), part.end(), [](char c) {
                return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' ||
                       c == '.';
            }))
            return Error::InvalidArgument("arch and machine must be plain identifiers");
    return common::Ok();
}

}  // namespace

Result<std::string> CanonicalVmId(std::string_view vm_id) {
    if (!common::IsUuid(vm_id))
        return Error::InvalidArgument("vm id is not a UUID: " +
                                      SanitizeXmlText(vm_id.substr(0, 64)));
    std::string id(vm_id);
    std::transform(id.begin(), id.end(), id.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return id;
}

std::string DomainName(std::string_view canonical_vm_id) {
    return std::string(kDomainNamePrefix) + std::string(canonical_vm_id);
}

std::string StoredName(std::string_view name) { return SanitizeXmlText(name); }

std::string MacForVm(std::string_view canonical_vm_id) {
    // FNV-1a: stable across builds and platforms, unlike std::hash.
    std::uint64_t hash = 0xcbf29ce484222325ULL;
    for (const char c : canonical_vm_id) {
        hash ^= static_cast<unsigned char>(c);
        hash *= 0x100000001b3ULL;
    }
    char mac[18];
    std::snprintf(mac, sizeof mac, "52:54:00:%02x:%02x:%02x",
                  static_cast<unsigned>((hash >> 16) & 0xFF),
                  static_cast<unsigned>((hash >> 8) & 0xFF), static_cast<unsigned>(hash & 0xFF));
    return mac;
}

Result<std::string> BuildDomainXml(const ports::VmSpec& spec, const DomainXmlOptions& options) {
    auto id = CanonicalVmId(spec.vm_id);
    if (!id) return id.error();
    if (auto st = CheckSpec(spec, options); !st) return st.error();

    const std::string metadata_tag = std::string(kMetadataPrefix) + ":vm";
    const std::string id_tag = std::string(kMetadataPrefix) + ":id";
    const std::string name_tag = std::string(kMetadataPrefix) + ":name";
    const std::string xmlns = "xmlns:" + std::string(kMetadataPrefix);

    XmlWriter w;
    w.Open("domain", {{"type", options.domain_type}});
    w.Leaf("name", DomainName(*id));
    w.Leaf("uuid", *id);
    w.Open("metadata");
    w.Open(metadata_tag, {{xmlns, kMetadataUri}});
    w.Leaf(id_tag, *id);
    w.Leaf(name_tag, StoredName(spec.name));
    if (!spec.ingress_ports.empty()) {
        std::string ports;
        for (const auto port : spec.ingress_ports) {
            if (!ports.empty()) ports += ',';
            ports += std::to_string(port);
        }
        w.Leaf(std::string(kMetadataPrefix) + ":ingress-ports", ports);
    }
    w.Close();
    w.Close();
    w.Leaf("memory", std::to_string(spec.memory_mib), {{"unit", "MiB"}});
    w.Leaf("vcpu", std::to_string(spec.vcpus), {{"placement", "static"}});

    w.Open("os");
    w.Leaf("type", "hvm", {{"arch", options.arch}, {"machine", options.machine}});
    if (spec.kernel_boot) {
        w.Leaf("kernel", spec.kernel_boot->kernel);
        if (!spec.kernel_boot->initrd.empty()) w.Leaf("initrd", spec.kernel_boot->initrd);
        if (!spec.kernel_boot->cmdline.empty()) w.Leaf("cmdline", spec.kernel_boot->cmdline);
    } else {
        w.Empty("boot", {{"dev", "hd"}});
    }
    w.Close();
    // ACPI lets Stop ask the guest to power down before forcing it.
    w.Open("features").Empty("acpi").Empty("apic").Close();
    if (options.domain_type == "kvm") w.Empty("cpu", {{"mode", "host-passthrough"}});
    w.Empty("clock", {{"offset", "utc"}});
    w.Leaf("on_poweroff", "destroy");
    w.Leaf("on_reboot", "restart");
    w.Leaf("on_crash", "destroy");

    w.Open("devices");
    w.Open("disk", {{"type", "file"}, {"device", "disk"}});
    w.Empty("driver", {{"name", "qemu"}, {"type", "qcow2"}});
    w.Empty("source", {{"file", options.disk_path}});
    w.Empty("target", {{"dev", "vda"}, {"bus", "virtio"}});
    w.Close();
    w.Open("disk", {{"type", "file"}, {"device", "cdrom"}});
    w.Empty("driver", {{"name", "qemu"}, {"type", "raw"}});
    w.Empty("source", {{"file", options.seed_path}});
    w.Empty("target", {{"dev", "sda"}, {"bus", "sata"}});
    w.Empty("readonly");
    w.Close();
    w.Open("interface", {{"type", "network"}});
    w.Empty("source", {{"network", spec.network}});
    w.Empty("mac", {{"address", MacForVm(*id)}});
    w.Empty("model", {{"type", "virtio"}});
    w.Close();
    w.Open("serial", {{"type", "pty"}});
    // virtlogd keeps a copy of everything the guest writes, attached console or not: the boot
    // log a user reads when the guest stopped during boot.
    if (!options.console_log_path.empty())
        w.Empty("log", {{"file", options.console_log_path}, {"append", "off"}});
    w.Empty("target", {{"port", "0"}}).Close();
    w.Open("console", {{"type", "pty"}})
        .Empty("target", {{"type", "serial"}, {"port", "0"}})
        .Close();
    w.Close();  // devices
    w.Close();  // domain
    return w.Finish();
}

Result<VmMetadata> ParseMetadata(std::string_view metadata_xml) {
    auto root = ParseXml(metadata_xml);
    if (!root) return root.error();
    if (root->LocalName() != "vm")
        return Error::InvalidArgument("metadata root is <" + root->name + ">, not <vm>");
    const auto* id = root->Child("id");
    const auto* name = root->Child("name");
    if (id == nullptr || name == nullptr)
        return Error::InvalidArgument("metadata lacks the vm id or name");
    auto canonical = CanonicalVmId(id->text);
    if (!canonical) return canonical.error();
    VmMetadata metadata{std::move(*canonical), name->text, {}};
    if (const auto* ports = root->Child("ingress-ports")) {
        std::string_view rest = ports->text;
        if (rest.empty()) return Error::InvalidArgument("metadata has an empty ingress port list");
        while (true) {
            const auto comma = rest.find(',');
            const auto item = rest.substr(0, comma);
            unsigned value = 0;
            const auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), value);
            if (ec != std::errc{} || end != item.data() + item.size() || value == 0 ||
                value > 65535)
                return Error::InvalidArgument("metadata has a malformed ingress port list");
            metadata.ingress_ports.push_back(static_cast<std::uint16_t>(value));
            if (comma == std::string_view::npos) break;
            rest.remove_prefix(comma + 1);
        }
    }
    return metadata;
}

Result<std::string> FirstInterfaceMac(std::string_view domain_xml) {
    auto root = ParseXml(domain_xml);
    if (!root) return root.error();
    const auto* devices = root->Child("devices");
    const auto* interface = devices != nullptr ? devices->Child("interface") : nullptr;
    const auto* mac = interface != nullptr ? interface->Child("mac") : nullptr;
    const auto* address = mac != nullptr ? mac->Attribute("address") : nullptr;
    if (address == nullptr) return Error::NotFound("the domain has no network interface");
    return *address;
}

}  // namespace decloud::agent::adapters::libvirt
