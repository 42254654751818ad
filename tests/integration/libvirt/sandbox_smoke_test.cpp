// The test infrastructure for real VMs: the tiny guest boots under QEMU emulation in a
// LibvirtSandbox, reads its NoCloud seed, gets a DHCP lease from the "default" network and serves
// the seed's hostname over HTTP; the sandbox survives a libvirtd restart and cleans up after
// itself.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "decloud/testing/libvirt_sandbox.hpp"
#include "decloud/testing/process.hpp"

namespace decloud::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using ::testing::HasSubstr;

std::string ReadFile(const fs::path& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

void WriteFile(const fs::path& path, const std::string& content) {
    std::ofstream(path, std::ios::trunc) << content;
}

// A NoCloud seed as the guest (and cloud-init) reads it: iso9660 labelled cidata.
std::string WriteSeed(const fs::path& dir, const std::string& instance_id,
                      const std::string& hostname) {
    const fs::path content = dir / "seed";
    fs::create_directories(content);
    WriteFile(content / "meta-data",
              "instance-id: " + instance_id + "\nlocal-hostname: " + hostname + "\n");
    WriteFile(content / "user-data", "#cloud-config\n{}\n");
    const std::string iso = (dir / "seed.iso").string();
    const auto r = RunCommand("/usr/bin/genisoimage",
                              {"-quiet", "-o", iso, "-V", "cidata", "-J", "-r", content.string()});
    if (r.exit_code != 0) throw std::runtime_error("genisoimage: " + r.err);
    return iso;
}

std::string DomainXml(const std::string& name, const TinyGuest& guest, const std::string& seed,
                      const std::string& console_log) {
    return "<domain type='qemu'>\n"
           "  <name>" +
           name +
           "</name>\n"
           "  <memory unit='MiB'>320</memory>\n"
           "  <vcpu>1</vcpu>\n"
           "  <os>\n"
           "    <type arch='x86_64' machine='q35'>hvm</type>\n"
           "    <kernel>" +
           guest.kernel +
           "</kernel>\n"
           "    <initrd>" +
           guest.initrd +
           "</initrd>\n"
           "    <cmdline>" +
           guest.cmdline +
           "</cmdline>\n"
           "  </os>\n"
           "  <features><acpi/></features>\n"
           "  <on_poweroff>destroy</on_poweroff>\n"
           "  <on_reboot>destroy</on_reboot>\n"
           "  <on_crash>destroy</on_crash>\n"
           "  <devices>\n"
           "    <disk type='file' device='cdrom'>\n"
           "      <driver name='qemu' type='raw'/>\n"
           "      <source file='" +
           seed +
           "'/>\n"
           "      <target dev='sda' bus='sata'/>\n"
           "      <readonly/>\n"
           "    </disk>\n"
           "    <interface type='network'>\n"
           "      <source network='default'/>\n"
           "      <model type='virtio'/>\n"
           "    </interface>\n"
           "    <serial type='file'>\n"
           "      <source path='" +
           console_log +
           "'/>\n"
           "      <target port='0'/>\n"
           "    </serial>\n"
           "  </devices>\n"
           "</domain>\n";
}

// The IPv4 address dnsmasq leased to the domain, from `virsh domifaddr --source lease`:
//  vnet0      52:54:00:..   ipv4         192.168.122.201/24
std::string LeasedAddress(const LibvirtSandbox& sandbox, const std::string& domain) {
    const auto r = sandbox.Virsh({"domifaddr", domain, "--source", "lease"}, 10);
    if (r.exit_code != 0) return {};
    std::stringstream lines(r.out);
    for (std::string line; std::getline(lines, line);) {
        std::stringstream fields(line);
        std::string iface, mac, protocol, address;
        if (fields >> iface >> mac >> protocol >> address && protocol == "ipv4") {
            return address.substr(0, address.find('/'));
        }
    }
    return {};
}

bool NamespaceExists(const std::string& name) { return fs::exists(fs::path("/run/netns") / name); }

double Seconds(std::chrono::steady_clock::duration d) {
    return std::chrono::duration<double>(d).count();
}

TEST(LibvirtSandboxTest, TinyGuestGetsALeaseServesItsSeedAndPowersOffOnShutdown) {
    const TinyGuest guest = BuildOrLoadTinyGuest();
    ASSERT_TRUE(fs::is_regular_file(guest.kernel)) << guest.kernel;
    ASSERT_TRUE(fs::is_regular_file(guest.initrd)) << guest.initrd;
    ASSERT_TRUE(fs::is_regular_file(guest.base_image)) << guest.base_image;
    ASSERT_THAT(guest.cmdline, HasSubstr("console=ttyS0"));

    TempDir dir("decloud-guest-smoke");
    const std::string suffix = std::to_string(::getpid());
    const std::string hostname = "smoke-" + suffix;
    const std::string instance_id = "iid-smoke-" + suffix;
    const std::string domain = "decloud-smoke-" + suffix;
    const std::string console_log = dir.path() + "/console.log";
    const std::string seed = WriteSeed(dir.path(), instance_id, hostname);
    const std::string xml_path = dir.path() + "/domain.xml";
    WriteFile(xml_path, DomainXml(domain, guest, seed, console_log));

    std::string netns;
    int libvirtd_pid = -1;
    int virtlogd_pid = -1;
    {
        LibvirtSandbox sandbox;
        netns = sandbox.Namespace();
        libvirtd_pid = sandbox.LibvirtdPid();
        virtlogd_pid = sandbox.VirtlogdPid();
        ASSERT_THAT(netns, ::testing::StartsWith("dcl-"));
        ASSERT_TRUE(NamespaceExists(netns));
        // The network's bridge lives in the namespace, not on the host.
        const auto bridge = sandbox.ExecInNamespace({"ip", "-4", "addr", "show", "virbr0"});
        ASSERT_EQ(bridge.exit_code, 0) << bridge.err;
        EXPECT_THAT(bridge.out, HasSubstr("192.168.122.1/24"));

        const auto created_at = std::chrono::steady_clock::now();
        const auto created = sandbox.Virsh({"create", xml_path});
        ASSERT_EQ(created.exit_code, 0) << created.err << "\n" << sandbox.Logs();

        std::string address;
        WaitUntil(
            [&] {
                address = LeasedAddress(sandbox, domain);
                return !address.empty();
            },
            120s, 500ms);
        ASSERT_FALSE(address.empty()) << "no DHCP lease within 120 s\nconsole:\n"
                                      << ReadFile(console_log) << "\n"
                                      << sandbox.Logs();
        const auto leased_at = std::chrono::steady_clock::now();

        std::string served_hostname;
        WaitUntil(
            [&] {
                served_hostname = sandbox.HttpGet(address, TinyGuest::kHttpPort, "/hostname", 3);
                return !served_hostname.empty();
            },
            60s, 500ms);
        const auto answered_at = std::chrono::steady_clock::now();
        ASSERT_EQ(served_hostname, hostname) << "console:\n" << ReadFile(console_log);
        EXPECT_EQ(sandbox.HttpGet(address, TinyGuest::kHttpPort, "/instance-id"), instance_id);
        EXPECT_TRUE(WaitUntil(
            [&] {
                return ReadFile(console_log).find(TinyGuest::kReadyMarker) != std::string::npos;
            },
            10s))
            << ReadFile(console_log);
        std::cout << "[ timing ] create -> lease " << Seconds(leased_at - created_at)
                  << " s, create -> HTTP answer " << Seconds(answered_at - created_at) << " s\n";
        RecordProperty("seconds_to_http", std::to_string(Seconds(answered_at - created_at)));

        // Guests outlive a libvirtd restart, and the new libvirtd finds them again.
        sandbox.RestartLibvirtd();
        EXPECT_NE(sandbox.LibvirtdPid(), libvirtd_pid);
        libvirtd_pid = sandbox.LibvirtdPid();
        const auto state = sandbox.Virsh({"domstate", domain});
        EXPECT_EQ(state.exit_code, 0) << state.err;
        EXPECT_THAT(state.out, HasSubstr("running"));
        EXPECT_EQ(sandbox.HttpGet(address, TinyGuest::kHttpPort, "/hostname"), hostname);

        // ACPI shutdown: the guest powers itself off and the transient domain disappears.
        const auto shutdown_at = std::chrono::steady_clock::now();
        const auto shutdown = sandbox.Virsh({"shutdown", domain});
        ASSERT_EQ(shutdown.exit_code, 0) << shutdown.err;
        EXPECT_TRUE(WaitUntil(
            [&] {
                return sandbox.Virsh({"domstate", domain}).exit_code != 0;
            },
            60s, 500ms))
            << ReadFile(console_log);
        std::cout << "[ timing ] shutdown -> gone "
                  << Seconds(std::chrono::steady_clock::now() - shutdown_at) << " s\n";
    }

    // The destructor removed what the sandbox started.
    EXPECT_FALSE(NamespaceExists(netns));
    EXPECT_FALSE(fs::exists("/etc/netns/" + netns));
    EXPECT_FALSE(fs::exists("/proc/" + std::to_string(libvirtd_pid)));
    EXPECT_FALSE(fs::exists("/proc/" + std::to_string(virtlogd_pid)));
}

TEST(LibvirtSandboxTest, ANewSandboxStartsFreshWithOnlyTheDefaultNetwork) {
    LibvirtSandbox sandbox;
    const auto domains = sandbox.Virsh({"list", "--all", "--name"});
    ASSERT_EQ(domains.exit_code, 0) << domains.err;
    EXPECT_EQ(domains.out.find_first_not_of(" \n"), std::string::npos) << domains.out;
    const auto networks = sandbox.Virsh({"net-list", "--name"});
    ASSERT_EQ(networks.exit_code, 0) << networks.err;
    EXPECT_EQ(networks.out.substr(0, networks.out.find_first_of(" \n")), "default");
    EXPECT_EQ(networks.out.find_first_not_of(" \n", networks.out.find('\n')), std::string::npos)
        << networks.out;
    // The guests' network is the namespace's business: the host has no virbr0.
    EXPECT_FALSE(fs::exists("/sys/class/net/virbr0"));
}

}  // namespace
}  // namespace decloud::testing
