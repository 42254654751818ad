#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "decloud/common/result.hpp"
#include "decloud/net/http_server.hpp"

namespace decloud::net {

struct ClientOptions {
    std::chrono::milliseconds connect_timeout{5'000};
    std::chrono::milliseconds request_timeout{30'000};
    std::size_t body_limit = 8 * 1024 * 1024;
    // HTTPS: TLS 1.2 or later, the peer's certificate verified against the system's trust store
    // (or `ca_file`, PEM) and its name against the host, with SNI.
    bool tls = false;
    std::string ca_file;
};

struct HttpUrl {
    std::string scheme;
    std::string host;
    std::uint16_t port = 80;
    std::string base_path;  // without a trailing '/'; empty for the root
};

// http://host[:port][/path] or https://host[:port][/path] (ports 80 and 443 by default).
common::Result<HttpUrl> ParseHttpUrl(std::string_view url);

// One keep-alive connection to host:port, (re)connected on demand, one request at a time; over
// TLS when options.tls. Use from one coroutine (or strand). Errors: kUnavailable when the peer
// cannot be reached, fails TLS verification or drops the connection, kTimeout when it does not
// answer in time; kInvalidArgument when options.ca_file cannot be loaded.
class HttpClient {
  public:
    HttpClient(asio::any_io_executor executor, std::string host, std::uint16_t port,
               ClientOptions options = {});
    ~HttpClient();
    HttpClient(const HttpClient&) = delete;
    HttpClient& operator=(const HttpClient&) = delete;

    // Sets Host, User-Agent (if absent) and Content-Length. A request that fails on a reused
    // keep-alive connection before any response arrived is retried once on a fresh one.
    asio::awaitable<common::Result<Response>> Send(Request request);
    // Closes the connection; a Send in progress fails with kUnavailable.
    void Close();

    struct State;

  private:
    std::shared_ptr<State> state_;
};

}  // namespace decloud::net
