#include "orchestrator/api/routes.hpp"

#include <spdlog/spdlog.h>

#include <charconv>

#include "decloud/common/metrics.hpp"
#include "decloud/net/blocking.hpp"
#include "orchestrator/domain/node_health.hpp"

namespace decloud::orchestrator::api {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using common::Error;
using common::ErrorCode;
using nlohmann::json;

namespace {

http::status StatusFor(ErrorCode code) {
    switch (code) {
        case ErrorCode::kInvalidArgument:
            return http::status::bad_request;
        case ErrorCode::kNotFound:
            return http::status::not_found;
        case ErrorCode::kConflict:
            return http::status::conflict;
        case ErrorCode::kUnauthenticated:
            return http::status::unauthorized;
        case ErrorCode::kPermissionDenied:
            return http::status::forbidden;
        case ErrorCode::kPayloadTooLarge:
            return http::status::payload_too_large;
        case ErrorCode::kRateLimited:
            return http::status::too_many_requests;
        case ErrorCode::kUnavailable:
            return http::status::service_unavailable;
        case ErrorCode::kTimeout:
            return http::status::gateway_timeout;
        case ErrorCode::kInternal:
            return http::status::internal_server_error;
    }
    return http::status::internal_server_error;
}

std::string_view TitleFor(ErrorCode code) {
    switch (code) {
        case ErrorCode::kInvalidArgument:
            return "Invalid request";
        case ErrorCode::kNotFound:
            return "Not found";
        case ErrorCode::kConflict:
            return "Conflict";
        case ErrorCode::kUnauthenticated:
            return "Authentication required";
        case ErrorCode::kPermissionDenied:
            return "Forbidden";
        case ErrorCode::kPayloadTooLarge:
            return "Payload too large";
        case ErrorCode::kRateLimited:
            return "Too many requests";
        case ErrorCode::kUnavailable:
            return "Service unavailable";
        case ErrorCode::kTimeout:
            return "Timed out";
        case ErrorCode::kInternal:
            return "Internal error";
    }
    return "Internal error";
}

// "Bearer <token>" -> token; empty if absent or another scheme.
std::string_view BearerToken(const net::Request& req) {
    const auto it = req.find(http::field::authorization);
    if (it == req.end()) return {};
    std::string_view v = it->value();
    constexpr std::string_view kPrefix = "Bearer ";
    if (v.size() <= kPrefix.size() || !v.starts_with(kPrefix)) return {};
    return v.substr(kPrefix.size());
}

bool IsJsonContentType(const net::Request& req) {
    const auto it = req.find(http::field::content_type);
    if (it == req.end()) return false;
    std::string_view v = it->value();
    return v.starts_with("application/json");
}

common::Result<std::size_t> ParseLimit(std::string_view text) {
    std::size_t v = 0;
    const auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc{} || p != text.data() + text.size())
        return Error::InvalidArgument("limit: must be an integer");
    return v;
}

// Query string parameters of a request target (no percent-decoding needed for our keys).
std::string QueryParam(std::string_view target, std::string_view name) {
    const auto q = target.find('?');
    if (q == std::string_view::npos) return {};
    std::string_view rest = target.substr(q + 1);
    while (!rest.empty()) {
        const auto amp = rest.find('&');
        const auto pair = rest.substr(0, amp);
        const auto eq = pair.find('=');
        if (pair.substr(0, eq) == name)
            return eq == std::string_view::npos ? std::string() : std::string(pair.substr(eq + 1));
        if (amp == std::string_view::npos) break;
        rest.remove_prefix(amp + 1);
    }
    return {};
}

json OptionalTime(const std::optional<common::TimePoint>& t) {
    return t ? json(common::FormatRfc3339(*t)) : json(nullptr);
}

}  // namespace

net::Response ErrorResponse(const net::RequestContext& ctx, const Error& error) {
    const auto status = StatusFor(error.code);
    if (error.code == ErrorCode::kInternal || error.code == ErrorCode::kUnavailable)
        spdlog::warn("request {} {} {}: {}", ctx.request_id, ctx.request.method_string(), ctx.route,
                     error.message);
    auto resp =
        net::MakeProblem(ctx.request, status, TitleFor(error.code), error.message, ctx.request_id);
    if (error.code == ErrorCode::kUnauthenticated)
        resp.set(http::field::www_authenticate, "Bearer realm=\"decloud\"");
    return resp;
}

json NodeViewToJson(const app::NodeView& view) {
    const auto& n = view.node;
    return json{
        {"id", n.id},
        {"status", domain::ToString(n.status)},
        {"operatorWallet", n.operator_wallet},
        {"publicKey", n.public_key},
        {"region", n.region},
        {"tags", n.tags},
        {"reportedIp", n.reported_ip},
        {"observedIp", n.observed_ip},
        {"resources", proto::ToJson(n.resources)},
        {"computePoints", n.compute.points},
        {"benchmark",
         {{"eventsPerSecond", n.compute.events_per_second},
          {"threads", n.compute.benchmark_threads}}},
        {"agentVersion", n.agent_version},
        {"behindCgnat", n.cgnat.behind_cgnat},
        {"requiresRelay", n.cgnat.requires_relay},
        {"cgnatReason", n.cgnat.reason},
        {"cgnatOverride", n.cgnat_override ? json(*n.cgnat_override) : json(nullptr)},
        {"registeredAt", common::FormatRfc3339(n.registered_at)},
        {"updatedAt", common::FormatRfc3339(n.updated_at)},
        {"lastHeartbeatAt", OptionalTime(n.last_heartbeat_at)},
        {"usage", proto::ToJson(n.usage)},
        {"uptime30dPercent", view.uptime_ratio_30d * 100.0},
        {"heartbeats",
         {{"receivedToday", view.heartbeats_today},
          {"missedToday", view.missed_heartbeats_today},
          {"missedLast30Days", view.missed_heartbeats_30d}}},
    };
}

void AddNodeRoutes(net::Router& router, std::shared_ptr<ApiContext> api) {
    router.Add(http::verb::post, "/api/nodes/register",
               [api](net::RequestContext& ctx) -> asio::awaitable<net::Response> {
                   if (!IsJsonContentType(ctx.request))
                       co_return ErrorResponse(
                           ctx, Error::InvalidArgument("Content-Type must be application/json"));
                   std::string signature;
                   if (auto it = ctx.request.find(proto::kSignatureHeader); it != ctx.request.end())
                       signature = std::string(it->value());
                   const std::string observed = ctx.remote_address.to_string();
                   auto result = co_await net::RunBlocking(*api->blocking, [&] {
                       return api->nodes->Register(ctx.request.body(), signature, observed);
                   });
                   if (!result) co_return ErrorResponse(ctx, result.error());
                   co_return net::MakeJson(ctx.request, http::status::ok, proto::ToJson(*result));
               });

    router.Add(
        http::verb::post, "/api/nodes/{id}/heartbeat",
        [api](net::RequestContext& ctx) -> asio::awaitable<net::Response> {
            const std::string node_id(ctx.Param("id"));
            const auto token = BearerToken(ctx.request);
            if (token.empty())
                co_return ErrorResponse(
                    ctx, Error::Unauthenticated("send the node token as 'Authorization: Bearer'"));
            auto parsed = proto::ParseJson(ctx.request.body());
            if (!parsed) co_return ErrorResponse(ctx, parsed.error());
            auto hb = proto::DecodeHeartbeatRequest(*parsed);
            if (!hb) co_return ErrorResponse(ctx, hb.error());
            if (api->nodes->TryHeartbeat(node_id, token, *hb) == app::FastAuth::kAccepted)
                co_return net::MakeJson(ctx.request, http::status::ok,
                                        proto::ToJson(api->nodes->HeartbeatReply()));
            const std::string token_copy(token);
            auto result = co_await net::RunBlocking(*api->blocking, [&] {
                return api->nodes->HeartbeatAfterLookup(node_id, token_copy, *hb);
            });
            if (!result) co_return ErrorResponse(ctx, result.error());
            co_return net::MakeJson(ctx.request, http::status::ok, proto::ToJson(*result));
        });

    router.Add(http::verb::get, "/api/nodes/{id}",
               [api](net::RequestContext& ctx) -> asio::awaitable<net::Response> {
                   const std::string node_id(ctx.Param("id"));
                   auto result = co_await net::RunBlocking(
                       *api->blocking, [&] { return api->nodes->Get(node_id); });
                   if (!result) co_return ErrorResponse(ctx, result.error());
                   co_return net::MakeJson(ctx.request, http::status::ok, NodeViewToJson(*result));
               });

    router.Add(
        http::verb::get, "/api/nodes",
        [api](net::RequestContext& ctx) -> asio::awaitable<net::Response> {
            const std::string_view target = ctx.request.target();
            ports::NodeListQuery query;
            if (auto limit = QueryParam(target, "limit"); !limit.empty()) {
                auto parsed = ParseLimit(limit);
                if (!parsed) co_return ErrorResponse(ctx, parsed.error());
                query.limit = *parsed;
            }
            query.after_id = QueryParam(target, "cursor");
            if (auto status = QueryParam(target, "status"); !status.empty()) {
                query.status = domain::ParseNodeStatus(status);
                if (!query.status)
                    co_return ErrorResponse(
                        ctx, Error::InvalidArgument("status: expected online or offline"));
            }
            auto result =
                co_await net::RunBlocking(*api->blocking, [&] { return api->nodes->List(query); });
            if (!result) co_return ErrorResponse(ctx, result.error());
            json items = json::array();
            for (const auto& v : result->nodes) items.push_back(NodeViewToJson(v));
            json body{{"nodes", std::move(items)},
                      {"nextCursor",
                       result->next_cursor.empty() ? json(nullptr) : json(result->next_cursor)}};
            co_return net::MakeJson(ctx.request, http::status::ok, body);
        });
}

namespace {

// Parses a JSON object body and pulls out required string fields.
common::Result<std::vector<std::string>> StringFields(const net::Request& req,
                                                      std::initializer_list<const char*> names) {
    if (!IsJsonContentType(req))
        return Error::InvalidArgument("Content-Type must be application/json");
    auto parsed = proto::ParseJson(req.body());
    if (!parsed) return parsed.error();
    if (!parsed->is_object()) return Error::InvalidArgument("body must be a JSON object");
    std::vector<std::string> out;
    for (const char* name : names) {
        const auto it = parsed->find(name);
        if (it == parsed->end() || !it->is_string())
            return Error::InvalidArgument(std::string(name) + ": a string is required");
        out.push_back(it->get<std::string>());
    }
    return out;
}

json ChainIds(const app::AuthOptions& o) {
    json ids = json::array();
    for (auto id : o.chain_ids) ids.push_back(id);
    return ids;
}

}  // namespace

void AddAuthRoutes(net::Router& router, std::shared_ptr<ApiContext> api) {
    router.Add(http::verb::get, "/api/auth/nonce",
               [api](net::RequestContext& ctx) -> asio::awaitable<net::Response> {
                   auto issued = co_await net::RunBlocking(*api->blocking,
                                                           [&] { return api->auth->IssueNonce(); });
                   if (!issued) co_return ErrorResponse(ctx, issued.error());
                   const auto& o = api->auth->options();
                   auto resp =
                       net::MakeJson(ctx.request, http::status::ok,
                                     {{"nonce", issued->nonce},
                                      {"expiresAt", common::FormatRfc3339(issued->expires_at)},
                                      {"domain", o.domain},
                                      {"uri", o.uri},
                                      {"chainIds", ChainIds(o)}});
                   resp.set(http::field::cache_control, "no-store");
                   co_return resp;
               });

    router.Add(
        http::verb::post, "/api/auth/verify",
        [api](net::RequestContext& ctx) -> asio::awaitable<net::Response> {
            auto fields = StringFields(ctx.request, {"message", "signature"});
            if (!fields) co_return ErrorResponse(ctx, fields.error());
            auto signed_in = co_await net::RunBlocking(
                *api->blocking, [&] { return api->auth->Verify((*fields)[0], (*fields)[1]); });
            if (!signed_in) co_return ErrorResponse(ctx, signed_in.error());
            auto resp = net::MakeJson(
                ctx.request, http::status::ok,
                {{"token", signed_in->access_token},
                 {"refreshToken", signed_in->refresh_token},
                 {"walletAddress", signed_in->wallet_address},
                 {"expiresAt", common::FormatRfc3339(signed_in->access_expires_at)},
                 {"refreshExpiresAt", common::FormatRfc3339(signed_in->refresh_expires_at)}});
            resp.set(http::field::cache_control, "no-store");
            co_return resp;
        });

    router.Add(http::verb::post, "/api/auth/refresh",
               [api](net::RequestContext& ctx) -> asio::awaitable<net::Response> {
                   auto fields = StringFields(ctx.request, {"refreshToken"});
                   if (!fields) co_return ErrorResponse(ctx, fields.error());
                   auto refreshed = co_await net::RunBlocking(
                       *api->blocking, [&] { return api->auth->Refresh((*fields)[0]); });
                   if (!refreshed) co_return ErrorResponse(ctx, refreshed.error());
                   auto resp = net::MakeJson(
                       ctx.request, http::status::ok,
                       {{"token", refreshed->access_token},
                        {"walletAddress", refreshed->wallet_address},
                        {"expiresAt", common::FormatRfc3339(refreshed->access_expires_at)}});
                   resp.set(http::field::cache_control, "no-store");
                   co_return resp;
               });

    router.Add(
        http::verb::post, "/api/auth/logout",
        [api](net::RequestContext& ctx) -> asio::awaitable<net::Response> {
            const std::string token(BearerToken(ctx.request));
            if (token.empty())
                co_return ErrorResponse(
                    ctx,
                    Error::Unauthenticated("send the access token as 'Authorization: Bearer'"));
            auto st =
                co_await net::RunBlocking(*api->blocking, [&] { return api->auth->Logout(token); });
            if (!st) co_return ErrorResponse(ctx, st.error());
            net::Response resp{http::status::no_content, ctx.request.version()};
            resp.keep_alive(ctx.request.keep_alive());
            co_return resp;
        });

    router.Add(
        http::verb::get, "/api/users/me",
        [api](net::RequestContext& ctx) -> asio::awaitable<net::Response> {
            const std::string token(BearerToken(ctx.request));
            if (token.empty())
                co_return ErrorResponse(
                    ctx,
                    Error::Unauthenticated("sign in first: send 'Authorization: Bearer <token>'"));
            auto who = co_await net::RunBlocking(*api->blocking,
                                                 [&] { return api->auth->Authenticate(token); });
            if (!who) co_return ErrorResponse(ctx, who.error());
            co_return net::MakeJson(ctx.request, http::status::ok,
                                    {{"walletAddress", who->wallet_address},
                                     {"tokenExpiresAt", common::FormatRfc3339(who->expires_at)}});
        });
}

void AddOperationalRoutes(net::Router& router, std::shared_ptr<ApiContext> api) {
    router.Add(http::verb::get, "/healthz",
               [](net::RequestContext& ctx) -> asio::awaitable<net::Response> {
                   co_return net::MakeJson(ctx.request, http::status::ok, json{{"status", "ok"}});
               });
    router.Add(
        http::verb::get, "/readyz",
        [api](net::RequestContext& ctx) -> asio::awaitable<net::Response> {
            auto ready =
                co_await net::RunBlocking(*api->blocking, [&] { return api->readiness(); });
            if (!ready)
                co_return ErrorResponse(ctx,
                                        Error::Unavailable("not ready: " + ready.error().message));
            co_return net::MakeJson(ctx.request, http::status::ok, json{{"status", "ready"}});
        });
    router.Add(http::verb::get, "/metrics",
               [api](net::RequestContext& ctx) -> asio::awaitable<net::Response> {
                   net::Response resp{http::status::ok, ctx.request.version()};
                   resp.set(http::field::content_type, common::kMetricsContentType);
                   resp.body() = common::SerializeMetrics(*api->registry);
                   resp.keep_alive(ctx.request.keep_alive());
                   resp.prepare_payload();
                   co_return resp;
               });
}

}  // namespace decloud::orchestrator::api
