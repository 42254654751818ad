// decloud-agent setup's pure parts: flag validation and config rendering, judged by the agent's
// real configuration parser.
#include <gtest/gtest.h>

#include <fstream>

#include "agent/config.hpp"
#include "agent/setup/setup.hpp"
#include "decloud/common/settings.hpp"
#include "decloud/testing/process.hpp"

namespace decloud::agent::setup {
namespace {

constexpr const char* kWallet = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";  // EIP-55 example

common::Result<AgentConfig> LoadWithAgentParser(const std::string& path) {
    auto settings = common::Settings::Load(
        AgentSettingSpecs(), path, kAgentEnvPrefix, {},
        [](const std::string&) -> std::optional<std::string> { return std::nullopt; });
    if (!settings) return settings.error();
    return BuildAgentConfig(*settings);
}

std::string WriteFile(const testing::TempDir& dir, const std::string& name,
                      const std::string& text) {
    const auto path = dir.path() + "/" + name;
    std::ofstream(path) << text;
    return path;
}

TEST(SetupValidation, AcceptsHttpAndHttpsUrlsAndDropsTrailingSlash) {
    EXPECT_EQ(*ValidateOrchestratorUrl("https://orch.example.org/"), "https://orch.example.org");
    EXPECT_EQ(*ValidateOrchestratorUrl("  http://10.0.0.1:8080  "), "http://10.0.0.1:8080");
    EXPECT_EQ(*ValidateOrchestratorUrl("https://example.org/decloud/"),
              "https://example.org/decloud");
}

TEST(SetupValidation, RefusesUrlsTheAgentCannotDial) {
    for (const char* bad : {"", "   ", "orch.example.org", "ftp://orch.example.org", "https://",
                            "http://host:notaport"}) {
        auto r = ValidateOrchestratorUrl(bad);
        EXPECT_FALSE(r) << bad;
        if (!r) {
            EXPECT_NE(r.error().message.find("orchestrator URL"), std::string::npos);
        }
    }
}

TEST(SetupValidation, WalletIsChecksummedAndBadChecksumsAreRefused) {
    EXPECT_EQ(*ValidateOperatorWallet(kWallet), kWallet);
    // All-lowercase carries no checksum: accepted and returned checksummed.
    EXPECT_EQ(*ValidateOperatorWallet("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"), kWallet);
    // One letter's case flipped: a typo EIP-55 exists to catch.
    auto typo = ValidateOperatorWallet("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD");
    ASSERT_FALSE(typo);
    EXPECT_NE(typo.error().message.find("operator wallet"), std::string::npos);
    EXPECT_FALSE(ValidateOperatorWallet(""));
    EXPECT_FALSE(ValidateOperatorWallet("0x1234"));
    EXPECT_FALSE(ValidateOperatorWallet("5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed00"));
}

TEST(SetupRender, DefaultConfigRendersToAFileTheAgentAccepts) {
    // The built-in default is deploy/agent.toml: the agent refuses it only for the empty wallet.
    ASSERT_NE(DefaultAgentConfig().find("[orchestrator]"), std::string_view::npos);
    testing::TempDir dir("decloud-setup");
    auto rendered = RenderAgentConfig(
        DefaultAgentConfig(), {.orchestrator_url = "https://orch.example.org:8443/",
                               .operator_wallet = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"});
    ASSERT_TRUE(rendered) << rendered.error().message;
    auto config = LoadWithAgentParser(WriteFile(dir, "agent.toml", *rendered));
    ASSERT_TRUE(config) << config.error().message;
    EXPECT_EQ(config->orchestrator_url, "https://orch.example.org:8443");
    EXPECT_EQ(config->profile.operator_wallet, kWallet);
    // Every other setting keeps deploy/agent.toml's value.
    EXPECT_EQ(config->state_dir, "/var/lib/decloud-agent");
    EXPECT_EQ(config->vms.libvirt_uri, "qemu:///system");
    EXPECT_EQ(config->ingress.port, 8088);
    EXPECT_EQ(config->server.port, 9090);
}

TEST(SetupRender, KeepsCommentsAndOtherKeysAndReplacesOnlyTheTwoValues) {
    const std::string text =
        "# operator notes stay\n"
        "[orchestrator]\n"
        "# where\n"
        "url = \"http://old.example.org\"\n"
        "ca_file = \"\"\n"
        "\n"
        "[node]\n"
        "operator_wallet = \"\"\n"
        "region = \"eu-west\"\n"
        "state_dir = \"/srv/decloud\"\n";
    auto rendered = RenderAgentConfig(
        text, {.orchestrator_url = "http://new.example.org", .operator_wallet = kWallet});
    ASSERT_TRUE(rendered);
    EXPECT_EQ(*rendered,
              "# operator notes stay\n"
              "[orchestrator]\n"
              "# where\n"
              "url = \"http://new.example.org\"\n"
              "ca_file = \"\"\n"
              "\n"
              "[node]\n"
              "operator_wallet = \"" +
                  std::string(kWallet) +
                  "\"\n"
                  "region = \"eu-west\"\n"
                  "state_dir = \"/srv/decloud\"\n");
    // Rendering what was rendered changes nothing.
    auto again = RenderAgentConfig(
        *rendered, {.orchestrator_url = "http://new.example.org", .operator_wallet = kWallet});
    ASSERT_TRUE(again);
    EXPECT_EQ(*again, *rendered);
    EXPECT_EQ(ReadTomlString(*rendered, "orchestrator", "url"), "http://new.example.org");
    EXPECT_EQ(ReadTomlString(*rendered, "node", "region"), "eu-west");
    EXPECT_EQ(ReadTomlString(*rendered, "node", "missing"), "");
}

TEST(SetupRender, AddsMissingTablesAndKeysThatTheAgentThenReads) {
    testing::TempDir dir("decloud-setup");
    // A url key elsewhere (another table) must not be mistaken for orchestrator.url.
    const std::string text = "[node]\nregion = \"us-east\"\n\n[vms]\nimage_base_url = \"\"\n";
    auto rendered = RenderAgentConfig(
        text, {.orchestrator_url = "http://127.0.0.1:8080", .operator_wallet = kWallet});
    ASSERT_TRUE(rendered);
    auto config = LoadWithAgentParser(WriteFile(dir, "agent.toml", *rendered));
    ASSERT_TRUE(config) << config.error().message << "\n" << *rendered;
    EXPECT_EQ(config->orchestrator_url, "http://127.0.0.1:8080");
    EXPECT_EQ(config->profile.operator_wallet, kWallet);
    EXPECT_EQ(config->profile.region, "us-east");
}

TEST(SetupRender, RefusesInvalidAnswersAndEscapesValues) {
    EXPECT_FALSE(RenderAgentConfig(DefaultAgentConfig(),
                                   {.orchestrator_url = "nope", .operator_wallet = kWallet}));
    EXPECT_FALSE(RenderAgentConfig(
        DefaultAgentConfig(), {.orchestrator_url = "http://a.example", .operator_wallet = "0x"}));
    // A quote cannot reach the file to break out of its TOML string: such a URL is refused.
    EXPECT_FALSE(RenderAgentConfig(
        "[orchestrator]\nurl = \"\"\n",
        {.orchestrator_url = "http://a.example/x\"y\nz = 1", .operator_wallet = kWallet}));
    // Escapes in existing values are read back as TOML means them.
    EXPECT_EQ(ReadTomlString("[node]\nregion = \"a\\\"b\\\\c\" # note\n", "node", "region"),
              "a\"b\\c");
}

TEST(SetupRun, NonInteractiveWithoutAWalletFailsWithExitCodeAndMessage) {
    testing::TempDir dir("decloud-setup");
    SetupOptions options;
    options.config_path = dir.path() + "/agent.toml";
    options.orchestrator_url = "http://127.0.0.1:1";
    options.non_interactive = true;
    std::istringstream in;
    std::ostringstream out, err;
    EXPECT_EQ(RunSetup(options, "test", in, out, err), kSetupBadInput);
    EXPECT_NE(err.str().find("operator wallet: required"), std::string::npos) << err.str();
    EXPECT_NE(err.str().find("--operator-wallet"), std::string::npos) << err.str();
    EXPECT_FALSE(std::ifstream(options.config_path).good());  // nothing written
}

TEST(SetupRun, InteractiveAsksAgainAfterABadAnswer) {
    testing::TempDir dir("decloud-setup");
    SetupOptions options;
    options.config_path = dir.path() + "/agent.toml";
    // A bad URL, then a good one; a wallet with a broken checksum, then end of input.
    std::istringstream in(
        "orch.example.org\nhttp://orch.example.org\n0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD\n");
    std::ostringstream out, err;
    EXPECT_EQ(RunSetup(options, "test", in, out, err), kSetupBadInput);
    EXPECT_NE(out.str().find("Orchestrator URL"), std::string::npos);
    EXPECT_NE(out.str().find("Operator wallet"), std::string::npos);
    EXPECT_NE(err.str().find("orchestrator URL 'orch.example.org'"), std::string::npos)
        << err.str();
    EXPECT_NE(err.str().find("operator wallet '0x5aAeb"), std::string::npos) << err.str();
    EXPECT_NE(err.str().find("no answer for Operator wallet"), std::string::npos) << err.str();
}

}  // namespace
}  // namespace decloud::agent::setup
