#include "agent/adapters/libvirt/libvirt_hypervisor.hpp"

#include <gtest/gtest.h>

#include <stdexcept>

#include "decloud/testing/process.hpp"

namespace decloud::agent::adapters::libvirt {
namespace {

using common::ErrorCode;

// No daemon here: these cover what happens before and instead of talking to libvirtd.
class LibvirtHypervisorNoDaemonTest : public ::testing::Test {
  protected:
    LibvirtOptions Options() const {
        LibvirtOptions options;
        options.uri = "qemu+unix:///system?socket=" + dir_.path() + "/no-libvirtd.sock";
        options.storage_dir = dir_.path() + "/vms";
        return options;
    }
    testing::TempDir dir_{"decloud-nolibvirtd"};
};

TEST_F(LibvirtHypervisorNoDaemonTest, UnreachableDaemonIsUnavailable) {
    LibvirtHypervisor hypervisor(Options());
    const std::string id = "6a1e2b3c-4d5e-4f60-8a7b-9c0d1e2f3a4b";
    auto described = hypervisor.Describe(id);
    ASSERT_FALSE(described);
    EXPECT_EQ(described.error().code, ErrorCode::kUnavailable) << described.error().message;
    EXPECT_EQ(hypervisor.Start(id).error().code, ErrorCode::kUnavailable);
    EXPECT_EQ(hypervisor.List().error().code, ErrorCode::kUnavailable);
    // Deleting needs to know whether a domain exists, so it does not pretend to have succeeded.
    EXPECT_EQ(hypervisor.Delete(id).error().code, ErrorCode::kUnavailable);
}

TEST_F(LibvirtHypervisorNoDaemonTest, BadInputIsRefusedBeforeAnythingHappens) {
    LibvirtHypervisor hypervisor(Options());
    for (const std::string bad : {"", "../../etc", "decloud-x"}) {
        EXPECT_EQ(hypervisor.Describe(bad).error().code, ErrorCode::kInvalidArgument);
        EXPECT_EQ(hypervisor.Start(bad).error().code, ErrorCode::kInvalidArgument);
        EXPECT_EQ(hypervisor.Stop(bad, std::chrono::seconds{1}).error().code,
                  ErrorCode::kInvalidArgument);
        EXPECT_EQ(hypervisor.Reboot(bad).error().code, ErrorCode::kInvalidArgument);
        EXPECT_EQ(hypervisor.Delete(bad).error().code, ErrorCode::kInvalidArgument);
    }
    ports::VmSpec spec;
    spec.vm_id = "../6a1e2b3c-4d5e-4f60-8a7b-9c0d1e2f3a4b";
    auto created = hypervisor.Create(spec);
    ASSERT_FALSE(created);
    EXPECT_EQ(created.error().code, ErrorCode::kInvalidArgument);
    EXPECT_FALSE(std::filesystem::exists(dir_.path() + "/vms"));
}

TEST_F(LibvirtHypervisorNoDaemonTest, RefusesUnusableOptions) {
    auto options = Options();
    options.domain_type = "xen";
    EXPECT_THROW(LibvirtHypervisor{options}, std::invalid_argument);
    options = Options();
    options.storage_dir.clear();
    EXPECT_THROW(LibvirtHypervisor{options}, std::invalid_argument);
}

}  // namespace
}  // namespace decloud::agent::adapters::libvirt
