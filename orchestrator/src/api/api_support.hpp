#pragma once

// Request parsing and response helpers shared by the API's route files.

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "orchestrator/api/routes.hpp"

namespace decloud::orchestrator::api {

// "Bearer <token>" -> token; empty if absent or another scheme.
std::string_view BearerToken(const net::Request& req);
bool IsJsonContentType(const net::Request& req);
common::Result<std::size_t> ParseLimit(std::string_view text);
// The ?limit= of a page request: `fallback` when absent, kInvalidArgument unless 1..`max`.
common::Result<std::size_t> PageLimit(std::string_view target, std::size_t fallback,
                                      std::size_t max);
// A query string parameter of a request target (no percent-decoding: our keys and values are
// plain tokens); empty if absent.
std::string QueryParam(std::string_view target, std::string_view name);
nlohmann::json OptionalTime(const std::optional<common::TimePoint>& t);
net::Response NoContent(const net::RequestContext& ctx);
// A JSON object body, or the reason it is not one.
common::Result<nlohmann::json> JsonObjectBody(const net::Request& req);

// Wraps a handler that runs for the signed-in caller only.
using UserHandler = std::function<boost::asio::awaitable<net::Response>(net::RequestContext&,
                                                                        const app::Principal&)>;
net::Handler ForUser(std::shared_ptr<ApiContext> api, UserHandler handler);

}  // namespace decloud::orchestrator::api
