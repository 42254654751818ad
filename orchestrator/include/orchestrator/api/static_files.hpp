#pragma once

#include <cstddef>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "decloud/common/result.hpp"
#include "decloud/net/http_server.hpp"

namespace decloud::orchestrator::api {

// The web console's built files (web/dist), read once from a directory and served from memory.
// Only regular files found under the root at load time can ever be answered (no symbolic links,
// no hidden files), so no request path can reach outside it. Immutable after Load: thread-safe.
class StaticFiles {
  public:
    struct File {
        std::string body;
        std::string content_type;
        std::string etag;        // strong, quoted: a hash of the content
        bool immutable = false;  // a content-hashed asset (Vite's assets/name-HASH.ext)
    };

    // Reads every regular file under `root` (at most `max_total_bytes` in all). kNotFound if
    // `root` is not a directory or has no index.html; kInvalidArgument if it is too large.
    static common::Result<StaticFiles> Load(const std::filesystem::path& root,
                                            std::size_t max_total_bytes = 64u << 20);

    // The answer to a GET of `target` (path and optional query): the file, 304 when If-None-Match
    // names its ETag, index.html for a client-side route (no dot in the last segment, no segment
    // starting with a dot), else 404. Paths with "." or ".." segments, backslashes or NUL bytes
    // are a 400.
    net::Response Serve(const net::Request& req, std::string_view request_id) const;

    const File* Find(const std::string& path) const;
    std::size_t size() const { return files_.size(); }

  private:
    std::map<std::string, File, std::less<>> files_;  // by URL path: "/index.html", "/assets/.."
};

// The Content-Type for a file name, by extension (application/octet-stream when unknown).
std::string_view ContentTypeFor(std::string_view file_name);

// Serves `files` for every GET outside the API (/api, /metrics, /healthz, /readyz). Call after
// every API route is added: requests the API routes do not take are answered exactly as before
// (404, or 405 with Allow), and other methods on console paths get 405 with "Allow: GET".
void AddStaticRoutes(net::Router& router, std::shared_ptr<const StaticFiles> files);

}  // namespace decloud::orchestrator::api
