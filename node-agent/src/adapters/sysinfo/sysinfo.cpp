#include "agent/adapters/sysinfo.hpp"

#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace decloud::agent::adapters {

namespace fs = std::filesystem;
using common::Error;

namespace {

std::string ReadFile(const std::string& path) {
    std::ifstream in(path);
    if (!in) return {};
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::string Trim(std::string s) {
    const auto b = s.find_first_not_of(" \t\r\n");
    const auto e = s.find_last_not_of(" \t\r\n");
    return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

// "key : value" lines of /proc/cpuinfo, one map per processor block.
struct CpuInfo {
    std::string model;
    std::uint32_t threads = 0;
    std::uint32_t cores = 0;
    std::set<std::string> flags;
};

CpuInfo ParseCpuInfo(const std::string& text) {
    CpuInfo info;
    std::set<std::pair<std::string, std::string>> physical_cores;  // (physical id, core id)
    std::string physical_id, core_id;
    std::uint32_t cores_per_package = 0;
    std::istringstream in(text);
    std::string line;
    auto end_block = [&] {
        if (!core_id.empty()) physical_cores.emplace(physical_id, core_id);
        physical_id.clear();
        core_id.clear();
    };
    while (std::getline(in, line)) {
        if (Trim(line).empty()) {
            end_block();
            continue;
        }
        const auto colon = line.find(':');
        if (colon == std::string::npos) continue;
        const auto key = Trim(line.substr(0, colon));
        const auto value = Trim(line.substr(colon + 1));
        if (key == "processor")
            ++info.threads;
        else if (key == "model name" && info.model.empty())
            info.model = value;
        else if (key == "physical id")
            physical_id = value;
        else if (key == "core id")
            core_id = value;
        else if (key == "cpu cores")
            cores_per_package = static_cast<std::uint32_t>(std::atoi(value.c_str()));
        else if (key == "flags") {
            std::istringstream fl(value);
            std::string f;
            while (fl >> f) {
                if (f == "vmx" || f == "svm") info.flags.insert(f);
            }
        }
    }
    end_block();
    if (!physical_cores.empty())
        info.cores = static_cast<std::uint32_t>(physical_cores.size());
    else if (cores_per_package > 0)
        info.cores = std::min(cores_per_package, info.threads);
    else
        info.cores = info.threads;
    return info;
}

std::uint64_t MeminfoBytes(const std::string& meminfo, std::string_view key) {
    std::istringstream in(meminfo);
    std::string line;
    while (std::getline(in, line)) {
        if (line.compare(0, key.size(), key) == 0 && line.size() > key.size() &&
            line[key.size()] == ':')
            return std::strtoull(line.c_str() + key.size() + 1, nullptr, 10) * 1024;  // kB
    }
    return 0;
}

// The nearest existing directory at or above `path`.
std::string ExistingAncestor(std::string path) {
    std::error_code ec;
    fs::path p = fs::absolute(path, ec);
    while (!p.empty() && !fs::exists(p, ec)) {
        if (p == p.parent_path()) break;
        p = p.parent_path();
    }
    return p.empty() ? std::string("/") : p.string();
}

// Vendor and device names from pci.ids ("vvvv  Name" and "\tdddd  Name" lines).
std::pair<std::string, std::string> PciNames(const std::string& pci_ids, std::string_view vendor,
                                             std::string_view device) {
    std::ifstream in(pci_ids);
    if (!in) return {};
    std::string line, vendor_name;
    bool in_vendor = false;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#') continue;
        if (line[0] != '\t') {
            if (in_vendor) break;
            if (line.size() > 6 && line.compare(0, 4, vendor) == 0) {
                in_vendor = true;
                vendor_name = Trim(line.substr(4));
            }
        } else if (in_vendor && line.size() > 7 && line[1] != '\t' &&
                   line.compare(1, 4, device) == 0) {
            return {vendor_name, Trim(line.substr(5))};
        }
    }
    return {vendor_name, {}};
}

std::string KnownVendor(std::string_view id) {
    if (id == "10de") return "NVIDIA";
    if (id == "1002") return "AMD";
    if (id == "8086") return "Intel";
    return {};
}

std::vector<proto::GpuInfo> DiscoverGpus(const SysinfoPaths& paths) {
    std::vector<proto::GpuInfo> gpus;
    std::error_code ec;
    const fs::path devices = fs::path(paths.sys) / "bus/pci/devices";
    if (!fs::is_directory(devices, ec)) return gpus;
    std::vector<fs::path> entries;
    for (const auto& e : fs::directory_iterator(devices, ec)) entries.push_back(e.path());
    std::sort(entries.begin(), entries.end());
    for (const auto& dev : entries) {
        const auto cls = Trim(ReadFile((dev / "class").string()));  // "0x030000"
        if (cls.size() < 6) continue;
        const bool display = cls.compare(0, 4, "0x03") == 0;
        const bool accelerator = cls.compare(0, 6, "0x1200") == 0;
        if (!display && !accelerator) continue;
        proto::GpuInfo gpu;
        gpu.pci_address = dev.filename().string();
        gpu.vendor_id = Trim(ReadFile((dev / "vendor").string()));
        gpu.device_id = Trim(ReadFile((dev / "device").string()));
        const auto vendor = gpu.vendor_id.size() == 6 ? gpu.vendor_id.substr(2) : gpu.vendor_id;
        const auto device = gpu.device_id.size() == 6 ? gpu.device_id.substr(2) : gpu.device_id;
        auto [vendor_name, model] = PciNames(paths.pci_ids, vendor, device);
        gpu.vendor = KnownVendor(vendor);
        if (gpu.vendor.empty()) gpu.vendor = vendor_name;
        gpu.model = model;
        gpus.push_back(std::move(gpu));
    }
    return gpus;
}

// Busy and total jiffies from the "cpu" line of /proc/stat.
bool ReadCpuTimes(const std::string& stat, std::uint64_t& busy, std::uint64_t& total) {
    std::istringstream in(stat);
    std::string label;
    in >> label;
    if (label != "cpu") return false;
    std::uint64_t v[10] = {};
    for (auto& x : v) {
        if (!(in >> x)) break;
    }
    // user nice system idle iowait irq softirq steal guest guest_nice; guests are in user.
    const std::uint64_t idle = v[3] + v[4];
    total = v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
    busy = total - idle;
    return total > 0;
}

}  // namespace

namespace {

// Runs one guest instruction (HLT) in a fresh VM. Exit code 0 if the vCPU ran and halted.
int ProbeKvm(const char* dev_kvm) {
    const int kvm = ::open(dev_kvm, O_RDWR | O_CLOEXEC);
    if (kvm < 0 || ::ioctl(kvm, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) return 1;
    const int vm = ::ioctl(kvm, KVM_CREATE_VM, 0UL);
    if (vm < 0) return 2;
    constexpr std::uint64_t kGuestAddress = 0x1000;
    void* memory =
        ::mmap(nullptr, 0x1000, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) return 3;
    static_cast<std::uint8_t*>(memory)[0] = 0xf4;  // hlt
    kvm_userspace_memory_region region{};
    region.guest_phys_addr = kGuestAddress;
    region.memory_size = 0x1000;
    region.userspace_addr = reinterpret_cast<std::uint64_t>(memory);
    if (::ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0) return 4;
    const int vcpu = ::ioctl(vm, KVM_CREATE_VCPU, 0UL);
    if (vcpu < 0) return 5;
    const int run_size = ::ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (run_size <= 0) return 6;
    auto* run = static_cast<kvm_run*>(::mmap(nullptr, static_cast<std::size_t>(run_size),
                                             PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0));
    if (run == MAP_FAILED) return 7;
    kvm_sregs sregs{};
    if (::ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0) return 8;
    sregs.cs.base = 0;
    sregs.cs.selector = 0;
    if (::ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0) return 9;
    kvm_regs regs{};
    regs.rip = kGuestAddress;
    regs.rflags = 0x2;
    if (::ioctl(vcpu, KVM_SET_REGS, &regs) < 0) return 10;
    if (::ioctl(vcpu, KVM_RUN, 0) < 0) return 11;
    return run->exit_reason == KVM_EXIT_HLT ? 0 : 12;
}

}  // namespace

bool KvmUsable(const std::string& dev_kvm) {
    // /dev/kvm can exist and even create VMs where guests cannot run (nested virtualisation
    // half-enabled): only a guest that actually executes counts. The probe runs in a child
    // process so a wedged vCPU cannot hang the agent.
    const pid_t pid = ::fork();
    if (pid < 0) return false;
    if (pid == 0) ::_exit(ProbeKvm(dev_kvm.c_str()));
    int status = 0;
    for (int waited_ms = 0; waited_ms < 5000; waited_ms += 10) {
        const pid_t r = ::waitpid(pid, &status, WNOHANG);
        if (r == pid) return WIFEXITED(status) && WEXITSTATUS(status) == 0;
        if (r < 0) return false;
        ::usleep(10'000);
    }
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    return false;
}

common::Result<proto::NodeResources> DiscoverResources(const SysinfoPaths& paths,
                                                       const std::string& storage_path) {
    proto::NodeResources r;
    const auto cpu = ParseCpuInfo(ReadFile(paths.proc + "/cpuinfo"));
    if (cpu.threads == 0) return Error::Unavailable("cannot read " + paths.proc + "/cpuinfo");
    r.cpu_model = cpu.model.empty() ? "unknown" : cpu.model;
    r.cpu_threads = cpu.threads;
    r.cpu_cores = std::max<std::uint32_t>(1, cpu.cores);
    r.virtualization_flags.assign(cpu.flags.begin(), cpu.flags.end());
    r.kvm_available = KvmUsable(paths.dev_kvm);
    r.memory_bytes = MeminfoBytes(ReadFile(paths.proc + "/meminfo"), "MemTotal");
    if (r.memory_bytes == 0)
        return Error::Unavailable("cannot read MemTotal from " + paths.proc + "/meminfo");
    r.storage_path = storage_path;
    struct statvfs st {};
    const auto measured = ExistingAncestor(storage_path);
    if (::statvfs(measured.c_str(), &st) != 0)
        return Error::Unavailable("cannot measure the filesystem of " + measured);
    r.storage_total_bytes = static_cast<std::uint64_t>(st.f_blocks) * st.f_frsize;
    r.storage_free_bytes = static_cast<std::uint64_t>(st.f_bavail) * st.f_frsize;
    r.gpus = DiscoverGpus(paths);
    return r;
}

UsageSampler::UsageSampler(SysinfoPaths paths, std::string storage_path)
    : paths_(std::move(paths)), storage_path_(std::move(storage_path)) {}

proto::NodeUsage UsageSampler::Sample(std::uint32_t running_vms) {
    proto::NodeUsage u;
    u.running_vms = running_vms;
    std::uint64_t busy = 0, total = 0;
    if (ReadCpuTimes(ReadFile(paths_.proc + "/stat"), busy, total)) {
        std::lock_guard lock(mutex_);
        if (last_total_ > 0 && total > last_total_ && busy >= last_busy_) {
            u.cpu_percent = std::clamp(100.0 * static_cast<double>(busy - last_busy_) /
                                           static_cast<double>(total - last_total_),
                                       0.0, 100.0);
        }
        last_busy_ = busy;
        last_total_ = total;
    }
    const auto meminfo = ReadFile(paths_.proc + "/meminfo");
    const auto mem_total = MeminfoBytes(meminfo, "MemTotal");
    const auto mem_available = MeminfoBytes(meminfo, "MemAvailable");
    u.memory_used_bytes = mem_total > mem_available ? mem_total - mem_available : 0;
    struct statvfs st {};
    if (::statvfs(ExistingAncestor(storage_path_).c_str(), &st) == 0)
        u.storage_used_bytes = static_cast<std::uint64_t>(st.f_blocks - st.f_bfree) * st.f_frsize;
    return u;
}

}  // namespace decloud::agent::adapters
