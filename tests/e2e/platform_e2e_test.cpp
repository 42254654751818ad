// The real orchestrator and agent processes on loopback with a real PostgreSQL: the agent
// registers and heartbeats, the node shows online; the orchestrator is stopped and started
// again and the agent reconnects by itself.

#include <gtest/gtest.h>
#include <signal.h>

#include <nlohmann/json.hpp>

#include "decloud/crypto/ethereum.hpp"
#include "decloud/testing/process.hpp"
#include "decloud/testing/sign_in.hpp"
#include "decloud/testing/temp_pg_cluster.hpp"

namespace decloud {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

class PlatformTest : public ::testing::Test {
  protected:
    void SetUp() override {
        database_url_ = pg_.CreateDatabase("e2e");
        api_port_ = testing::FreeTcpPort();
        agent_port_ = testing::FreeTcpPort();
    }

    std::unique_ptr<testing::ChildProcess> StartOrchestrator() {
        return std::make_unique<testing::ChildProcess>(
            DECLOUD_ORCHESTRATOR_BIN,
            std::vector<std::string>{
                "--set", "server.port=" + std::to_string(api_port_), "--set",
                "database.url=" + database_url_, "--set", "nodes.heartbeat_interval=1s", "--set",
                "nodes.offline_after=5s", "--set", "nodes.offline_sweep_interval=500ms", "--set",
                "log.level=debug", "--set", "auth.key_file=" + dir_.path() + "/jwt.keys", "--set",
                "auth.domain=127.0.0.1:" + std::to_string(api_port_), "--set",
                "auth.uri=http://127.0.0.1:" + std::to_string(api_port_)},
            dir_.path() + "/orchestrator.log");
    }

    std::unique_ptr<testing::ChildProcess> StartAgent() {
        return std::make_unique<testing::ChildProcess>(
            DECLOUD_AGENT_BIN,
            std::vector<std::string>{
                "--set", "orchestrator.url=http://127.0.0.1:" + std::to_string(api_port_), "--set",
                "node.operator_wallet=" + operator_.Address(), "--set", "node.region=test-lab",
                "--set", "node.tags=e2e,ssd", "--set", "node.state_dir=" + dir_.path() + "/agent",
                "--set", "node.vm_storage_path=" + dir_.path() + "/agent/vms", "--set",
                "benchmark.seconds=1", "--set", "heartbeat.initial_backoff=200ms", "--set",
                "heartbeat.max_backoff=1s", "--set", "heartbeat.request_timeout=2s", "--set",
                "server.port=" + std::to_string(agent_port_),
                // Other tests' agents may hold the default ingress port.
                "--set", "ingress.address=127.0.0.1", "--set", "ingress.port=0"},
            dir_.path() + "/agent.log");
    }

    bool OrchestratorReady() {
        auto r = testing::HttpRequest(api_port_, "GET", "/readyz");
        return r && r->status == 200;
    }

    // A GET as the node's operator (signing in when there is no session yet).
    std::optional<testing::HttpReply> OperatorGet(const std::string& target) {
        if (session_.token.empty()) {
            auto signed_in = testing::SignIn(api_port_, operator_);
            if (!signed_in) return std::nullopt;
            session_ = *signed_in;
        }
        return testing::HttpRequest(api_port_, "GET", target, {}, {session_.Header()});
    }

    std::optional<json> OnlineNodes() {
        auto r = OperatorGet("/api/nodes?status=online");
        if (!r || r->status != 200) return std::nullopt;
        return json::parse(r->body, nullptr, false);
    }

    testing::TempPgCluster pg_;
    testing::TempDir dir_{"decloud-e2e"};
    crypto::EthereumKey operator_ = crypto::EthereumKey::Generate();
    testing::Session session_;
    std::string database_url_;
    std::uint16_t api_port_ = 0;
    std::uint16_t agent_port_ = 0;
};

TEST_F(PlatformTest, AgentRegistersHeartbeatsAndSurvivesAnOrchestratorRestart) {
    auto orchestrator = StartOrchestrator();
    ASSERT_TRUE(testing::WaitUntil([&] { return OrchestratorReady(); }, 60s))
        << orchestrator->Log();
    auto agent = StartAgent();

    json node;
    ASSERT_TRUE(testing::WaitUntil(
        [&] {
            auto nodes = OnlineNodes();
            if (!nodes || (*nodes)["nodes"].empty()) return false;
            node = (*nodes)["nodes"][0];
            return true;
        },
        90s))
        << agent->Log() << orchestrator->Log();
    EXPECT_EQ(node["status"], "online");
    EXPECT_EQ(node["operatorWallet"], operator_.Address());
    EXPECT_EQ(node["region"], "test-lab");
    EXPECT_EQ(node["tags"], json({"e2e", "ssd"}));
    EXPECT_GT(node["computePoints"].get<int>(), 0);
    EXPECT_GE(node["resources"]["cpuThreads"].get<int>(), 1);
    EXPECT_GT(node["resources"]["memoryBytes"].get<std::uint64_t>(), 0u);
    // Seen from loopback with no public address: the node cannot be reached, so it needs a relay.
    EXPECT_TRUE(node["requiresRelay"].get<bool>());
    EXPECT_NE(node["cgnatReason"].get<std::string>().find("loopback"), std::string::npos);
    const std::string node_id = node["id"];

    auto health = testing::HttpRequest(agent_port_, "GET", "/healthz");
    ASSERT_TRUE(health);
    EXPECT_EQ(json::parse(health->body)["nodeId"], node_id);

    // The ingress proxy's counters are on the agent's /metrics: one request for a VM this node
    // does not run is one 4xx.
    const auto log = agent->Log();
    const std::string ingress_marker = "ingress proxy on http://127.0.0.1:";
    const auto at = log.find(ingress_marker);
    ASSERT_NE(at, std::string::npos) << log;
    const auto ingress_port =
        static_cast<std::uint16_t>(std::stoi(log.substr(at + ingress_marker.size())));
    auto refused = testing::HttpRequest(
        ingress_port, "GET", "/api/vms/9e8d7c6b-5a49-4382-9170-6f5e4d3c2b1a/proxy/http/80/");
    ASSERT_TRUE(refused);
    EXPECT_EQ(refused->status, 404);
    auto metrics = testing::HttpRequest(agent_port_, "GET", "/metrics");
    ASSERT_TRUE(metrics);
    EXPECT_NE(metrics->body.find("\ndecloud_ingress_requests_total 1\n"), std::string::npos)
        << metrics->body;
    EXPECT_NE(metrics->body.find("\ndecloud_ingress_responses_total{class=\"4xx\"} 1\n"),
              std::string::npos)
        << metrics->body;
    EXPECT_NE(metrics->body.find("\ndecloud_ingress_websockets 0\n"), std::string::npos)
        << metrics->body;

    // Orchestrator goes away: it shuts down gracefully; the agent keeps running and retrying.
    EXPECT_EQ(orchestrator->Terminate(), 0) << orchestrator->Log();
    const std::string before_restart = [&] {
        auto r = testing::HttpRequest(agent_port_, "GET", "/healthz");
        return r ? r->body : std::string();
    }();
    ASSERT_TRUE(testing::WaitUntil(
        [&] {
            auto r = testing::HttpRequest(agent_port_, "GET", "/healthz");
            return r && json::parse(r->body)["failures"].get<int>() > 0;
        },
        30s))
        << agent->Log();
    EXPECT_TRUE(agent->Running()) << "the agent must not crash when the orchestrator is down";

    orchestrator = StartOrchestrator();
    ASSERT_TRUE(testing::WaitUntil([&] { return OrchestratorReady(); }, 60s))
        << orchestrator->Log();
    const auto restart_heartbeats =
        json::parse(testing::HttpRequest(agent_port_, "GET", "/healthz")->body)["heartbeatsSent"]
            .get<int>();
    ASSERT_TRUE(testing::WaitUntil(
        [&] {
            auto r = testing::HttpRequest(agent_port_, "GET", "/healthz");
            return r && json::parse(r->body)["heartbeatsSent"].get<int>() > restart_heartbeats + 1;
        },
        60s))
        << agent->Log();
    auto after = OperatorGet("/api/nodes/" + node_id);
    ASSERT_TRUE(after);
    ASSERT_EQ(after->status, 200);
    const auto view = json::parse(after->body);
    EXPECT_EQ(view["status"], "online");
    EXPECT_EQ(view["id"], node_id) << "same node after the restart, not a duplicate";
    auto all = OperatorGet("/api/nodes");
    EXPECT_EQ(json::parse(all->body)["nodes"].size(), 1u);

    EXPECT_EQ(agent->Terminate(), 0) << agent->Log();
    EXPECT_EQ(orchestrator->Terminate(), 0) << orchestrator->Log();
    (void)before_restart;
}

TEST_F(PlatformTest, SilentNodeGoesOfflineAndComesBack) {
    auto orchestrator = StartOrchestrator();
    ASSERT_TRUE(testing::WaitUntil([&] { return OrchestratorReady(); }, 60s))
        << orchestrator->Log();
    auto agent = StartAgent();
    ASSERT_TRUE(testing::WaitUntil(
        [&] {
            auto n = OnlineNodes();
            return n && !(*n)["nodes"].empty();
        },
        90s))
        << agent->Log();
    // Freeze the agent (no heartbeats) without killing it; offline_after is 5 s here.
    ASSERT_EQ(::kill(agent->pid(), SIGSTOP), 0);
    const bool went_offline = testing::WaitUntil(
        [&] {
            auto r = OperatorGet("/api/nodes?status=offline");
            return r && r->status == 200 && !json::parse(r->body)["nodes"].empty();
        },
        60s);
    ::kill(agent->pid(), SIGCONT);
    ASSERT_TRUE(went_offline) << orchestrator->Log();
    ASSERT_TRUE(testing::WaitUntil(
        [&] {
            auto n = OnlineNodes();
            return n && !(*n)["nodes"].empty();
        },
        60s))
        << agent->Log();
    auto nodes = OnlineNodes();
    const auto& node = (*nodes)["nodes"][0];
    EXPECT_GT(node["heartbeats"]["missedToday"].get<int>(), 0) << node.dump();
    EXPECT_GT(node["uptime30dPercent"].get<double>(), 0.0);
    EXPECT_LT(node["uptime30dPercent"].get<double>(), 100.0);
    EXPECT_EQ(agent->Terminate(), 0);
    EXPECT_EQ(orchestrator->Terminate(), 0);
}

}  // namespace
}  // namespace decloud
