#pragma once

#include <functional>
#include <memory>

#include <prometheus/registry.h>
#include <boost/asio/thread_pool.hpp>

#include "decloud/net/http_server.hpp"
#include "orchestrator/app/auth_service.hpp"
#include "orchestrator/app/node_service.hpp"

namespace decloud::orchestrator::api {

struct ApiContext {
    app::NodeService* nodes = nullptr;
    app::AuthService* auth = nullptr;
    boost::asio::thread_pool* blocking = nullptr;  // where repository calls run
    std::shared_ptr<prometheus::Registry> registry;
    std::function<common::Status()> readiness;  // database reachable, migrations applied
};

// Maps an Error to its HTTP status and an application/problem+json body.
net::Response ErrorResponse(const net::RequestContext& ctx, const common::Error& error);

// /api/nodes/... (registration, heartbeats, queries).
void AddNodeRoutes(net::Router& router, std::shared_ptr<ApiContext> api);
// /api/auth/... (wallet sign-in, refresh, logout) and /api/users/me.
void AddAuthRoutes(net::Router& router, std::shared_ptr<ApiContext> api);
// /healthz, /readyz, /metrics.
void AddOperationalRoutes(net::Router& router, std::shared_ptr<ApiContext> api);

nlohmann::json NodeViewToJson(const app::NodeView& view);

}  // namespace decloud::orchestrator::api
