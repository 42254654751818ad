#include "agent/domain/ingress/routing.hpp"

#include <gtest/gtest.h>

#include <cctype>
#include <deque>

namespace decloud::agent::domain::ingress {
namespace {

constexpr std::string_view kWebId = "0b6f3c1e-2a4d-4e8f-9c1a-5d7e8f9a0b1c";
constexpr std::string_view kDbId = "7d2e9a40-1b3c-4d5e-8f6a-7b8c9d0e1f2a";
constexpr std::string_view kMissingId = "11111111-2222-4333-8444-555555555555";

VmRoute MakeRoute(std::string_view id, std::string name, std::string address,
                  std::uint16_t default_port, std::vector<std::uint16_t> extra) {
    VmRoute r;
    r.vm_id = std::string(id);
    r.name = std::move(name);
    r.address = std::move(address);
    r.default_port = default_port;
    r.extra_ports = std::move(extra);
    return r;
}

class RoutingTest : public ::testing::Test {
  protected:
    RoutingTest() {
        auto built = RoutingTable::Build({
            MakeRoute(kWebId, "web", "10.10.0.5", 8080, {7777}),
            MakeRoute(kDbId, "db-1", "fd00::7", 80, {}),
        });
        EXPECT_TRUE(built.has_value());
        table_ = std::move(*built);
        config_.vm_domain = "vm.node1.decloud.example";
    }

    // An Upstream's path and query view the request target: the fixture keeps every target.
    RouteDecision RouteOf(std::string_view target, std::string_view host = "node1.example",
                          std::string_view method = "GET") {
        IngressRequest req;
        req.method = method;
        req.target = targets_.emplace_back(target);
        req.host = host;
        return Route(req, table_, config_);
    }

    static Upstream ExpectUpstream(const RouteDecision& d) {
        if (const auto* r = std::get_if<Refusal>(&d)) {
            ADD_FAILURE() << "refused " << r->status << ": " << r->detail;
            return {};
        }
        return std::get<Upstream>(d);
    }

    static unsigned StatusOf(const RouteDecision& d) {
        if (const auto* r = std::get_if<Refusal>(&d)) {
            EXPECT_FALSE(r->title.empty());
            EXPECT_FALSE(r->detail.empty());
            return r->status;
        }
        return 200;
    }

    std::string PathTarget(std::string_view id, std::string_view port, std::string_view rest) {
        return "/api/vms/" + std::string(id) + "/proxy/http/" + std::string(port) +
               std::string(rest);
    }

    RoutingTable table_;
    RoutingConfig config_;
    std::deque<std::string> targets_;
};

TEST_F(RoutingTest, PathFormForwardsRestAndQueryVerbatim) {
    const auto up = ExpectUpstream(RouteOf(PathTarget(kWebId, "80", "/a/b%20c/%2e?x=1&y=%2F")));
    EXPECT_EQ(up.vm_id, kWebId);
    EXPECT_EQ(up.address, "10.10.0.5");
    EXPECT_EQ(up.port, 80);
    EXPECT_EQ(up.Target(), "/a/b%20c/%2e?x=1&y=%2F");
}

TEST_F(RoutingTest, PathFormEmptyRestIsRoot) {
    EXPECT_EQ(ExpectUpstream(RouteOf(PathTarget(kWebId, "80", ""))).Target(), "/");
    EXPECT_EQ(ExpectUpstream(RouteOf(PathTarget(kWebId, "80", "/"))).Target(), "/");
    EXPECT_EQ(ExpectUpstream(RouteOf(PathTarget(kWebId, "80", "?q=1"))).Target(), "/?q=1");
}

TEST_F(RoutingTest, PathTraversalInRestStaysInsideTheVm) {
    const auto up = ExpectUpstream(RouteOf(PathTarget(kWebId, "80", "/../../etc")));
    EXPECT_EQ(up.Target(), "/../../etc");
    EXPECT_EQ(up.address, "10.10.0.5");
    // A rest that looks like a network-path reference still goes to the VM's address.
    const auto up2 = ExpectUpstream(RouteOf(PathTarget(kWebId, "80", "//evil.example/x")));
    EXPECT_EQ(up2.Target(), "//evil.example/x");
    EXPECT_EQ(up2.address, "10.10.0.5");
}

TEST_F(RoutingTest, PathFormIdIsCaseInsensitiveAndReturnsTableId) {
    std::string upper(kWebId);
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    const auto up = ExpectUpstream(RouteOf(PathTarget(upper, "8080", "/")));
    EXPECT_EQ(up.vm_id, kWebId);
    EXPECT_EQ(up.port, 8080);
}

TEST_F(RoutingTest, PathFormMalformedIdIs400) {
    EXPECT_EQ(StatusOf(RouteOf(PathTarget("abc%2F..%2Fx", "80", "/"))), 400u);
    EXPECT_EQ(StatusOf(RouteOf(PathTarget("0b6f3c1e%2F2a4d-4e8f-9c1a-5d7e8f9a0b1c", "80", "/"))),
              400u);
    EXPECT_EQ(StatusOf(RouteOf(PathTarget("..", "80", "/"))), 400u);
    EXPECT_EQ(StatusOf(RouteOf(PathTarget("web", "80", "/"))), 400u);
}

TEST_F(RoutingTest, PathFormUnknownVmIs404) {
    EXPECT_EQ(StatusOf(RouteOf(PathTarget(kMissingId, "80", "/"))), 404u);
}

TEST_F(RoutingTest, PathFormBadPortsAre400) {
    for (std::string_view port : {"0", "65536", "080", "+80", "-80", "8080abc", "", " 80", "0x50",
                                  "99999999999999999999"}) {
        EXPECT_EQ(StatusOf(RouteOf(PathTarget(kWebId, port, "/"))), 400u) << port;
    }
}

TEST_F(RoutingTest, PortAllowList) {
    // 22 and 9000 are in the default list, 7777 is an extra port of "web", 8080 its default.
    EXPECT_EQ(ExpectUpstream(RouteOf(PathTarget(kWebId, "22", "/"))).port, 22);
    EXPECT_EQ(ExpectUpstream(RouteOf(PathTarget(kWebId, "9000", "/"))).port, 9000);
    EXPECT_EQ(ExpectUpstream(RouteOf(PathTarget(kWebId, "7777", "/"))).port, 7777);
}

TEST_F(RoutingTest, PortsOutsideTheAllowListAre403) {
    EXPECT_EQ(StatusOf(RouteOf(PathTarget(kWebId, "65535", "/"))), 403u);
    EXPECT_EQ(StatusOf(RouteOf(PathTarget(kWebId, "6379", "/"))), 403u);
    // Extra ports are per VM.
    EXPECT_EQ(StatusOf(RouteOf(PathTarget(kDbId, "7777", "/"))), 403u);
}

TEST_F(RoutingTest, AllowListIsConfigurable) {
    config_.allowed_ports = {6379};
    EXPECT_EQ(ExpectUpstream(RouteOf(PathTarget(kDbId, "6379", "/"))).port, 6379);
    EXPECT_EQ(StatusOf(RouteOf(PathTarget(kDbId, "443", "/"))), 403u);
    EXPECT_EQ(ExpectUpstream(RouteOf(PathTarget(kDbId, "80", "/"))).port, 80) << "default port";
}

TEST_F(RoutingTest, OtherPathsAre404) {
    EXPECT_EQ(StatusOf(RouteOf("/")), 404u);
    EXPECT_EQ(StatusOf(RouteOf("/api/vms/" + std::string(kWebId))), 404u);
    EXPECT_EQ(StatusOf(RouteOf("/api/vms/" + std::string(kWebId) + "/proxy/tcp/80/")), 404u);
}

TEST_F(RoutingTest, HostFormByNameUsesDefaultPortAndKeepsTarget) {
    const auto up = ExpectUpstream(RouteOf("/x/../y?z=%2F", "web.vm.node1.decloud.example"));
    EXPECT_EQ(up.vm_id, kWebId);
    EXPECT_EQ(up.port, 8080);
    EXPECT_EQ(up.Target(), "/x/../y?z=%2F");
}

TEST_F(RoutingTest, HostFormIsCaseInsensitiveAndStripsPort) {
    const auto up = ExpectUpstream(RouteOf("/", "WEB.VM.Node1.Decloud.Example:443"));
    EXPECT_EQ(up.vm_id, kWebId);
    EXPECT_EQ(up.port, 8080);
}

TEST_F(RoutingTest, HostFormById) {
    const auto up = ExpectUpstream(RouteOf("/", std::string(kDbId) + ".vm.node1.decloud.example"));
    EXPECT_EQ(up.vm_id, kDbId);
    EXPECT_EQ(up.address, "fd00::7");
    EXPECT_EQ(up.port, 80);
}

TEST_F(RoutingTest, HostFormWithPortPrefix) {
    auto up = ExpectUpstream(RouteOf("/", "3000-web.vm.node1.decloud.example"));
    EXPECT_EQ(up.port, 3000);
    EXPECT_EQ(up.vm_id, kWebId);
    up = ExpectUpstream(RouteOf("/", "443-db-1.vm.node1.decloud.example"));
    EXPECT_EQ(up.port, 443);
    EXPECT_EQ(up.vm_id, kDbId);
    up = ExpectUpstream(RouteOf("/", "22-" + std::string(kDbId) + ".vm.node1.decloud.example"));
    EXPECT_EQ(up.port, 22);
    EXPECT_EQ(up.vm_id, kDbId);
}

TEST_F(RoutingTest, ExactNameWinsOverPortPrefix) {
    auto built = RoutingTable::Build({MakeRoute(kWebId, "web", "10.0.0.1", 80, {}),
                                      MakeRoute(kDbId, "3000-web", "10.0.0.2", 80, {})});
    ASSERT_TRUE(built.has_value());
    table_ = std::move(*built);
    EXPECT_EQ(ExpectUpstream(RouteOf("/", "3000-web.vm.node1.decloud.example")).vm_id, kDbId);
}

TEST_F(RoutingTest, HostFormRefusals) {
    EXPECT_EQ(StatusOf(RouteOf("/", "nope.vm.node1.decloud.example")), 404u);
    EXPECT_EQ(StatusOf(RouteOf("/", "a.web.vm.node1.decloud.example")), 404u);
    EXPECT_EQ(StatusOf(RouteOf("/", std::string(kMissingId) + ".vm.node1.decloud.example")), 404u);
    EXPECT_EQ(StatusOf(RouteOf("/", "6379-web.vm.node1.decloud.example")), 403u);
    EXPECT_EQ(StatusOf(RouteOf("/", "080-web.vm.node1.decloud.example")), 400u);
    EXPECT_EQ(StatusOf(RouteOf("/", "0-web.vm.node1.decloud.example")), 400u);
    EXPECT_EQ(StatusOf(RouteOf("/", "65536-web.vm.node1.decloud.example")), 400u);
    EXPECT_EQ(StatusOf(RouteOf("/", "+80-web.vm.node1.decloud.example")), 400u);
    EXPECT_EQ(StatusOf(RouteOf("/", "80-web_x.vm.node1.decloud.example")), 400u);
    EXPECT_EQ(StatusOf(RouteOf("/", "-web.vm.node1.decloud.example")), 400u);
}

TEST_F(RoutingTest, MalformedHostsAre400) {
    for (std::string_view host :
         {"", "a@b", "user@web.vm.node1.decloud.example", "web.vm.node1.decloud.example:80:81",
          "web.vm.node1.decloud.example:", "web.vm.node1.decloud.example:0",
          "web.vm.node1.decloud.example:080", "web..vm.node1.decloud.example", ":80",
          "web.vm.node1.decloud.example/x", "web vm", "[::1", "[not-v6]:80", "[::1]x"}) {
        EXPECT_EQ(StatusOf(RouteOf("/", host)), 400u) << host;
    }
}

TEST_F(RoutingTest, Ipv6NodeHostUsesPathForm) {
    const auto up = ExpectUpstream(RouteOf(PathTarget(kWebId, "80", "/"), "[2001:db8::1]:8443"));
    EXPECT_EQ(up.vm_id, kWebId);
    ASSERT_TRUE(NormalizeHost("[2001:DB8::1]").has_value());
    EXPECT_EQ(*NormalizeHost("[2001:DB8::1]"), "[2001:db8::1]");
}

TEST_F(RoutingTest, AbsoluteAuthorityAndAsteriskFormsAreRefused) {
    EXPECT_EQ(StatusOf(RouteOf("http://evil.example/api/vms/x")), 400u);
    EXPECT_EQ(StatusOf(RouteOf("http://169.254.169.254/latest/meta-data",
                               "web.vm.node1.decloud.example")),
              400u);
    EXPECT_EQ(StatusOf(RouteOf("evil.example:443", "node1.example", "CONNECT")), 400u);
    EXPECT_EQ(StatusOf(RouteOf("/", "web.vm.node1.decloud.example", "connect")), 400u);
    EXPECT_EQ(StatusOf(RouteOf("*", "node1.example", "OPTIONS")), 400u);
    EXPECT_EQ(StatusOf(RouteOf("")), 400u);
    EXPECT_EQ(StatusOf(RouteOf("/a b")), 400u);
}

TEST(ParsePortTest, AcceptsOnlyPlainDecimal) {
    EXPECT_EQ(*ParsePort("1"), 1);
    EXPECT_EQ(*ParsePort("65535"), 65535);
    for (std::string_view bad : {"0", "65536", "080", "+80", "-1", "8080abc", "", "1e3", "00"}) {
        EXPECT_FALSE(ParsePort(bad).has_value()) << bad;
    }
}

TEST(IsDnsLabelTest, LowercaseLettersDigitsHyphen) {
    EXPECT_TRUE(IsDnsLabel("web-1"));
    EXPECT_FALSE(IsDnsLabel("Web"));
    EXPECT_FALSE(IsDnsLabel("-web"));
    EXPECT_FALSE(IsDnsLabel("web-"));
    EXPECT_FALSE(IsDnsLabel("we_b"));
    EXPECT_FALSE(IsDnsLabel(""));
    EXPECT_FALSE(IsDnsLabel(std::string(64, 'a')));
}

TEST(RoutingTableTest, LookupAndValidation) {
    auto table = RoutingTable::Build({MakeRoute(kWebId, "web", "10.0.0.1", 80, {})});
    ASSERT_TRUE(table.has_value());
    EXPECT_EQ(table->size(), 1u);
    ASSERT_NE(table->FindByName("web"), nullptr);
    EXPECT_EQ(table->FindByName("web")->address, "10.0.0.1");
    EXPECT_NE(table->FindById(kWebId), nullptr);
    EXPECT_EQ(table->FindById(kDbId), nullptr);
    EXPECT_EQ(table->FindByName("WEB"), nullptr);

    EXPECT_FALSE(RoutingTable::Build({MakeRoute("not-a-uuid", "web", "10.0.0.1", 80, {})}));
    EXPECT_FALSE(RoutingTable::Build({MakeRoute(kWebId, "Web", "10.0.0.1", 80, {})}));
    EXPECT_FALSE(RoutingTable::Build({MakeRoute(kWebId, "web", "evil.example", 80, {})}));
    EXPECT_FALSE(RoutingTable::Build({MakeRoute(kWebId, "web", "10.0.0.1", 0, {})}));
    EXPECT_FALSE(RoutingTable::Build({MakeRoute(kWebId, "web", "10.0.0.1", 80, {0})}));
    EXPECT_FALSE(RoutingTable::Build({MakeRoute(kWebId, "web", "10.0.0.1", 80, {}),
                                      MakeRoute(kWebId, "other", "10.0.0.2", 80, {})}));
    EXPECT_FALSE(RoutingTable::Build({MakeRoute(kWebId, "web", "10.0.0.1", 80, {}),
                                      MakeRoute(kDbId, "web", "10.0.0.2", 80, {})}));
    EXPECT_TRUE(RoutingTable::Build(
        {MakeRoute(kWebId, "", "10.0.0.1", 80, {}), MakeRoute(kDbId, "", "fd00::1", 80, {})}));
}

}  // namespace
}  // namespace decloud::agent::domain::ingress
