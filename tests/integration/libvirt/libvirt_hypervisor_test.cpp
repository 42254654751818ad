// LibvirtHypervisor against a real libvirtd (QEMU emulation) in a LibvirtSandbox, with the tiny
// guest: the whole lifecycle, idempotency, finding VMs again by metadata after an agent restart,
// and reconnecting after a libvirtd restart.
#include "agent/adapters/libvirt/libvirt_hypervisor.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "decloud/common/ids.hpp"
#include "decloud/testing/libvirt_sandbox.hpp"
#include "decloud/testing/process.hpp"

namespace decloud::agent::adapters::libvirt {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using common::ErrorCode;
using ports::DomainState;
using ::testing::HasSubstr;
using testing::LibvirtSandbox;
using ::testing::Not;
using testing::TinyGuest;

// Metacharacters of XML and shells; the name must survive them all, byte for byte.
constexpr const char* kHostileName = "web <1> & 'two' \"three\" ]]> </decloud:name> $(id) ; `x`";

class LibvirtHypervisorTest : public ::testing::Test {
  protected:
    void SetUp() override {
        guest_ = testing::BuildOrLoadTinyGuest();
        sandbox_ = std::make_unique<LibvirtSandbox>();
    }
    void TearDown() override { sandbox_.reset(); }

    LibvirtOptions Options() const {
        LibvirtOptions options;
        options.uri = sandbox_->Uri();
        options.storage_dir = storage_.path();
        options.domain_type = "qemu";  // no working KVM here
        return options;
    }

    ports::VmSpec Spec(const std::string& vm_id, const std::string& name,
                       const std::string& hostname) const {
        ports::VmSpec spec;
        spec.vm_id = vm_id;
        spec.name = name;
        spec.vcpus = 1;
        spec.memory_mib = 320;
        spec.disk_gib = 1;
        spec.base_image = guest_.base_image;
        spec.kernel_boot = ports::DirectKernelBoot{guest_.kernel, guest_.initrd, guest_.cmdline};
        spec.seed.meta_data = "instance-id: iid-" + vm_id + "\nlocal-hostname: " + hostname + "\n";
        spec.seed.user_data = "#cloud-config\n{}\n";
        spec.network = sandbox_->NetworkName();
        return spec;
    }

    // Polls Describe until the VM has a leased address.
    std::string WaitForAddress(LibvirtHypervisor& hypervisor, const std::string& vm_id) {
        std::string address;
        testing::WaitUntil(
            [&] {
                auto info = hypervisor.Describe(vm_id);
                if (info && !info->addresses.empty()) address = info->addresses.front();
                return !address.empty();
            },
            180s, 1s);
        return address;
    }

    std::string WaitForHostname(const std::string& address) {
        std::string served;
        testing::WaitUntil(
            [&] {
                served = sandbox_->HttpGet(address, TinyGuest::kHttpPort, "/hostname", 3);
                return !served.empty();
            },
            120s, 1s);
        return served;
    }

    std::string Diagnostics(const std::string& vm_id) const {
        const auto xml = sandbox_->Virsh({"dumpxml", DomainName(vm_id)});
        return "domain XML:\n" + xml.out + xml.err + "\nlogs:\n" + sandbox_->Logs();
    }

    std::vector<std::string> DomainNames() const {
        const auto listed = sandbox_->Virsh({"list", "--all", "--name"});
        EXPECT_EQ(listed.exit_code, 0) << listed.err;
        std::vector<std::string> names;
        std::stringstream lines(listed.out);
        for (std::string line; std::getline(lines, line);)
            if (!line.empty()) names.push_back(line);
        return names;
    }

    TinyGuest guest_;
    testing::TempDir storage_{"decloud-vms"};
    std::unique_ptr<LibvirtSandbox> sandbox_;
};

TEST_F(LibvirtHypervisorTest, RunsAVmThroughItsWholeLifecycle) {
    LibvirtHypervisor hypervisor(Options());
    const std::string vm_id = common::NewUuid();
    const std::string hostname = "vm-" + vm_id.substr(0, 8);
    const auto spec = Spec(vm_id, kHostileName, hostname);
    const fs::path vm_dir = fs::path(storage_.path()) / vm_id;

    // Create: files, a persistent domain, running.
    const auto started_at = std::chrono::steady_clock::now();
    auto created = hypervisor.Create(spec);
    ASSERT_TRUE(created) << created.error().message << "\n" << sandbox_->Logs();
    EXPECT_EQ(created->vm_id, vm_id);
    EXPECT_EQ(created->name, kHostileName);
    EXPECT_EQ(created->state, DomainState::kRunning);
    EXPECT_EQ(created->mac, MacForVm(vm_id));
    EXPECT_TRUE(fs::is_regular_file(vm_dir / "disk.qcow2"));
    EXPECT_TRUE(fs::is_regular_file(vm_dir / "seed.iso"));
    const auto dominfo = sandbox_->Virsh({"dominfo", DomainName(vm_id)});
    EXPECT_THAT(dominfo.out, HasSubstr("Persistent:     yes"));
    EXPECT_THAT(dominfo.out, HasSubstr(vm_id));  // the UUID is the vm id

    // It boots, gets a lease and serves the hostname from its seed.
    const auto address = WaitForAddress(hypervisor, vm_id);
    ASSERT_FALSE(address.empty()) << "no address within 180 s\n" << Diagnostics(vm_id);
    EXPECT_EQ(WaitForHostname(address), hostname) << Diagnostics(vm_id);
    std::cout
        << "[ timing ] Create -> HTTP answer "
        << std::chrono::duration<double>(std::chrono::steady_clock::now() - started_at).count()
        << " s\n";
    auto described = hypervisor.Describe(vm_id);
    ASSERT_TRUE(described) << described.error().message;
    EXPECT_EQ(described->state, DomainState::kRunning);
    EXPECT_EQ(described->name, kHostileName);
    EXPECT_EQ(described->mac, MacForVm(vm_id));
    // virtlogd copies the serial console into the agent's own file, attached console or not.
    std::string boot_log;
    EXPECT_TRUE(testing::WaitUntil(
        [&] {
            auto log = hypervisor.BootLog(vm_id, 64 * 1024);
            if (log) boot_log = *log;
            return boot_log.find(TinyGuest::kReadyMarker) != std::string::npos;
        },
        30s, 500ms))
        << boot_log;
    EXPECT_THAT(boot_log, HasSubstr("tiny-guest: seed on"));
    EXPECT_EQ(boot_log.find('\r'), std::string::npos);
    EXPECT_EQ(fs::status(vm_dir / "console.log").permissions() & fs::perms::others_all,
              fs::perms::none);
    auto short_log = hypervisor.BootLog(vm_id, 40);
    ASSERT_TRUE(short_log) << short_log.error().message;
    EXPECT_LE(short_log->size(), 40u);

    // Create again: the same domain, still running, nothing rebuilt.
    const auto disk_time = fs::last_write_time(vm_dir / "seed.iso");
    auto again = hypervisor.Create(spec);
    ASSERT_TRUE(again) << again.error().message;
    EXPECT_EQ(again->vm_id, vm_id);
    EXPECT_EQ(again->state, DomainState::kRunning);
    EXPECT_EQ(DomainNames(), std::vector<std::string>{DomainName(vm_id)});
    EXPECT_EQ(fs::last_write_time(vm_dir / "seed.iso"), disk_time);

    // Stop: ACPI first, a hard power-off after the grace period; stopping again is fine.
    ASSERT_TRUE(hypervisor.Stop(vm_id, 10s));
    described = hypervisor.Describe(vm_id);
    ASSERT_TRUE(described) << described.error().message;
    EXPECT_EQ(described->state, DomainState::kStopped);
    EXPECT_TRUE(described->addresses.empty());
    EXPECT_TRUE(hypervisor.Stop(vm_id, 1s));

    // Start, and starting again is fine.
    ASSERT_TRUE(hypervisor.Start(vm_id)) << Diagnostics(vm_id);
    EXPECT_TRUE(hypervisor.Start(vm_id));
    described = hypervisor.Describe(vm_id);
    ASSERT_TRUE(described) << described.error().message;
    EXPECT_EQ(described->state, DomainState::kRunning);

    // libvirtd restarts under the agent: the same object reconnects.
    sandbox_->RestartLibvirtd();
    described = hypervisor.Describe(vm_id);
    ASSERT_TRUE(described) << described.error().message;
    EXPECT_EQ(described->state, DomainState::kRunning);
    EXPECT_EQ(described->name, kHostileName);
    // The restarted guest boots from the same overlay and seed and answers again.
    const auto address_after_start = WaitForAddress(hypervisor, vm_id);
    ASSERT_FALSE(address_after_start.empty()) << Diagnostics(vm_id);
    EXPECT_EQ(WaitForHostname(address_after_start), hostname) << Diagnostics(vm_id);

    // The agent restarts: a new instance finds the VM by its metadata, name intact.
    {
        LibvirtHypervisor restarted(Options());
        auto listed = restarted.List();
        ASSERT_TRUE(listed) << listed.error().message;
        ASSERT_EQ(listed->size(), 1u);
        EXPECT_EQ(listed->front().vm_id, vm_id);
        EXPECT_EQ(listed->front().name, kHostileName);
        EXPECT_EQ(listed->front().state, DomainState::kRunning);
        EXPECT_EQ(listed->front().mac, MacForVm(vm_id));
    }

    // Delete: powered off, undefined, files gone; deleting again succeeds.
    ASSERT_TRUE(hypervisor.Delete(vm_id));
    auto gone = hypervisor.Describe(vm_id);
    ASSERT_FALSE(gone);
    EXPECT_EQ(gone.error().code, ErrorCode::kNotFound);
    EXPECT_THAT(DomainNames(), Not(::testing::Contains(DomainName(vm_id))));
    EXPECT_FALSE(fs::exists(vm_dir));
    EXPECT_TRUE(hypervisor.Delete(vm_id));
    EXPECT_EQ(hypervisor.Start(vm_id).error().code, ErrorCode::kNotFound);
    EXPECT_TRUE(fs::exists(guest_.base_image));
}

TEST_F(LibvirtHypervisorTest, TheBootLogOfAGuestThatStoppedDuringBootIsKept) {
    LibvirtHypervisor hypervisor(Options());
    const std::string vm_id = common::NewUuid();
    auto spec = Spec(vm_id, "fails to boot", "broken");
    spec.seed.user_data = TinyGuest::kFailBootUserData;
    auto created = hypervisor.Create(spec);
    ASSERT_TRUE(created) << created.error().message << "\n" << sandbox_->Logs();
    // The guest powers itself off; its domain stays defined, stopped, with the log beside it.
    EXPECT_TRUE(testing::WaitUntil(
        [&] {
            auto info = hypervisor.Describe(vm_id);
            return info && info->state == DomainState::kStopped;
        },
        180s, 500ms))
        << Diagnostics(vm_id);
    auto log = hypervisor.BootLog(vm_id, 64 * 1024);
    ASSERT_TRUE(log) << log.error().message;
    EXPECT_THAT(*log, HasSubstr(TinyGuest::kBootFailedMarker));
    EXPECT_THAT(*log, HasSubstr("tiny-guest: the user-data asks for a failed boot"));
    EXPECT_THAT(*log, Not(HasSubstr(TinyGuest::kReadyMarker)));

    ASSERT_TRUE(hypervisor.Delete(vm_id));
    auto gone = hypervisor.BootLog(vm_id, 1024);
    ASSERT_FALSE(gone);
    EXPECT_EQ(gone.error().code, ErrorCode::kNotFound);
    auto bad = hypervisor.BootLog("../../etc/passwd", 1024);
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
}

TEST_F(LibvirtHypervisorTest, ListsOnlyItsOwnDomainsAndDeleteCleansLeftovers) {
    LibvirtHypervisor hypervisor(Options());

    // A domain someone else defined (no DeCloud metadata) is not ours to list.
    const fs::path foreign = fs::path(storage_.path()) / "foreign.xml";
    std::ofstream(foreign) << "<domain type='qemu'><name>someone-else</name>"
                              "<memory unit='MiB'>64</memory><os><type>hvm</type></os></domain>";
    const auto defined = sandbox_->Virsh({"define", foreign.string()});
    ASSERT_EQ(defined.exit_code, 0) << defined.err;

    // A VM with a hostile name, defined but then stopped at once, is listed with its name.
    const std::string vm_id = common::NewUuid();
    ASSERT_TRUE(hypervisor.Create(Spec(vm_id, "<evil name='x'>&amp;", "evil")));
    ASSERT_TRUE(hypervisor.Stop(vm_id, 0s));
    auto listed = hypervisor.List();
    ASSERT_TRUE(listed) << listed.error().message;
    ASSERT_EQ(listed->size(), 1u);
    EXPECT_EQ(listed->front().vm_id, vm_id);
    EXPECT_EQ(listed->front().name, "<evil name='x'>&amp;");
    EXPECT_EQ(listed->front().state, DomainState::kStopped);
    // Create on a stopped VM starts it.
    auto restarted = hypervisor.Create(Spec(vm_id, "ignored", "evil"));
    ASSERT_TRUE(restarted) << restarted.error().message;
    EXPECT_EQ(restarted->state, DomainState::kRunning);
    EXPECT_EQ(restarted->name, "<evil name='x'>&amp;");
    ASSERT_TRUE(hypervisor.Delete(vm_id));

    // Delete of a VM whose domain is gone still removes its files.
    const std::string orphan = common::NewUuid();
    const fs::path orphan_dir = fs::path(storage_.path()) / orphan;
    fs::create_directories(orphan_dir);
    std::ofstream(orphan_dir / "disk.qcow2") << "left over";
    EXPECT_TRUE(hypervisor.Delete(orphan));
    EXPECT_FALSE(fs::exists(orphan_dir));

    // A new VM with an invalid spec is refused before any file is made; an existing VM is
    // described whatever the spec (a redelivered command may carry only the id).
    const std::string invalid = common::NewUuid();
    auto bad_spec = Spec(invalid, "bad", "bad");
    bad_spec.vcpus = 0;
    auto refused = hypervisor.Create(bad_spec);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, ErrorCode::kInvalidArgument);
    EXPECT_FALSE(fs::exists(fs::path(storage_.path()) / invalid));
    const std::string kept = common::NewUuid();
    ASSERT_TRUE(hypervisor.Create(Spec(kept, "kept", "kept")));
    ports::VmSpec only_id;
    only_id.vm_id = kept;
    only_id.vcpus = 0;
    auto described = hypervisor.Create(only_id);
    ASSERT_TRUE(described) << described.error().message;
    EXPECT_EQ(described->name, "kept");
    ASSERT_TRUE(hypervisor.Delete(kept));

    // Bad ids never reach libvirt or the file system.
    EXPECT_EQ(hypervisor.Delete("../someone-else").error().code, ErrorCode::kInvalidArgument);
    EXPECT_EQ(DomainNames(), std::vector<std::string>{"someone-else"});
}

}  // namespace
}  // namespace decloud::agent::adapters::libvirt
