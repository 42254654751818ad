#include "decloud/testing/orchestrator.hpp"

namespace decloud::testing {

TestOrchestrator StartTestOrchestrator(const std::string& binary, const std::string& database_url,
                                       const std::string& dir,
                                       const std::vector<std::string>& settings) {
    TestOrchestrator out;
    out.port = FreeTcpPort();
    const auto origin = out.Origin();
    std::vector<std::string> sets{
        "server.port=" + std::to_string(out.port), "database.url=" + database_url,
        "auth.domain=" + origin, "auth.uri=http://" + origin, "auth.chain_ids=31337",
        "auth.key_file=" + dir + "/jwt.keys", "auth.rate_limit_per_minute=100000",
        "auth.rate_limit_burst=100000",
        // Tests about billing turn it back on; others need no deposit.
        "billing.require_balance_to_start=false"};
    sets.insert(sets.end(), settings.begin(), settings.end());
    std::vector<std::string> args;
    for (auto& s : sets) {
        args.push_back("--set");
        args.push_back(std::move(s));
    }
    out.process =
        std::make_unique<ChildProcess>(binary, std::move(args), dir + "/orchestrator.log");
    const auto port = out.port;
    out.ready = WaitUntil(
        [port] {
            auto r = HttpRequest(port, "GET", "/readyz");
            return r && r->status == 200;
        },
        std::chrono::seconds{60});
    return out;
}

}  // namespace decloud::testing
