#include "agent/config.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <sstream>

namespace decloud::agent {
namespace {

common::Settings::EnvLookup NoEnv() {
    return [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
}

common::Result<AgentConfig> Build(std::vector<std::string> overrides) {
    auto s = common::Settings::Load(AgentSettingSpecs(), "", kAgentEnvPrefix, overrides, NoEnv());
    if (!s) return s.error();
    return BuildAgentConfig(*s);
}

TEST(AgentConfig, WalletIsRequiredAndChecked) {
    auto missing = Build({});
    ASSERT_FALSE(missing);
    EXPECT_NE(missing.error().message.find("node.operator_wallet"), std::string::npos);
    EXPECT_FALSE(Build({"node.operator_wallet=0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD"}));
    auto ok = Build({"node.operator_wallet=0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"});
    ASSERT_TRUE(ok) << ok.error().message;
    EXPECT_EQ(ok->profile.operator_wallet, "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed");
    EXPECT_FALSE(ok->profile.behind_cgnat.has_value());
    EXPECT_EQ(ok->NodeKeyPath(), "/var/lib/decloud-agent/node.key");
}

TEST(AgentConfig, CgnatFlagAndBackoffAreValidated) {
    const std::string w = "node.operator_wallet=0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed";
    EXPECT_EQ(Build({w, "node.behind_cgnat=true"})->profile.behind_cgnat, true);
    EXPECT_EQ(Build({w, "node.behind_cgnat=false"})->profile.behind_cgnat, false);
    EXPECT_FALSE(Build({w, "node.behind_cgnat=maybe"}));
    EXPECT_FALSE(Build({w, "heartbeat.initial_backoff=10s", "heartbeat.max_backoff=1s"}));
    EXPECT_FALSE(Build({w, "heartbeat.jitter=0.9"}));
    EXPECT_EQ(Build({w, "node.tags=a, b,c"})->profile.tags,
              (std::vector<std::string>{"a", "b", "c"}));
}

TEST(AgentConfig, IngressSettingsAreValidated) {
    const std::string w = "node.operator_wallet=0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed";
    auto defaults = Build({w});
    ASSERT_TRUE(defaults) << defaults.error().message;
    EXPECT_TRUE(defaults->ingress.enabled);
    EXPECT_EQ(defaults->ingress.port, 8088);
    EXPECT_EQ(defaults->ingress.allowed_ports,
              (std::vector<std::uint16_t>{22, 80, 443, 3000, 5000, 8000, 8080, 8443, 9000}));
    EXPECT_EQ(defaults->ingress.total_timeout, std::chrono::seconds{100});
    EXPECT_EQ(Build({w, "ingress.allowed_ports=80, 8080"})->ingress.allowed_ports,
              (std::vector<std::uint16_t>{80, 8080}));
    EXPECT_FALSE(Build({w, "ingress.allowed_ports=80,http"}));
    EXPECT_FALSE(Build({w, "ingress.allowed_ports=0"}));
    EXPECT_FALSE(Build({w, "ingress.allowed_ports=65536"}));
    EXPECT_FALSE(Build({w, "ingress.port=70000"}));
    EXPECT_FALSE(Build({w, "ingress.tls_cert=/etc/cert.pem"}));  // without its key
    EXPECT_FALSE(Build({w, "ingress.total_timeout=0s"}));
    EXPECT_EQ(defaults->ingress.busy_poll, std::chrono::microseconds::zero());
    EXPECT_EQ(Build({w, "ingress.busy_poll_us=50"})->ingress.busy_poll,
              std::chrono::microseconds{50});
    EXPECT_FALSE(Build({w, "ingress.busy_poll_us=-1"}));
    EXPECT_FALSE(defaults->ingress.access_log);
    EXPECT_TRUE(Build({w, "ingress.access_log=true"})->ingress.access_log);
    EXPECT_FALSE(Build({w, "ingress.access_log=sometimes"}));
    EXPECT_EQ(defaults->ingress.header_timeout, std::chrono::seconds{30});
    EXPECT_EQ(Build({w, "ingress.header_timeout=5s"})->ingress.header_timeout,
              std::chrono::seconds{5});
    EXPECT_FALSE(Build({w, "ingress.header_timeout=0s"}));
    EXPECT_EQ(defaults->ingress.max_connections, 20'000u);
    EXPECT_EQ(defaults->ingress.max_connections_per_client, 512u);
    EXPECT_EQ(
        Build({w, "ingress.max_connections_per_client=8"})->ingress.max_connections_per_client, 8u);
    EXPECT_FALSE(Build({w, "ingress.max_connections=0"}));
    EXPECT_FALSE(Build({w, "ingress.max_connections_per_client=-3"}));
}

TEST(AgentConfig, TunnelProbeSettingsAreValidated) {
    const std::string w = "node.operator_wallet=0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed";
    auto defaults = Build({w});
    ASSERT_TRUE(defaults) << defaults.error().message;
    EXPECT_EQ(defaults->relay.probe_port, 51819);
    EXPECT_EQ(defaults->relay.probe_interval, std::chrono::seconds{10});
    EXPECT_EQ(Build({w, "relay.probe_port=0"})->relay.probe_port, 0);
    EXPECT_FALSE(Build({w, "relay.probe_port=65536"}));
    EXPECT_FALSE(Build({w, "relay.probe_interval=100ms"}));
}

TEST(AgentConfig, ExampleFileDocumentsEverySetting) {
    const std::string path = std::string(DECLOUD_SOURCE_DIR) + "/deploy/agent.toml";
    auto s = common::Settings::Load(
        AgentSettingSpecs(), path, kAgentEnvPrefix,
        {"node.operator_wallet=0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"}, NoEnv());
    ASSERT_TRUE(s) << s.error().message;
    ASSERT_TRUE(BuildAgentConfig(*s));
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    for (const auto& spec : AgentSettingSpecs()) {
        const auto leaf = spec.key.substr(spec.key.rfind('.') + 1);
        EXPECT_TRUE(std::regex_search(text.str(), std::regex("(^|\\n)" + leaf + " = ")))
            << spec.key << " is not documented in deploy/agent.toml";
    }
}

}  // namespace
}  // namespace decloud::agent
