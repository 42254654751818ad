#include "decloud/cli/api_client.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

namespace decloud::cli {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using common::Error;
using common::ErrorCode;
using nlohmann::json;

common::ErrorCode ErrorCodeForStatus(int status) {
    switch (status) {
        case 400:
        case 422:
            return ErrorCode::kInvalidArgument;
        case 401:
            return ErrorCode::kUnauthenticated;
        case 402:
            return ErrorCode::kPaymentRequired;
        case 403:
            return ErrorCode::kPermissionDenied;
        case 404:
            return ErrorCode::kNotFound;
        case 409:
            return ErrorCode::kConflict;
        case 413:
            return ErrorCode::kPayloadTooLarge;
        case 429:
            return ErrorCode::kRateLimited;
        case 503:
            return ErrorCode::kUnavailable;
        case 504:
            return ErrorCode::kTimeout;
        default:
            return ErrorCode::kInternal;
    }
}

common::Result<ApiClient> ApiClient::Create(std::string_view base_url, std::string ca_file) {
    auto url = net::ParseHttpUrl(base_url);
    if (!url) return url.error();
    return ApiClient(std::move(*url), std::move(ca_file));
}

std::string ApiClient::Authority() const {
    const bool ipv6 = url_.host.find(':') != std::string::npos;
    std::string host = ipv6 ? "[" + url_.host + "]" : url_.host;
    const std::uint16_t default_port = url_.scheme == "https" ? 443 : 80;
    if (url_.port != default_port) host += ":" + std::to_string(url_.port);
    return host;
}

common::Result<ApiReply> ApiClient::Call(http::verb method, const std::string& path,
                                         const std::optional<json>& body,
                                         std::string_view bearer_token, const Headers& headers) {
    net::Request request{method, url_.base_path + path, 11};
    request.set(http::field::accept, "application/json, application/problem+json");
    request.set(http::field::user_agent, "decloud-cli");
    if (!bearer_token.empty())
        request.set(http::field::authorization, "Bearer " + std::string(bearer_token));
    for (const auto& [name, value] : headers) request.set(name, value);
    if (body) {
        request.set(http::field::content_type, "application/json");
        request.body() = body->dump();
    }

    asio::io_context io;
    net::ClientOptions options;
    options.tls = url_.scheme == "https";
    options.ca_file = ca_file_;
    net::HttpClient client(io.get_executor(), url_.host, url_.port, options);
    std::optional<common::Result<net::Response>> outcome;
    asio::co_spawn(io, client.Send(std::move(request)),
                   [&](std::exception_ptr e, common::Result<net::Response> r) {
                       if (e) {
                           outcome = Error::Internal("request failed unexpectedly");
                           return;
                       }
                       outcome = std::move(r);
                   });
    io.run();
    if (!outcome) return Error::Internal("request did not complete");
    if (!*outcome) return outcome->error();
    const auto& response = outcome->value();

    ApiReply reply;
    reply.status = static_cast<int>(response.result_int());
    if (!response.body().empty()) {
        reply.body = json::parse(response.body(), nullptr, /*allow_exceptions=*/false);
        if (reply.body.is_discarded())
            return Error::Internal("the API answered " + std::to_string(reply.status) +
                                   " with a body that is not JSON");
    }
    if (reply.status >= 200 && reply.status < 300) return reply;

    std::string detail;
    if (reply.body.is_object()) {
        if (auto it = reply.body.find("detail"); it != reply.body.end() && it->is_string())
            detail = it->get<std::string>();
        else if (auto t = reply.body.find("title"); t != reply.body.end() && t->is_string())
            detail = t->get<std::string>();
    }
    if (detail.empty()) detail = std::string(response.reason());
    if (reply.status == 429)
        if (auto it = response.find(http::field::retry_after); it != response.end())
            detail += " (retry after " + std::string(it->value()) + " s)";
    return Error{ErrorCodeForStatus(reply.status),
                 "HTTP " + std::to_string(reply.status) + ": " + detail};
}

}  // namespace decloud::cli
