// /api/vms: VMs for their owners; and the node side of the command channel.

#include <spdlog/spdlog.h>

#include "api_support.hpp"
#include "decloud/common/money.hpp"
#include "decloud/net/blocking.hpp"
#include "decloud/net/websocket.hpp"
#include "decloud/proto/field_reader.hpp"
#include "decloud/proto/vm_messages.hpp"
#include "orchestrator/api/command_channels.hpp"
#include "orchestrator/api/console_routes.hpp"
#include "orchestrator/api/routes.hpp"

namespace decloud::orchestrator::api {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using common::Error;
using common::Result;
using nlohmann::json;

namespace {

#define DECLOUD_TRY_STATUS(expr)                         \
    do {                                                 \
        if (auto st_ = (expr); !st_) return st_.error(); \
    } while (false)

Result<app::CreateVmRequest> ParseCreate(const json& body) {
    static const std::unordered_set<std::string> kKnown = {"name",          "cpuCores",
                                                           "memoryMib",     "diskGib",
                                                           "tier",          "gpu",
                                                           "region",        "tags",
                                                           "nodeId",        "requireKvm",
                                                           "image",         "sshKeyIds",
                                                           "userData",      "encryptedPassword",
                                                           "passwordHash",  "template",
                                                           "templateParams"};
    for (const auto& [key, value] : body.items())
        if (!kKnown.contains(key)) return Error::InvalidArgument("unknown field '" + key + "'");
    proto::FieldReader r(body, "");
    app::CreateVmRequest req;
    auto& q = req.requirements;
    DECLOUD_TRY_STATUS(r.String("name", req.name, true));
    DECLOUD_TRY_STATUS(r.Unsigned("cpuCores", q.cores, true));
    DECLOUD_TRY_STATUS(r.Unsigned("memoryMib", q.memory_mib, true));
    DECLOUD_TRY_STATUS(r.Unsigned("diskGib", q.disk_gib, true));
    std::string tier = "standard";
    DECLOUD_TRY_STATUS(r.String("tier", tier, false));
    const auto parsed_tier = domain::ParseQualityTier(tier);
    if (!parsed_tier)
        return Error::InvalidArgument("tier: one of guaranteed, standard, balanced, burstable");
    q.tier = *parsed_tier;
    if (const auto it = body.find("gpu"); it != body.end() && !it->is_null()) {
        if (!it->is_object()) return Error::InvalidArgument("gpu: must be an object");
        proto::FieldReader g(*it, "gpu");
        domain::GpuRequirement gpu;
        DECLOUD_TRY_STATUS(g.Unsigned("count", gpu.count, false));
        DECLOUD_TRY_STATUS(g.String("vendor", gpu.vendor, false));
        DECLOUD_TRY_STATUS(g.String("model", gpu.model, false));
        if (gpu.vendor.size() > 64 || gpu.model.size() > 128)
            return Error::InvalidArgument("gpu: vendor or model too long");
        q.gpu = gpu;
    }
    DECLOUD_TRY_STATUS(r.String("region", q.region, false));
    if (auto st = app::ValidateRegion(q.region); !st) return st.error();
    DECLOUD_TRY_STATUS(r.StringArray("tags", q.tags, false));
    if (auto st = app::ValidateTags(q.tags); !st) return st.error();
    DECLOUD_TRY_STATUS(r.String("nodeId", q.target_node_id, false));
    DECLOUD_TRY_STATUS(r.Bool("requireKvm", q.require_kvm, false));
    DECLOUD_TRY_STATUS(r.String("template", req.template_id, false));
    // With a template the image defaults to the template's.
    DECLOUD_TRY_STATUS(r.String("image", req.image, req.template_id.empty()));
    if (const auto it = body.find("templateParams"); it != body.end() && !it->is_null()) {
        if (!it->is_object()) return Error::InvalidArgument("templateParams: must be an object");
        req.template_params = *it;
    }
    DECLOUD_TRY_STATUS(r.StringArray("sshKeyIds", req.ssh_key_ids, false));
    DECLOUD_TRY_STATUS(r.String("userData", req.user_data, false));
    DECLOUD_TRY_STATUS(r.OptionalString("encryptedPassword", req.encrypted_password));
    DECLOUD_TRY_STATUS(r.OptionalString("passwordHash", req.password_hash));
    return req;
}

json VmToJson(const ports::VmRecord& vm) {
    const auto& q = vm.requirements;
    json gpu = nullptr;
    if (q.gpu)
        gpu = json{{"count", q.gpu->count}, {"vendor", q.gpu->vendor}, {"model", q.gpu->model}};
    return json{
        {"id", vm.id},
        {"name", vm.name},
        {"state", domain::ToString(vm.state)},
        {"stateReason", vm.state_reason},
        {"nodeId", vm.node_id.empty() ? json(nullptr) : json(vm.node_id)},
        {"nodeOffline", vm.node_offline},
        {"bootLogKept", vm.boot_log_kept},
        {"cpuCores", q.cores},
        {"memoryMib", q.memory_mib},
        {"diskGib", q.disk_gib},
        {"tier", domain::ToString(q.tier)},
        {"gpu", gpu},
        {"region", q.region},
        {"tags", q.tags},
        {"image", vm.image},
        {"template", vm.template_id.empty() ? json(nullptr) : json(vm.template_id)},
        {"templateParams", vm.template_params},
        {"sshKeyIds", vm.ssh_key_ids},
        {"encryptedPassword", vm.encrypted_password ? json(*vm.encrypted_password) : json(nullptr)},
        {"computePoints", vm.points},
        {"hourlyRateMicroUsdc", std::to_string(vm.hourly_rate_micro_usdc)},
        {"hourlyRateUsdc", common::FormatUsdc(vm.hourly_rate_micro_usdc)},
        {"addresses", vm.addresses},
        {"createdAt", common::FormatRfc3339(vm.created_at)},
        {"updatedAt", common::FormatRfc3339(vm.updated_at)},
    };
}

json PlacementToJson(const domain::Placement& p) {
    return json{{"nodeId", p.node_id},
                {"computePoints", p.points},
                {"hourlyRateMicroUsdc", std::to_string(p.hourly_rate_micro_usdc)},
                {"hourlyRateUsdc", common::FormatUsdc(p.hourly_rate_micro_usdc)},
                {"score", p.score}};
}

std::string IdempotencyKey(const net::Request& req) {
    const auto it = req.find("Idempotency-Key");
    return it == req.end() ? std::string() : std::string(it->value());
}

net::Handler VmAction(std::shared_ptr<ApiContext> api, domain::VmAction action) {
    return ForUser(api,
                   [api, action](net::RequestContext& ctx,
                                 const app::Principal& who) -> asio::awaitable<net::Response> {
                       const std::string id(ctx.Param("id"));
                       auto vm = co_await net::RunBlocking(*api->blocking, [&] {
                           return api->vms->Act(who.wallet_address, id, action);
                       });
                       if (!vm) co_return ErrorResponse(ctx, vm.error());
                       co_return net::MakeJson(ctx.request, http::status::accepted, VmToJson(*vm));
                   });
}

// Node endpoints authenticate with the node token, like heartbeats.
asio::awaitable<common::Status> RequireNode(ApiContext& api, const net::RequestContext& ctx,
                                            const std::string& node_id) {
    const std::string token(BearerToken(ctx.request));
    if (token.empty())
        co_return Error::Unauthenticated("send the node token as 'Authorization: Bearer'");
    co_return co_await net::RunBlocking(
        *api.blocking, [&] { return api.nodes->AuthenticateNode(node_id, token); });
}

}  // namespace

void AddVmRoutes(net::Router& router, std::shared_ptr<ApiContext> api) {
    // Public: what a VM can be made from without a template (the deploy form's choices).
    router.Add(
        http::verb::get, "/api/images",
        [api](net::RequestContext& ctx) -> asio::awaitable<net::Response> {
            json images = json::array();
            for (const auto& name : api->vms->options().images)
                images.push_back(json{{"name", name}});
            co_return net::MakeJson(ctx.request, http::status::ok, {{"images", std::move(images)}});
        });
    router.Add(http::verb::post, "/api/vms",
               ForUser(api,
                       [api](net::RequestContext& ctx,
                             const app::Principal& who) -> asio::awaitable<net::Response> {
                           auto body = JsonObjectBody(ctx.request);
                           if (!body) co_return ErrorResponse(ctx, body.error());
                           auto req = ParseCreate(*body);
                           if (!req) co_return ErrorResponse(ctx, req.error());
                           req->idempotency_key = IdempotencyKey(ctx.request);
                           auto created = co_await net::RunBlocking(*api->blocking, [&] {
                               return api->vms->Create(who.wallet_address, std::move(*req));
                           });
                           if (!created) co_return ErrorResponse(ctx, created.error());
                           auto resp = net::MakeJson(
                               ctx.request,
                               created->replayed ? http::status::ok : http::status::created,
                               VmToJson(created->vm));
                           resp.set(http::field::location, "/api/vms/" + created->vm.id);
                           if (created->replayed) resp.set("Idempotent-Replayed", "true");
                           co_return resp;
                       }));

    router.Add(http::verb::post, "/api/vms/quote",
               ForUser(api,
                       [api](net::RequestContext& ctx,
                             const app::Principal&) -> asio::awaitable<net::Response> {
                           auto body = JsonObjectBody(ctx.request);
                           if (!body) co_return ErrorResponse(ctx, body.error());
                           auto req = ParseCreate(*body);
                           if (!req) co_return ErrorResponse(ctx, req.error());
                           // With the marketplace wired, the quote also names the chosen
                           // node's relay (CGNAT); the placement is the same Schedule() either way.
                           auto market_quote = co_await net::RunBlocking(
                               *api->blocking, [&]() -> Result<app::MarketQuote> {
                                   if (api->market) return api->market->Quote(*req);
                                   auto q = api->vms->Quote(*req);
                                   if (!q) return q.error();
                                   return app::MarketQuote{std::move(*q), {}, false, {}, {}, {}};
                               });
                           if (!market_quote) co_return ErrorResponse(ctx, market_quote.error());
                           const auto* quote = &market_quote->quote;
                           json candidates = json::array();
                           for (const auto& p : quote->schedule.candidates)
                               candidates.push_back(PlacementToJson(p));
                           json rejections = json::array();
                           for (const auto& r : quote->schedule.rejections)
                               rejections.push_back(json{{"nodeId", r.node_id},
                                                         {"reason", domain::ToString(r.reason)},
                                                         {"detail", r.detail}});
                           json out{
                               {"placement", candidates.empty() ? json(nullptr) : candidates[0]},
                               {"candidates", std::move(candidates)},
                               {"rejections", std::move(rejections)},
                               {"explanation", quote->explanation}};
                           if (api->market) out.update(MarketQuoteToJson(*market_quote));
                           co_return net::MakeJson(ctx.request, http::status::ok, out);
                       }));

    router.Add(http::verb::get, "/api/vms",
               ForUser(api,
                       [api](net::RequestContext& ctx,
                             const app::Principal& who) -> asio::awaitable<net::Response> {
                           const std::string_view target = ctx.request.target();
                           std::size_t limit = 100;
                           if (auto text = QueryParam(target, "limit"); !text.empty()) {
                               auto parsed = ParseLimit(text);
                               if (!parsed) co_return ErrorResponse(ctx, parsed.error());
                               limit = *parsed;
                           }
                           const auto cursor = QueryParam(target, "cursor");
                           auto page = co_await net::RunBlocking(*api->blocking, [&] {
                               return api->vms->List(who.wallet_address, limit, cursor);
                           });
                           if (!page) co_return ErrorResponse(ctx, page.error());
                           json items = json::array();
                           for (const auto& vm : page->vms) items.push_back(VmToJson(vm));
                           co_return net::MakeJson(ctx.request, http::status::ok,
                                                   {{"vms", std::move(items)},
                                                    {"nextCursor", page->next_cursor.empty()
                                                                       ? json(nullptr)
                                                                       : json(page->next_cursor)}});
                       }));

    router.Add(http::verb::get, "/api/vms/{id}",
               ForUser(api,
                       [api](net::RequestContext& ctx,
                             const app::Principal& who) -> asio::awaitable<net::Response> {
                           const std::string id(ctx.Param("id"));
                           auto vm = co_await net::RunBlocking(*api->blocking, [&] {
                               return api->vms->Get(who.wallet_address, id);
                           });
                           if (!vm) co_return ErrorResponse(ctx, vm.error());
                           co_return net::MakeJson(ctx.request, http::status::ok, VmToJson(*vm));
                       }));

    router.Add(
        http::verb::get, "/api/vms/{id}/events",
        ForUser(api,
                [api](net::RequestContext& ctx,
                      const app::Principal& who) -> asio::awaitable<net::Response> {
                    const std::string id(ctx.Param("id"));
                    auto events = co_await net::RunBlocking(
                        *api->blocking, [&] { return api->vms->Events(who.wallet_address, id); });
                    if (!events) co_return ErrorResponse(ctx, events.error());
                    json items = json::array();
                    for (const auto& e : *events)
                        items.push_back(
                            json{{"at", common::FormatRfc3339(e.at)},
                                 {"from", e.from ? json(domain::ToString(*e.from)) : json(nullptr)},
                                 {"to", domain::ToString(e.to)},
                                 {"reason", e.reason}});
                    co_return net::MakeJson(ctx.request, http::status::ok,
                                            {{"events", std::move(items)}});
                }));

    router.Add(
        http::verb::get, "/api/vms/{id}/boot-log",
        ForUser(api,
                [api](net::RequestContext& ctx,
                      const app::Principal& who) -> asio::awaitable<net::Response> {
                    const std::string id(ctx.Param("id"));
                    auto log = co_await net::RunBlocking(
                        *api->blocking, [&] { return api->vms->BootLog(who.wallet_address, id); });
                    if (!log) co_return ErrorResponse(ctx, log.error());
                    co_return net::MakeJson(
                        ctx.request, http::status::ok,
                        {{"vmId", log->vm_id},
                         {"capturedAt", common::FormatRfc3339(log->captured_at)},
                         {"ranForSeconds", log->ran_for_s ? json(*log->ran_for_s) : json(nullptr)},
                         {"failedToStart", log->ran_for_s.has_value() &&
                                               *log->ran_for_s < domain::kBootWindowSeconds},
                         {"log", log->text}});
                }));

    router.Add(http::verb::post, "/api/vms/{id}/start", VmAction(api, domain::VmAction::kStart));
    router.Add(http::verb::post, "/api/vms/{id}/stop", VmAction(api, domain::VmAction::kStop));
    router.Add(http::verb::post, "/api/vms/{id}/reboot", VmAction(api, domain::VmAction::kReboot));
    router.Add(http::verb::delete_, "/api/vms/{id}", VmAction(api, domain::VmAction::kDelete));

    router.Add(http::verb::post, "/api/nodes/{id}/commands/{commandId}/result",
               [api](net::RequestContext& ctx) -> asio::awaitable<net::Response> {
                   const std::string node_id(ctx.Param("id"));
                   if (auto st = co_await RequireNode(*api, ctx, node_id); !st)
                       co_return ErrorResponse(ctx, st.error());
                   auto body = JsonObjectBody(ctx.request);
                   if (!body) co_return ErrorResponse(ctx, body.error());
                   auto result = proto::DecodeCommandResult(*body);
                   if (!result) co_return ErrorResponse(ctx, result.error());
                   if (result->command_id != ctx.Param("commandId"))
                       co_return ErrorResponse(
                           ctx,
                           Error::InvalidArgument("commandId: differs from the one in the path"));
                   auto st = co_await net::RunBlocking(
                       *api->blocking, [&] { return api->vms->CompleteCommand(node_id, *result); });
                   if (!st) co_return ErrorResponse(ctx, st.error());
                   co_return NoContent(ctx);
               });

    // The agent's command channel: pending commands are pushed as soon as they are queued; the
    // agent may send results back on it too ({"type": "result", ...CommandResult}).
    router.AddWebSocket(
        "/api/nodes/{id}/channel",
        [api](net::RequestContext& ctx,
              std::shared_ptr<net::WebSocketConnection> ws) -> asio::awaitable<void> {
            const std::string node_id(ctx.Param("id"));
            if (!api->channels) {
                ws->Close("this orchestrator has no command channels");
                co_return;
            }
            api->channels->Attach(node_id, ws);
            api->channels->Notify(node_id);
            spdlog::info("node {} opened its command channel", node_id);
            for (;;) {
                auto message = co_await ws->Read();
                if (!message) break;
                auto parsed = proto::ParseJson(*message);
                if (parsed && proto::IsConsoleMessage(*parsed)) {
                    auto console = proto::DecodeConsoleMessage(*parsed);
                    if (!console)
                        spdlog::warn("node {}: bad console message: {}", node_id,
                                     console.error().message);
                    else if (api->consoles)
                        api->consoles->OnAgentMessage(node_id, *console);
                    continue;
                }
                std::optional<proto::CommandResult> result;
                if (parsed && parsed->is_object() && parsed->value("type", "") == "result") {
                    if (auto decoded = proto::DecodeCommandResult(*parsed)) result = *decoded;
                }
                if (!result) {
                    ws->Close("unexpected message: only results are accepted on this channel");
                    break;
                }
                auto st = co_await net::RunBlocking(
                    *api->blocking, [&] { return api->vms->CompleteCommand(node_id, *result); });
                if (!st)
                    spdlog::warn("result of command {} from node {}: {}", result->command_id,
                                 node_id, st.error().message);
            }
            api->channels->Detach(node_id, ws.get());
            if (api->consoles) api->consoles->OnChannelClosed(node_id);
            spdlog::info("node {} closed its command channel", node_id);
        },
        [api](net::RequestContext& ctx) -> asio::awaitable<std::optional<net::Response>> {
            const std::string node_id(ctx.Param("id"));
            if (auto st = co_await RequireNode(*api, ctx, node_id); !st)
                co_return ErrorResponse(ctx, st.error());
            co_return std::nullopt;
        });

    router.Add(http::verb::post, "/api/nodes/{id}/vms/report",
               [api](net::RequestContext& ctx) -> asio::awaitable<net::Response> {
                   const std::string node_id(ctx.Param("id"));
                   if (auto st = co_await RequireNode(*api, ctx, node_id); !st)
                       co_return ErrorResponse(ctx, st.error());
                   auto body = JsonObjectBody(ctx.request);
                   if (!body) co_return ErrorResponse(ctx, body.error());
                   auto report = proto::DecodeVmReport(*body);
                   if (!report) co_return ErrorResponse(ctx, report.error());
                   std::vector<ports::ReportedDomain> domains;
                   for (auto& d : report->domains) {
                       std::optional<ports::ReportedGuestStop> stop;
                       if (d.stopped_by_itself)
                           stop = ports::ReportedGuestStop{std::move(d.stopped_by_itself->id),
                                                           std::move(d.stopped_by_itself->boot_log),
                                                           d.stopped_by_itself->ran_for_s};
                       domains.push_back({std::move(d.vm_id), std::move(d.state),
                                          std::move(d.addresses), std::move(stop)});
                   }
                   auto outcome = co_await net::RunBlocking(
                       *api->blocking, [&] { return api->vms->Report(node_id, domains); });
                   if (!outcome) co_return ErrorResponse(ctx, outcome.error());
                   co_return net::MakeJson(ctx.request, http::status::ok,
                                           {{"lost", outcome->lost},
                                            {"unknown", outcome->unknown},
                                            {"corrected", outcome->state_fixed},
                                            {"destroying", outcome->destroying}});
               });
}

}  // namespace decloud::orchestrator::api
