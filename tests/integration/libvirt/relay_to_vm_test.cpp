// The last hop of the relay path on a CGNAT node, for real: a connection arriving on a tunnel
// interface (dcc..., here a veth from a "relay" namespace) is DNATed by the agent's nftables
// table to a VM on libvirt's NAT network "default", in the LibvirtSandbox's namespace. libvirt's
// own FORWARD rules reject it until the agent's exception is in place, ahead of them.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "agent/adapters/libvirt/libvirt_hypervisor.hpp"
#include "agent/adapters/nftables/iptables_forward_exception.hpp"
#include "agent/adapters/nftables/nft_port_forwarder.hpp"
#include "decloud/common/ids.hpp"
#include "decloud/testing/libvirt_sandbox.hpp"
#include "decloud/testing/netns.hpp"
#include "decloud/testing/process.hpp"

namespace decloud::agent::adapters {
namespace {

using namespace std::chrono_literals;

constexpr const char* kTunnel = "dcc000000000001";
constexpr std::uint16_t kPublicPort = 30001;

TEST(RelayToVmTest, TunnelTrafficReachesAVmOnLibvirtsNatNetworkOnlyWithTheException) {
    const auto guest = testing::BuildOrLoadTinyGuest();
    testing::LibvirtSandbox sandbox;
    testing::TempDir storage("decloud-relay-vm");
    testing::NetNamespace relay("relay");
    const auto in_sandbox = [&](const std::vector<std::string>& argv) {
        const auto r = sandbox.ExecInNamespace(argv);
        EXPECT_EQ(r.exit_code, 0) << r.err;
        return r;
    };
    // The tunnel: 10.200.0.5 (relay) <-> 10.200.0.6 (CGNAT node).
    in_sandbox({"ip", "link", "add", kTunnel, "type", "veth", "peer", "name", "wan0", "netns",
                relay.name()});
    in_sandbox({"ip", "address", "add", "10.200.0.6/30", "dev", kTunnel});
    in_sandbox({"ip", "link", "set", kTunnel, "up"});
    relay.AddAddress("wan0", "10.200.0.5/30");
    relay.SetUp("wan0");

    LibvirtOptions options;
    options.uri = sandbox.Uri();
    options.storage_dir = storage.path();
    options.domain_type = "qemu";
    LibvirtHypervisor hypervisor(options);
    ports::VmSpec spec;
    spec.vm_id = common::NewUuid();
    spec.name = "behind cgnat";
    spec.memory_mib = 320;
    spec.base_image = guest.base_image;
    spec.kernel_boot = ports::DirectKernelBoot{guest.kernel, guest.initrd, guest.cmdline};
    spec.seed.meta_data = "instance-id: iid-1\nlocal-hostname: behind-cgnat\n";
    spec.seed.user_data = "#cloud-config\n{}\n";
    spec.network = sandbox.NetworkName();
    auto created = hypervisor.Create(spec);
    ASSERT_TRUE(created) << created.error().message << sandbox.Logs();
    std::string vm_address;
    ASSERT_TRUE(testing::WaitUntil(
        [&] {
            auto info = hypervisor.Describe(spec.vm_id);
            if (info && !info->addresses.empty()) vm_address = info->addresses.front();
            return !vm_address.empty() &&
                   !sandbox.HttpGet(vm_address, testing::TinyGuest::kHttpPort, "/hostname", 3)
                        .empty();
        },
        180s, 1s))
        << sandbox.Logs();

    // The CGNAT node's table: the public port, arriving over the tunnel, to the VM's port 8080.
    NftPortForwarderOptions nft;
    nft.table = "decloud_cgnat";
    nft.netns = sandbox.Namespace();
    NftPortForwarder forwarder(nft);
    ASSERT_TRUE(
        forwarder.Apply(kTunnel, {{kPublicPort, domain::relay::Protocol::kTcp, vm_address,
                                   static_cast<std::uint16_t>(testing::TinyGuest::kHttpPort)}}));
    const auto through_tunnel = [&] {
        return testing::TcpExchange(relay, "10.200.0.6", kPublicPort,
                                    "GET /hostname HTTP/1.0\r\n\r\n", 3s)
            .value_or("");
    };
    EXPECT_EQ(through_tunnel().find("behind-cgnat"), std::string::npos)
        << "libvirt's LIBVIRT_FWI rejects the forwarded connection without the exception";

    IptablesForwardExceptionOptions exception_options;
    exception_options.netns = sandbox.Namespace();
    exception_options.recheck = 0s;
    IptablesForwardException exception(exception_options);
    ASSERT_TRUE(exception.Ensure(true));
    EXPECT_NE(through_tunnel().find("behind-cgnat"), std::string::npos);
    ASSERT_TRUE(exception.Ensure(true)) << "idempotent";
    const auto listing = in_sandbox({"iptables", "-w", "-S", "FORWARD"}).out;
    const auto ours = listing.find("decloud-relay-dnat");
    ASSERT_NE(ours, std::string::npos) << listing;
    EXPECT_LT(ours, listing.find("LIBVIRT_FWI")) << listing;
    EXPECT_EQ(listing.find("decloud-relay-dnat", ours + 1), std::string::npos) << "only once";

    // libvirt puts a jump of its own first (as when its network starts after the agent): the
    // exception moves back ahead of it.
    in_sandbox({"iptables", "-w", "-I", "FORWARD", "1", "-j", "LIBVIRT_FWI"});
    EXPECT_EQ(through_tunnel().find("behind-cgnat"), std::string::npos);
    ASSERT_TRUE(exception.Ensure(true));
    EXPECT_NE(through_tunnel().find("behind-cgnat"), std::string::npos);

    // No CGNAT tunnel any more: the exception goes.
    ASSERT_TRUE(exception.Ensure(false));
    EXPECT_EQ(in_sandbox({"iptables", "-w", "-S", "FORWARD"}).out.find("decloud-relay-dnat"),
              std::string::npos);
    EXPECT_EQ(through_tunnel().find("behind-cgnat"), std::string::npos);
    ASSERT_TRUE(forwarder.Remove(kTunnel));
    ASSERT_TRUE(hypervisor.Delete(spec.vm_id));
}

}  // namespace
}  // namespace decloud::agent::adapters
