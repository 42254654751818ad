#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/beast/http/verb.hpp>
#include <nlohmann/json.hpp>

#include "decloud/common/result.hpp"
#include "decloud/net/http_client.hpp"

namespace decloud::cli {

struct ApiReply {
    int status = 0;
    nlohmann::json body;  // null for an empty body
};

// Blocking calls to the orchestrator's HTTP API for the command-line client: one connection,
// one request at a time. Non-2xx answers become errors carrying the problem+json detail.
class ApiClient {
  public:
    // `ca_file`: PEM certificates to trust for https instead of the system's.
    static common::Result<ApiClient> Create(std::string_view base_url, std::string ca_file = {});

    const net::HttpUrl& url() const { return url_; }
    // "host[:port]" as it appears in the URL, the authority a SIWE message must name.
    std::string Authority() const;

    using Headers = std::vector<std::pair<std::string, std::string>>;
    common::Result<ApiReply> Call(boost::beast::http::verb method, const std::string& path,
                                  const std::optional<nlohmann::json>& body = std::nullopt,
                                  std::string_view bearer_token = {}, const Headers& headers = {});

  private:
    ApiClient(net::HttpUrl url, std::string ca_file)
        : url_(std::move(url)), ca_file_(std::move(ca_file)) {}
    net::HttpUrl url_;
    std::string ca_file_;
};

// Maps an HTTP status to the error code a caller can act on (401 -> kUnauthenticated, ...).
common::ErrorCode ErrorCodeForStatus(int status);

}  // namespace decloud::cli
