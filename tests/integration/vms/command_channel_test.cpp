// The agent's command channel against a real orchestrator process and PostgreSQL: a node opens
// its WebSocket, a user creates a VM on it, and the create command arrives on the channel at
// once (no heartbeat in between); a result sent back on the channel moves the VM to running.
// Other nodes' tokens and no token are refused before the upgrade.

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <future>
#include <nlohmann/json.hpp>
#include <thread>

#include "decloud/crypto/ethereum.hpp"
#include "decloud/net/websocket.hpp"
#include "decloud/proto/node_messages.hpp"
#include "decloud/proto/vm_messages.hpp"
#include "decloud/testing/orchestrator.hpp"
#include "decloud/testing/process.hpp"
#include "decloud/testing/sign_in.hpp"
#include "decloud/testing/temp_pg_cluster.hpp"

namespace decloud {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
namespace asio = boost::asio;

class CommandChannelTest : public ::testing::Test {
  protected:
    void SetUp() override {
        auto started = testing::StartTestOrchestrator(
            DECLOUD_ORCHESTRATOR_BIN, pg_.CreateDatabase("channel"), dir_.path(),
            {"nodes.heartbeat_interval=1s", "nodes.heartbeat_flush_interval=50ms"});
        orchestrator_ = std::move(started.process);
        port_ = started.port;
        ASSERT_TRUE(started.ready) << orchestrator_->Log();
        auto session = testing::SignIn(port_, user_);
        ASSERT_TRUE(session);
        session_ = *session;
        auto node =
            testing::RegisterNode(port_, crypto::Ed25519KeyPair::Generate(), operator_.Address());
        auto other =
            testing::RegisterNode(port_, crypto::Ed25519KeyPair::Generate(), operator_.Address());
        ASSERT_TRUE(node && other);
        node_ = *node;
        other_ = *other;
        io_thread_ = std::thread([this] { ioc_.run(); });
    }

    void TearDown() override {
        // A graceful stop with channels open: exit code 0, and no leak reported by ASan.
        if (orchestrator_) {
            EXPECT_EQ(orchestrator_->Terminate(), 0) << orchestrator_->Log();
        }
        work_.reset();
        ioc_.stop();
        if (io_thread_.joinable()) io_thread_.join();
        if (HasFailure() && orchestrator_) std::cerr << orchestrator_->Log();
    }

    int Heartbeat(const testing::RegisteredNode& n, json* reply = nullptr) {
        const auto body = proto::ToJson(proto::HeartbeatRequest{{5, 1, 1, 0}, "t"}).dump();
        auto r = testing::HttpRequest(port_, "POST", "/api/nodes/" + n.id + "/heartbeat", body,
                                      {{"Authorization", "Bearer " + n.token}});
        if (r && reply) *reply = json::parse(r->body, nullptr, false);
        return r ? r->status : -1;
    }

    common::Result<std::shared_ptr<net::WebSocketConnection>> Open(const std::string& node_id,
                                                                   const std::string& token) {
        std::promise<common::Result<std::shared_ptr<net::WebSocketConnection>>> p;
        asio::co_spawn(
            ioc_,
            [&]() -> asio::awaitable<void> {
                // Called outside the co_await: g++ 12 mishandles non-trivial temporaries in a
                // co_await expression's arguments.
                auto connecting = net::ConnectWebSocket(ioc_.get_executor(), "127.0.0.1", port_,
                                                        "/api/nodes/" + node_id + "/channel",
                                                        {{"Authorization", "Bearer " + token}});
                p.set_value(co_await std::move(connecting));
            },
            asio::detached);
        return p.get_future().get();
    }

    // The next message, or an error after `limit` (the channel is closed then).
    common::Result<std::string> Read(const std::shared_ptr<net::WebSocketConnection>& ws,
                                     std::chrono::seconds limit = 20s) {
        auto p = std::make_shared<std::promise<common::Result<std::string>>>();
        auto f = p->get_future();
        asio::co_spawn(
            ioc_, [ws, p]() -> asio::awaitable<void> { p->set_value(co_await ws->Read()); },
            asio::detached);
        if (f.wait_for(limit) != std::future_status::ready) {
            ws->Close("test timed out");
            return common::Error::Timeout("no message within the limit");
        }
        return f.get();
    }

    testing::TempPgCluster pg_;
    testing::TempDir dir_{"decloud-channel"};
    crypto::EthereumKey user_ = crypto::EthereumKey::Generate();
    crypto::EthereumKey operator_ = crypto::EthereumKey::Generate();
    std::unique_ptr<testing::ChildProcess> orchestrator_;
    std::uint16_t port_ = 0;
    testing::Session session_;
    testing::RegisteredNode node_, other_;
    asio::io_context ioc_;
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_{
        asio::make_work_guard(ioc_)};
    std::thread io_thread_;
};

TEST_F(CommandChannelTest, CommandsArriveOnTheChannelAtOnceAndResultsComeBackOnIt) {
    ASSERT_EQ(Heartbeat(node_), 200);  // online after the next flush
    auto channel = Open(node_.id, node_.token);
    ASSERT_TRUE(channel) << channel.error().message;
    auto ws = *channel;

    const json body{{"name", "pushed"}, {"cpuCores", 1},        {"memoryMib", 256},
                    {"diskGib", 1},     {"image", "debian-12"}, {"nodeId", node_.id}};
    std::optional<testing::HttpReply> created;
    ASSERT_TRUE(testing::WaitUntil(
        [&] {
            created =
                testing::HttpRequest(port_, "POST", "/api/vms", body.dump(), {session_.Header()});
            return created && created->status == 201;
        },
        10s))
        << (created ? created->body : "");
    const std::string vm_id = json::parse(created->body)["id"];

    auto message = Read(ws);
    ASSERT_TRUE(message) << message.error().message;
    auto push = proto::DecodeChannelPush(json::parse(*message));
    ASSERT_TRUE(push) << *message;
    ASSERT_EQ(push->commands.size(), 1U);
    const auto& command = push->commands[0];
    EXPECT_EQ(command.type, "create_vm");
    EXPECT_EQ(command.payload["vmId"], vm_id);

    // Pushed, so not handed out again by a heartbeat.
    json beat;
    ASSERT_EQ(Heartbeat(node_, &beat), 200);
    EXPECT_TRUE(beat["commands"].empty()) << beat.dump();

    proto::CommandResult result;
    result.command_id = command.id;
    result.success = true;
    result.data = {{"addresses", {"192.168.122.7"}}};
    auto reply = proto::ToJson(result);
    reply["type"] = "result";
    ws->Send(reply.dump());
    json vm;
    ASSERT_TRUE(testing::WaitUntil(
        [&] {
            auto r =
                testing::HttpRequest(port_, "GET", "/api/vms/" + vm_id, {}, {session_.Header()});
            if (!r || r->status != 200) return false;
            vm = json::parse(r->body);
            return vm["state"] == "running";
        },
        10s))
        << vm.dump();
    EXPECT_EQ(vm["addresses"], json({"192.168.122.7"}));

    // A stop goes down the same channel.
    auto stop =
        testing::HttpRequest(port_, "POST", "/api/vms/" + vm_id + "/stop", {}, {session_.Header()});
    ASSERT_TRUE(stop && stop->status == 202);
    message = Read(ws);
    ASSERT_TRUE(message) << message.error().message;
    push = proto::DecodeChannelPush(json::parse(*message));
    ASSERT_TRUE(push && push->commands.size() == 1U) << *message;
    EXPECT_EQ(push->commands[0].type, "stop_vm");
    ws->Close();
}

TEST_F(CommandChannelTest, OnlyTheNodeItselfMayOpenItsChannel) {
    auto none = Open(node_.id, "");
    EXPECT_FALSE(none);
    auto foreign = Open(node_.id, other_.token);
    EXPECT_FALSE(foreign);
    auto unknown = Open("00000000-0000-4000-8000-000000000000", node_.token);
    EXPECT_FALSE(unknown);
    auto own = Open(other_.id, other_.token);
    ASSERT_TRUE(own) << own.error().message;
    (*own)->Close();
}

TEST_F(CommandChannelTest, AnythingButAResultClosesTheChannel) {
    auto channel = Open(node_.id, node_.token);
    ASSERT_TRUE(channel);
    (*channel)->Send("{\"type\": \"shell\", \"command\": \"rm -rf /\"}");
    auto message = Read(*channel);
    ASSERT_FALSE(message);
    EXPECT_NE(message.error().message.find("unexpected message"), std::string::npos)
        << message.error().message;
}

}  // namespace
}  // namespace decloud
