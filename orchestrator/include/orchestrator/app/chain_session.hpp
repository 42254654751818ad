#pragma once

#include <chrono>
#include <exception>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include "decloud/chain/chain_client.hpp"
#include "decloud/common/result.hpp"

namespace decloud::orchestrator::app {

// A JSON-RPC connection to an EVM node on a private io_context, for the blocking jobs: Run()
// drives one coroutine to completion on the calling thread. One caller at a time (the jobs
// using a session never overlap); give each job its own session.
class ChainSession {
  public:
    // kInvalidArgument for a bad URL. No request is made here.
    static common::Result<std::unique_ptr<ChainSession>> Open(const std::string& rpc_url,
                                                              std::chrono::milliseconds timeout);

    chain::ChainClient& chain() { return *client_; }

    template <class T>
    T Run(boost::asio::awaitable<T> op) {
        std::optional<T> out;
        std::exception_ptr error;
        boost::asio::co_spawn(io_, std::move(op), [&](std::exception_ptr e, T value) {
            if (e) {
                error = e;
                return;
            }
            out.emplace(std::move(value));
        });
        io_.restart();
        io_.run();
        if (error) std::rethrow_exception(error);
        return std::move(*out);
    }

  private:
    ChainSession() = default;
    boost::asio::io_context io_;
    std::unique_ptr<chain::JsonRpcClient> rpc_;
    std::unique_ptr<chain::JsonRpcChainClient> client_;
};

}  // namespace decloud::orchestrator::app
