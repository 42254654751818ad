#include "orchestrator/api/static_files.hpp"

#include <array>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <sstream>
#include <system_error>
#include <utility>
#include <vector>

namespace decloud::orchestrator::api {

namespace asio = boost::asio;
namespace http = boost::beast::http;
namespace fs = std::filesystem;
using common::Error;

namespace {

// Everything Vite emits or a console might carry; anything else is served as bytes.
constexpr std::array<std::pair<std::string_view, std::string_view>, 18> kContentTypes{{
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".json", "application/json"},
    {".map", "application/json"},
    {".webmanifest", "application/manifest+json"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".jpg", "image/jpeg"},
    {".jpeg", "image/jpeg"},
    {".gif", "image/gif"},
    {".webp", "image/webp"},
    {".ico", "image/x-icon"},
    {".woff2", "font/woff2"},
    {".woff", "font/woff"},
    {".txt", "text/plain; charset=utf-8"},
    {".wasm", "application/wasm"},
}};

// The console talks only to this origin (REST and the serial console's WebSocket); xterm.js adds
// <style> elements, hence 'unsafe-inline' for styles only.
constexpr std::string_view kContentSecurityPolicy =
    "default-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "style-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'";

constexpr std::string_view kImmutable = "public, max-age=31536000, immutable";
constexpr std::string_view kRevalidate = "no-cache";

// Path prefixes that belong to the API and operations, never to the console.
constexpr std::array<std::string_view, 4> kReserved{"/api", "/metrics", "/healthz", "/readyz"};

// The deepest console path the catch-all routes take ("/{p1}/.../{p16}").
constexpr int kMaxDepth = 16;

std::string Fnv1a64Hex(std::string_view data) {
    std::uint64_t h = 0xcbf29ce484222325ULL;
    for (const unsigned char c : data) {
        h ^= c;
        h *= 0x100000001b3ULL;
    }
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out(16, '0');
    for (int i = 15; i >= 0; --i, h >>= 4) out[static_cast<std::size_t>(i)] = kHex[h & 0xf];
    return out;
}

int HexDigit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Percent-decodes a URL path; a malformed escape is an error (nothing legitimate sends one).
common::Result<std::string> DecodePath(std::string_view path) {
    std::string out;
    out.reserve(path.size());
    for (std::size_t i = 0; i < path.size(); ++i) {
        if (path[i] != '%') {
            out.push_back(path[i]);
            continue;
        }
        if (i + 2 >= path.size()) return Error::InvalidArgument("malformed percent escape in path");
        const int hi = HexDigit(path[i + 1]), lo = HexDigit(path[i + 2]);
        if (hi < 0 || lo < 0) return Error::InvalidArgument("malformed percent escape in path");
        out.push_back(static_cast<char>(hi << 4 | lo));
        i += 2;
    }
    return out;
}

// A decoded path the console could hold: absolute, no "." or ".." segment, no backslash (a
// Windows separator), no NUL or control characters.
bool SafePath(std::string_view path) {
    if (path.empty() || path.front() != '/') return false;
    for (const char c : path) {
        if (c == '\\' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return false;
    }
    std::string_view rest = path.substr(1);
    for (;;) {
        const auto slash = rest.find('/');
        const auto segment = rest.substr(0, slash);
        if (segment == "." || segment == "..") return false;
        if (slash == std::string_view::npos) break;
        rest.remove_prefix(slash + 1);
    }
    return true;
}

bool IsReserved(std::string_view path) {
    for (const auto prefix : kReserved) {
        if (path == prefix ||
            (path.starts_with(prefix) && path.size() > prefix.size() && path[prefix.size()] == '/'))
            return true;
    }
    return false;
}

// A file name inside the tree we refuse to publish: dotfiles (.git, .env, ...).
bool Hidden(const fs::path& relative) {
    for (const auto& part : relative) {
        const auto name = part.native();
        if (!name.empty() && name.front() == '.') return true;
    }
    return false;
}

bool EtagMatches(std::string_view if_none_match, std::string_view etag) {
    if (if_none_match == "*") return true;
    while (!if_none_match.empty()) {
        const auto comma = if_none_match.find(',');
        auto candidate = if_none_match.substr(0, comma);
        while (!candidate.empty() && candidate.front() == ' ') candidate.remove_prefix(1);
        while (!candidate.empty() && candidate.back() == ' ') candidate.remove_suffix(1);
        if (candidate.starts_with("W/")) candidate.remove_prefix(2);  // weak comparison (RFC 9110)
        if (candidate == etag) return true;
        if (comma == std::string_view::npos) break;
        if_none_match.remove_prefix(comma + 1);
    }
    return false;
}

net::Response FileResponse(const net::Request& req, const StaticFiles::File& file) {
    const auto inm = req.find(http::field::if_none_match);
    const bool not_modified = inm != req.end() && EtagMatches(inm->value(), file.etag);
    net::Response resp{not_modified ? http::status::not_modified : http::status::ok, req.version()};
    resp.set(http::field::etag, file.etag);
    resp.set(http::field::cache_control, file.immutable ? kImmutable : kRevalidate);
    resp.set("X-Content-Type-Options", "nosniff");
    resp.set("Referrer-Policy", "no-referrer");
    if (file.content_type.starts_with("text/html")) {
        resp.set("Content-Security-Policy", kContentSecurityPolicy);
        resp.set("X-Frame-Options", "DENY");
    }
    resp.keep_alive(req.keep_alive());
    if (!not_modified) {
        resp.set(http::field::content_type, file.content_type);
        resp.body() = file.body;
    }
    resp.prepare_payload();
    return resp;
}

}  // namespace

std::string_view ContentTypeFor(std::string_view file_name) {
    const auto slash = file_name.rfind('/');
    const auto base = slash == std::string_view::npos ? file_name : file_name.substr(slash + 1);
    const auto dot = base.rfind('.');
    if (dot == std::string_view::npos) return "application/octet-stream";
    const auto ext = base.substr(dot);
    for (const auto& [known, type] : kContentTypes) {
        if (ext.size() != known.size()) continue;
        bool same = true;
        for (std::size_t i = 0; i < ext.size() && same; ++i) {
            const char c =
                ext[i] >= 'A' && ext[i] <= 'Z' ? static_cast<char>(ext[i] - 'A' + 'a') : ext[i];
            same = c == known[i];
        }
        if (same) return type;
    }
    return "application/octet-stream";
}

common::Result<StaticFiles> StaticFiles::Load(const fs::path& root, std::size_t max_total_bytes) {
    std::error_code ec;
    if (!fs::is_directory(root, ec))
        return Error::NotFound("web root " + root.string() + " is not a directory");
    StaticFiles files;
    std::size_t total = 0;
    // Symbolic links are neither followed into directories nor served: what is published is
    // exactly the regular files of the tree.
    fs::recursive_directory_iterator it(root, fs::directory_options::none, ec);
    if (ec) return Error::NotFound("web root " + root.string() + ": " + ec.message());
    for (const fs::recursive_directory_iterator end{}; it != end; it.increment(ec)) {
        if (ec) return Error::NotFound("web root " + root.string() + ": " + ec.message());
        const auto relative = it->path().lexically_relative(root);
        if (Hidden(relative)) {
            if (it->is_directory(ec)) it.disable_recursion_pending();
            continue;
        }
        if (it->is_symlink(ec) || !it->is_regular_file(ec)) continue;
        std::ifstream in(it->path(), std::ios::binary);
        if (!in) return Error::NotFound("cannot read " + it->path().string());
        std::ostringstream body;
        body << in.rdbuf();
        File file;
        file.body = std::move(body).str();
        total += file.body.size();
        if (total > max_total_bytes)
            return Error::InvalidArgument("web root " + root.string() + " holds more than " +
                                          std::to_string(max_total_bytes) + " bytes");
        const std::string url = "/" + relative.generic_string();
        file.content_type = std::string(ContentTypeFor(url));
        file.etag = "\"" + Fnv1a64Hex(file.body) + "\"";
        file.immutable = url.starts_with("/assets/");
        files.files_.emplace(url, std::move(file));
    }
    if (!files.files_.contains("/index.html"))
        return Error::NotFound("web root " + root.string() + " has no index.html");
    return files;
}

const StaticFiles::File* StaticFiles::Find(const std::string& path) const {
    const auto it = files_.find(path);
    return it == files_.end() ? nullptr : &it->second;
}

net::Response StaticFiles::Serve(const net::Request& req, std::string_view request_id) const {
    const std::string_view target = req.target();
    auto path = DecodePath(target.substr(0, target.find('?')));
    if (!path || !SafePath(*path))
        return net::MakeProblem(req, http::status::bad_request, "Bad request",
                                "the path is not a valid console path", request_id);
    if (path->back() == '/') *path += "index.html";
    if (const auto* file = Find(*path)) return FileResponse(req, *file);
    // A client-side route (/vms, /vms/<id>) gets the app; a missing file (/assets/x.js,
    // /favicon.ico) or a hidden one (/.git/config) stays a 404 so a stale page never runs HTML
    // as a script.
    const auto last = path->substr(path->rfind('/') + 1);
    if (last.find('.') == std::string::npos && path->find("/.") == std::string::npos &&
        !IsReserved(*path))
        return FileResponse(req, *Find("/index.html"));
    return net::MakeProblem(req, http::status::not_found, "Not found",
                            "no resource at " + std::string(target.substr(0, target.find('?'))),
                            request_id);
}

void AddStaticRoutes(net::Router& router, std::shared_ptr<const StaticFiles> files) {
    // The API's routes alone, to answer what they do not take exactly as before.
    auto api = std::make_shared<const net::Router>(router);
    net::Handler handler = [files,
                            api](net::RequestContext& ctx) -> asio::awaitable<net::Response> {
        const auto& req = ctx.request;
        const std::string_view target = req.target();
        const auto path = target.substr(0, target.find('?'));
        if (IsReserved(path)) {
            const auto match = api->Find(req.method(), path, false);
            if (!match.allow.empty()) {
                auto resp = net::MakeProblem(
                    req, http::status::method_not_allowed, "Method not allowed",
                    std::string(req.method_string()) + " is not supported here; use " + match.allow,
                    ctx.request_id);
                resp.set(http::field::allow, match.allow);
                co_return resp;
            }
            co_return net::MakeProblem(req, http::status::not_found, "Not found",
                                       "no resource at " + std::string(path), ctx.request_id);
        }
        if (req.method() != http::verb::get) {
            auto resp = net::MakeProblem(
                req, http::status::method_not_allowed, "Method not allowed",
                std::string(req.method_string()) + " is not supported here; use GET",
                ctx.request_id);
            resp.set(http::field::allow, "GET");
            co_return resp;
        }
        co_return files->Serve(req, ctx.request_id);
    };
    constexpr std::array kMethods{http::verb::get,    http::verb::head,  http::verb::post,
                                  http::verb::put,    http::verb::patch, http::verb::delete_,
                                  http::verb::options};
    std::string pattern;
    for (int depth = 0; depth <= kMaxDepth; ++depth) {
        // "/" first, then "/{p1}", "/{p1}/{p2}", ...
        if (depth > 0) pattern += "/{p" + std::to_string(depth) + "}";
        for (const auto method : kMethods) router.Add(method, depth == 0 ? "/" : pattern, handler);
    }
}

}  // namespace decloud::orchestrator::api
