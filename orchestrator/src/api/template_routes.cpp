// /api/templates...: the template catalogue (seed and community templates), publishing a
// community template and deprecating one of its versions.

#include <string>

#include "api_support.hpp"
#include "decloud/net/blocking.hpp"
#include "orchestrator/api/routes.hpp"

namespace decloud::orchestrator::api {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using common::Error;
using common::Result;
using nlohmann::json;

namespace {

json TemplateViewToJson(const app::TemplateView& view, bool with_user_data) {
    json out = domain::ToJson(view.entry.tmpl);
    out["source"] = app::ToString(view.source);
    if (view.source == app::TemplateSource::kCommunity) {
        out["author"] = view.entry.author_wallet;
        out["deprecated"] = view.entry.deprecated;
        out["deprecatedAt"] = OptionalTime(view.entry.deprecated_at);
        out["createdAt"] = common::FormatRfc3339(view.entry.created_at);
    } else {
        out["deprecated"] = false;
    }
    if (with_user_data) out["userData"] = view.entry.tmpl.user_data;
    return out;
}

app::TemplateView CommunityView(ports::CommunityTemplate t) {
    app::TemplateView view;
    view.source = app::TemplateSource::kCommunity;
    view.entry = std::move(t);
    return view;
}

// ?source=seed|community; nullopt: both. ?limit= and ?cursor= (the page) are read elsewhere.
Result<std::optional<app::TemplateSource>> ParseSource(std::string_view target) {
    const auto q = target.find('?');
    if (q == std::string_view::npos) return std::optional<app::TemplateSource>();
    std::string_view rest = target.substr(q + 1);
    std::optional<app::TemplateSource> source;
    bool seen = false;
    while (!rest.empty()) {
        const auto amp = rest.find('&');
        const auto pair = rest.substr(0, amp);
        rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
        if (pair.empty()) continue;
        const auto eq = pair.find('=');
        const auto name = pair.substr(0, eq);
        const auto value = eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
        if (name == "limit" || name == "cursor") continue;
        if (name != "source")
            return Error::InvalidArgument("unknown query parameter '" +
                                          std::string(name.substr(0, 64)) +
                                          "'; known: source, limit, cursor");
        if (seen) return Error::InvalidArgument("query parameter 'source' given twice");
        seen = true;
        if (value == "seed") {
            source = app::TemplateSource::kSeed;
        } else if (value == "community") {
            source = app::TemplateSource::kCommunity;
        } else {
            return Error::InvalidArgument("source: seed or community");
        }
    }
    return source;
}

net::Response Unavailable(const net::RequestContext& ctx) {
    return ErrorResponse(ctx, Error::Unavailable("community templates are not enabled here"));
}

}  // namespace

void AddTemplateRoutes(net::Router& router, std::shared_ptr<ApiContext> api) {
    router.Add(http::verb::get, "/api/templates",
               ForUser(api,
                       [api](net::RequestContext& ctx,
                             const app::Principal&) -> asio::awaitable<net::Response> {
                           const std::string_view target = ctx.request.target();
                           auto source = ParseSource(target);
                           if (!source) co_return ErrorResponse(ctx, source.error());
                           const auto limit = PageLimit(target, 100, 500);
                           if (!limit) co_return ErrorResponse(ctx, limit.error());
                           const auto cursor = QueryParam(target, "cursor");
                           if (!api->templates) co_return Unavailable(ctx);
                           auto page = co_await net::RunBlocking(*api->blocking, [&] {
                               return api->templates->List(*source, cursor, *limit);
                           });
                           if (!page) co_return ErrorResponse(ctx, page.error());
                           json items = json::array();
                           for (const auto& v : page->templates)
                               items.push_back(TemplateViewToJson(v, false));
                           co_return net::MakeJson(ctx.request, http::status::ok,
                                                   {{"templates", std::move(items)},
                                                    {"nextCursor", page->next_cursor.empty()
                                                                       ? json(nullptr)
                                                                       : json(page->next_cursor)}});
                       }));

    router.Add(http::verb::get, "/api/templates/{id}",
               ForUser(api,
                       [api](net::RequestContext& ctx,
                             const app::Principal&) -> asio::awaitable<net::Response> {
                           if (!api->templates) co_return Unavailable(ctx);
                           const std::string id(ctx.Param("id"));
                           auto view = co_await net::RunBlocking(
                               *api->blocking, [&] { return api->templates->Get(id); });
                           if (!view) co_return ErrorResponse(ctx, view.error());
                           co_return net::MakeJson(ctx.request, http::status::ok,
                                                   TemplateViewToJson(*view, true));
                       }));

    router.Add(
        http::verb::post, "/api/templates",
        ForUser(
            api,
            [api](net::RequestContext& ctx,
                  const app::Principal& who) -> asio::awaitable<net::Response> {
                if (!api->templates) co_return Unavailable(ctx);
                auto body = JsonObjectBody(ctx.request);
                if (!body) co_return ErrorResponse(ctx, body.error());
                // cloud-init runs for a few seconds: on the blocking pool, bounded there.
                auto outcome = co_await net::RunBlocking(*api->blocking, [&] {
                    return api->templates->Publish(who.wallet_address, *body);
                });
                if (!outcome) co_return ErrorResponse(ctx, outcome.error());
                if (!outcome->published) {
                    const auto& errors = outcome->schema_errors;
                    auto resp = ErrorResponse(
                        ctx, Error::Unprocessable("userData: cloud-init schema found " +
                                                  std::to_string(errors.size()) +
                                                  (errors.size() == 1 ? " problem" : " problems") +
                                                  ": " + errors.front()));
                    auto problem = json::parse(resp.body(), nullptr, false);
                    if (problem.is_object()) {
                        problem["errors"] = errors;
                        resp.body() = problem.dump(-1, ' ', false, json::error_handler_t::replace);
                        resp.prepare_payload();
                    }
                    co_return resp;
                }
                auto resp = net::MakeJson(
                    ctx.request, http::status::created,
                    TemplateViewToJson(CommunityView(std::move(*outcome->published)), true));
                const auto id = json::parse(resp.body())["id"].get<std::string>();
                resp.set(http::field::location, "/api/templates/" + id);
                co_return resp;
            }));

    router.Add(http::verb::post, "/api/templates/{id}/deprecate",
               ForUser(api,
                       [api](net::RequestContext& ctx,
                             const app::Principal& who) -> asio::awaitable<net::Response> {
                           if (!api->templates) co_return Unavailable(ctx);
                           const std::string id(ctx.Param("id"));
                           auto t = co_await net::RunBlocking(*api->blocking, [&] {
                               return api->templates->Deprecate(who.wallet_address, id);
                           });
                           if (!t) co_return ErrorResponse(ctx, t.error());
                           co_return net::MakeJson(
                               ctx.request, http::status::ok,
                               TemplateViewToJson(CommunityView(std::move(*t)), false));
                       }));
}

}  // namespace decloud::orchestrator::api
