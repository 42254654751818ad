#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "decloud/testing/process.hpp"

namespace decloud::testing {

// A decloud-orchestrator process for a test: on a free loopback port, against `database_url`,
// with sign-in bound to http://127.0.0.1:<port> on chain 31337, its token key in `dir` and
// sign-in limits high enough not to get in the way, and VMs startable without a deposit. `settings`
// ("key=value") come last and win.
struct TestOrchestrator {
    std::unique_ptr<ChildProcess> process;
    std::uint16_t port = 0;
    bool ready = false;  // /readyz answered 200 within a minute

    std::string Origin() const { return "127.0.0.1:" + std::to_string(port); }
};

TestOrchestrator StartTestOrchestrator(const std::string& binary, const std::string& database_url,
                                       const std::string& dir,
                                       const std::vector<std::string>& settings = {});

}  // namespace decloud::testing
