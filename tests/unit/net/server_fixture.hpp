#pragma once

#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <thread>

#include "decloud/net/http_server.hpp"

namespace decloud::net::testing_support {

// An HttpServer on 127.0.0.1:<free port> served by a background thread.
class ServerFixture : public ::testing::Test {
  protected:
    void StartServer(std::shared_ptr<Router> router, ServerOptions options = {}) {
        registry_ = std::make_shared<prometheus::Registry>();
        server_ = std::make_unique<HttpServer>(ioc_, options, router, registry_);
        port_ = server_->Start();
        thread_ = std::thread([this] { ioc_.run(); });
    }

    void TearDown() override {
        if (server_) {
            std::atomic<bool> done{false};
            server_->Shutdown([&] { done = true; });
            for (int i = 0; i < 500 && !done; ++i)
                std::this_thread::sleep_for(std::chrono::milliseconds{10});
        }
        work_.reset();
        ioc_.stop();
        if (thread_.joinable()) thread_.join();
        server_.reset();
    }

    asio::io_context ioc_;
    asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(ioc_);
    std::shared_ptr<prometheus::Registry> registry_;
    std::unique_ptr<HttpServer> server_;
    std::uint16_t port_ = 0;
    std::thread thread_;
};

}  // namespace decloud::net::testing_support
