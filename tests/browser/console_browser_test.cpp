// The web console as a person uses it, in Debian's chromium (headless, driven by playwright-core):
// sign in with a wallet (a test EIP-1193 provider that really signs), find the node in the
// marketplace, deploy a VM from a template to it, watch it run, stop it, deploy one whose boot
// fails and read its boot log, sign out. Everything behind the page is real: PostgreSQL, the
// orchestrator serving web/dist, and a node agent whose libvirtd (in a network namespace of its
// own) boots the tiny guest. Screenshots of every page are kept under the test's build
// directory.

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "decloud/crypto/crypto.hpp"
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

// A template on the tiny guest's image, so a VM made from it really boots here.
constexpr std::string_view kTemplateJson = R"({
  "id": "tiny-hello",
  "name": "Tiny hello",
  "description": "The test guest: answers HTTP on port 8080 with its host name.",
  "version": 1,
  "image": "tiny",
  "minimum": {"cpuCores": 1, "memoryMib": 256, "diskGib": 1},
  "ports": [{"port": 8080, "name": "http", "protocol": "http"}],
  "parameters": [
    {"name": "greeting", "type": "string", "description": "A word for the guest",
     "pattern": "[a-z]{1,16}", "default": "hello"}
  ]
})";

class ConsoleBrowserTest : public ::testing::Test {
  protected:
    void SetUp() override {
        ASSERT_TRUE(fs::exists(DECLOUD_WEB_DIR "/dist/index.html"))
            << "build the console first: scripts/build-web.sh (or the decloud_web target)";
        ASSERT_TRUE(fs::exists("/usr/bin/chromium")) << "apt-get install chromium";
        guest_ = testing::BuildOrLoadTinyGuest();
        sandbox_ = std::make_unique<testing::LibvirtSandbox>();
        const auto image = dir_.path() + "/images/tiny";
        fs::create_directories(image);
        fs::copy_file(guest_.base_image, image + "/disk.qcow2");
        fs::copy_file(guest_.kernel, image + "/vmlinuz");
        fs::copy_file(guest_.initrd, image + "/initrd.img");
        std::ofstream(image + "/cmdline") << guest_.cmdline << "\n";
        const auto templates = dir_.path() + "/templates/tiny-hello";
        fs::create_directories(templates);
        std::ofstream(templates + "/template.json") << kTemplateJson;
        std::ofstream(templates + "/user-data.yaml")
            << "#cloud-config\nwrite_files:\n  - path: /etc/greeting\n    content: {{greeting}}\n";

        database_url_ = pg_.CreateDatabase("browser");
        auto started = testing::StartTestOrchestrator(
            DECLOUD_ORCHESTRATOR_BIN, database_url_, dir_.path(),
            {"nodes.heartbeat_interval=1s", "nodes.offline_after=30s", "vms.images=tiny",
             "vms.command_redelivery=5s", "vms.command_poll_interval=200ms", "vms.stop_grace=10s",
             "marketplace.refresh_interval=1s", "templates.directory=" + dir_.path() + "/templates",
             "web.root=" DECLOUD_WEB_DIR "/dist"});
        orchestrator_ = std::move(started.process);
        port_ = started.port;
        ASSERT_TRUE(started.ready) << orchestrator_->Log();
        // The user is also the node's operator, so the operator page has something to show.
        agent_ = std::make_unique<testing::ChildProcess>(
            DECLOUD_AGENT_BIN,
            std::vector<std::string>{
                "--set", "orchestrator.url=http://127.0.0.1:" + std::to_string(port_),
                "--set", "node.operator_wallet=" + user_.Address(),
                "--set", "node.region=browser-lab",
                "--set", "node.tags=browser,ssd",
                "--set", "node.state_dir=" + dir_.path() + "/agent",
                "--set", "node.vm_storage_path=" + dir_.path() + "/agent/vms",
                "--set", "benchmark.seconds=1",
                "--set", "heartbeat.initial_backoff=200ms",
                "--set", "heartbeat.max_backoff=1s",
                "--set", "heartbeat.request_timeout=5s",
                "--set", "vms.libvirt_uri=" + sandbox_->Uri(),
                "--set", "vms.domain_type=qemu",
                "--set", "vms.images_dir=" + dir_.path() + "/images",
                "--set", "vms.network=" + sandbox_->NetworkName(),
                "--set", "vms.report_every_heartbeats=2",
                "--set", "server.port=0",
                "--set", "ingress.address=127.0.0.1",
                "--set", "ingress.port=0"},
            dir_.path() + "/agent.log");
        auto session = testing::SignIn(port_, user_);
        ASSERT_TRUE(session) << session.error().message;
        session_ = *session;
        ASSERT_TRUE(testing::WaitUntil([&] { return !NodeId().empty(); }, 90s))
            << agent_->Log() << orchestrator_->Log();
    }

    void TearDown() override {
        if (::testing::Test::HasFailure()) {
            std::cerr << "--- agent log ---\n"
                      << (agent_ ? agent_->Log() : "") << "\n--- orchestrator log ---\n"
                      << (orchestrator_ ? orchestrator_->Log() : "") << "\n";
        }
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

    std::optional<testing::HttpReply> Api(const std::string& method, const std::string& target) {
        return testing::HttpRequest(port_, method, target, {}, {session_.Header()}, 30s);
    }

    std::string NodeId() {
        auto r = Api("GET", "/api/nodes?status=online");
        if (!r || r->status != 200) return {};
        auto nodes = json::parse(r->body)["nodes"];
        return nodes.empty() ? std::string() : nodes[0]["id"].get<std::string>();
    }

    testing::TinyGuest guest_;
    testing::TempPgCluster pg_;
    testing::TempDir dir_{"decloud-browser"};
    std::unique_ptr<testing::LibvirtSandbox> sandbox_;
    crypto::EthereumKey user_ = crypto::EthereumKey::Generate();
    testing::Session session_;
    std::string database_url_;
    std::uint16_t port_ = 0;
    std::unique_ptr<testing::ChildProcess> orchestrator_;
    std::unique_ptr<testing::ChildProcess> agent_;
};

TEST_F(ConsoleBrowserTest, SignInDeployRunStopSignOut) {
    const auto node_id = NodeId();
    const std::string artifacts = DECLOUD_ARTIFACTS_DIR;
    fs::remove_all(artifacts);
    fs::create_directories(artifacts);
    const json config{{"baseUrl", "http://127.0.0.1:" + std::to_string(port_)},
                      {"privateKey", crypto::HexEncode(user_.Secret())},
                      {"address", user_.Address()},
                      {"nodeId", node_id},
                      {"template", "tiny-hello"},
                      {"webDir", DECLOUD_WEB_DIR},
                      {"artifacts", artifacts},
                      {"chromium", "/usr/bin/chromium"}};
    const auto config_path = dir_.path() + "/browser.json";
    std::ofstream(config_path) << config.dump(2);

    const auto run = testing::RunCommand(testing::FindExecutable("node"),
                                         {DECLOUD_BROWSER_SPEC, config_path}, {}, {}, 240s);
    std::cout << run.out << run.err;
    ASSERT_EQ(run.exit_code, 0) << "the browser scenario failed (screenshots in " << artifacts
                                << ")";

    // What the page showed is what the server holds: the VM from the template, on the node,
    // stopped by its owner; the one whose boot failed, stopped with its boot log kept; and the
    // signed-out session's token no longer works.
    auto list = Api("GET", "/api/vms");
    ASSERT_TRUE(list && list->status == 200) << (list ? list->body : "no answer");
    const auto vms = json::parse(list->body)["vms"];
    ASSERT_EQ(vms.size(), 2u) << vms.dump();
    const auto named = [&](const std::string& name) {
        for (const auto& vm : vms)
            if (vm["name"] == name) return vm;
        return json();
    };
    const auto vm = named("Browser VM");
    EXPECT_EQ(vm["state"], "stopped") << vm.dump();
    EXPECT_EQ(vm["template"], "tiny-hello");
    EXPECT_EQ(vm["nodeId"], node_id);
    EXPECT_EQ(vm["bootLogKept"], false);
    const auto broken = named("Broken VM");
    EXPECT_EQ(broken["state"], "stopped") << broken.dump();
    EXPECT_EQ(broken["bootLogKept"], true) << broken.dump();
    EXPECT_EQ(broken["image"], "tiny");
    auto events = Api("GET", "/api/vms/" + vm["id"].get<std::string>() + "/events");
    ASSERT_TRUE(events && events->status == 200);
    std::vector<std::string> states;
    const auto history = json::parse(events->body);
    for (const auto& e : history["events"]) states.push_back(e["to"]);
    EXPECT_NE(std::find(states.begin(), states.end(), "running"), states.end()) << events->body;
    for (const char* page : {"01-market", "02-signin", "03-vms-empty", "04-deploy-quote",
                             "05-vm-running", "06-vms-list", "07-billing", "08-operator",
                             "09-vm-stopped", "09b-vm-boot-log", "10-signed-out"}) {
        const auto shot = artifacts + "/" + page + ".png";
        EXPECT_TRUE(fs::exists(shot) && fs::file_size(shot) > 1000) << shot;
    }
    std::cout << "screenshots: " << artifacts << "\n";
}

}  // namespace
}  // namespace decloud
