// proto/openapi.yaml describes exactly the routes the orchestrator serves: a route added without
// documentation, or documentation of a route that does not exist, fails here.

#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <set>

#include "orchestrator/api/console_routes.hpp"
#include "orchestrator/api/routes.hpp"

namespace decloud::orchestrator::api {
namespace {

using Operation = std::pair<std::string, std::string>;  // method, path

std::set<Operation> DocumentedOperations() {
    std::ifstream in(std::string(DECLOUD_SOURCE_DIR) + "/proto/openapi.yaml");
    EXPECT_TRUE(in.good());
    const std::regex path_line(R"(^  (/[^:\s]*):\s*$)");
    const std::regex method_line(R"(^    (get|post|put|patch|delete):)");
    std::set<Operation> out;
    std::string line, path;
    bool in_paths = false;
    while (std::getline(in, line)) {
        if (line == "paths:") {
            in_paths = true;
            continue;
        }
        if (!line.empty() && line[0] != ' ' && line[0] != '#') in_paths = false;
        if (!in_paths) continue;
        std::smatch m;
        if (std::regex_match(line, m, path_line))
            path = m[1];
        else if (std::regex_search(line, m, method_line))
            out.insert({m[1], path});
    }
    return out;
}

std::set<Operation> ServedOperations() {
    net::Router router;
    auto api = std::make_shared<ApiContext>();
    AddNodeRoutes(router, api);
    AddAuthRoutes(router, api);
    AddUserRoutes(router, api);
    AddVmRoutes(router, api);
    AddConsoleRoutes(router, api);
    AddRelayRoutes(router, api);
    AddBillingRoutes(router, api);
    AddMarketplaceRoutes(router, api);
    AddTemplateRoutes(router, api);
    AddOperationalRoutes(router, api);
    std::set<Operation> out;
    for (const auto& r : router.Routes()) {
        std::string method(boost::beast::http::to_string(r.method));
        std::transform(method.begin(), method.end(), method.begin(), ::tolower);
        out.insert({method, r.pattern});
    }
    return out;
}

TEST(OpenApiTest, DescribesExactlyTheServedRoutes) {
    const auto documented = DocumentedOperations();
    const auto served = ServedOperations();
    ASSERT_GT(served.size(), 10u);
    for (const auto& [method, path] : served)
        EXPECT_TRUE(documented.contains({method, path}))
            << method << " " << path << " is served but not in proto/openapi.yaml";
    for (const auto& [method, path] : documented)
        EXPECT_TRUE(served.contains({method, path}))
            << method << " " << path << " is documented but not served";
}

}  // namespace
}  // namespace decloud::orchestrator::api
