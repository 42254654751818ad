#include "orchestrator/config.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>

namespace decloud::orchestrator {
namespace {

common::Settings::EnvLookup NoEnv() {
    return [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
}

TEST(OrchestratorConfig, DefaultsAreValid) {
    auto s =
        common::Settings::Load(OrchestratorSettingSpecs(), "", kOrchestratorEnvPrefix, {}, NoEnv());
    ASSERT_TRUE(s);
    auto c = BuildOrchestratorConfig(*s);
    ASSERT_TRUE(c) << c.error().message;
    EXPECT_EQ(c->server.port, 8080);
    EXPECT_EQ(c->nodes.heartbeat_interval, std::chrono::seconds{15});
    EXPECT_EQ(c->nodes.offline_after, std::chrono::minutes{2});
    EXPECT_LE(c->heartbeat_flush_interval, std::chrono::seconds{1});
}

TEST(OrchestratorConfig, RejectsInconsistentValues) {
    for (const char* bad : {"nodes.offline_after=10s", "nodes.heartbeat_flush_interval=5s",
                            "server.port=99999", "server.io_threads=0"}) {
        auto s = common::Settings::Load(OrchestratorSettingSpecs(), "", kOrchestratorEnvPrefix,
                                        {bad, "nodes.heartbeat_interval=15s"}, NoEnv());
        ASSERT_TRUE(s);
        EXPECT_FALSE(BuildOrchestratorConfig(*s)) << bad;
    }
}

TEST(OrchestratorConfig, ChainAndPayoutsAreOffByDefault) {
    auto s =
        common::Settings::Load(OrchestratorSettingSpecs(), "", kOrchestratorEnvPrefix, {}, NoEnv());
    ASSERT_TRUE(s);
    auto c = BuildOrchestratorConfig(*s);
    ASSERT_TRUE(c) << c.error().message;
    EXPECT_FALSE(c->chain.enabled);
    EXPECT_FALSE(c->payouts.enabled);
    EXPECT_EQ(c->payouts.options.interval, std::chrono::hours{24 * 7});
    EXPECT_EQ(c->payouts.options.minimum, domain::Amount::Micros(10'000'000));
}

TEST(OrchestratorConfig, ChainAndPayoutSettings) {
    auto s = common::Settings::Load(
        OrchestratorSettingSpecs(), "", kOrchestratorEnvPrefix,
        {"chain.enabled=true", "chain.rpc_url=http://127.0.0.1:8545", "chain.poll_interval=2s",
         "chain.start_block=1234", "chain.max_block_range=100",
         "billing.deposit_address=0x1111111111111111111111111111111111111111",
         "billing.deposit_chain_id=31337", "billing.deposit_confirmations=3",
         "payouts.enabled=true", "payouts.interval=1h", "payouts.minimum=2.5",
         "payouts.treasury_key_file=/tmp/t.key", "payouts.gas_limit_cap=90000",
         "payouts.max_fee_wei=1000", "payouts.max_priority_fee_wei=10", "payouts.max_attempts=5",
         "payouts.replace_after_blocks=7"},
        NoEnv());
    ASSERT_TRUE(s);
    auto c = BuildOrchestratorConfig(*s);
    ASSERT_TRUE(c) << c.error().message;
    EXPECT_TRUE(c->chain.enabled);
    EXPECT_EQ(c->chain.rpc_url, "http://127.0.0.1:8545");
    EXPECT_EQ(c->chain.poll_interval, std::chrono::seconds{2});
    EXPECT_EQ(c->chain.start_block, 1234u);
    EXPECT_EQ(c->chain.max_block_range, 100u);
    EXPECT_TRUE(c->payouts.enabled);
    EXPECT_EQ(c->payouts.options.interval, std::chrono::hours{1});
    EXPECT_EQ(c->payouts.options.minimum, domain::Amount::Micros(2'500'000));
    EXPECT_EQ(c->payouts.treasury_key_file, "/tmp/t.key");
    EXPECT_EQ(c->payouts.options.sender.gas_limit_cap, 90'000u);
    EXPECT_EQ(c->payouts.options.sender.max_fee, chain::U256(1000));
    EXPECT_EQ(c->payouts.options.sender.max_priority_fee, chain::U256(10));
    EXPECT_EQ(c->payouts.options.sender.max_attempts, 5);
    EXPECT_EQ(c->payouts.options.sender.replace_after_blocks, 7u);
    EXPECT_EQ(c->payouts.options.sender.chain_id, 31337u);
    EXPECT_EQ(c->payouts.options.sender.confirmations, 3u);
}

TEST(OrchestratorConfig, RejectsIncompleteChainAndPayoutSettings) {
    const std::string deposit =
        "billing.deposit_address=0x1111111111111111111111111111111111111111";
    const std::vector<std::vector<std::string>> bad = {
        {"chain.enabled=true", deposit},                             // no rpc_url
        {"chain.enabled=true", "chain.rpc_url=http://127.0.0.1:1"},  // no deposit address
        {"chain.enabled=true", "chain.rpc_url=http://127.0.0.1:1", deposit,
         "billing.deposit_confirmations=0"},
        {"payouts.enabled=true"},  // chain off
        {"payouts.minimum=0"},
        {"payouts.minimum=-1"},
        {"payouts.minimum=1.0000001"},
        {"payouts.max_fee_wei=12abc"},
        {"payouts.max_fee_wei=10", "payouts.max_priority_fee_wei=11"},
        {"chain.poll_interval=10ms"},
        {"chain.max_block_range=0"},
    };
    for (const auto& overrides : bad) {
        auto s = common::Settings::Load(OrchestratorSettingSpecs(), "", kOrchestratorEnvPrefix,
                                        overrides, NoEnv());
        ASSERT_TRUE(s);
        EXPECT_FALSE(BuildOrchestratorConfig(*s)) << overrides.front();
    }
}

// deploy/orchestrator.toml documents every setting: it must parse and hold exactly our keys.
TEST(OrchestratorConfig, ExampleFileDocumentsEverySetting) {
    const std::string path = std::string(DECLOUD_SOURCE_DIR) + "/deploy/orchestrator.toml";
    auto s = common::Settings::Load(OrchestratorSettingSpecs(), path, kOrchestratorEnvPrefix, {},
                                    NoEnv());
    ASSERT_TRUE(s) << s.error().message;
    ASSERT_TRUE(BuildOrchestratorConfig(*s));
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    for (const auto& spec : OrchestratorSettingSpecs()) {
        const auto leaf = spec.key.substr(spec.key.rfind('.') + 1);
        EXPECT_TRUE(std::regex_search(text.str(), std::regex("(^|\\n)#? ?" + leaf + " = ")))
            << spec.key << " is not documented in deploy/orchestrator.toml";
    }
}

}  // namespace
}  // namespace decloud::orchestrator
