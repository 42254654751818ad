#include "decloud/testing/anvil.hpp"

#include <filesystem>
#include <mutex>
#include <stdexcept>

namespace decloud::testing {

namespace {

const std::string kToolsDir = DECLOUD_CHAIN_TOOLS_DIR;

std::string RequireFile(const std::string& path) {
    if (!std::filesystem::exists(path))
        throw std::runtime_error(path + " is missing: run `npm ci --prefix " + kToolsDir + "`");
    return path;
}

}  // namespace

std::string AnvilExecutable() {
    return RequireFile(kToolsDir + "/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil");
}

std::string CompileTestToken() {
    // Compiled once per test process: solc-js takes seconds.
    static std::mutex mutex;
    static std::string cached;
    std::lock_guard lock(mutex);
    if (!cached.empty()) return cached;
    RequireFile(kToolsDir + "/node_modules/solc/package.json");
    auto result = RunCommand(FindExecutable("node"),
                             {kToolsDir + "/compile.js", kToolsDir + "/TestUsdc.sol", "TestUsdc"},
                             {}, {}, std::chrono::seconds{60});
    if (result.exit_code != 0)
        throw std::runtime_error("solc-js failed (" + std::to_string(result.exit_code) +
                                 "): " + result.err);
    const auto out = nlohmann::json::parse(result.out);
    cached = out.at("bytecode").get<std::string>();
    return cached;
}

Anvil::Anvil(std::uint64_t chain_id) : chain_id_(chain_id) {
    const std::string executable = AnvilExecutable();
    dir_ = std::make_unique<TempDir>("decloud-anvil");
    // A port can be taken between FreeTcpPort and bind; try a few.
    for (int attempt = 0; attempt < 3; ++attempt) {
        port_ = FreeTcpPort();
        process_ = std::make_unique<ChildProcess>(
            executable,
            std::vector<std::string>{"--host", "127.0.0.1", "--port", std::to_string(port_),
                                     "--chain-id", std::to_string(chain_id_), "--accounts", "4"},
            dir_->path() + "/anvil.log",
            std::vector<std::pair<std::string, std::string>>{{"HOME", dir_->path()}});
        const bool up = WaitUntil(
            [&] {
                if (!process_->Running()) return true;
                auto reply = HttpRequest(
                    port_, "POST", "/", R"({"jsonrpc":"2.0","id":1,"method":"eth_chainId"})",
                    {{"Content-Type", "application/json"}}, std::chrono::seconds{2});
                return reply && reply->status == 200;
            },
            std::chrono::seconds{30}, std::chrono::milliseconds{50});
        if (up && process_->Running()) return;
        process_->Terminate(std::chrono::seconds{2});
    }
    throw std::runtime_error("anvil did not start: " + process_->Log());
}

Anvil::~Anvil() {
    if (process_) process_->Terminate(std::chrono::seconds{5});
}

nlohmann::json Anvil::Rpc(const std::string& method, nlohmann::json params) {
    const nlohmann::json request = {
        {"jsonrpc", "2.0"}, {"id", 1}, {"method", method}, {"params", std::move(params)}};
    auto reply = HttpRequest(port_, "POST", "/", request.dump(),
                             {{"Content-Type", "application/json"}}, std::chrono::seconds{30});
    if (!reply) throw std::runtime_error("anvil " + method + ": no answer");
    const auto response = nlohmann::json::parse(reply->body);
    if (response.contains("error"))
        throw std::runtime_error("anvil " + method + ": " + response["error"].dump());
    return response.at("result");
}

}  // namespace decloud::testing
