#pragma once

// A real EVM node for tests: anvil (npm @foundry-rs/anvil-linux-amd64, installed by
// `npm ci` in tests/tools/chain) on a free loopback port, killed by pid when the object goes.
// Also compiles the test token (TestUsdc.sol, 6 decimals) with solc-js.

#include <cstdint>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "decloud/testing/process.hpp"

namespace decloud::testing {

// anvil's well-known development accounts (mnemonic "test test ... junk"), funded with ETH.
inline constexpr const char* kAnvilKey0 =
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
inline constexpr const char* kAnvilKey1 =
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
inline constexpr const char* kAnvilKey2 =
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a";

class Anvil {
  public:
    // Starts anvil with auto-mining (one block per transaction) and waits until it answers.
    // Throws if the npm package is not installed or anvil does not come up in time.
    explicit Anvil(std::uint64_t chain_id = 31337);
    ~Anvil();
    Anvil(const Anvil&) = delete;
    Anvil& operator=(const Anvil&) = delete;

    std::uint16_t port() const { return port_; }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
    std::uint64_t chain_id() const { return chain_id_; }
    pid_t pid() const { return process_->pid(); }
    std::string Log() const { return process_->Log(); }

    // A blocking JSON-RPC call for test set-up; throws on a transport or JSON-RPC error.
    nlohmann::json Rpc(const std::string& method, nlohmann::json params = nlohmann::json::array());

  private:
    std::uint64_t chain_id_;
    std::uint16_t port_ = 0;
    std::unique_ptr<TempDir> dir_;
    std::unique_ptr<ChildProcess> process_;
};

// The anvil executable from the npm package; throws naming `npm ci` if it is missing.
std::string AnvilExecutable();
// Creation bytecode ("0x...") of TestUsdc, compiled by solc-js on the first call of the process;
// throws on failure.
std::string CompileTestToken();

}  // namespace decloud::testing
