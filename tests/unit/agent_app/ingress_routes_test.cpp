#include "agent/app/ingress_routes.hpp"

#include <gtest/gtest.h>

namespace decloud::agent::app {
namespace {

using ports::DomainInfo;
using ports::DomainState;

DomainInfo Domain(std::string id, std::string name, DomainState state,
                  std::vector<std::string> addresses) {
    DomainInfo d;
    d.vm_id = std::move(id);
    d.name = std::move(name);
    d.state = state;
    d.addresses = std::move(addresses);
    return d;
}

constexpr const char* kA = "0a1b2c3d-0000-4000-8000-000000000001";
constexpr const char* kB = "0a1b2c3d-0000-4000-8000-000000000002";
constexpr const char* kC = "0a1b2c3d-0000-4000-8000-000000000003";
constexpr const char* kD = "0a1b2c3d-0000-4000-8000-000000000004";

TEST(IngressRoutes, OnlyRunningDomainsWithAnAddressAreRouted) {
    const auto table = RoutesFromDomains({
        Domain(kA, "web", DomainState::kRunning, {"fe80::1", "192.168.122.10"}),
        Domain(kB, "stopped", DomainState::kStopped, {"192.168.122.11"}),
        Domain(kC, "booting", DomainState::kRunning, {}),
        Domain(kD, "v6only", DomainState::kRunning, {"fe80::2", "fd00::5"}),
    });
    ASSERT_EQ(table.size(), 2u);
    const auto* web = table.FindByName("web");
    ASSERT_NE(web, nullptr);
    EXPECT_EQ(web->address, "192.168.122.10");  // IPv4 first, link-local never
    EXPECT_EQ(table.FindById(kD)->address, "fd00::5");
    EXPECT_EQ(table.FindById(kB), nullptr);
}

TEST(IngressRoutes, NamesThatAreNotUniqueLabelsRouteByIdOnly) {
    const auto table = RoutesFromDomains({
        Domain(kA, "Same", DomainState::kRunning, {"10.0.0.1"}),
        Domain(kB, "same", DomainState::kRunning, {"10.0.0.2"}),
        Domain(kC, "My App!", DomainState::kRunning, {"10.0.0.3"}),
        Domain(kD, "Good-Name", DomainState::kRunning, {"10.0.0.4"}),
    });
    EXPECT_EQ(table.size(), 4u);
    EXPECT_EQ(table.FindByName("same"), nullptr);  // two VMs: neither gets the other's traffic
    EXPECT_EQ(table.FindByName("my app!"), nullptr);
    ASSERT_NE(table.FindByName("good-name"), nullptr);
    EXPECT_EQ(table.FindByName("good-name")->vm_id, kD);
    EXPECT_EQ(table.FindById(kA)->address, "10.0.0.1");
}

TEST(IngressRoutes, TheVmsOwnPortsAreOpenAndTheFirstIsItsDefault) {
    auto code = Domain(kA, "code", DomainState::kRunning, {"10.0.0.1"});
    code.ingress_ports = {8443, 9999};
    const auto table =
        RoutesFromDomains({code, Domain(kB, "plain", DomainState::kRunning, {"10.0.0.2"})});
    EXPECT_EQ(table.FindByName("code")->default_port, 8443);
    EXPECT_EQ(table.FindByName("code")->extra_ports, (std::vector<std::uint16_t>{8443, 9999}));
    EXPECT_EQ(table.FindByName("plain")->default_port, 80);
    EXPECT_TRUE(table.FindByName("plain")->extra_ports.empty());
}

TEST(IngressRoutes, ADomainWithAMalformedIdIsLeftOutAlone) {
    const auto table = RoutesFromDomains({
        Domain("not-a-uuid", "x", DomainState::kRunning, {"10.0.0.1"}),
        Domain(kA, "ok", DomainState::kRunning, {"10.0.0.2"}),
        Domain(kB, "bad-address", DomainState::kRunning, {"not-an-ip"}),
    });
    EXPECT_EQ(table.size(), 1u);
    EXPECT_NE(table.FindByName("ok"), nullptr);
}

}  // namespace
}  // namespace decloud::agent::app
