#include "decloud/chain/json_rpc.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <map>

namespace decloud::chain {

using common::Error;
using common::ErrorCode;
using common::Result;
namespace http = boost::beast::http;

namespace {

// json converts to anything, so Result<json> needs the value spelled out.
Result<json> JsonValue(json value) {
    return Result<json>(boost::system::in_place_value, std::move(value));
}

bool IsTransportFailure(const Error& e) {
    return e.code == ErrorCode::kUnavailable || e.code == ErrorCode::kTimeout ||
           e.code == ErrorCode::kRateLimited;
}

// The outcome of one response object whose id has been checked.
Result<json> Outcome(const json& response) {
    const bool has_result = response.contains("result");
    const bool has_error = response.contains("error");
    if (has_result == has_error)
        return Error::Internal("rpc: response must carry exactly one of result and error");
    if (has_error) {
        if (!response["error"].is_object()) return Error::Internal("rpc: error is not an object");
        return RpcErrorToError(response["error"]);
    }
    return JsonValue(response["result"]);
}

// The id of a response object if it is a well-formed 2.0 envelope with a numeric id.
Result<std::uint64_t> EnvelopeId(const json& response) {
    if (!response.is_object()) return Error::Internal("rpc: response is not an object");
    auto version = response.find("jsonrpc");
    if (version == response.end() || *version != "2.0")
        return Error::Internal("rpc: response lacks jsonrpc \"2.0\"");
    auto id = response.find("id");
    if (id == response.end() || !id->is_number_unsigned())
        return Error::Internal("rpc: response id missing or not ours");
    return id->get<std::uint64_t>();
}

}  // namespace

Error RpcErrorToError(const json& error) {
    const std::int64_t code = error.value("code", std::int64_t{0});
    std::string message = error.contains("message") && error["message"].is_string()
                              ? error["message"].get<std::string>()
                              : std::string("(no message)");
    std::string text = "rpc error " + std::to_string(code) + ": " + message;
    if (error.contains("data") && error["data"].is_string())
        text += " (" + error["data"].get<std::string>() + ")";
    if (code == -32602 || code == -32600) return Error::InvalidArgument(std::move(text));
    if (code == -32601) return Error::NotFound(std::move(text));
    return Error::Unprocessable(std::move(text));
}

Result<std::unique_ptr<HttpRpcTransport>> HttpRpcTransport::Create(asio::any_io_executor executor,
                                                                   std::string_view url,
                                                                   net::ClientOptions options) {
    auto parsed = net::ParseHttpUrl(url);
    if (!parsed) return parsed.error();
    options.tls = parsed->scheme == "https";
    return std::unique_ptr<HttpRpcTransport>(
        new HttpRpcTransport(std::move(executor), std::move(*parsed), std::move(options)));
}

HttpRpcTransport::HttpRpcTransport(asio::any_io_executor executor, net::HttpUrl url,
                                   net::ClientOptions options)
    : url_(std::move(url)), client_(executor, url_.host, url_.port, options) {}

asio::awaitable<Result<std::string>> HttpRpcTransport::Post(std::string body) {
    net::Request request{http::verb::post, url_.base_path.empty() ? "/" : url_.base_path, 11};
    request.set(http::field::content_type, "application/json");
    request.set(http::field::accept, "application/json");
    request.body() = std::move(body);
    auto response = co_await client_.Send(std::move(request));
    if (!response) co_return response.error();
    const int status = static_cast<int>(response->result_int());
    if (status == 429) co_return Error{ErrorCode::kRateLimited, "rpc: HTTP 429 from the node"};
    if (status >= 500)
        co_return Error::Unavailable("rpc: HTTP " + std::to_string(status) + " from the node");
    // JSON-RPC servers answer errors with 200 (or 4xx with a JSON-RPC body); the body decides.
    co_return std::move(response->body());
}

JsonRpcClient::JsonRpcClient(asio::any_io_executor executor,
                             std::unique_ptr<RpcTransport> transport, RetryPolicy retry)
    : executor_(std::move(executor)), transport_(std::move(transport)), retry_(retry) {}

asio::awaitable<Result<json>> JsonRpcClient::Exchange(std::string body) {
    auto backoff = retry_.initial_backoff;
    for (int attempt = 1;; ++attempt) {
        ++attempts_;
        auto reply = co_await transport_->Post(body);
        if (reply) {
            json parsed = json::parse(*reply, nullptr, /*allow_exceptions=*/false);
            if (parsed.is_discarded()) co_return Error::Internal("rpc: response is not JSON");
            co_return JsonValue(std::move(parsed));
        }
        if (!IsTransportFailure(reply.error()) || attempt >= retry_.max_attempts)
            co_return reply.error();
        asio::steady_timer timer(executor_, backoff);
        co_await timer.async_wait(asio::use_awaitable);
        backoff = std::min(backoff * 2, retry_.max_backoff);
    }
}

asio::awaitable<Result<json>> JsonRpcClient::Call(std::string method, json params) {
    const std::uint64_t id = next_id_++;
    json request = {{"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", params}};
    auto op = Exchange(request.dump());
    auto response = co_await std::move(op);
    if (!response) co_return response.error();
    auto got = EnvelopeId(*response);
    if (!got) {
        // A node may answer a request it could not parse with id null and an error.
        if (response->is_object() && response->contains("error") &&
            (*response)["error"].is_object())
            co_return RpcErrorToError((*response)["error"]);
        co_return got.error();
    }
    if (*got != id) co_return Error::Internal("rpc: response id does not match the request");
    co_return Outcome(*response);
}

asio::awaitable<Result<std::vector<Result<json>>>> JsonRpcClient::Batch(
    std::vector<RpcCall> calls) {
    std::vector<Result<json>> out;
    if (calls.empty()) co_return out;
    json request = json::array();
    const std::uint64_t first_id = next_id_;
    for (auto& call : calls) {
        request.push_back({{"jsonrpc", "2.0"},
                           {"id", next_id_++},
                           {"method", std::move(call.method)},
                           {"params", std::move(call.params)}});
    }
    auto op = Exchange(request.dump());
    auto response = co_await std::move(op);
    if (!response) co_return response.error();
    if (!response->is_array()) {
        if (response->is_object() && response->contains("error") &&
            (*response)["error"].is_object())
            co_return RpcErrorToError((*response)["error"]);
        co_return Error::Internal("rpc: batch response is not an array");
    }
    // Responses may come in any order; match them to requests by id.
    std::map<std::uint64_t, const json*> by_id;
    for (const auto& item : *response) {
        auto id = EnvelopeId(item);
        if (!id) co_return id.error();
        if (*id < first_id || *id >= first_id + calls.size())
            co_return Error::Internal("rpc: batch response carries an unknown id");
        if (!by_id.emplace(*id, &item).second)
            co_return Error::Internal("rpc: batch response repeats an id");
    }
    if (by_id.size() != calls.size())
        co_return Error::Internal("rpc: batch response lacks answers for some requests");
    out.reserve(calls.size());
    for (std::uint64_t i = 0; i < calls.size(); ++i) out.push_back(Outcome(*by_id[first_id + i]));
    co_return out;
}

}  // namespace decloud::chain
