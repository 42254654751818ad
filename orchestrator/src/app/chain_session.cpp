#include "orchestrator/app/chain_session.hpp"

namespace decloud::orchestrator::app {

common::Result<std::unique_ptr<ChainSession>> ChainSession::Open(
    const std::string& rpc_url, std::chrono::milliseconds timeout) {
    std::unique_ptr<ChainSession> session(new ChainSession());
    net::ClientOptions options;
    options.connect_timeout = timeout;
    options.request_timeout = timeout;
    auto transport = chain::HttpRpcTransport::Create(session->io_.get_executor(), rpc_url, options);
    if (!transport) return transport.error();
    session->rpc_ =
        std::make_unique<chain::JsonRpcClient>(session->io_.get_executor(), std::move(*transport));
    session->client_ = std::make_unique<chain::JsonRpcChainClient>(*session->rpc_);
    return session;
}

}  // namespace decloud::orchestrator::app
