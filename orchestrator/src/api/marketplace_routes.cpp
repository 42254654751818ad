// /api/marketplace/...: node search, featured nodes, profiles; operators' profile updates and
// users' reviews of the nodes their VMs ran on.

#include <charconv>
#include <limits>
#include <map>
#include <set>

#include "api_support.hpp"
#include "decloud/common/money.hpp"
#include "decloud/net/blocking.hpp"
#include "orchestrator/api/routes.hpp"

namespace decloud::orchestrator::api {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using common::Error;
using common::Result;
using nlohmann::json;

namespace {

constexpr std::size_t kMaxQueryParams = 32;

int HexValue(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

Result<std::string> PercentDecode(std::string_view in) {
    std::string out;
    out.reserve(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (in[i] == '+') {
            out += ' ';
        } else if (in[i] == '%') {
            if (i + 2 >= in.size()) return Error::InvalidArgument("query: bad percent-encoding");
            const int hi = HexValue(in[i + 1]);
            const int lo = HexValue(in[i + 2]);
            if (hi < 0 || lo < 0) return Error::InvalidArgument("query: bad percent-encoding");
            out += static_cast<char>(hi * 16 + lo);
            i += 2;
        } else {
            out += in[i];
        }
    }
    return out;
}

// Every parameter of the query string, decoded; a repeated or unknown name is an error.
Result<std::map<std::string, std::string>> QueryParams(std::string_view target,
                                                       const std::set<std::string>& known) {
    std::map<std::string, std::string> out;
    const auto q = target.find('?');
    if (q == std::string_view::npos) return out;
    std::string_view rest = target.substr(q + 1);
    while (!rest.empty()) {
        const auto amp = rest.find('&');
        const auto pair = rest.substr(0, amp);
        rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
        if (pair.empty()) continue;
        const auto eq = pair.find('=');
        auto name = PercentDecode(pair.substr(0, eq));
        if (!name) return name.error();
        auto value =
            PercentDecode(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1));
        if (!value) return value.error();
        if (!known.contains(*name)) {
            std::string list;
            for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
            return Error::InvalidArgument("unknown query parameter '" + name->substr(0, 64) +
                                          "'; known: " + list);
        }
        if (out.size() >= kMaxQueryParams) return Error::InvalidArgument("too many parameters");
        if (!out.emplace(*name, std::move(*value)).second)
            return Error::InvalidArgument("query parameter '" + *name + "' given twice");
    }
    return out;
}

Result<std::uint64_t> ParseUnsigned(const std::string& name, const std::string& text) {
    std::uint64_t v = 0;
    const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (text.empty() || ec != std::errc() || ptr != text.data() + text.size())
        return Error::InvalidArgument(name + ": expected a non-negative integer");
    return v;
}

Result<bool> ParseBool(const std::string& name, const std::string& text) {
    if (text == "true") return true;
    if (text == "false") return false;
    return Error::InvalidArgument(name + ": expected true or false");
}

// "95" or "99.5" (percent, at most two decimals) -> basis points.
Result<std::uint32_t> ParsePercent(const std::string& name, const std::string& text) {
    const auto dot = text.find('.');
    const std::string whole = text.substr(0, dot);
    std::string frac = dot == std::string::npos ? "" : text.substr(dot + 1);
    const auto bad = [&] {
        return Error::InvalidArgument(name + ": a percentage 0 to 100, e.g. 95 or 99.5");
    };
    if (whole.empty() || whole.size() > 3 || frac.size() > 2 ||
        (dot != std::string::npos && frac.empty()))
        return bad();
    for (const char c : whole + frac)
        if (c < '0' || c > '9') return bad();
    while (frac.size() < 2) frac += '0';
    const auto bp = static_cast<std::uint32_t>(std::stoul(whole) * 100 + std::stoul(frac));
    if (bp > 10000) return bad();
    return bp;
}

std::vector<std::string> SplitList(const std::string& text) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start <= text.size()) {
        const auto comma = text.find(',', start);
        out.push_back(
            text.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
        if (comma == std::string::npos) break;
        start = comma + 1;
    }
    return out;
}

#define DECLOUD_TRY_ASSIGN(target, expr) \
    do {                                 \
        auto v_ = (expr);                \
        if (!v_) return v_.error();      \
        target = *v_;                    \
    } while (false)

Result<domain::QualityTier> ParseTier(const std::string& text) {
    const auto tier = domain::ParseQualityTier(text);
    if (!tier)
        return Error::InvalidArgument("tier: one of guaranteed, standard, balanced, burstable");
    return *tier;
}

struct SearchRequest {
    domain::MarketFilter filter;
    std::string cursor;
};

Result<SearchRequest> ParseSearch(std::string_view target) {
    static const std::set<std::string> kKnown = {
        "tagsAll",        "tagsAny",  "region",   "minPrice",  "maxPrice",      "gpu",
        "gpuVendor",      "gpuModel", "gpuCount", "minUptime", "minFreePoints", "minFreeMemoryMib",
        "minFreeDiskGib", "tier",     "cgnat",    "featured",  "sort",          "order",
        "limit",          "cursor",   "cores"};
    auto params = QueryParams(target, kKnown);
    if (!params) return params.error();
    SearchRequest out;
    auto& f = out.filter;
    for (const auto& [name, value] : *params) {
        if (name == "tagsAll" || name == "tagsAny") {
            auto list = SplitList(value);
            if (list.size() > domain::kMaxMarketTags)
                return Error::InvalidArgument(name + ": at most " +
                                              std::to_string(domain::kMaxMarketTags) + " tags");
            (name == "tagsAll" ? f.tags_all : f.tags_any) = std::move(list);
        } else if (name == "region") {
            f.region = value;
        } else if (name == "minPrice") {
            DECLOUD_TRY_ASSIGN(f.min_price, ParseUnsigned(name, value));
        } else if (name == "maxPrice") {
            DECLOUD_TRY_ASSIGN(f.max_price, ParseUnsigned(name, value));
        } else if (name == "gpu") {
            DECLOUD_TRY_ASSIGN(f.has_gpu, ParseBool(name, value));
        } else if (name == "gpuVendor") {
            f.gpu_vendor = value;
        } else if (name == "gpuModel") {
            f.gpu_model = value;
        } else if (name == "gpuCount") {
            std::uint64_t n = 0;
            DECLOUD_TRY_ASSIGN(n, ParseUnsigned(name, value));
            if (n > 64) return Error::InvalidArgument("gpuCount: at most 64");
            f.min_gpu_count = static_cast<std::uint32_t>(n);
        } else if (name == "minUptime") {
            DECLOUD_TRY_ASSIGN(f.min_uptime_bp, ParsePercent(name, value));
        } else if (name == "minFreePoints") {
            DECLOUD_TRY_ASSIGN(f.min_free_points, ParseUnsigned(name, value));
        } else if (name == "minFreeMemoryMib") {
            DECLOUD_TRY_ASSIGN(f.min_free_memory_mib, ParseUnsigned(name, value));
        } else if (name == "minFreeDiskGib") {
            DECLOUD_TRY_ASSIGN(f.min_free_disk_gib, ParseUnsigned(name, value));
        } else if (name == "tier") {
            DECLOUD_TRY_ASSIGN(f.tier, ParseTier(value));
        } else if (name == "cgnat") {
            DECLOUD_TRY_ASSIGN(f.behind_cgnat, ParseBool(name, value));
        } else if (name == "featured") {
            DECLOUD_TRY_ASSIGN(f.featured_only, ParseBool(name, value));
        } else if (name == "sort") {
            const auto sort = domain::ParseMarketSort(value);
            if (!sort) return Error::InvalidArgument("sort: one of price, uptime, free, points");
            f.sort = *sort;
        } else if (name == "limit") {
            std::uint64_t n = 0;
            DECLOUD_TRY_ASSIGN(n, ParseUnsigned(name, value));
            if (n < 1 || n > domain::kMaxMarketPageSize)
                return Error::InvalidArgument("limit: 1 to " +
                                              std::to_string(domain::kMaxMarketPageSize));
            f.limit = static_cast<std::size_t>(n);
        } else if (name == "cores") {
            std::uint64_t n = 0;
            DECLOUD_TRY_ASSIGN(n, ParseUnsigned(name, value));
            if (n < 1 || n > 1024) return Error::InvalidArgument("cores: 1 to 1024");
            f.vm_cores = static_cast<std::uint32_t>(n);
        } else if (name == "cursor") {
            out.cursor = value;
            if (out.cursor.empty()) return Error::InvalidArgument("cursor: empty");
        }
    }
    // Natural directions: cheapest first, otherwise the most first.
    f.descending = f.sort != domain::MarketSort::kPrice;
    if (const auto it = params->find("order"); it != params->end()) {
        if (it->second != "asc" && it->second != "desc")
            return Error::InvalidArgument("order: asc or desc");
        f.descending = it->second == "desc";
    }
    return out;
}

json MarketNodeToJson(const ports::MarketNode& n) {
    json gpus = json::array();
    for (std::size_t i = 0; i < n.gpu_models.size(); ++i)
        gpus.push_back(json{{"vendor", n.gpu_vendors[i]}, {"model", n.gpu_models[i]}});
    return json{
        {"id", n.node_id},
        {"displayName", n.display_name},
        {"description", n.description},
        {"region", n.region},
        {"tags", n.tags},
        {"pricePerPointMicroUsdc", std::to_string(n.price_per_point)},
        {"computePoints", n.compute_points},
        {"cpuCores", n.cpu_cores},
        {"memoryMib", n.memory_mib},
        {"diskGib", n.disk_gib},
        {"gpus", std::move(gpus)},
        {"behindCgnat", n.behind_cgnat},
        {"featured", n.featured},
        {"reputation",
         {{"uptime30dPercent", static_cast<double>(n.uptime_bp) / 100.0},
          {"vmsHosted", n.vms_hosted},
          {"vmsCompleted", n.vms_completed},
          {"reviewCount", n.review_count},
          {"averageRating", n.review_count ? json(n.average_rating) : json(nullptr)}}},
        {"availability",
         {{"online", n.online},
          {"lastHeartbeatAt", OptionalTime(n.last_heartbeat_at)},
          {"freePoints", n.free_points},
          {"freeMemoryMib", n.free_memory_mib},
          {"freeDiskGib", n.free_disk_gib},
          {"freeGpus", n.free_gpus}}},
        {"refreshedAt", common::FormatRfc3339(n.refreshed_at)},
    };
}

json ListingToJson(const app::MarketListing& l) {
    auto out = MarketNodeToJson(l.node);
    if (l.hourly_price_micro_usdc == std::numeric_limits<std::uint64_t>::max()) {
        out["hourlyPriceMicroUsdc"] = nullptr;
        out["hourlyPriceUsdc"] = nullptr;
    } else {
        out["hourlyPriceMicroUsdc"] = std::to_string(l.hourly_price_micro_usdc);
        out["hourlyPriceUsdc"] = common::FormatUsdc(l.hourly_price_micro_usdc);
    }
    return out;
}

json ReviewToJson(const ports::Review& r) {
    return json{{"vmId", r.vm_id},
                {"nodeId", r.node_id},
                {"rating", r.rating},
                {"text", r.text},
                {"createdAt", common::FormatRfc3339(r.created_at)}};
}

Result<domain::NodeProfile> ParseProfile(const json& body) {
    static const std::set<std::string> kKnown = {"displayName", "description", "tags",
                                                 "pricePerPointMicroUsdc"};
    for (const auto& [key, value] : body.items())
        if (!kKnown.contains(key)) return Error::InvalidArgument("unknown field '" + key + "'");
    domain::NodeProfile p;
    const auto name = body.find("displayName");
    if (name == body.end() || !name->is_string())
        return Error::InvalidArgument("displayName: required, a string");
    p.display_name = name->get<std::string>();
    if (const auto it = body.find("description"); it != body.end()) {
        if (!it->is_string()) return Error::InvalidArgument("description: must be a string");
        p.description = it->get<std::string>();
    }
    if (const auto it = body.find("tags"); it != body.end()) {
        if (!it->is_array()) return Error::InvalidArgument("tags: must be an array of strings");
        if (it->size() > domain::kMaxMarketTags)
            return Error::InvalidArgument("tags: at most 16 tags");
        for (const auto& t : *it) {
            if (!t.is_string()) return Error::InvalidArgument("tags: must be an array of strings");
            p.tags.push_back(t.get<std::string>());
        }
    }
    if (const auto it = body.find("pricePerPointMicroUsdc"); it != body.end()) {
        // Money travels as a decimal string (like every micro-USDC amount); a plain integer is
        // accepted too.
        if (it->is_number_unsigned()) {
            p.price_per_point_micro_usdc = it->get<std::uint64_t>();
        } else if (it->is_string()) {
            auto v = ParseUnsigned("pricePerPointMicroUsdc", it->get<std::string>());
            if (!v) return v.error();
            p.price_per_point_micro_usdc = *v;
        } else {
            return Error::InvalidArgument(
                "pricePerPointMicroUsdc: a non-negative integer (micro-USDC per point-hour)");
        }
    }
    return p;
}

// The VM size whose hourly price the featured list shows (?cores=&tier=).
Result<std::pair<std::uint32_t, domain::QualityTier>> ParseSize(std::string_view target) {
    auto params = QueryParams(target, {"cores", "tier"});
    if (!params) return params.error();
    std::uint32_t cores = 1;
    domain::QualityTier tier = domain::QualityTier::kStandard;
    if (const auto it = params->find("cores"); it != params->end()) {
        auto n = ParseUnsigned("cores", it->second);
        if (!n) return n.error();
        if (*n < 1 || *n > 1024) return Error::InvalidArgument("cores: 1 to 1024");
        cores = static_cast<std::uint32_t>(*n);
    }
    if (const auto it = params->find("tier"); it != params->end()) {
        auto t = ParseTier(it->second);
        if (!t) return t.error();
        tier = *t;
    }
    return std::make_pair(cores, tier);
}

net::Response Unavailable(const net::RequestContext& ctx) {
    return ErrorResponse(ctx, Error::Unavailable("the marketplace is not enabled here"));
}

}  // namespace

json MarketQuoteToJson(const app::MarketQuote& q) {
    json relay = nullptr;
    if (q.behind_cgnat)
        relay =
            json{{"required", true},
                 {"relayNodeId", q.relay_node_id.empty() ? json(nullptr) : json(q.relay_node_id)},
                 {"endpoint", q.relay_endpoint.empty() ? json(nullptr) : json(q.relay_endpoint)},
                 {"note", q.relay_note}};
    return json{{"behindCgnat", q.behind_cgnat},
                {"relay", relay},
                {"node", q.node ? MarketNodeToJson(*q.node) : json(nullptr)}};
}

void AddMarketplaceRoutes(net::Router& router, std::shared_ptr<ApiContext> api) {
    router.Add(http::verb::get, "/api/marketplace/nodes",
               [api](net::RequestContext& ctx) -> asio::awaitable<net::Response> {
                   if (!api->market) co_return Unavailable(ctx);
                   auto req = ParseSearch(ctx.request.target());
                   if (!req) co_return ErrorResponse(ctx, req.error());
                   auto page = co_await net::RunBlocking(*api->blocking, [&] {
                       return api->market->Search(req->filter, req->cursor);
                   });
                   if (!page) co_return ErrorResponse(ctx, page.error());
                   json items = json::array();
                   for (const auto& l : page->listings) items.push_back(ListingToJson(l));
                   co_return net::MakeJson(
                       ctx.request, http::status::ok,
                       {{"nodes", std::move(items)},
                        {"sort", domain::ToString(req->filter.sort)},
                        {"order", req->filter.descending ? "desc" : "asc"},
                        {"nextCursor",
                         page->next_cursor.empty() ? json(nullptr) : json(page->next_cursor)}});
               });

    router.Add(http::verb::get, "/api/marketplace/featured",
               [api](net::RequestContext& ctx) -> asio::awaitable<net::Response> {
                   if (!api->market) co_return Unavailable(ctx);
                   auto size = ParseSize(ctx.request.target());
                   if (!size) co_return ErrorResponse(ctx, size.error());
                   auto listings = co_await net::RunBlocking(*api->blocking, [&] {
                       return api->market->Featured(size->first, size->second);
                   });
                   if (!listings) co_return ErrorResponse(ctx, listings.error());
                   json items = json::array();
                   for (const auto& l : *listings) items.push_back(ListingToJson(l));
                   const auto& rule = api->market->options().featured;
                   co_return net::MakeJson(
                       ctx.request, http::status::ok,
                       {{"nodes", std::move(items)},
                        {"rule",
                         {{"minUptime30dPercent", static_cast<double>(rule.min_uptime_bp) / 100.0},
                          {"count", rule.count}}}});
               });

    router.Add(http::verb::get, "/api/marketplace/nodes/{id}",
               [api](net::RequestContext& ctx) -> asio::awaitable<net::Response> {
                   if (!api->market) co_return Unavailable(ctx);
                   const std::string id(ctx.Param("id"));
                   auto node = co_await net::RunBlocking(*api->blocking,
                                                         [&] { return api->market->Profile(id); });
                   if (!node) co_return ErrorResponse(ctx, node.error());
                   co_return net::MakeJson(ctx.request, http::status::ok, MarketNodeToJson(*node));
               });

    router.Add(http::verb::get, "/api/marketplace/nodes/{id}/reviews",
               [api](net::RequestContext& ctx) -> asio::awaitable<net::Response> {
                   if (!api->market) co_return Unavailable(ctx);
                   const std::string id(ctx.Param("id"));
                   auto reviews = co_await net::RunBlocking(
                       *api->blocking, [&] { return api->market->Reviews(id); });
                   if (!reviews) co_return ErrorResponse(ctx, reviews.error());
                   json items = json::array();
                   // Reviewers are not named: a wallet address is not for the public.
                   for (const auto& r : reviews->reviews) items.push_back(ReviewToJson(r));
                   co_return net::MakeJson(
                       ctx.request, http::status::ok,
                       {{"nodeId", id},
                        {"count", reviews->count},
                        {"averageRating", reviews->count ? json(reviews->average) : json(nullptr)},
                        {"reviews", std::move(items)}});
               });

    router.Add(http::verb::put, "/api/nodes/{id}/profile",
               ForUser(api,
                       [api](net::RequestContext& ctx,
                             const app::Principal& who) -> asio::awaitable<net::Response> {
                           if (!api->market) co_return Unavailable(ctx);
                           auto body = JsonObjectBody(ctx.request);
                           if (!body) co_return ErrorResponse(ctx, body.error());
                           auto profile = ParseProfile(*body);
                           if (!profile) co_return ErrorResponse(ctx, profile.error());
                           const std::string id(ctx.Param("id"));
                           auto node = co_await net::RunBlocking(*api->blocking, [&] {
                               return api->market->UpdateProfile(who.wallet_address, id, *profile);
                           });
                           if (!node) co_return ErrorResponse(ctx, node.error());
                           co_return net::MakeJson(ctx.request, http::status::ok,
                                                   MarketNodeToJson(*node));
                       }));

    router.Add(http::verb::post, "/api/vms/{id}/review",
               ForUser(api,
                       [api](net::RequestContext& ctx,
                             const app::Principal& who) -> asio::awaitable<net::Response> {
                           if (!api->market) co_return Unavailable(ctx);
                           auto body = JsonObjectBody(ctx.request);
                           if (!body) co_return ErrorResponse(ctx, body.error());
                           for (const auto& [key, value] : body->items())
                               if (key != "rating" && key != "text")
                                   co_return ErrorResponse(
                                       ctx, Error::InvalidArgument("unknown field '" + key + "'"));
                           const auto rating = body->find("rating");
                           if (rating == body->end() || !rating->is_number_integer())
                               co_return ErrorResponse(
                                   ctx, Error::InvalidArgument("rating: required, 1 to 5"));
                           std::string text;
                           if (const auto it = body->find("text"); it != body->end()) {
                               if (!it->is_string())
                                   co_return ErrorResponse(
                                       ctx, Error::InvalidArgument("text: must be a string"));
                               text = it->get<std::string>();
                           }
                           const auto value = rating->get<std::int64_t>();
                           const int stars = value < 0 || value > 5 ? 0 : static_cast<int>(value);
                           const std::string id(ctx.Param("id"));
                           auto review = co_await net::RunBlocking(*api->blocking, [&] {
                               return api->market->AddReview(who.wallet_address, id, stars, text);
                           });
                           if (!review) co_return ErrorResponse(ctx, review.error());
                           co_return net::MakeJson(ctx.request, http::status::created,
                                                   ReviewToJson(*review));
                       }));
}

}  // namespace decloud::orchestrator::api
