#include <algorithm>

#include "decloud/net/http_server.hpp"

namespace decloud::net {

namespace {

int HexDigit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Percent-decodes a path segment; malformed escapes are kept literally.
std::string DecodeSegment(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size()) {
            const int hi = HexDigit(s[i + 1]), lo = HexDigit(s[i + 2]);
            if (hi >= 0 && lo >= 0) {
                out.push_back(static_cast<char>(hi << 4 | lo));
                i += 2;
                continue;
            }
        }
        out.push_back(s[i]);
    }
    return out;
}

std::vector<std::string_view> SplitPath(std::string_view path) {
    std::vector<std::string_view> parts;
    if (path.empty() || path.front() != '/') return parts;
    path.remove_prefix(1);
    for (;;) {
        const auto slash = path.find('/');
        parts.push_back(path.substr(0, slash));
        if (slash == std::string_view::npos) break;
        path.remove_prefix(slash + 1);
    }
    return parts;
}

}  // namespace

std::string_view RequestContext::Param(std::string_view name) const {
    for (const auto& [k, v] : params) {
        if (k == name) return v;
    }
    return {};
}

std::vector<Router::Segment> Router::Parse(std::string_view pattern) {
    std::vector<Segment> segments;
    for (auto part : SplitPath(pattern)) {
        if (part.size() >= 2 && part.front() == '{' && part.back() == '}')
            segments.push_back({std::string(part.substr(1, part.size() - 2)), true});
        else
            segments.push_back({std::string(part), false});
    }
    return segments;
}

void Router::Add(http::verb method, std::string_view pattern, Handler handler) {
    routes_.push_back({method, std::string(pattern), Parse(pattern), std::move(handler), {}, {}});
}

void Router::AddWebSocket(std::string_view pattern, WebSocketHandler handler, UpgradeCheck check) {
    websocket_routes_.push_back({http::verb::get,
                                 std::string(pattern),
                                 Parse(pattern),
                                 {},
                                 std::move(handler),
                                 std::move(check)});
}

bool Router::MatchSegments(const Route& route, const std::vector<std::string_view>& parts,
                           std::vector<std::pair<std::string, std::string>>& params) {
    if (route.segments.size() != parts.size()) return false;
    params.clear();
    for (std::size_t i = 0; i < parts.size(); ++i) {
        const auto& seg = route.segments[i];
        if (seg.capture) {
            if (parts[i].empty()) return false;
            params.emplace_back(seg.text, DecodeSegment(parts[i]));
        } else if (seg.text != parts[i]) {
            return false;
        }
    }
    return true;
}

Router::Match Router::Find(http::verb method, std::string_view path, bool websocket_upgrade) const {
    Match match;
    const auto parts = SplitPath(path);
    std::vector<std::pair<std::string, std::string>> params;
    if (websocket_upgrade) {
        for (const auto& r : websocket_routes_) {
            if (MatchSegments(r, parts, params)) {
                match.websocket = &r.websocket;
                match.upgrade_check = r.upgrade_check ? &r.upgrade_check : nullptr;
                match.route = r.pattern;
                match.params = std::move(params);
                return match;
            }
        }
    }
    for (const auto& r : routes_) {
        if (!MatchSegments(r, parts, params)) continue;
        if (r.method == method) {
            match.handler = &r.handler;
            match.route = r.pattern;
            match.params = std::move(params);
            match.allow.clear();
            return match;
        }
        const auto name = http::to_string(r.method);
        if (match.allow.find(name) == std::string::npos) {
            if (!match.allow.empty()) match.allow += ", ";
            match.allow += name;
        }
    }
    return match;
}

Response MakeJson(const Request& req, http::status status, const nlohmann::json& body) {
    Response resp{status, req.version()};
    resp.set(http::field::content_type, "application/json");
    resp.keep_alive(req.keep_alive());
    resp.body() = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    resp.prepare_payload();
    return resp;
}

Response MakeProblem(const Request& req, http::status status, std::string_view title,
                     std::string_view detail, std::string_view request_id) {
    Response resp{status, req.version()};
    resp.set(http::field::content_type, "application/problem+json");
    resp.keep_alive(req.keep_alive());
    nlohmann::json body{{"type", "about:blank"},
                        {"title", title},
                        {"status", static_cast<int>(status)},
                        {"detail", detail},
                        {"requestId", request_id}};
    resp.body() = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    resp.prepare_payload();
    return resp;
}

std::vector<Router::RouteInfo> Router::Routes() const {
    std::vector<RouteInfo> out;
    for (const auto& r : routes_) out.push_back({r.method, r.pattern, false});
    for (const auto& r : websocket_routes_) out.push_back({r.method, r.pattern, true});
    return out;
}

}  // namespace decloud::net
