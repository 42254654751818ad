// /api/relays: relay assignments of CGNAT nodes, for admins (all) and operators (theirs).

#include <charconv>

#include "api_support.hpp"
#include "decloud/net/blocking.hpp"
#include "decloud/proto/field_reader.hpp"
#include "orchestrator/api/routes.hpp"

namespace decloud::orchestrator::api {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using common::Error;
using nlohmann::json;

namespace {

app::RelayViewer ViewerOf(const app::Principal& who) {
    return app::RelayViewer{who.wallet_address, who.admin};
}

json EventToJson(const domain::RelayEvent& e) {
    return json{{"at", common::FormatRfc3339(e.at)},
                {"from", e.from ? json(domain::ToString(*e.from)) : json(nullptr)},
                {"to", domain::ToString(e.to)},
                {"role", domain::ToString(e.role)},
                {"reason", e.reason}};
}

json MappingToJson(const domain::PortMapping& m) {
    return json{{"id", m.id},
                {"relayNodeId", m.relay_node_id},
                {"vmId", m.vm_id},
                {"vmPort", m.vm_port},
                {"publicPort", m.public_port},
                {"protocol", domain::ToString(m.protocol)},
                {"publicUrl", m.public_url},
                {"createdAt", common::FormatRfc3339(m.created_at)}};
}

// The body {"reason": "..."} of an operation on a relay (required: the body must carry it;
// otherwise an empty body means no reason). Any other field is refused.
common::Result<std::string> ReasonFromBody(const net::Request& request, bool required) {
    std::string reason;
    if (!required && request.body().empty()) return reason;
    auto body = JsonObjectBody(request);
    if (!body) return body.error();
    for (const auto& [key, value] : body->items())
        if (key != "reason") return Error::InvalidArgument("unknown field '" + key + "'");
    proto::FieldReader r(*body, "");
    if (auto st = r.String("reason", reason, required); !st) return st.error();
    return reason;
}

json RotationToJson(const ports::KeyRotation& r) {
    return json{{"nodeId", r.node_id},
                {"state", r.committing ? "committing" : "staging"},
                {"nextPublicKey", r.next_public_key},
                {"stagedOn", r.staged_on},
                {"reason", r.reason},
                {"requestedAt", common::FormatRfc3339(r.requested_at)},
                {"updatedAt", common::FormatRfc3339(r.updated_at)}};
}

// WireGuard key rotation of a node, for its operator and admins.
void AddKeyRotationRoutes(net::Router& router, const std::shared_ptr<ApiContext>& api) {
    router.Add(http::verb::get, "/api/nodes/{id}/relay-key",
               ForUser(api,
                       [api](net::RequestContext& ctx,
                             const app::Principal& who) -> asio::awaitable<net::Response> {
                           const std::string id(ctx.Param("id"));
                           const auto viewer = ViewerOf(who);
                           auto r = co_await net::RunBlocking(*api->blocking, [&] {
                               return api->relays->KeyRotationOf(id, viewer);
                           });
                           if (!r) co_return ErrorResponse(ctx, r.error());
                           co_return net::MakeJson(
                               ctx.request, http::status::ok,
                               json{{"rotation", *r ? RotationToJson(**r) : json(nullptr)}});
                       }));

    router.Add(http::verb::post, "/api/nodes/{id}/relay-key/rotate",
               ForUser(api,
                       [api](net::RequestContext& ctx,
                             const app::Principal& who) -> asio::awaitable<net::Response> {
                           const std::string id(ctx.Param("id"));
                           auto reason = ReasonFromBody(ctx.request, false);
                           if (!reason) co_return ErrorResponse(ctx, reason.error());
                           const auto viewer = ViewerOf(who);
                           auto r = co_await net::RunBlocking(*api->blocking, [&] {
                               return api->relays->RequestKeyRotation(id, viewer, *reason);
                           });
                           if (!r) co_return ErrorResponse(ctx, r.error());
                           co_return net::MakeJson(ctx.request, http::status::accepted,
                                                   RotationToJson(*r));
                       }));
}

// "{port}" of /api/vms/{id}/ports/{port} and ?protocol=tcp|udp (tcp by default).
struct VmPortSpec {
    std::uint16_t port = 0;
    domain::PortProtocol protocol = domain::PortProtocol::kTcp;
};

common::Result<VmPortSpec> ParseVmPort(const net::RequestContext& ctx) {
    VmPortSpec spec;
    const auto text = ctx.Param("port");
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size() || value == 0 || value > 65535)
        return Error::InvalidArgument("port: an integer from 1 to 65535, got '" +
                                      std::string(text) + "'");
    spec.port = static_cast<std::uint16_t>(value);
    const auto protocol = QueryParam(ctx.request.target(), "protocol");
    if (protocol.empty() || protocol == "tcp") {
        spec.protocol = domain::PortProtocol::kTcp;
    } else if (protocol == "udp") {
        spec.protocol = domain::PortProtocol::kUdp;
    } else {
        return Error::InvalidArgument("protocol: tcp or udp, got '" + protocol + "'");
    }
    return spec;
}

// PUT and DELETE of one port of the caller's VM: the same checks, then `change`, answering with
// the mapping it returns.
using PortChange = common::Result<domain::PortMapping> (app::RelayService::*)(const std::string&,
                                                                              std::uint16_t,
                                                                              domain::PortProtocol);

net::Handler OnePortRoute(const std::shared_ptr<ApiContext>& api, PortChange change) {
    return ForUser(api,
                   [api, change](net::RequestContext& ctx,
                                 const app::Principal& who) -> asio::awaitable<net::Response> {
                       const std::string id(ctx.Param("id"));
                       auto spec = ParseVmPort(ctx);
                       if (!spec) co_return ErrorResponse(ctx, spec.error());
                       auto mapping = co_await net::RunBlocking(
                           *api->blocking, [&]() -> common::Result<domain::PortMapping> {
                               if (auto vm = api->vms->Get(who.wallet_address, id); !vm)
                                   return vm.error();
                               return (api->relays->*change)(id, spec->port, spec->protocol);
                           });
                       if (!mapping) co_return ErrorResponse(ctx, mapping.error());
                       co_return net::MakeJson(ctx.request, http::status::ok,
                                               MappingToJson(*mapping));
                   });
}

// Public ports of the caller's VM through its node's relay. The VM is looked up as its owner
// first, so another wallet's VM is "not found", exactly like an unknown id.
void AddVmPortRoutes(net::Router& router, const std::shared_ptr<ApiContext>& api) {
    router.Add(http::verb::get, "/api/vms/{id}/ports",
               ForUser(api,
                       [api](net::RequestContext& ctx,
                             const app::Principal& who) -> asio::awaitable<net::Response> {
                           const std::string id(ctx.Param("id"));
                           auto mappings = co_await net::RunBlocking(
                               *api->blocking,
                               [&]() -> common::Result<std::vector<domain::PortMapping>> {
                                   if (auto vm = api->vms->Get(who.wallet_address, id); !vm)
                                       return vm.error();
                                   return api->relays->MappingsForVm(id);
                               });
                           if (!mappings) co_return ErrorResponse(ctx, mappings.error());
                           json items = json::array();
                           for (const auto& m : *mappings) items.push_back(MappingToJson(m));
                           co_return net::MakeJson(ctx.request, http::status::ok,
                                                   json{{"ports", std::move(items)}});
                       }));

    // Idempotent: forwarding a port already forwarded answers with its existing public URL.
    router.Add(http::verb::put, "/api/vms/{id}/ports/{port}",
               OnePortRoute(api, &app::RelayService::AllocatePortForVm));
    router.Add(http::verb::delete_, "/api/vms/{id}/ports/{port}",
               OnePortRoute(api, &app::RelayService::RemoveVmPort));
}

}  // namespace

json RelayAssignmentToJson(const domain::RelayAssignment& a) {
    return json{
        {"id", a.id},
        {"cgnatNodeId", a.cgnat_node_id},
        {"relayNodeId", a.relay_node_id},
        {"role", domain::ToString(a.role)},
        {"state", domain::ToString(a.state)},
        {"stateReason", a.state_reason},
        {"selectionReason", a.selection_reason},
        {"interfaceName", a.interface_name},
        {"tunnelNetwork", a.tunnel.network},
        {"relayTunnelAddress", a.tunnel.relay_address},
        {"cgnatTunnelAddress", a.tunnel.cgnat_address},
        {"relayEndpoint", a.relay_endpoint},
        {"relayPublicKey", a.relay_public_key},
        {"cgnatPublicKey", a.cgnat_public_key},
        {"repairAttempts", a.repair_attempts},
        {"createdAt", common::FormatRfc3339(a.created_at)},
        {"stateChangedAt", common::FormatRfc3339(a.state_changed_at)},
        {"updatedAt", common::FormatRfc3339(a.updated_at)},
        // Milliseconds with microsecond precision: as a decimal, since JSON numbers are doubles.
        {"tunnelRttMs",
         a.tunnel_rtt_us ? json(static_cast<double>(*a.tunnel_rtt_us) / 1000.0) : json(nullptr)},
        {"tunnelRttMeasuredAt",
         a.tunnel_rtt_at ? json(common::FormatRfc3339(*a.tunnel_rtt_at)) : json(nullptr)},
    };
}

void AddRelayRoutes(net::Router& router, std::shared_ptr<ApiContext> api) {
    AddVmPortRoutes(router, api);
    AddKeyRotationRoutes(router, api);
    router.Add(http::verb::get, "/api/relays",
               ForUser(api,
                       [api](net::RequestContext& ctx,
                             const app::Principal& who) -> asio::awaitable<net::Response> {
                           const auto viewer = ViewerOf(who);
                           auto list = co_await net::RunBlocking(
                               *api->blocking, [&] { return api->relays->List(viewer); });
                           if (!list) co_return ErrorResponse(ctx, list.error());
                           json items = json::array();
                           for (const auto& a : *list) items.push_back(RelayAssignmentToJson(a));
                           co_return net::MakeJson(ctx.request, http::status::ok,
                                                   json{{"relays", std::move(items)}});
                       }));

    // Platform-wide figures: any signed-in user may see them (they name no node).
    router.Add(http::verb::get, "/api/relays/stats",
               ForUser(api,
                       [api](net::RequestContext& ctx,
                             const app::Principal&) -> asio::awaitable<net::Response> {
                           auto s = co_await net::RunBlocking(*api->blocking,
                                                              [&] { return api->relays->Stats(); });
                           if (!s) co_return ErrorResponse(ctx, s.error());
                           json body{{"relays", s->relays},
                                     {"relayOffers", s->offers},
                                     {"cgnatNodesServed", s->cgnat_nodes_served},
                                     {"cgnatNodesAwaiting", s->awaiting},
                                     {"assignments", s->assignments},
                                     {"primaries", s->primaries},
                                     {"standbys", s->standbys},
                                     {"byState",
                                      {{"provisioning", s->provisioning},
                                       {"active", s->active},
                                       {"degraded", s->degraded},
                                       {"repairing", s->repairing}}},
                                     {"portMappings", s->port_mappings},
                                     {"bytesRelayed", s->bytes_relayed},
                                     {"failovers", s->failovers}};
                           co_return net::MakeJson(ctx.request, http::status::ok, body);
                       }));

    router.Add(http::verb::get, "/api/relays/{id}",
               ForUser(api,
                       [api](net::RequestContext& ctx,
                             const app::Principal& who) -> asio::awaitable<net::Response> {
                           const std::string id(ctx.Param("id"));
                           const auto viewer = ViewerOf(who);
                           auto d = co_await net::RunBlocking(
                               *api->blocking, [&] { return api->relays->Get(id, viewer); });
                           if (!d) co_return ErrorResponse(ctx, d.error());
                           json body = RelayAssignmentToJson(d->assignment);
                           json events = json::array();
                           for (const auto& e : d->events) events.push_back(EventToJson(e));
                           json mappings = json::array();
                           for (const auto& m : d->mappings) mappings.push_back(MappingToJson(m));
                           body["events"] = std::move(events);
                           body["portMappings"] = std::move(mappings);
                           co_return net::MakeJson(ctx.request, http::status::ok, body);
                       }));

    // Platform operation: force a repair of one tunnel, with the reason on record.
    router.Add(
        http::verb::post, "/api/relays/{id}/repair",
        ForUser(api,
                [api](net::RequestContext& ctx,
                      const app::Principal& who) -> asio::awaitable<net::Response> {
                    if (!who.admin)
                        co_return ErrorResponse(
                            ctx, Error::PermissionDenied(
                                     "this operation needs an admin wallet (auth.admin_wallets)"));
                    auto reason = ReasonFromBody(ctx.request, true);
                    if (!reason) co_return ErrorResponse(ctx, reason.error());
                    const std::string id(ctx.Param("id"));
                    auto repaired = co_await net::RunBlocking(
                        *api->blocking, [&] { return api->relays->Repair(id, *reason); });
                    if (!repaired) co_return ErrorResponse(ctx, repaired.error());
                    co_return net::MakeJson(ctx.request, http::status::accepted,
                                            RelayAssignmentToJson(*repaired));
                }));
}

}  // namespace decloud::orchestrator::api
