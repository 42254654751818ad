#pragma once

#include <functional>
#include <memory>

#include <prometheus/registry.h>
#include <boost/asio/thread_pool.hpp>

#include "decloud/net/http_server.hpp"
#include "orchestrator/app/auth_service.hpp"
#include "orchestrator/app/billing_service.hpp"
#include "orchestrator/app/marketplace_service.hpp"
#include "orchestrator/app/node_service.hpp"
#include "orchestrator/app/payout_service.hpp"
#include "orchestrator/app/relay_service.hpp"
#include "orchestrator/app/template_service.hpp"
#include "orchestrator/app/user_service.hpp"
#include "orchestrator/app/vm_service.hpp"
#include "orchestrator/domain/rate_limiter.hpp"

namespace decloud::orchestrator::api {

class CommandChannels;
class ConsoleBridge;

struct ApiContext {
    app::NodeService* nodes = nullptr;
    app::AuthService* auth = nullptr;
    app::UserService* users = nullptr;
    app::VmService* vms = nullptr;
    app::RelayService* relays = nullptr;
    app::BillingService* billing = nullptr;
    // Earnings, payouts and pending deposits; null: /api/billing/earnings and payouts answer 503.
    app::ChainAccountService* chain_accounts = nullptr;
    app::MarketplaceService* market = nullptr;    // null: marketplace routes answer 503
    app::TemplateService* templates = nullptr;    // null: template routes answer 503
    CommandChannels* channels = nullptr;          // agents' command channels connected here
    ConsoleBridge* consoles = nullptr;            // serial console sessions bridged here
    domain::RateLimiter* auth_limiter = nullptr;  // per client address, on /api/auth/*
    const common::Clock* clock = nullptr;
    boost::asio::thread_pool* blocking = nullptr;  // where repository calls run
    std::shared_ptr<prometheus::Registry> registry;
    std::function<common::Status()> readiness;  // database reachable, migrations applied
};

// The caller's session from 'Authorization: Bearer <access token>', or kUnauthenticated.
boost::asio::awaitable<common::Result<app::Principal>> RequireUser(ApiContext& api,
                                                                   const net::RequestContext& ctx);

// Maps an Error to its HTTP status and an application/problem+json body.
net::Response ErrorResponse(const net::RequestContext& ctx, const common::Error& error);

// /api/nodes/... (registration, heartbeats, queries).
void AddNodeRoutes(net::Router& router, std::shared_ptr<ApiContext> api);
// /api/auth/... (wallet sign-in, refresh, logout), rate limited per client address.
void AddAuthRoutes(net::Router& router, std::shared_ptr<ApiContext> api);
// /api/users/me/... (profile, encryption key, SSH keys) and /api/admin/... (admin wallets only).
void AddUserRoutes(net::Router& router, std::shared_ptr<ApiContext> api);
// /api/vms/... for their owners, and the node side of the command channel
// (/api/nodes/{id}/commands/{commandId}/result, /api/nodes/{id}/vms/report).
void AddVmRoutes(net::Router& router, std::shared_ptr<ApiContext> api);
// /api/relays/... (relay assignments of CGNAT nodes: admins all, operators those involving their
// nodes; repair for admins; platform-wide stats).
void AddRelayRoutes(net::Router& router, std::shared_ptr<ApiContext> api);
// /api/marketplace/... (node search, featured nodes, profiles and reviews: public reads),
// PUT /api/nodes/{id}/profile (the node's operator) and POST /api/vms/{id}/review (the owner).
void AddMarketplaceRoutes(net::Router& router, std::shared_ptr<ApiContext> api);
// /api/templates... (seed and community templates, publishing, deprecating a version).
void AddTemplateRoutes(net::Router& router, std::shared_ptr<ApiContext> api);
// What a VM quote adds from the marketplace: the chosen node and its relay.
nlohmann::json MarketQuoteToJson(const app::MarketQuote& quote);
// /api/billing/... (balance, transactions, deposit info) and /api/admin/billing/invariants.
void AddBillingRoutes(net::Router& router, std::shared_ptr<ApiContext> api);
// /healthz, /readyz, /metrics.
void AddOperationalRoutes(net::Router& router, std::shared_ptr<ApiContext> api);

nlohmann::json NodeViewToJson(const app::NodeView& view);
nlohmann::json RelayAssignmentToJson(const domain::RelayAssignment& assignment);

}  // namespace decloud::orchestrator::api
