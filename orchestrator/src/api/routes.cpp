#include "orchestrator/api/routes.hpp"

#include <spdlog/spdlog.h>

#include <charconv>

#include "api_support.hpp"
#include "decloud/common/metrics.hpp"
#include "decloud/net/blocking.hpp"
#include "orchestrator/api/command_channels.hpp"
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
        case ErrorCode::kUnprocessable:
            return http::status::unprocessable_entity;
        case ErrorCode::kUnauthenticated:
            return http::status::unauthorized;
        case ErrorCode::kPermissionDenied:
            return http::status::forbidden;
        case ErrorCode::kPaymentRequired:
            return http::status::payment_required;
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
        case ErrorCode::kUnprocessable:
            return "Cannot be satisfied";
        case ErrorCode::kUnauthenticated:
            return "Authentication required";
        case ErrorCode::kPermissionDenied:
            return "Forbidden";
        case ErrorCode::kPaymentRequired:
            return "Payment required";
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

}  // namespace

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

common::Result<std::size_t> PageLimit(std::string_view target, std::size_t fallback,
                                      std::size_t max) {
    const auto text = QueryParam(target, "limit");
    if (text.empty()) return fallback;
    auto parsed = ParseLimit(text);
    if (!parsed) return parsed.error();
    if (*parsed < 1 || *parsed > max)
        return Error::InvalidArgument("limit: between 1 and " + std::to_string(max));
    return *parsed;
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

net::Response NoContent(const net::RequestContext& ctx) {
    net::Response resp{http::status::no_content, ctx.request.version()};
    resp.keep_alive(ctx.request.keep_alive());
    return resp;
}

asio::awaitable<common::Result<app::Principal>> RequireUser(ApiContext& api,
                                                            const net::RequestContext& ctx) {
    const std::string token(BearerToken(ctx.request));
    if (token.empty())
        co_return Error::Unauthenticated("sign in first: send 'Authorization: Bearer <token>'");
    co_return co_await net::RunBlocking(*api.blocking,
                                        [&] { return api.auth->Authenticate(token); });
}

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
        {"pricePerPointMicroUsdc", std::to_string(n.price_per_point_micro_usdc)},
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
            common::Result<proto::HeartbeatResponse> result = api->nodes->HeartbeatReply();
            if (api->nodes->TryHeartbeat(node_id, token, *hb) != app::FastAuth::kAccepted) {
                const std::string token_copy(token);
                result = co_await net::RunBlocking(*api->blocking, [&] {
                    return api->nodes->HeartbeatAfterLookup(node_id, token_copy, *hb);
                });
                if (!result) co_return ErrorResponse(ctx, result.error());
            }
            // Agents that relay or are relayed exchange their relay state; the others do not
            // touch the database for it.
            if (hb->relay && api->relays && api->relays->NeedsRelayExchange(node_id, *hb->relay)) {
                auto exchange = net::RunBlocking(*api->blocking, [&] {
                    if (auto st = api->relays->RecordReport(node_id, *hb->relay); !st)
                        spdlog::warn("relay report of node {}: {}", node_id, st.error().message);
                    return api->relays->DesiredState(node_id);
                });
                auto desired = co_await std::move(exchange);
                if (desired) {
                    result->relay = std::move(*desired);
                } else {
                    spdlog::warn("relay state for node {}: {}", node_id, desired.error().message);
                }
            }
            // Most heartbeats carry nothing back and never touch the database.
            // A node with its command channel open here gets its commands there, in order.
            if (api->vms && api->vms->HasCommands(node_id) &&
                !(api->channels && api->channels->IsConnected(node_id))) {
                auto commands = co_await net::RunBlocking(
                    *api->blocking, [&] { return api->vms->TakeCommands(node_id); });
                if (commands) {
                    result->commands = std::move(*commands);
                } else {
                    spdlog::warn("commands for node {} not delivered: {}", node_id,
                                 commands.error().message);
                }
            }
            co_return net::MakeJson(ctx.request, http::status::ok, proto::ToJson(*result));
        });

    // An operator sees their own nodes, an admin every node; others get 404 as for a node that
    // does not exist (the public view of nodes is the marketplace).
    router.Add(http::verb::get, "/api/nodes/{id}",
               [api](net::RequestContext& ctx) -> asio::awaitable<net::Response> {
                   auto who = co_await RequireUser(*api, ctx);
                   if (!who) co_return ErrorResponse(ctx, who.error());
                   const std::string node_id(ctx.Param("id"));
                   auto result = co_await net::RunBlocking(
                       *api->blocking, [&] { return api->nodes->Get(node_id); });
                   if (result && !who->admin && result->node.operator_wallet != who->wallet_address)
                       result = Error::NotFound("no node with id '" + node_id + "'");
                   if (!result) co_return ErrorResponse(ctx, result.error());
                   co_return net::MakeJson(ctx.request, http::status::ok, NodeViewToJson(*result));
               });

    router.Add(
        http::verb::get, "/api/nodes",
        [api](net::RequestContext& ctx) -> asio::awaitable<net::Response> {
            auto who = co_await RequireUser(*api, ctx);
            if (!who) co_return ErrorResponse(ctx, who.error());
            const std::string_view target = ctx.request.target();
            ports::NodeListQuery query;
            if (!who->admin) query.operator_wallet = who->wallet_address;
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

// 429 with Retry-After when the client address has spent its sign-in budget.
std::optional<net::Response> Throttle(ApiContext& api, const net::RequestContext& ctx) {
    if (!api.auth_limiter) return std::nullopt;
    const auto wait = api.auth_limiter->Acquire(ctx.remote_address.to_string(), api.clock->Now());
    if (!wait) return std::nullopt;
    const auto seconds = domain::RetryAfterSeconds(*wait);
    auto resp = ErrorResponse(
        ctx, Error{ErrorCode::kRateLimited, "too many sign-in requests from " +
                                                ctx.remote_address.to_string() + "; retry in " +
                                                std::to_string(seconds) + " s"});
    resp.set(http::field::retry_after, std::to_string(seconds));
    return resp;
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
                   if (auto limited = Throttle(*api, ctx)) co_return std::move(*limited);
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
            if (auto limited = Throttle(*api, ctx)) co_return std::move(*limited);
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
                   if (auto limited = Throttle(*api, ctx)) co_return std::move(*limited);
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
            if (auto limited = Throttle(*api, ctx)) co_return std::move(*limited);
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
}

namespace {

json SshKeyToJson(const ports::SshKeyRecord& k) {
    return json{{"id", k.id},
                {"name", k.name},
                {"algorithm", k.algorithm},
                {"type", k.key_type},
                {"bits", k.bits},
                {"fingerprint", k.fingerprint},
                {"publicKey", k.authorized_key},
                {"createdAt", common::FormatRfc3339(k.created_at)}};
}

json UserToJson(const app::UserView& v, const app::Principal& who) {
    return json{
        {"walletAddress", v.user.wallet_address},
        {"admin", who.admin},
        {"tokenExpiresAt", common::FormatRfc3339(who.expires_at)},
        {"createdAt", common::FormatRfc3339(v.user.created_at)},
        {"lastSignInAt", common::FormatRfc3339(v.user.last_sign_in_at)},
        {"walletPublicKey",
         v.user.wallet_public_key.empty() ? json(nullptr) : json("0x" + v.user.wallet_public_key)},
        {"encryptionPublicKey",
         v.encryption_public_key.empty() ? json(nullptr) : json("0x" + v.encryption_public_key)},
        {"encryptionKeySource", v.encryption_key_source},
        {"encryptionKeyUpdatedAt", OptionalTime(v.user.encryption_key_updated_at)}};
}

}  // namespace

// A JSON object body, or the reason it is not one.
common::Result<json> JsonObjectBody(const net::Request& req) {
    if (!IsJsonContentType(req))
        return Error::InvalidArgument("Content-Type must be application/json");
    auto parsed = proto::ParseJson(req.body());
    if (!parsed) return parsed.error();
    if (!parsed->is_object()) return Error::InvalidArgument("body must be a JSON object");
    return parsed;
}

net::Handler ForUser(std::shared_ptr<ApiContext> api, UserHandler handler) {
    return [api, handler = std::move(handler)](
               net::RequestContext& ctx) -> asio::awaitable<net::Response> {
        auto who = co_await RequireUser(*api, ctx);
        if (!who) co_return ErrorResponse(ctx, who.error());
        co_return co_await handler(ctx, *who);
    };
}

void AddUserRoutes(net::Router& router, std::shared_ptr<ApiContext> api) {
    router.Add(
        http::verb::get, "/api/users/me",
        ForUser(api,
                [api](net::RequestContext& ctx,
                      const app::Principal& who) -> asio::awaitable<net::Response> {
                    auto v = co_await net::RunBlocking(
                        *api->blocking, [&] { return api->users->Profile(who.wallet_address); });
                    if (!v) co_return ErrorResponse(ctx, v.error());
                    co_return net::MakeJson(ctx.request, http::status::ok, UserToJson(*v, who));
                }));

    router.Add(
        http::verb::put, "/api/users/me/encryption-key",
        ForUser(api,
                [api](net::RequestContext& ctx,
                      const app::Principal& who) -> asio::awaitable<net::Response> {
                    auto fields = StringFields(ctx.request, {"publicKey"});
                    if (!fields) co_return ErrorResponse(ctx, fields.error());
                    auto v = co_await net::RunBlocking(*api->blocking, [&] {
                        return api->users->SetEncryptionKey(who.wallet_address, (*fields)[0]);
                    });
                    if (!v) co_return ErrorResponse(ctx, v.error());
                    co_return net::MakeJson(ctx.request, http::status::ok, UserToJson(*v, who));
                }));

    router.Add(http::verb::delete_, "/api/users/me/encryption-key",
               ForUser(api,
                       [api](net::RequestContext& ctx,
                             const app::Principal& who) -> asio::awaitable<net::Response> {
                           auto v = co_await net::RunBlocking(*api->blocking, [&] {
                               return api->users->ClearEncryptionKey(who.wallet_address);
                           });
                           if (!v) co_return ErrorResponse(ctx, v.error());
                           co_return net::MakeJson(ctx.request, http::status::ok,
                                                   UserToJson(*v, who));
                       }));

    router.Add(http::verb::get, "/api/users/me/ssh-keys",
               ForUser(api,
                       [api](net::RequestContext& ctx,
                             const app::Principal& who) -> asio::awaitable<net::Response> {
                           auto keys = co_await net::RunBlocking(*api->blocking, [&] {
                               return api->users->ListSshKeys(who.wallet_address);
                           });
                           if (!keys) co_return ErrorResponse(ctx, keys.error());
                           json items = json::array();
                           for (const auto& k : *keys) items.push_back(SshKeyToJson(k));
                           co_return net::MakeJson(ctx.request, http::status::ok,
                                                   {{"sshKeys", std::move(items)}});
                       }));

    router.Add(http::verb::post, "/api/users/me/ssh-keys",
               ForUser(api,
                       [api](net::RequestContext& ctx,
                             const app::Principal& who) -> asio::awaitable<net::Response> {
                           auto body = JsonObjectBody(ctx.request);
                           if (!body) co_return ErrorResponse(ctx, body.error());
                           const auto key_it = body->find("publicKey");
                           if (key_it == body->end() || !key_it->is_string())
                               co_return ErrorResponse(
                                   ctx, Error::InvalidArgument("publicKey: a string is required"));
                           std::optional<std::string> name;
                           if (const auto it = body->find("name"); it != body->end()) {
                               if (!it->is_string())
                                   co_return ErrorResponse(
                                       ctx, Error::InvalidArgument("name: must be a string"));
                               name = it->get<std::string>();
                           }
                           const std::string line = key_it->get<std::string>();
                           auto added = co_await net::RunBlocking(*api->blocking, [&] {
                               return api->users->AddSshKey(who.wallet_address, name, line);
                           });
                           if (!added) co_return ErrorResponse(ctx, added.error());
                           auto resp = net::MakeJson(ctx.request, http::status::created,
                                                     SshKeyToJson(*added));
                           resp.set(http::field::location, "/api/users/me/ssh-keys/" + added->id);
                           co_return resp;
                       }));

    router.Add(http::verb::get, "/api/users/me/ssh-keys/{id}",
               ForUser(api,
                       [api](net::RequestContext& ctx,
                             const app::Principal& who) -> asio::awaitable<net::Response> {
                           const std::string id(ctx.Param("id"));
                           auto key = co_await net::RunBlocking(*api->blocking, [&] {
                               return api->users->GetSshKey(who.wallet_address, id);
                           });
                           if (!key) co_return ErrorResponse(ctx, key.error());
                           co_return net::MakeJson(ctx.request, http::status::ok,
                                                   SshKeyToJson(*key));
                       }));

    router.Add(http::verb::delete_, "/api/users/me/ssh-keys/{id}",
               ForUser(api,
                       [api](net::RequestContext& ctx,
                             const app::Principal& who) -> asio::awaitable<net::Response> {
                           const std::string id(ctx.Param("id"));
                           auto st = co_await net::RunBlocking(*api->blocking, [&] {
                               return api->users->RemoveSshKey(who.wallet_address, id);
                           });
                           if (!st) co_return ErrorResponse(ctx, st.error());
                           co_return NoContent(ctx);
                       }));

    // Platform operation: end every session of a wallet (for example after a key leak).
    router.Add(
        http::verb::delete_, "/api/admin/users/{wallet}/sessions",
        ForUser(api,
                [api](net::RequestContext& ctx,
                      const app::Principal& who) -> asio::awaitable<net::Response> {
                    if (!who.admin)
                        co_return ErrorResponse(
                            ctx, Error::PermissionDenied(
                                     "this operation needs an admin wallet (auth.admin_wallets)"));
                    const std::string wallet(ctx.Param("wallet"));
                    auto revoked = co_await net::RunBlocking(
                        *api->blocking, [&] { return api->auth->RevokeAllSessions(wallet); });
                    if (!revoked) co_return ErrorResponse(ctx, revoked.error());
                    co_return net::MakeJson(ctx.request, http::status::ok,
                                            {{"revokedSessions", *revoked}});
                }));
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
