// A VM for real, through the orchestrator's API: PostgreSQL, the orchestrator and a node agent
// as processes, the agent driving a real libvirtd (in a network namespace of its own) that
// boots the tiny guest under QEMU emulation. Create -> running -> the guest answers HTTP with
// the host name from its cloud-init seed -> stop -> start -> delete, and nothing is left on
// the node. Then the agent is killed in the middle of a create and started again: the VM
// converges (running or failed), and no domain leaks.

#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "decloud/crypto/ethereum.hpp"
#include "decloud/testing/libvirt_sandbox.hpp"
#include "decloud/testing/orchestrator.hpp"
#include "decloud/testing/process.hpp"
#include "decloud/testing/sign_in.hpp"
#include "decloud/testing/temp_pg_cluster.hpp"

namespace decloud {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
namespace fs = std::filesystem;

class VmEndToEndTest : public ::testing::Test {
  protected:
    void SetUp() override {
        guest_ = testing::BuildOrLoadTinyGuest();
        sandbox_ = std::make_unique<testing::LibvirtSandbox>();
        // The agent's image folder for "tiny": the guest's disk, kernel, initramfs and cmdline.
        const auto image = dir_.path() + "/images/tiny";
        fs::create_directories(image);
        fs::copy_file(guest_.base_image, image + "/disk.qcow2");
        fs::copy_file(guest_.kernel, image + "/vmlinuz");
        fs::copy_file(guest_.initrd, image + "/initrd.img");
        std::ofstream(image + "/cmdline") << guest_.cmdline << "\n";

        database_url_ = pg_.CreateDatabase("vm_e2e");
        auto started = testing::StartTestOrchestrator(
            DECLOUD_ORCHESTRATOR_BIN, database_url_, dir_.path(),
            {"nodes.heartbeat_interval=1s", "nodes.offline_after=30s", "vms.images=tiny",
             "vms.command_redelivery=5s", "vms.command_poll_interval=200ms",
             "vms.report_settle_time=5s", "vms.orphan_grace=10s"});
        orchestrator_ = std::move(started.process);
        port_ = started.port;
        ASSERT_TRUE(started.ready) << orchestrator_->Log();
        auto session = testing::SignIn(port_, user_);
        ASSERT_TRUE(session) << session.error().message;
        session_ = *session;
        agent_ = StartAgent();
        ASSERT_TRUE(testing::WaitUntil([&] { return !NodeId().empty(); }, 90s))
            << agent_->Log() << orchestrator_->Log();
    }

    void TearDown() override {
        if (::testing::Test::HasFailure()) {
            std::cerr << "--- agent log ---\n"
                      << (agent_ ? agent_->Log() : "") << "\n--- orchestrator log ---\n"
                      << (orchestrator_ ? orchestrator_->Log() : "") << "\n--- libvirt ---\n"
                      << (sandbox_ ? sandbox_->Logs() : "") << "\n";
        }
        // Both daemons stop cleanly on SIGTERM (and ASan finds no leak on the way out).
        if (agent_) {
            EXPECT_EQ(agent_->Terminate(), 0) << agent_->Log();
        }
        if (orchestrator_) {
            EXPECT_EQ(orchestrator_->Terminate(), 0) << orchestrator_->Log();
        }
        agent_.reset();
        orchestrator_.reset();
        sandbox_.reset();
    }

    std::unique_ptr<testing::ChildProcess> StartAgent() {
        return std::make_unique<testing::ChildProcess>(
            DECLOUD_AGENT_BIN,
            std::vector<std::string>{
                "--set", "orchestrator.url=http://127.0.0.1:" + std::to_string(port_), "--set",
                "node.operator_wallet=" + operator_.Address(), "--set",
                "node.state_dir=" + dir_.path() + "/agent", "--set",
                "node.vm_storage_path=" + storage_, "--set", "benchmark.seconds=1", "--set",
                "heartbeat.initial_backoff=200ms", "--set", "heartbeat.max_backoff=1s", "--set",
                "heartbeat.request_timeout=5s", "--set", "vms.libvirt_uri=" + sandbox_->Uri(),
                "--set", "vms.domain_type=qemu", "--set",
                "vms.images_dir=" + dir_.path() + "/images", "--set",
                "vms.network=" + sandbox_->NetworkName(), "--set", "vms.report_every_heartbeats=2",
                "--set", "server.port=0",
                // Other tests' agents may hold the default ingress port.
                "--set", "ingress.address=127.0.0.1", "--set", "ingress.port=0"},
            dir_.path() + "/agent.log");
    }

    std::string NodeId() {
        auto operator_session = testing::SignIn(port_, operator_);
        if (!operator_session) return {};
        auto r = testing::HttpRequest(port_, "GET", "/api/nodes?status=online", {},
                                      {operator_session->Header()});
        if (!r || r->status != 200) return {};
        auto nodes = json::parse(r->body)["nodes"];
        return nodes.empty() ? std::string() : nodes[0]["id"].get<std::string>();
    }

    std::optional<testing::HttpReply> Api(const std::string& method, const std::string& target,
                                          const std::string& body = {}) {
        return testing::HttpRequest(port_, method, target, body, {session_.Header()},
                                    std::chrono::seconds{30});
    }

    json Vm(const std::string& id) {
        auto r = Api("GET", "/api/vms/" + id);
        return r && r->status == 200 ? json::parse(r->body) : json();
    }

    // Waits (bounded) until the VM is in `state`; false if it ends up failed or times out.
    bool WaitForState(const std::string& id, const std::string& state,
                      std::chrono::seconds limit = 240s) {
        return testing::WaitUntil(
                   [&] {
                       const auto vm = Vm(id);
                       return !vm.is_null() && (vm["state"] == state || vm["state"] == "failed");
                   },
                   limit, 500ms) &&
               Vm(id)["state"] == state;
    }

    std::string CreateVm(const std::string& name, const std::string& user_data = {}) {
        json body{{"name", name}, {"cpuCores", 1},   {"memoryMib", 256},
                  {"diskGib", 1}, {"image", "tiny"}, {"tier", "burstable"}};
        if (!user_data.empty()) body["userData"] = user_data;
        auto r = Api("POST", "/api/vms", body.dump());
        EXPECT_TRUE(r && r->status == 201) << (r ? r->body : "no answer");
        return r && r->status == 201 ? json::parse(r->body)["id"].get<std::string>() : "";
    }

    // One console session through the ws-client test tool: types `send` until it comes back.
    json Console(const std::string& id, const std::string& token, const std::string& send) {
        std::vector<std::string> args{
            std::string(DECLOUD_UPSTREAM_DIR) + "/ws-client.js",
            "console",
            "ws://127.0.0.1:" + std::to_string(port_) + "/api/vms/" + id + "/console",
            "--token",
            token,
            "--ms",
            "30000"};
        if (!send.empty()) {
            args.insert(args.end(), {"--send", send, "--expect", "decloud-console-check"});
        }
        const auto run = testing::RunCommand(testing::FindExecutable("node"), args, {}, {}, 60s);
        auto out = json::parse(run.out, nullptr, false);
        if (run.exit_code != 0 || out.is_discarded()) return json{{"error", run.out + run.err}};
        return out;
    }

    std::vector<std::string> Domains() {
        auto r = sandbox_->Virsh({"list", "--all", "--name"});
        std::vector<std::string> out;
        std::istringstream lines(r.out);
        std::string line;
        while (std::getline(lines, line))
            if (!line.empty()) out.push_back(line);
        return out;
    }

    testing::TinyGuest guest_;
    testing::TempPgCluster pg_;
    testing::TempDir dir_{"decloud-vm-e2e"};
    std::string storage_ = dir_.path() + "/agent/vms";
    std::unique_ptr<testing::LibvirtSandbox> sandbox_;
    crypto::EthereumKey operator_ = crypto::EthereumKey::Generate();
    crypto::EthereumKey user_ = crypto::EthereumKey::Generate();
    testing::Session session_;
    std::string database_url_;
    std::uint16_t port_ = 0;
    std::unique_ptr<testing::ChildProcess> orchestrator_;
    std::unique_ptr<testing::ChildProcess> agent_;
};

TEST_F(VmEndToEndTest, CreateRunStopStartDeleteThroughTheApi) {
    const auto started = std::chrono::steady_clock::now();
    const auto id = CreateVm("Hello <World> & 'Co'");
    ASSERT_FALSE(id.empty());
    ASSERT_TRUE(WaitForState(id, "running")) << Vm(id).dump();
    // The address comes from the DHCP lease, which the agent's reports carry once the guest
    // has one.
    json vm;
    ASSERT_TRUE(testing::WaitUntil(
        [&] {
            vm = Vm(id);
            return !vm.is_null() && !vm["addresses"].empty();
        },
        180s, 500ms))
        << vm.dump();
    const std::string address = vm["addresses"][0];
    std::string hostname;
    ASSERT_TRUE(testing::WaitUntil(
        [&] {
            hostname = sandbox_->HttpGet(address, testing::TinyGuest::kHttpPort, "/hostname");
            return !hostname.empty();
        },
        180s, 1s));
    const auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started);
    std::cout << "create to HTTP answer: " << seconds.count() << " s\n";
    EXPECT_EQ(hostname, "hello-world-co") << "the seed's local-hostname, derived from the name";
    EXPECT_EQ(sandbox_->HttpGet(address, testing::TinyGuest::kHttpPort, "/instance-id"), id);
    EXPECT_EQ(Domains(), std::vector<std::string>{"decloud-" + id});

    // The serial console, as the web console opens it: the owner's WebSocket reaches the guest's
    // ttyS0 through the orchestrator, the agent's command channel and libvirt; what is typed
    // comes back (the guest's tty echoes it).
    const auto console = Console(id, session_.token, "decloud-console-check\r");
    EXPECT_EQ(console["open"], true) << console.dump();
    EXPECT_EQ(console["sawExpected"], true) << console.dump() << "\n" << agent_->Log();
    EXPECT_EQ(console["badFrames"], 0) << console.dump();
    // Another wallet does not learn the VM exists.
    auto stranger = testing::SignIn(port_, crypto::EthereumKey::Generate());
    ASSERT_TRUE(stranger) << stranger.error().message;
    const auto refused = Console(id, stranger->token, "");
    EXPECT_EQ(refused["open"], false) << refused.dump();
    EXPECT_EQ(refused["status"], 404) << refused.dump();

    auto stop = Api("POST", "/api/vms/" + id + "/stop");
    ASSERT_TRUE(stop && stop->status == 202) << (stop ? stop->body : "");
    ASSERT_TRUE(WaitForState(id, "stopped", 120s)) << Vm(id).dump();
    EXPECT_NE(sandbox_->Virsh({"domstate", "decloud-" + id}).out.find("shut off"),
              std::string::npos);

    auto start = Api("POST", "/api/vms/" + id + "/start");
    ASSERT_TRUE(start && start->status == 202) << (start ? start->body : "");
    ASSERT_TRUE(WaitForState(id, "running", 120s)) << Vm(id).dump();

    auto del = Api("DELETE", "/api/vms/" + id);
    ASSERT_TRUE(del && del->status == 202) << (del ? del->body : "");
    ASSERT_TRUE(WaitForState(id, "deleted", 120s)) << Vm(id).dump();
    EXPECT_TRUE(Domains().empty());
    EXPECT_FALSE(fs::exists(storage_ + "/" + id)) << "overlay and seed removed";

    auto events = json::parse(Api("GET", "/api/vms/" + id + "/events")->body)["events"];
    std::vector<std::string> states;
    for (const auto& e : events) states.push_back(e["to"]);
    EXPECT_EQ(states, (std::vector<std::string>{"scheduling", "provisioning", "running", "stopping",
                                                "stopped", "provisioning", "running", "deleting",
                                                "deleted"}));
}

TEST_F(VmEndToEndTest, TheBootLogOfAVmThatFailedToStartIsKeptForItsOwner) {
    // This guest's user-data makes it print a failure on its console and power off at once.
    const auto id = CreateVm("broken", testing::TinyGuest::kFailBootUserData);
    ASSERT_FALSE(id.empty());
    // It runs, then stops by itself; the orchestrator hears it from the node's next report.
    ASSERT_TRUE(testing::WaitUntil([&] { return Vm(id)["state"] == "stopped"; }, 240s, 500ms))
        << Vm(id).dump();
    EXPECT_NE(Vm(id)["stateReason"].get<std::string>().find("failed to start"), std::string::npos)
        << Vm(id).dump();
    EXPECT_EQ(Vm(id)["bootLogKept"], true) << Vm(id).dump();

    auto log = Api("GET", "/api/vms/" + id + "/boot-log");
    ASSERT_TRUE(log && log->status == 200) << (log ? log->body : "no answer");
    const auto boot = json::parse(log->body);
    EXPECT_EQ(boot["vmId"], id);
    EXPECT_EQ(boot["failedToStart"], true) << boot.dump();
    EXPECT_TRUE(boot["ranForSeconds"].is_number()) << boot.dump();
    const auto text = boot["log"].get<std::string>();
    EXPECT_NE(text.find(testing::TinyGuest::kBootFailedMarker), std::string::npos) << text;
    EXPECT_NE(text.find("the user-data asks for a failed boot"), std::string::npos) << text;
    EXPECT_EQ(text.find('\r'), std::string::npos);

    // Only its owner reads it.
    auto stranger = testing::SignIn(port_, crypto::EthereumKey::Generate());
    ASSERT_TRUE(stranger) << stranger.error().message;
    auto refused = testing::HttpRequest(port_, "GET", "/api/vms/" + id + "/boot-log", {},
                                        {stranger->Header()});
    ASSERT_TRUE(refused);
    EXPECT_EQ(refused->status, 404);
    EXPECT_NE(refused->Header("Content-Type").find("application/problem+json"), std::string::npos);

    // A VM that failed to start can be deleted like any other.
    auto del = Api("DELETE", "/api/vms/" + id);
    ASSERT_TRUE(del && del->status == 202) << (del ? del->body : "");
    ASSERT_TRUE(WaitForState(id, "deleted", 120s)) << Vm(id).dump();
    EXPECT_TRUE(Domains().empty());
}

TEST_F(VmEndToEndTest, AnAgentKilledMidCreateConvergesWithoutLeakingADomain) {
    const auto id = CreateVm("interrupted");
    ASSERT_FALSE(id.empty());
    // Kill the agent as soon as libvirt knows the domain: the create is in progress.
    ASSERT_TRUE(testing::WaitUntil([&] { return !Domains().empty(); }, 60s, 100ms))
        << agent_->Log();
    ::kill(agent_->pid(), SIGKILL);
    agent_->Terminate();
    agent_ = StartAgent();

    ASSERT_TRUE(testing::WaitUntil(
        [&] {
            const auto state = Vm(id)["state"];
            return state == "running" || state == "failed";
        },
        240s, 500ms))
        << Vm(id).dump();
    // Running: exactly its one domain. Failed: it may keep a domain until deleted.
    if (Vm(id)["state"] == "running") {
        EXPECT_EQ(Domains(), std::vector<std::string>{"decloud-" + id});
    }
    auto del = Api("DELETE", "/api/vms/" + id);
    ASSERT_TRUE(del && del->status == 202) << (del ? del->body : "");
    ASSERT_TRUE(WaitForState(id, "deleted", 120s)) << Vm(id).dump();
    EXPECT_TRUE(Domains().empty()) << "no domain leaked";
    EXPECT_FALSE(fs::exists(storage_ + "/" + id));
}

TEST_F(VmEndToEndTest, BadRequestsAreRefusedAndCreateNothing) {
    auto problem = [&](const json& body, int status, const std::string& needle) {
        auto r = Api("POST", "/api/vms", body.dump());
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, status) << body.dump() << " -> " << r->body;
        EXPECT_EQ(r->Header("Content-Type"), "application/problem+json");
        EXPECT_NE(r->body.find(needle), std::string::npos) << r->body;
    };
    const json ok{
        {"name", "x"}, {"cpuCores", 1}, {"memoryMib", 256}, {"diskGib", 1}, {"image", "tiny"}};
    auto with = [&](const char* key, json value) {
        json b = ok;
        b[key] = std::move(value);
        return b;
    };
    problem(with("memoryMib", 1u << 22), 400, "memoryMib");
    problem(with("memoryMib", 256 * 1024), 422, "memory");
    problem(with("cpuCores", 0), 400, "cpuCores");
    problem(with("cpuCores", "two"), 400, "cpuCores");
    problem(with("image", "windows-95"), 400, "image");
    problem(with("name", ""), 400, "name");
    problem(with("tier", "platinum"), 400, "tier");
    problem(with("nodeId", "00000000-0000-4000-8000-000000000000"), 422, "node");
    problem(with("surprise", 1), 400, "surprise");
    auto truncated = testing::RawExchange(
        port_,
        "POST /api/vms HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: "
        "Bearer " +
            session_.token + "\r\nContent-Length: 100\r\n\r\n{\"name\":",
        true);
    EXPECT_EQ(truncated.find("201"), std::string::npos) << truncated;
    auto list = json::parse(Api("GET", "/api/vms")->body)["vms"];
    EXPECT_TRUE(list.empty()) << list.dump();
    EXPECT_TRUE(Domains().empty());
}

}  // namespace
}  // namespace decloud
