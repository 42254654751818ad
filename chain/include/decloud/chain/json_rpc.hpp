#pragma once

// JSON-RPC 2.0 over HTTP for EVM nodes: single and batched calls, a per-request timeout (the
// transport's), bounded retries with exponential back-off on transport failures only (a node
// that answered with a JSON-RPC error is never retried), and strict parsing of the envelope.

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <nlohmann/json.hpp>

#include "decloud/common/result.hpp"
#include "decloud/net/http_client.hpp"

namespace decloud::chain {

namespace asio = boost::asio;
using nlohmann::json;

// Carries one JSON-RPC request body to the node and returns the response body. Failures of the
// transport itself are kUnavailable (connection, HTTP 5xx), kRateLimited (HTTP 429) or kTimeout.
class RpcTransport {
  public:
    virtual ~RpcTransport() = default;
    virtual asio::awaitable<common::Result<std::string>> Post(std::string body) = 0;
};

// POSTs to an http(s) URL over one keep-alive connection (net::HttpClient). One request at a
// time: use from one coroutine.
class HttpRpcTransport final : public RpcTransport {
  public:
    // `options.request_timeout` bounds each request.
    static common::Result<std::unique_ptr<HttpRpcTransport>> Create(asio::any_io_executor executor,
                                                                    std::string_view url,
                                                                    net::ClientOptions options);
    // ports::RpcTransport
    asio::awaitable<common::Result<std::string>> Post(std::string body) override;

  private:
    HttpRpcTransport(asio::any_io_executor executor, net::HttpUrl url, net::ClientOptions options);
    net::HttpUrl url_;
    net::HttpClient client_;
};

struct RetryPolicy {
    int max_attempts = 4;  // including the first
    std::chrono::milliseconds initial_backoff{200};
    std::chrono::milliseconds max_backoff{5'000};
};

struct RpcCall {
    std::string method;
    json params = json::array();
};

// A JSON-RPC error object answered by the node: kUnprocessable with the message
// "rpc error <code>: <message>", except -32602/-32600 (kInvalidArgument) and -32601 (kNotFound).
common::Error RpcErrorToError(const json& error);

// Not thread-safe: one coroutine at a time (the transport holds one connection).
class JsonRpcClient {
  public:
    JsonRpcClient(asio::any_io_executor executor, std::unique_ptr<RpcTransport> transport,
                  RetryPolicy retry = {});

    // The `result` of one call. Errors: the transport's after the retries, kInternal for a
    // malformed envelope (wrong id, both or neither of result/error), or the node's error.
    asio::awaitable<common::Result<json>> Call(std::string method, json params);
    // One HTTP request for all calls; the outer Result fails for transport or envelope problems
    // (an answer missing for some id, duplicated ids), the inner ones carry each call's outcome in
    // the order of `calls`. An empty batch returns an empty vector without a request.
    asio::awaitable<common::Result<std::vector<common::Result<json>>>> Batch(
        std::vector<RpcCall> calls);

    // Transport-level attempts made so far (for tests and metrics).
    std::uint64_t attempts() const { return attempts_; }

  private:
    asio::awaitable<common::Result<json>> Exchange(std::string body);

    asio::any_io_executor executor_;
    std::unique_ptr<RpcTransport> transport_;
    RetryPolicy retry_;
    std::uint64_t next_id_ = 1;
    std::uint64_t attempts_ = 0;
};

}  // namespace decloud::chain
