#include "agent/adapters/libvirt/libvirt_hypervisor.hpp"

#include "agent/domain/console_text.hpp"
#include "libvirt_support.hpp"

#include <libvirt/virterror.h>
#include <pthread.h>
#include <signal.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <thread>
#include <utility>

namespace decloud::agent::adapters {

using common::Error;
using common::ErrorCode;
using common::Result;
using libvirt::CanonicalVmId;
using libvirt::DomainName;
using libvirt::DomainXmlOptions;
using libvirt::InitializeLibvirt;
using libvirt::ScopedSigpipeBlock;
using libvirt::VmMetadata;
using ports::DomainInfo;
using ports::DomainState;

void ConnectionCloser::operator()(virConnectPtr conn) const noexcept {
    if (conn != nullptr) virConnectClose(conn);
}

void DomainFreer::operator()(virDomainPtr domain) const noexcept {
    if (domain != nullptr) virDomainFree(domain);
}

namespace {

constexpr unsigned int kUndefineFlags =
    VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA |
    VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA | VIR_DOMAIN_UNDEFINE_NVRAM;
constexpr std::chrono::seconds kMaxGrace{600};

struct FreeDeleter {
    void operator()(void* p) const noexcept { std::free(p); }
};
using CString = std::unique_ptr<char, FreeDeleter>;

int LastErrorCode() {
    const virError* error = virGetLastError();
    return error != nullptr ? error->code : VIR_ERR_OK;
}

// The thread's last libvirt error as one of ours, prefixed with what we were doing. Most libvirt
// calls reset the thread's error first (virDomainGetName among them), so it is read before any.
Error LastError(const std::string& what) {
    const virError* error = virGetLastError();
    const int code = error != nullptr ? error->code : VIR_ERR_INTERNAL_ERROR;
    const int domain = error != nullptr ? error->domain : VIR_FROM_NONE;
    std::string message = what + ": " + virGetLastErrorMessage();
    switch (code) {
        case VIR_ERR_NO_DOMAIN:
            return Error::NotFound(std::move(message));
        case VIR_ERR_NO_CONNECT:
        case VIR_ERR_INVALID_CONN:
        case VIR_ERR_RPC:
        case VIR_ERR_AUTH_FAILED:
        case VIR_ERR_AUTH_UNAVAILABLE:
            return Error::Unavailable(std::move(message));
        case VIR_ERR_OPERATION_TIMEOUT:
        case VIR_ERR_AGENT_UNRESPONSIVE:
            return Error::Timeout(std::move(message));
        case VIR_ERR_OPERATION_INVALID:
        case VIR_ERR_DOM_EXIST:
            return Error::Conflict(std::move(message));
        case VIR_ERR_INVALID_ARG:
        case VIR_ERR_XML_ERROR:
        case VIR_ERR_XML_DETAIL:
        case VIR_ERR_XML_INVALID_SCHEMA:
        case VIR_ERR_CONFIG_UNSUPPORTED:
            return Error::InvalidArgument(std::move(message));
        default:
            break;
    }
    // A socket that broke under a call ("End of file while reading data", ...).
    if (domain == VIR_FROM_RPC || domain == VIR_FROM_REMOTE)
        return Error::Unavailable(std::move(message));
    return Error::Internal(std::move(message));
}

// LastError for a call on `domain`, naming it.
Error LastDomainError(std::string_view what, virDomainPtr domain) {
    Error error = LastError(std::string(what));
    const char* name = virDomainGetName(domain);
    error.message.insert(what.size(), std::string(" ") + (name != nullptr ? name : "?"));
    return error;
}

DomainState MapState(int state) {
    switch (state) {
        case VIR_DOMAIN_RUNNING:
        case VIR_DOMAIN_BLOCKED:
        case VIR_DOMAIN_SHUTDOWN:  // still running while the guest shuts down
            return DomainState::kRunning;
        case VIR_DOMAIN_PAUSED:
        case VIR_DOMAIN_PMSUSPENDED:
            return DomainState::kPaused;
        case VIR_DOMAIN_SHUTOFF:
            return DomainState::kStopped;
        case VIR_DOMAIN_CRASHED:
            return DomainState::kCrashed;
        default:
            return DomainState::kOther;
    }
}

Result<DomainHandle> Lookup(virConnectPtr conn, const std::string& name) {
    DomainHandle domain(virDomainLookupByName(conn, name.c_str()));
    if (!domain) return LastError("looking up domain " + name);
    return domain;
}

Result<DomainState> State(virDomainPtr domain) {
    int state = VIR_DOMAIN_NOSTATE;
    int reason = 0;
    if (virDomainGetState(domain, &state, &reason, 0) < 0)
        return LastDomainError("reading the state of", domain);
    return MapState(state);
}

// Our metadata, or nullopt for a domain that does not carry it (not ours).
Result<std::optional<VmMetadata>> Metadata(virDomainPtr domain) {
    const std::string uri(libvirt::kMetadataUri);
    CString xml(virDomainGetMetadata(domain, VIR_DOMAIN_METADATA_ELEMENT, uri.c_str(),
                                     VIR_DOMAIN_AFFECT_CURRENT));
    if (!xml) {
        if (LastErrorCode() == VIR_ERR_NO_DOMAIN_METADATA) return std::optional<VmMetadata>();
        return LastDomainError("reading the metadata of", domain);
    }
    auto metadata = libvirt::ParseMetadata(xml.get());
    if (!metadata)
        return Error::Internal(std::string("metadata of ") + virDomainGetName(domain) +
                               " is unreadable: " + metadata.error().message);
    return std::optional<VmMetadata>(std::move(*metadata));
}

// Leased addresses; a guest without a lease yet has none, which is not an error.
void AddLeasedAddresses(virDomainPtr domain, DomainInfo& info) {
    virDomainInterfacePtr* interfaces = nullptr;
    const int count = virDomainInterfaceAddresses(domain, &interfaces,
                                                  VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE, 0);
    if (count < 0) {
        const std::string why = virGetLastErrorMessage();
        spdlog::debug("no leases for {}: {}", virDomainGetName(domain), why);
        return;
    }
    for (int i = 0; i < count; ++i) {
        const virDomainInterfacePtr iface = interfaces[i];
        if (info.mac.empty() && iface->hwaddr != nullptr) info.mac = iface->hwaddr;
        for (unsigned int a = 0; a < iface->naddrs; ++a)
            if (iface->addrs[a].addr != nullptr) info.addresses.emplace_back(iface->addrs[a].addr);
        virDomainInterfaceFree(iface);
    }
    std::free(interfaces);  // the array was malloc()ed by libvirt
}

// DomainInfo of one of our domains; kConflict if the domain has no DeCloud metadata.
Result<DomainInfo> DescribeDomain(virDomainPtr domain) {
    auto metadata = Metadata(domain);
    if (!metadata) return metadata.error();
    if (!*metadata)
        return Error::Conflict(std::string("domain ") + virDomainGetName(domain) +
                               " carries no DeCloud metadata");
    auto state = State(domain);
    if (!state) return state.error();
    DomainInfo info;
    info.vm_id = (*metadata)->vm_id;
    info.name = (*metadata)->name;
    info.ingress_ports = (*metadata)->ingress_ports;
    info.state = *state;
    CString xml(virDomainGetXMLDesc(domain, 0));
    if (!xml) return LastDomainError("reading the XML of", domain);
    if (auto mac = libvirt::FirstInterfaceMac(xml.get())) info.mac = std::move(*mac);
    if (info.state == DomainState::kRunning) AddLeasedAddresses(domain, info);
    return info;
}

// virDomainCreate, where "already running" counts as done.
common::Status StartDomain(virDomainPtr domain) {
    if (virDomainCreate(domain) < 0 && LastErrorCode() != VIR_ERR_OPERATION_INVALID)
        return LastDomainError("starting", domain);
    return common::Ok();
}

// virDomainDestroy, where "not running" counts as done.
common::Status DestroyDomain(virDomainPtr domain) {
    if (virDomainDestroy(domain) < 0 && LastErrorCode() != VIR_ERR_OPERATION_INVALID)
        return LastDomainError("powering off", domain);
    return common::Ok();
}

}  // namespace

LibvirtHypervisor::LibvirtHypervisor(LibvirtOptions options)
    : options_(std::move(options)),
      storage_(libvirt::VmStorageOptions{options_.storage_dir, options_.qemu_img,
                                         options_.genisoimage, options_.program_timeout}) {
    if (options_.domain_type != "kvm" && options_.domain_type != "qemu")
        throw std::invalid_argument("libvirt domain type must be kvm or qemu");
    if (options_.uri.empty()) throw std::invalid_argument("libvirt URI not set");
    InitializeLibvirt();
}

LibvirtHypervisor::~LibvirtHypervisor() {
    const ScopedSigpipeBlock no_sigpipe;
    const std::lock_guard lock(mutex_);
    conn_.reset();
}

common::Status LibvirtHypervisor::EnsureConnectedLocked() {
    if (conn_ && virConnectIsAlive(conn_.get()) == 1) return common::Ok();
    conn_.reset();
    ConnectionHandle conn(virConnectOpen(options_.uri.c_str()));
    if (!conn)
        return Error::Unavailable("cannot connect to libvirt at " + options_.uri + ": " +
                                  virGetLastErrorMessage());
    conn_ = std::move(conn);
    spdlog::info("connected to libvirt at {}", options_.uri);
    return common::Ok();
}

template <class Op>
auto LibvirtHypervisor::WithConnection(Op&& op) -> decltype(op(std::declval<virConnectPtr>())) {
    const ScopedSigpipeBlock no_sigpipe;
    const std::lock_guard lock(mutex_);
    for (int attempt = 0;; ++attempt) {
        if (auto st = EnsureConnectedLocked(); !st) return st.error();
        auto result = op(conn_.get());
        if (result || attempt > 0 || virConnectIsAlive(conn_.get()) == 1) return result;
        spdlog::warn("the connection to libvirt broke ({}); reconnecting", result.error().message);
        conn_.reset();
    }
}

Result<DomainInfo> LibvirtHypervisor::Create(const ports::VmSpec& spec) {
    auto id = CanonicalVmId(spec.vm_id);
    if (!id) return id.error();
    const auto name = DomainName(*id);

    const std::lock_guard lifecycle(lifecycle_mutex_);
    // An existing domain is left as it is, whatever the rest of the spec says (a command that is
    // delivered again may carry only the id).
    auto existing = WithConnection([&](virConnectPtr conn) -> Result<DomainInfo> {
        auto domain = Lookup(conn, name);
        if (!domain) return domain.error();
        auto state = State(domain->get());
        if (!state) return state.error();
        if (*state == DomainState::kStopped || *state == DomainState::kCrashed) {
            if (auto st = StartDomain(domain->get()); !st) return st.error();
        }
        return DescribeDomain(domain->get());
    });
    if (existing || existing.error().code != ErrorCode::kNotFound) return existing;

    // A new domain: the whole spec is validated before any file is made.
    const auto files = storage_.FilesFor(*id);
    const DomainXmlOptions xml_options{options_.domain_type, options_.arch,
                                       options_.machine,     files.disk.string(),
                                       files.seed.string(),  files.console_log.string()};
    auto xml = libvirt::BuildDomainXml(spec, xml_options);
    if (!xml) return xml.error();
    if (auto st = storage_.Prepare(*id, spec); !st) return st.error();
    bool undefined_after_failure = false;
    auto created = WithConnection([&](virConnectPtr conn) -> Result<DomainInfo> {
        DomainHandle domain(
            virDomainDefineXMLFlags(conn, xml->c_str(), VIR_DOMAIN_DEFINE_VALIDATE));
        if (!domain) return LastError("defining " + name);
        if (auto st = StartDomain(domain.get()); !st) {
            // Leave nothing half-made: a retry of Create starts from scratch.
            undefined_after_failure = virDomainUndefineFlags(domain.get(), kUndefineFlags) == 0;
            return st.error();
        }
        return DescribeDomain(domain.get());
    });
    if (!created && undefined_after_failure) {
        if (auto st = storage_.Remove(*id); !st) spdlog::warn("{}", st.error().message);
    }
    if (created) spdlog::info("created and started {} ({})", name, created->name);
    return created;
}

common::Status LibvirtHypervisor::Start(const std::string& vm_id) {
    auto id = CanonicalVmId(vm_id);
    if (!id) return id.error();
    return WithConnection([&](virConnectPtr conn) -> common::Status {
        auto domain = Lookup(conn, DomainName(*id));
        if (!domain) return domain.error();
        auto state = State(domain->get());
        if (!state) return state.error();
        if (*state == DomainState::kRunning) return common::Ok();
        if (*state == DomainState::kPaused) {
            if (virDomainResume(domain->get()) < 0) return LastError("resuming " + DomainName(*id));
            return common::Ok();
        }
        return StartDomain(domain->get());
    });
}

common::Status LibvirtHypervisor::Stop(const std::string& vm_id, std::chrono::seconds grace) {
    auto id = CanonicalVmId(vm_id);
    if (!id) return id.error();
    const auto name = DomainName(*id);
    // Ask the guest (ACPI power button); a paused guest cannot react, so it is powered off.
    auto asked = WithConnection([&](virConnectPtr conn) -> Result<bool> {
        auto domain = Lookup(conn, name);
        if (!domain) return domain.error();
        auto state = State(domain->get());
        if (!state) return state.error();
        if (*state == DomainState::kStopped || *state == DomainState::kCrashed) return false;
        if (*state == DomainState::kRunning && virDomainShutdown(domain->get()) < 0) {
            if (LastErrorCode() == VIR_ERR_OPERATION_INVALID) return false;  // it just stopped
            spdlog::warn("{}", LastError("asking " + name + " to shut down").message);
        }
        return true;
    });
    if (!asked) return asked.error();
    if (!*asked) return common::Ok();

    const auto deadline = std::chrono::steady_clock::now() + std::clamp(grace, {}, kMaxGrace);
    while (std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(options_.poll_interval);
        auto state = WithConnection([&](virConnectPtr conn) -> Result<DomainState> {
            auto domain = Lookup(conn, name);
            if (!domain) return domain.error();
            return State(domain->get());
        });
        if (!state) return state.error();
        if (*state == DomainState::kStopped) {
            spdlog::info("{} shut down", name);
            return common::Ok();
        }
    }
    spdlog::info("{} did not shut down within {} s; powering it off", name, grace.count());
    return WithConnection([&](virConnectPtr conn) -> common::Status {
        auto domain = Lookup(conn, name);
        if (!domain) return domain.error();
        return DestroyDomain(domain->get());
    });
}

common::Status LibvirtHypervisor::Reboot(const std::string& vm_id) {
    auto id = CanonicalVmId(vm_id);
    if (!id) return id.error();
    return WithConnection([&](virConnectPtr conn) -> common::Status {
        auto domain = Lookup(conn, DomainName(*id));
        if (!domain) return domain.error();
        auto state = State(domain->get());
        if (!state) return state.error();
        // A stopped VM "rebooted" comes up fresh, which is what the caller wants.
        if (*state == DomainState::kStopped || *state == DomainState::kCrashed)
            return StartDomain(domain->get());
        if (virDomainReboot(domain->get(), VIR_DOMAIN_REBOOT_DEFAULT) < 0)
            return LastError("rebooting " + DomainName(*id));
        return common::Ok();
    });
}

common::Status LibvirtHypervisor::Delete(const std::string& vm_id) {
    auto id = CanonicalVmId(vm_id);
    if (!id) return id.error();
    const auto name = DomainName(*id);
    std::lock_guard lifecycle(lifecycle_mutex_);
    auto removed = WithConnection([&](virConnectPtr conn) -> common::Status {
        auto domain = Lookup(conn, name);
        if (!domain) {
            if (domain.error().code == ErrorCode::kNotFound) return common::Ok();
            return domain.error();
        }
        if (virDomainIsActive(domain->get()) == 1) {
            if (auto st = DestroyDomain(domain->get()); !st) return st;
        }
        // A transient domain vanishes when destroyed; then there is nothing to undefine.
        if (virDomainUndefineFlags(domain->get(), kUndefineFlags) < 0 &&
            LastErrorCode() != VIR_ERR_NO_DOMAIN)
            return LastError("undefining " + name);
        spdlog::info("deleted domain {}", name);
        return common::Ok();
    });
    if (!removed) return removed;
    return storage_.Remove(*id);
}

Result<DomainInfo> LibvirtHypervisor::Describe(const std::string& vm_id) {
    auto id = CanonicalVmId(vm_id);
    if (!id) return id.error();
    return WithConnection([&](virConnectPtr conn) -> Result<DomainInfo> {
        auto domain = Lookup(conn, DomainName(*id));
        if (!domain) return domain.error();
        auto info = DescribeDomain(domain->get());
        if (info && info->vm_id != *id)
            return Error::Conflict("domain " + DomainName(*id) + " carries the metadata of " +
                                   info->vm_id);
        return info;
    });
}

Result<std::vector<DomainInfo>> LibvirtHypervisor::List() {
    return WithConnection([&](virConnectPtr conn) -> Result<std::vector<DomainInfo>> {
        virDomainPtr* raw = nullptr;
        const int count = virConnectListAllDomains(conn, &raw, 0);
        if (count < 0) return LastError("listing domains");
        std::vector<DomainHandle> domains;
        domains.reserve(static_cast<std::size_t>(count));
        for (int i = 0; i < count; ++i) domains.emplace_back(raw[i]);
        std::free(raw);  // the array was malloc()ed by libvirt
        std::vector<DomainInfo> result;
        for (const auto& domain : domains) {
            auto info = DescribeDomain(domain.get());
            if (info) {
                result.push_back(std::move(*info));
                continue;
            }
            // Not ours (kConflict), or undefined since the listing (kNotFound): not listed.
            const auto code = info.error().code;
            if (code == ErrorCode::kConflict || code == ErrorCode::kNotFound) continue;
            if (code == ErrorCode::kUnavailable) return info.error();
            spdlog::warn("skipping domain {}: {}", virDomainGetName(domain.get()),
                         info.error().message);
        }
        return result;
    });
}

Result<std::string> LibvirtHypervisor::BootLog(const std::string& vm_id, std::size_t max_bytes) {
    auto id = CanonicalVmId(vm_id);
    if (!id) return id.error();
    const auto path = storage_.FilesFor(*id).console_log;
    std::error_code ec;
    if (!std::filesystem::exists(path, ec))
        return Error::NotFound("no console log is kept for VM " + *id);
    std::ifstream in(path, std::ios::binary | std::ios::ate);
    if (!in) return Error::Internal("cannot read " + path.string() + ": " + std::strerror(errno));
    // Escape sequences and line ends shrink in cleaning: read twice the tail, then cut.
    const auto size = static_cast<std::size_t>(in.tellg());
    const auto want = max_bytes >= size / 2 ? size : max_bytes * 2;
    std::string raw(want, '\0');
    in.seekg(static_cast<std::streamoff>(size - want));
    in.read(raw.data(), static_cast<std::streamsize>(want));
    raw.resize(static_cast<std::size_t>(in.gcount()));
    return std::string(domain::TailOfLog(domain::ReadableConsoleText(raw), max_bytes));
}

}  // namespace decloud::agent::adapters
