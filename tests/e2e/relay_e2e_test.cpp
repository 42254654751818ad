// Relays end to end: the real orchestrator (with PostgreSQL), three real agents, wireguard-go and
// nftables, in network namespaces this test builds and removes:
//
//   user 192.0.2.2 ---+                     +--- 203.0.113.2 relay-a (agent, public)
//                     |                     |
//                     +------ inet ---------+--- 203.0.113.6 relay-b (agent, public)
//                      (router; runs the    |
//                       orchestrator)       +--- 198.51.100.2 carrier (NAT, masquerade)
//                                                    |
//                                              100.64.0.2 cgnat (agent) --- 10.77.0.2 vm
//                                                    |
//                                              libvirtd, virbr0 --- the tiny guest (a real VM)
//
// Two VMs sit behind the CGNAT node. A real one: the tiny guest, created through the API and
// booted by the CGNAT node's agent with libvirt (QEMU emulation) on libvirt's NAT network in
// the CGNAT node's namespace; its web server (8080) and WebSocket echo (9000) are reached
// through the relay. And the "vm" namespace, standing in for one with the Node upstream (HTTP +
// WebSocket) at 10.77.0.2:8080, recorded as a VM's address as an agent reports it: it answers
// at once, while the guest takes a minute to boot under emulation, so the timed faults (key
// rotation, interface deleted, failover) are measured against it. Time runs on short configured
// intervals (1 s heartbeats, 3 s offline, 0.5 s sweeps and relay passes).
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <thread>

#include "decloud/crypto/ethereum.hpp"
#include "decloud/testing/libvirt_sandbox.hpp"
#include "decloud/testing/netns.hpp"
#include "decloud/testing/process.hpp"
#include "decloud/testing/sign_in.hpp"
#include "decloud/testing/temp_pg_cluster.hpp"
#include "orchestrator/domain/relay.hpp"

namespace decloud {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::NetNamespace;

constexpr const char* kOrchestratorAddress = "203.0.113.1";
constexpr std::uint16_t kOrchestratorPort = 18080;
constexpr const char* kVmAddress = "10.77.0.2";
constexpr std::uint16_t kVmPort = 8080;
constexpr const char* kGuestHostname = "tiny-behind-cgnat";
constexpr std::uint16_t kIngressPort = 8088;
constexpr const char* kVmDomain = "vms.test";
// What `ws-client.js exchange` reports when every message, fragment, ping and pong came back.
const json kEchoedByAnyUpstream = json::parse(R"({
    "text": {"binary": false, "same": true},
    "binary": {"binary": true, "same": true},
    "bigBinary": {"binary": true, "bytes": 1048576, "same": true},
    "fragmentedText": {"binary": false, "text": "frag-one|frag-two|frag-three"},
    "fragmentedBinary": {"binary": true, "bytes": [1, 2, 3, 4, 5, 6]},
    "clientPing": {"pong": "are-you-there"},
    "serverPing": {"reply": "pong:from-upstream"}})");

class RelayE2eTest : public ::testing::Test {
  protected:
    void SetUp() override {
        BuildNetwork();
        // libvirtd in the CGNAT node's namespace: its VMs sit behind the carrier's NAT too, on
        // libvirt's NAT network "default", as on a real home server.
        guest_ = testing::BuildOrLoadTinyGuest();
        sandbox_ = std::make_unique<testing::LibvirtSandbox>(cgnat_.name());
        const auto image = dir_.path() + "/images/tiny";
        std::filesystem::create_directories(image);
        std::filesystem::copy_file(guest_.base_image, image + "/disk.qcow2");
        std::filesystem::copy_file(guest_.kernel, image + "/vmlinuz");
        std::filesystem::copy_file(guest_.initrd, image + "/initrd.img");
        std::ofstream(image + "/cmdline") << guest_.cmdline << "\n";
        database_ = "relay_e2e";
        pg_.CreateDatabase(database_);
        StartOrchestrator();
        vm_app_ = vm_.Spawn("node",
                            {std::string(DECLOUD_UPSTREAM_DIR) + "/upstream.js", "--host",
                             kVmAddress, "--ports", std::to_string(kVmPort), "--control", "8081"},
                            dir_.path() + "/vm-app.log");
    }

    void BuildNetwork() {
        testing::ConnectVeth(inet_, "ra", relay_a_, "wan0");
        testing::ConnectVeth(inet_, "rb", relay_b_, "wan0");
        testing::ConnectVeth(inet_, "car", carrier_, "wan0");
        testing::ConnectVeth(inet_, "usr", user_, "wan0");
        testing::ConnectVeth(carrier_, "lan0", cgnat_, "wan0");
        testing::ConnectVeth(cgnat_, "vm0", vm_, "eth0");
        inet_.AddAddress("ra", "203.0.113.1/30");
        inet_.AddAddress("rb", "203.0.113.5/30");
        inet_.AddAddress("car", "198.51.100.1/30");
        inet_.AddAddress("usr", "192.0.2.1/30");
        inet_.EnableForwarding();
        relay_a_.AddAddress("wan0", "203.0.113.2/30");
        relay_a_.AddRoute("default", "203.0.113.1");
        relay_b_.AddAddress("wan0", "203.0.113.6/30");
        relay_b_.AddRoute("default", "203.0.113.5");
        user_.AddAddress("wan0", "192.0.2.2/30");
        user_.AddRoute("default", "192.0.2.1");
        carrier_.AddAddress("wan0", "198.51.100.2/30");
        carrier_.AddRoute("default", "198.51.100.1");
        carrier_.AddAddress("lan0", "100.64.0.1/24");
        carrier_.EnableForwarding();
        carrier_.ApplyNft(
            "table ip carrier_nat {\n"
            "  chain postrouting { type nat hook postrouting priority srcnat; policy accept;\n"
            "    oifname \"wan0\" masquerade\n"
            "  }\n"
            "  chain forward { type filter hook forward priority filter; policy drop;\n"
            "    iifname \"lan0\" oifname \"wan0\" accept\n"
            "    ct state established,related accept\n"
            "  }\n"
            "}\n");
        cgnat_.AddAddress("wan0", "100.64.0.2/24");
        cgnat_.AddRoute("default", "100.64.0.1");
        cgnat_.AddAddress("vm0", "10.77.0.1/24");
        cgnat_.EnableForwarding();
        vm_.AddAddress("eth0", "10.77.0.2/24");
        vm_.AddRoute("default", "10.77.0.1");
    }

    void StartOrchestrator() {
        const std::string url = "host=" + pg_.directory() + " port=" + std::to_string(pg_.port()) +
                                " user=postgres dbname=" + database_;
        std::vector<std::string> sets{
            "server.address=0.0.0.0",
            "nodes.public_ranges=203.0.113.0/24",
            "server.port=" + std::to_string(kOrchestratorPort),
            "database.url=" + url,
            "auth.key_file=" + dir_.path() + "/jwt.keys",
            "nodes.heartbeat_interval=1s",
            "nodes.offline_after=3s",
            "nodes.offline_sweep_interval=500ms",
            "relay.reconcile_interval=500ms",
            "relay.release_after_offline=4s",
            "relay.degraded_grace=30s",
            "vms.images=tiny",
            "billing.require_balance_to_start=false",  // no deposit needed for the test VM
            "auth.domain=127.0.0.1:" + std::to_string(kOrchestratorPort),
            "auth.uri=http://127.0.0.1:" + std::to_string(kOrchestratorPort),
            "auth.chain_ids=31337",
            "log.level=debug"};
        std::vector<std::string> args;
        for (auto& s : sets) {
            args.push_back("--set");
            args.push_back(std::move(s));
        }
        orchestrator_ =
            inet_.Spawn(DECLOUD_ORCHESTRATOR_BIN, std::move(args), dir_.path() + "/orch.log");
        bool ready = false;
        inet_.RunInside([&] {
            ready = testing::WaitUntil(
                [] {
                    auto r = testing::HttpRequest(kOrchestratorPort, "GET", "/readyz");
                    return r && r->status == 200;
                },
                60s);
        });
        ASSERT_TRUE(ready) << orchestrator_->Log();
    }

    std::unique_ptr<testing::ChildProcess> StartAgent(const NetNamespace& ns,
                                                      const std::string& name,
                                                      const std::string& public_ip,
                                                      bool with_vms = false) {
        const auto state = dir_.path() + "/" + name;
        std::vector<std::string> sets{
            "orchestrator.url=http://" + std::string(kOrchestratorAddress) + ":" +
                std::to_string(kOrchestratorPort),
            "node.operator_wallet=" + operator_.Address(), "node.public_ip=" + public_ip,
            "node.region=lab", "node.state_dir=" + state, "node.vm_storage_path=" + state + "/vms",
            "vms.enabled=" + std::string(with_vms ? "true" : "false"),
            // The CGNAT node serves its VMs on its ingress proxy.
            "ingress.enabled=" + std::string(with_vms ? "true" : "false"),
            "ingress.address=127.0.0.1", "ingress.port=" + std::to_string(kIngressPort),
            "ingress.vm_domain=" + std::string(kVmDomain), "ingress.refresh_interval=1s",
            "relay.wireguard=userspace", "relay.probe_interval=1s", "benchmark.seconds=1",
            "heartbeat.initial_backoff=200ms", "heartbeat.max_backoff=1s",
            "heartbeat.request_timeout=2s", "server.port=9100", "log.level=debug"};
        if (with_vms) {
            for (std::string s : std::vector<std::string>{
                     "vms.libvirt_uri=" + sandbox_->Uri(), "vms.domain_type=qemu",
                     "vms.images_dir=" + dir_.path() + "/images",
                     "vms.network=" + sandbox_->NetworkName(), "vms.report_every_heartbeats=2"})
                sets.push_back(std::move(s));
        }
        std::vector<std::string> args;
        for (auto& s : sets) {
            args.push_back("--set");
            args.push_back(std::move(s));
        }
        return ns.Spawn(DECLOUD_AGENT_BIN, std::move(args), dir_.path() + "/" + name + ".log");
    }

    pqxx::result Query(const std::string& sql) {
        pqxx::connection conn(pg_.ConnectionString(database_));
        pqxx::work tx(conn);
        auto r = tx.exec(sql);
        tx.commit();
        return r;
    }

    std::string NodeId(const std::string& reported_ip) {
        auto r = Query("SELECT id::text FROM nodes WHERE reported_ip = '" + reported_ip + "'");
        return r.empty() ? std::string() : r[0][0].as<std::string>();
    }

    // role -> (state, relay node id) of the CGNAT node's live assignments.
    std::map<std::string, std::pair<std::string, std::string>> Assignments(
        const std::string& node) {
        std::map<std::string, std::pair<std::string, std::string>> out;
        for (const auto& r : Query("SELECT role, state, relay_node_id::text FROM relay_assignments "
                                   "WHERE state <> 'removed' AND cgnat_node_id = '" +
                                   node + "'"))
            out[r[0].as<std::string>()] = {r[1].as<std::string>(), r[2].as<std::string>()};
        return out;
    }

    std::string LogsOfAll() {
        std::string all = "--- last HTTP answer\n" + last_reply_ + "\n";
        for (const auto* ns : {&relay_a_, &relay_b_, &cgnat_}) {
            all += "--- " + ns->name() + "\n" + ns->Exec({"wg", "show", "all"}).out +
                   ns->Exec({"nft", "list", "ruleset"}).out +
                   ns->Exec({"ip", "-4", "addr", "show"}).out;
        }
        all += "--- orchestrator\n" + orchestrator_->Log();
        for (const auto* agent : {agent_a_.get(), agent_b_.get(), agent_cgnat_.get()})
            if (agent) all += "--- " + agent->log_path() + "\n" + agent->Log();
        return all;
    }

    // An HTTP exchange from the user's namespace; true when the VM's app answered 200.
    bool HttpFromUser(const std::string& address, std::uint16_t port) {
        const auto reply = testing::TcpExchange(
            user_, address, port,
            "GET /echo?via=relay HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n", 3s);
        last_reply_ = reply.value_or("(no answer)");
        return reply && reply->starts_with("HTTP/1.1 200") &&
               reply->find("\"query\":\"?via=relay\"") != std::string::npos;
    }

    // `ws-client.js exchange` against `url`, run in the namespace `from`; {"error": ...} when
    // it could not report.
    static json WebSocketExchange(const NetNamespace& from, const std::string& url) {
        const auto run = from.Exec(
            {"node", std::string(DECLOUD_UPSTREAM_DIR) + "/ws-client.js", "exchange", url}, 60s);
        if (run.exit_code != 0) return json{{"error", run.out + run.err}};
        return json::parse(run.out, nullptr, false);
    }

    json WebSocketFromUser(const std::string& address, std::uint16_t port) {
        return WebSocketExchange(user_,
                                 "ws://" + address + ":" + std::to_string(port) + "/ws/echo");
    }

    // A VM's public URL of `vm_port` as the orchestrator shows it now: "address:port".
    std::string PublicUrl(const std::string& vm_id = {}, std::uint16_t vm_port = kVmPort) {
        auto r = Query(
            "SELECT n.reported_ip || ':' || m.public_port FROM relay_port_mappings m "
            "JOIN nodes n ON n.id = m.relay_node_id WHERE m.vm_id = '" +
            (vm_id.empty() ? vm_id_ : vm_id) + "' AND m.vm_port = " + std::to_string(vm_port));
        return r.empty() ? std::string() : r[0][0].as<std::string>();
    }

    // The real VM's host name page, asked from the user's namespace through `url`.
    bool GuestAnswersAt(const std::string& url) {
        if (url.empty()) return false;
        auto [address, port] = Split(url);
        const auto reply =
            testing::TcpExchange(user_, address, port, "GET /hostname HTTP/1.0\r\n\r\n", 3s);
        last_reply_ = reply.value_or("(no answer)");
        return reply && reply->find(kGuestHostname) != std::string::npos;
    }

    // An API call as the operator (who also owns the VM), from inside the internet namespace
    // where the orchestrator listens.
    testing::HttpReply Api(const std::string& method, const std::string& target,
                           const std::string& body = {}) {
        testing::HttpReply out;
        inet_.RunInside([&] {
            if (session_.token.empty()) {
                auto session = testing::SignIn(kOrchestratorPort, operator_);
                if (!session) {
                    out.body = "sign-in failed: " + session.error().message;
                    return;
                }
                session_ = *session;
            }
            std::vector<std::pair<std::string, std::string>> headers{session_.Header()};
            if (!body.empty()) headers.emplace_back("Content-Type", "application/json");
            if (auto r = testing::HttpRequest(kOrchestratorPort, method, target, body, headers))
                out = *r;
        });
        return out;
    }

    // Rotates the node's WireGuard key through the API while the user keeps requesting the VM
    // through `address:port`; returns the longest time without a successful request.
    std::chrono::milliseconds RotateKeyUnderTraffic(const std::string& node,
                                                    const std::string& address, std::uint16_t port,
                                                    const std::string& who) {
        auto key_of = [&] {
            auto r = Query("SELECT wireguard_public_key FROM relay_nodes WHERE node_id = '" + node +
                           "' UNION ALL SELECT cgnat_public_key FROM relay_assignments WHERE "
                           "state <> 'removed' AND cgnat_node_id = '" +
                           node + "' LIMIT 1");
            return r.empty() ? std::string() : r[0][0].as<std::string>();
        };
        const auto old_key = key_of();
        const auto asked = Api("POST", "/api/nodes/" + node + "/relay-key/rotate",
                               json{{"reason", "e2e rotation of the " + who}}.dump());
        EXPECT_EQ(asked.status, 202) << asked.body;
        const auto start = std::chrono::steady_clock::now();
        auto last_ok = start;
        std::chrono::milliseconds longest{0};
        bool done = false;
        // Bounded: 120 s at most (WireGuard gives up retrying a handshake after 90 s).
        while (std::chrono::steady_clock::now() - start < 120s) {
            const bool ok = HttpFromUser(address, port);
            const auto now = std::chrono::steady_clock::now();
            if (ok) {
                longest = std::max(
                    longest, std::chrono::duration_cast<std::chrono::milliseconds>(now - last_ok));
                last_ok = now;
                if (done) break;
            }
            if (!done) {
                const auto state = Api("GET", "/api/nodes/" + node + "/relay-key");
                done =
                    state.status == 200 &&
                    json::parse(state.body, nullptr, false).value("rotation", json()).is_null() &&
                    key_of() != old_key;
            }
            std::this_thread::sleep_for(100ms);
        }
        EXPECT_TRUE(done) << "the " << who << "'s key rotation did not finish\n" << LogsOfAll();
        EXPECT_NE(key_of(), old_key);
        std::cout << "[ relay ] key rotation of the " << who << ": done in "
                  << std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::steady_clock::now() - start)
                         .count()
                  << " ms; longest time between successful requests " << longest.count() << " ms\n";
        return longest;
    }

    static std::pair<std::string, std::uint16_t> Split(const std::string& url) {
        const auto colon = url.rfind(':');
        return {url.substr(0, colon), static_cast<std::uint16_t>(std::stoi(url.substr(colon + 1)))};
    }

    testing::TempDir dir_;
    NetNamespace inet_{"inet"};
    NetNamespace relay_a_{"rla"};
    NetNamespace relay_b_{"rlb"};
    NetNamespace carrier_{"car"};
    NetNamespace cgnat_{"cgn"};
    NetNamespace vm_{"vm"};
    NetNamespace user_{"usr"};
    testing::TinyGuest guest_;
    std::unique_ptr<testing::LibvirtSandbox> sandbox_;  // goes before the namespaces
    testing::TempPgCluster pg_;
    std::string database_;
    crypto::EthereumKey operator_ = crypto::EthereumKey::Generate();
    std::unique_ptr<testing::ChildProcess> orchestrator_;
    std::unique_ptr<testing::ChildProcess> vm_app_;
    std::unique_ptr<testing::ChildProcess> agent_a_, agent_b_, agent_cgnat_;
    std::string vm_id_ = "6b0c9a2e-5d1f-4a3b-9c8d-7e6f5a4b3c2d";
    std::string last_reply_;
    testing::Session session_;
};

TEST_F(RelayE2eTest, CgnatNodeServesThroughRelayRepairsFailsOverAndLeaves) {
    // The CGNAT node cannot be reached from outside: neither its own address nor the carrier's.
    ASSERT_TRUE(testing::WaitUntil(
        [&] {
            return testing::TcpExchange(cgnat_, kVmAddress, kVmPort, "GET / HTTP/1.0\r\n\r\n", 3s)
                .has_value();
        },
        30s))
        << "the VM app must answer on its own network\n"
        << vm_app_->Log();
    EXPECT_FALSE(testing::TcpExchange(user_, "100.64.0.2", 9100, "x", 2s));
    EXPECT_FALSE(testing::TcpExchange(user_, "198.51.100.2", 9100, "x", 2s));

    // 1. Registration, CGNAT detection, relays (primary and warm standby), tunnels up.
    agent_a_ = StartAgent(relay_a_, "relay-a", "203.0.113.2");
    agent_b_ = StartAgent(relay_b_, "relay-b", "203.0.113.6");
    std::string relay_a, relay_b;
    ASSERT_TRUE(testing::WaitUntil(
        [&] {
            relay_a = NodeId("203.0.113.2");
            relay_b = NodeId("203.0.113.6");
            return !relay_a.empty() && !relay_b.empty() &&
                   Query("SELECT 1 FROM relay_nodes WHERE wireguard_public_key <> ''").size() == 2;
        },
        60s))
        << LogsOfAll();
    agent_cgnat_ = StartAgent(cgnat_, "cgnat", "100.64.0.2", true);
    std::string cgnat;
    ASSERT_TRUE(testing::WaitUntil([&] { return !(cgnat = NodeId("100.64.0.2")).empty(); }, 60s))
        << LogsOfAll();
    // A real VM on the CGNAT node, booting while the tunnels come up (the node takes VMs once
    // its first heartbeat has made it online).
    testing::HttpReply created;
    ASSERT_TRUE(testing::WaitUntil(
        [&] {
            created = Api("POST", "/api/vms",
                          json{{"name", kGuestHostname},
                               {"cpuCores", 1},
                               {"memoryMib", 256},
                               {"diskGib", 1},
                               {"image", "tiny"},
                               {"tier", "burstable"},
                               {"nodeId", cgnat}}
                              .dump());
            return created.status == 201;
        },
        60s, 500ms))
        << created.body << LogsOfAll();
    const std::string guest_vm = json::parse(created.body)["id"];
    auto node = Query("SELECT requires_relay, observed_ip FROM nodes WHERE id = '" + cgnat + "'");
    EXPECT_TRUE(node[0][0].as<bool>());
    EXPECT_EQ(node[0][1].as<std::string>(), "198.51.100.2") << "seen through the carrier's NAT";
    ASSERT_TRUE(testing::WaitUntil(
        [&] {
            auto a = Assignments(cgnat);
            return a.size() == 2 && a["primary"].first == "active" &&
                   a["standby"].first == "active";
        },
        60s))
        << LogsOfAll();
    const auto primary_relay = Assignments(cgnat)["primary"].second;
    const auto& primary_ns = primary_relay == relay_a ? relay_a_ : relay_b_;
    const auto* primary_agent = primary_relay == relay_a ? &agent_a_ : &agent_b_;

    // 2. A VM on the CGNAT node (a running VM as its agent would report it) gets a public port
    //    on its relay through the API; HTTP and WebSocket from the user reach it.
    ASSERT_EQ(Api("GET", "/api/users/me").status, 200) << "signed in as the operator";
    Query(
        "INSERT INTO vms (id, owner_wallet, name, node_id, state, cores, memory_mib, disk_gib, "
        "tier, image, addresses, created_at, updated_at) SELECT '" +
        vm_id_ + "', wallet_address, 'web', '" + cgnat +
        "', 'running', 1, 512, 1, 'standard', 'debian-12', '{" + kVmAddress +
        "}', now(), now() FROM users WHERE lower(wallet_address) = lower('" + operator_.Address() +
        "')");
    const auto forwarded = Api("PUT", "/api/vms/" + vm_id_ + "/ports/" + std::to_string(kVmPort));
    ASSERT_EQ(forwarded.status, 200) << forwarded.body;
    const std::string public_url = json::parse(forwarded.body)["publicUrl"];
    EXPECT_EQ(public_url, PublicUrl());
    auto [address, port] = Split(public_url);
    EXPECT_EQ(address, primary_relay == relay_a ? "203.0.113.2" : "203.0.113.6");
    ASSERT_TRUE(testing::WaitUntil([&] { return HttpFromUser(address, port); }, 30s))
        << LogsOfAll();
    auto ws = WebSocketFromUser(address, port);
    ASSERT_FALSE(ws.contains("error")) << ws.dump();
    EXPECT_EQ(ws["results"], kEchoedByAnyUpstream) << ws.dump();
    EXPECT_EQ(ws["close"], (json{{"code", 4002}, {"reason", "ciao"}}));

    // The agents measure the round trip over both tunnels (UDP probes to the other end's tunnel
    // address, echoed by its agent) and the orchestrator shows it per relay.
    json relays;
    ASSERT_TRUE(testing::WaitUntil(
        [&] {
            const auto r = Api("GET", "/api/relays");
            if (r.status != 200) return false;
            relays = json::parse(r.body)["relays"];
            int measured = 0;
            for (const auto& a : relays)
                if (a["state"] == "active" && a["tunnelRttMs"].is_number() &&
                    a["tunnelRttMs"].get<double>() > 0)
                    ++measured;
            return measured == 2;
        },
        30s))
        << relays.dump() << LogsOfAll();
    for (const auto& a : relays)
        std::cout << "[ relay ] round trip over the " << a["role"].get<std::string>()
                  << " tunnel: " << a["tunnelRttMs"].get<double>() << " ms\n";

    // 2a. The real VM: on libvirt's NAT network of the CGNAT node, its port 8080 published on
    //     the relay; the user reaches the guest's own web server through relay, tunnel, the
    //     CGNAT node's DNAT and libvirt's bridge.
    json guest;
    ASSERT_TRUE(testing::WaitUntil(
        [&] {
            const auto r = Api("GET", "/api/vms/" + guest_vm);
            guest = json::parse(r.body, nullptr, false);
            return r.status == 200 && guest["state"] == "running" && !guest["addresses"].empty();
        },
        180s))
        << guest.dump() << LogsOfAll();
    const auto guest_port = Api("PUT", "/api/vms/" + guest_vm + "/ports/8080");
    ASSERT_EQ(guest_port.status, 200) << guest_port.body;
    const std::string guest_url = json::parse(guest_port.body)["publicUrl"];
    ASSERT_TRUE(testing::WaitUntil([&] { return GuestAnswersAt(guest_url); }, 120s))
        << last_reply_ << "\n"
        << sandbox_->ExecInNamespace({"iptables", "-S", "FORWARD"}).out << LogsOfAll();
    std::cout << "[ relay ] VM " << guest["addresses"][0].get<std::string>()
              << " behind the CGNAT node answers at " << guest_url << "\n";
    // The guest's WebSocket echo through the relay: every kind of frame, both ways.
    const auto guest_ws_port = Api("PUT", "/api/vms/" + guest_vm + "/ports/" +
                                              std::to_string(testing::TinyGuest::kWebSocketPort));
    ASSERT_EQ(guest_ws_port.status, 200) << guest_ws_port.body;
    const std::string guest_ws_url = json::parse(guest_ws_port.body)["publicUrl"];
    {
        auto [ws_address, ws_port] = Split(guest_ws_url);
        json guest_ws;
        ASSERT_TRUE(testing::WaitUntil(
            [&] {
                guest_ws = WebSocketFromUser(ws_address, ws_port);
                return !guest_ws.contains("error");
            },
            60s))
            << guest_ws.dump() << LogsOfAll();
        EXPECT_EQ(guest_ws["results"], kEchoedByAnyUpstream) << guest_ws.dump();
        EXPECT_EQ(guest_ws["close"], (json{{"code", 4002}, {"reason", "ciao"}}));
        std::cout << "[ relay ] the VM's WebSocket echo answers at " << guest_ws_url << "\n";
    }
    // 2b. The same VM through its node's ingress proxy (asked on the CGNAT node itself, as a
    //     Caddy in front of it would): by path and by host name, HTTP and WebSocket, with the
    //     routes the agent took from its own VMs.
    {
        const std::string by_path = "/api/vms/" + guest_vm + "/proxy/http/";
        std::string page;
        ASSERT_TRUE(testing::WaitUntil(
            [&] {
                page = cgnat_
                           .Exec({"curl", "-sS", "--max-time", "5",
                                  "http://127.0.0.1:" + std::to_string(kIngressPort) + by_path +
                                      "8080/hostname"})
                           .out;
                return page == kGuestHostname;
            },
            30s))
            << page << LogsOfAll();
        const auto by_host = cgnat_.Exec(
            {"curl", "-sS", "--max-time", "5", "-H", "Host: 8080-" + guest_vm + "." + kVmDomain,
             "http://127.0.0.1:" + std::to_string(kIngressPort) + "/instance-id"});
        EXPECT_EQ(by_host.out, guest_vm) << by_host.err;
        const auto through_ingress =
            WebSocketExchange(cgnat_, "ws://127.0.0.1:" + std::to_string(kIngressPort) + by_path +
                                          std::to_string(testing::TinyGuest::kWebSocketPort) + "/");
        ASSERT_FALSE(through_ingress.contains("error")) << through_ingress.dump();
        EXPECT_EQ(through_ingress["results"], kEchoedByAnyUpstream) << through_ingress.dump();
        EXPECT_EQ(through_ingress["close"], (json{{"code", 4002}, {"reason", "ciao"}}));
        std::cout << "[ relay ] the VM answers HTTP and WebSocket through its node's ingress\n";
    }

    // 2c. Key rotation on request, under traffic: the CGNAT node's key, then its relay's.
    //     The tunnel pauses for about one handshake, never for a heartbeat round or more.
    const auto cgnat_gap = RotateKeyUnderTraffic(cgnat, address, port, "CGNAT node");
    EXPECT_LT(cgnat_gap, 15s) << LogsOfAll();
    const auto relay_gap = RotateKeyUnderTraffic(primary_relay, address, port, "relay");
    EXPECT_LT(relay_gap, 15s) << LogsOfAll();
    ASSERT_TRUE(
        testing::WaitUntil([&] { return Assignments(cgnat)["primary"].first == "active"; }, 60s))
        << LogsOfAll();

    // 3. Fault: the relay's WireGuard interface disappears. The relay agent's report shows it,
    //    the tunnel is marked degraded, the relay state is pushed again and traffic resumes.
    primary_ns.Run({"ip", "link", "del", orchestrator::domain::RelayInterfaceName(primary_relay)});
    ASSERT_TRUE(testing::WaitUntil(
        [&] {
            return !Query(
                        "SELECT 1 FROM relay_assignment_events e JOIN relay_assignments a ON "
                        "a.id = e.assignment_id WHERE a.cgnat_node_id = '" +
                        cgnat + "' AND a.role = 'primary' AND e.to_state = 'degraded'")
                        .empty();
        },
        30s))
        << LogsOfAll();
    const auto repair_start = std::chrono::steady_clock::now();
    // Usually at once (the relay dials the CGNAT node's last endpoint); at worst when the CGNAT
    // side renews its session (WireGuard's 2-minute rekey).
    ASSERT_TRUE(testing::WaitUntil([&] { return HttpFromUser(address, port); }, 180s))
        << LogsOfAll();
    ASSERT_TRUE(
        testing::WaitUntil([&] { return Assignments(cgnat)["primary"].first == "active"; }, 60s))
        << LogsOfAll();
    std::cout << "[ relay ] interface deleted: requests succeed again "
              << std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::steady_clock::now() - repair_start)
                     .count()
              << " ms after the tunnel was marked degraded\n";

    // 4. Fault: the relay node's agent is killed. The node fails over to its warm standby, the
    //    mapping moves, and the new public URL answers.
    const auto killed_at = std::chrono::steady_clock::now();
    ASSERT_EQ(::kill((*primary_agent)->pid(), SIGKILL), 0);
    std::string moved_url;
    ASSERT_TRUE(testing::WaitUntil(
        [&] {
            moved_url = PublicUrl();
            if (moved_url.empty() || moved_url == address + ":" + std::to_string(port))
                return false;
            auto [a, p] = Split(moved_url);
            return HttpFromUser(a, p);
        },
        60s))
        << LogsOfAll();
    const auto failover_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::steady_clock::now() - killed_at)
                                 .count();
    std::cout << "[ relay ] failover: first successful request to " << moved_url << " "
              << failover_ms << " ms after the relay's agent was killed\n";
    auto assignments = Assignments(cgnat);
    EXPECT_NE(assignments["primary"].second, primary_relay);
    auto events = Query("SELECT reason FROM vm_events WHERE vm_id = '" + vm_id_ +
                        "' AND reason LIKE 'public URL of port 8080 moved%'");
    EXPECT_EQ(events.size(), 1u) << "the VM's events say the URL changed";
    // The real VM's port moved with it.
    ASSERT_TRUE(testing::WaitUntil(
        [&] {
            const auto url = PublicUrl(guest_vm);
            return url != guest_url && GuestAnswersAt(url);
        },
        60s))
        << last_reply_ << "\n"
        << LogsOfAll();
    {
        std::string moved_ws_url;
        json guest_ws;
        ASSERT_TRUE(testing::WaitUntil(
            [&] {
                moved_ws_url = PublicUrl(guest_vm, testing::TinyGuest::kWebSocketPort);
                if (moved_ws_url.empty() || moved_ws_url == guest_ws_url) return false;
                auto [a, p] = Split(moved_ws_url);
                guest_ws = WebSocketFromUser(a, p);
                return !guest_ws.contains("error");
            },
            60s))
            << guest_ws.dump() << LogsOfAll();
        EXPECT_EQ(guest_ws["results"], kEchoedByAnyUpstream) << guest_ws.dump();
    }
    auto [new_address, new_port] = Split(moved_url);
    ws = WebSocketFromUser(new_address, new_port);
    EXPECT_EQ(ws["close"], (json{{"code", 4002}, {"reason", "ciao"}})) << ws.dump() << "\n"
                                                                       << LogsOfAll();

    // 5. The CGNAT node leaves (offline past the grace period): the relay's peer, its map
    //    elements and its addresses go.
    const auto new_relay = assignments["primary"].second;
    const auto& new_relay_ns = new_relay == relay_a ? relay_a_ : relay_b_;
    ASSERT_EQ(agent_cgnat_->Terminate(), 0) << agent_cgnat_->Log();
    ASSERT_TRUE(testing::WaitUntil(
        [&] {
            // Its one relay interface carried only this node's tunnel: it goes with its peer.
            const auto wg = new_relay_ns.Exec(
                {"ip", "link", "show", orchestrator::domain::RelayInterfaceName(new_relay)});
            const auto map =
                new_relay_ns.Exec({"nft", "list", "map", "inet", "decloud_relay", "ports"});
            const auto addresses = new_relay_ns.Exec({"ip", "-4", "addr", "show"});
            return wg.exit_code != 0 && map.out.find("elements") == std::string::npos &&
                   addresses.out.find("10.200.") == std::string::npos;
        },
        30s))
        << LogsOfAll();
    EXPECT_TRUE(Assignments(cgnat).empty());
}

}  // namespace
}  // namespace decloud
