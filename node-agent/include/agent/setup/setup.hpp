#pragma once

#include <cstdint>
#include <istream>
#include <ostream>
#include <string>
#include <string_view>

#include "decloud/common/result.hpp"

namespace CLI {
class App;
}

namespace decloud::agent::setup {

// `decloud-agent setup`: the first run of a node owner. Exit codes of RunSetup, one per kind of
// failure so scripts can tell them apart.
inline constexpr int kSetupOk = 0;
inline constexpr int kSetupBadInput = 2;       // a flag or an answer is invalid, or missing
inline constexpr int kSetupConfigFailed = 3;   // the config cannot be read, rendered or written
inline constexpr int kSetupPrerequisites = 4;  // libvirt, KVM (when forced), WireGuard, nftables
inline constexpr int kSetupBenchmark = 5;      // discovery or the CPU benchmark failed
inline constexpr int kSetupRegistration = 6;   // the orchestrator did not register the node

inline constexpr const char* kDefaultConfigPath = "/etc/decloud/agent.toml";

struct SetupOptions {
    std::string config_path = kDefaultConfigPath;
    std::string orchestrator_url;  // empty: ask (or keep the file's when non-interactive)
    std::string operator_wallet;   // empty: ask (or keep the file's when non-interactive)
    bool non_interactive = false;
    bool skip_registration = false;  // checks and benchmark only (for a node prepared offline)
};

struct SetupAnswers {
    std::string orchestrator_url;
    std::string operator_wallet;
};

// Registers the `setup` subcommand and its flags on `cli`; `options` must outlive parsing.
CLI::App* AddSetupCommand(CLI::App& cli, SetupOptions& options);

// An http(s) URL with a host, as the agent's config accepts it; trailing '/' removed.
common::Result<std::string> ValidateOrchestratorUrl(std::string_view url);
// An Ethereum address (EIP-55 when mixed case); returns the checksummed form.
common::Result<std::string> ValidateOperatorWallet(std::string_view wallet);

// The agent's default configuration (deploy/agent.toml, built in).
std::string_view DefaultAgentConfig();

// `template_text` (a TOML agent config with its comments) with orchestrator.url and
// node.operator_wallet set; every other line is kept as it is. A key or table the text lacks is
// added. Pure.
common::Result<std::string> RenderAgentConfig(std::string_view template_text,
                                              const SetupAnswers& answers);

// The value of `table`.`key` when it is a plain TOML basic string on its own line, else empty.
std::string ReadTomlString(std::string_view text, std::string_view table, std::string_view key);

// The whole first run (see kSetup* for the exit codes). Talks to the operator on in/out,
// problems go to err. Needs root for the system paths (libvirt, nftables, /etc/decloud).
int RunSetup(const SetupOptions& options, const std::string& agent_version, std::istream& in,
             std::ostream& out, std::ostream& err);

}  // namespace decloud::agent::setup
