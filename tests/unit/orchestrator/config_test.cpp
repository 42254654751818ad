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
