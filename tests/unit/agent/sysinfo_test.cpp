#include "agent/adapters/sysinfo.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "decloud/testing/process.hpp"

namespace decloud::agent::adapters {
namespace {

namespace fs = std::filesystem;

void Write(const fs::path& path, const std::string& content) {
    fs::create_directories(path.parent_path());
    std::ofstream(path) << content;
}

// A host with 2 sockets x 2 cores x 2 hyperthreads, VT-x, 32 GiB, an NVIDIA GPU and a NIC.
SysinfoPaths FakeHost(const std::string& root) {
    std::string cpuinfo;
    int processor = 0;
    for (int socket = 0; socket < 2; ++socket) {
        for (int core = 0; core < 2; ++core) {
            for (int ht = 0; ht < 2; ++ht) {
                cpuinfo += "processor\t: " + std::to_string(processor++) +
                           "\nmodel name\t: Intel(R) Xeon(R) Test CPU @ 3.00GHz\nphysical id\t: " +
                           std::to_string(socket) + "\ncore id\t\t: " + std::to_string(core) +
                           "\ncpu cores\t: 2\nflags\t\t: fpu vme de pse vmx sse2\n\n";
            }
        }
    }
    Write(root + "/proc/cpuinfo", cpuinfo);
    Write(
        root + "/proc/meminfo",
        "MemTotal:       33554432 kB\nMemFree:         1000000 kB\nMemAvailable:   16777216 kB\n");
    Write(root + "/proc/stat", "cpu  100 0 100 800 0 0 0 0 0 0\ncpu0 50 0 50 400 0 0 0 0 0 0\n");
    const std::string gpu = root + "/sys/bus/pci/devices/0000:01:00.0";
    Write(gpu + "/class", "0x030000\n");
    Write(gpu + "/vendor", "0x10de\n");
    Write(gpu + "/device", "0x2204\n");
    const std::string nic = root + "/sys/bus/pci/devices/0000:02:00.0";
    Write(nic + "/class", "0x020000\n");
    Write(nic + "/vendor", "0x8086\n");
    Write(nic + "/device", "0x1533\n");
    const std::string accel = root + "/sys/bus/pci/devices/0000:03:00.0";
    Write(accel + "/class", "0x120000\n");
    Write(accel + "/vendor", "0x1002\n");
    Write(accel + "/device", "0x740f\n");
    Write(
        root + "/pci.ids",
        "# comment\n10de  NVIDIA Corporation\n\t2204  GA102 [GeForce RTX 3090]\n\t\t1043 87b3  "
        "sub\n"
        "1002  Advanced Micro Devices, Inc. [AMD/ATI]\n\t740f  Aldebaran/MI200 [Instinct MI210]\n");
    SysinfoPaths paths;
    paths.proc = root + "/proc";
    paths.sys = root + "/sys";
    paths.dev_kvm = root + "/dev/kvm";  // absent
    paths.pci_ids = root + "/pci.ids";
    return paths;
}

TEST(DiscoverResources, ReadsAFakeHost) {
    testing::TempDir dir("decloud-sysinfo");
    const auto paths = FakeHost(dir.path());
    auto r = DiscoverResources(paths, dir.path() + "/vms/not/yet/created");
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->cpu_model, "Intel(R) Xeon(R) Test CPU @ 3.00GHz");
    EXPECT_EQ(r->cpu_threads, 8u);
    EXPECT_EQ(r->cpu_cores, 4u);
    EXPECT_EQ(r->virtualization_flags, std::vector<std::string>{"vmx"});
    EXPECT_FALSE(r->kvm_available);
    EXPECT_EQ(r->memory_bytes, 32ull << 30);
    EXPECT_GT(r->storage_total_bytes, 0u) << "measured on the nearest existing parent";
    ASSERT_EQ(r->gpus.size(), 2u) << "the NIC is not a GPU";
    EXPECT_EQ(r->gpus[0].pci_address, "0000:01:00.0");
    EXPECT_EQ(r->gpus[0].vendor, "NVIDIA");
    EXPECT_EQ(r->gpus[0].vendor_id, "0x10de");
    EXPECT_EQ(r->gpus[0].model, "GA102 [GeForce RTX 3090]");
    EXPECT_EQ(r->gpus[1].vendor, "AMD");
    EXPECT_EQ(r->gpus[1].model, "Aldebaran/MI200 [Instinct MI210]");
}

TEST(DiscoverResources, MissingProcIsAnError) {
    SysinfoPaths paths;
    paths.proc = "/nonexistent-proc";
    EXPECT_FALSE(DiscoverResources(paths, "/tmp"));
}

TEST(DiscoverResources, TheRealHostIsSane) {
    auto r = DiscoverResources(SysinfoPaths{}, "/tmp");
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_GE(r->cpu_threads, 1u);
    EXPECT_GE(r->cpu_threads, r->cpu_cores);
    EXPECT_GT(r->memory_bytes, 0u);
    EXPECT_GT(r->storage_total_bytes, 0u);
    EXPECT_FALSE(r->cpu_model.empty());
}

TEST(UsageSampler, MeasuresCpuBetweenSamples) {
    testing::TempDir dir("decloud-usage");
    const auto paths = FakeHost(dir.path());
    UsageSampler sampler(paths, dir.path());
    auto first = sampler.Sample(3);
    EXPECT_EQ(first.cpu_percent, 0);
    EXPECT_EQ(first.running_vms, 3u);
    EXPECT_EQ(first.memory_used_bytes, 16ull << 30);
    // 100 more busy jiffies out of 400: 25 %.
    Write(paths.proc + "/stat", "cpu  150 0 150 1100 0 0 0 0 0 0\n");
    auto second = sampler.Sample(3);
    EXPECT_DOUBLE_EQ(second.cpu_percent, 25.0);
    EXPECT_GT(second.storage_used_bytes, 0u);
}

TEST(Kvm, AbsentDeviceIsNotUsable) {
    EXPECT_FALSE(KvmUsable("/nonexistent/kvm"));
    // On this machine /dev/kvm exists but cannot create VMs; whatever the host, no crash.
    (void)KvmUsable("/dev/kvm");
}

}  // namespace
}  // namespace decloud::agent::adapters
