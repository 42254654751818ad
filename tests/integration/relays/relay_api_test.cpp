// The relay API over a real orchestrator and PostgreSQL: a CGNAT node registers and waits for a
// relay; two public nodes appear, are offered as relays automatically and the CGNAT node gets a
// primary and a standby; admins and the operators involved see the assignments, others do not;
// an admin repairs one with a reason; stats add up; the node goes away and its relays are freed.
//
// Registrations come from 127.0.0.1, which AssessCgnat rightly judges unreachable from the
// Internet, so every node registers as needing a relay. The two relay nodes are then made public
// in the database, as registering from a public address would have made them.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <set>

#include "decloud/common/ids.hpp"
#include "decloud/crypto/crypto.hpp"
#include "decloud/crypto/ethereum.hpp"
#include "decloud/proto/node_messages.hpp"
#include "decloud/testing/orchestrator.hpp"
#include "decloud/testing/process.hpp"
#include "decloud/testing/sign_in.hpp"
#include "decloud/testing/temp_pg_cluster.hpp"

namespace decloud {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using Headers = std::vector<std::pair<std::string, std::string>>;

class RelayApiTest : public ::testing::Test {
  protected:
    void SetUp() override {
        pg_ = std::make_unique<testing::TempPgCluster>();
        dir_ = std::make_unique<testing::TempDir>("decloud-relay-api");
        database_url_ = pg_->CreateDatabase("relays");
        auto started = testing::StartTestOrchestrator(
            DECLOUD_ORCHESTRATOR_BIN, database_url_, dir_->path(),
            {"auth.admin_wallets=" + admin_.Address(), "relay.reconcile_interval=200ms",
             "nodes.heartbeat_flush_interval=100ms", "relay.release_after_offline=1m"});
        orchestrator_ = std::move(started.process);
        port_ = started.port;
        ASSERT_TRUE(started.ready) << (orchestrator_ ? orchestrator_->Log() : "");
        for (auto [key, headers] : {std::pair{&admin_, &admin_headers_},
                                    std::pair{&relay_operator_, &relay_operator_headers_},
                                    std::pair{&cgnat_operator_, &cgnat_operator_headers_},
                                    std::pair{&stranger_, &stranger_headers_}}) {
            auto session = testing::SignIn(port_, *key);
            ASSERT_TRUE(session) << session.error().message;
            *headers = {session->Header()};
        }
    }

    void TearDown() override {
        if (orchestrator_) {
            EXPECT_EQ(orchestrator_->Terminate(), 0) << orchestrator_->Log();
        }
    }

    testing::RegisteredNode Register(const crypto::EthereumKey& operator_key) {
        auto node = testing::RegisterNode(port_, crypto::Ed25519KeyPair::Generate(),
                                          operator_key.Address());
        EXPECT_TRUE(node) << node.error().message;
        return node ? *node : testing::RegisteredNode{};
    }

    void Heartbeat(const testing::RegisteredNode& node) {
        const std::string beat = proto::ToJson(proto::HeartbeatRequest{{5, 1, 1, 0}, "t"}).dump();
        auto r = testing::HttpRequest(port_, "POST", "/api/nodes/" + node.id + "/heartbeat", beat,
                                      {{"Authorization", "Bearer " + node.token}});
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 200) << r->body;
    }

    // What registering from a public address gives (AssessCgnat on a global address).
    void MakePublic(const std::string& node_id, const std::string& address) {
        pqxx::connection conn(database_url_);
        pqxx::work tx(conn);
        tx.exec_params(
            "UPDATE nodes SET reported_ip = $2, behind_cgnat = false, requires_relay = false, "
            "cgnat_reason = 'reported address ' || $2 || ' is publicly routable' "
            "WHERE id = $1::uuid",
            node_id, address);
        tx.commit();
    }

    json Get(const Headers& headers, const std::string& target, int expected = 200) {
        auto r = testing::HttpRequest(port_, "GET", target, "", headers);
        EXPECT_TRUE(r);
        if (!r) return {};
        EXPECT_EQ(r->status, expected) << target << ": " << r->body;
        return json::parse(r->body, nullptr, false);
    }

    int Status(const std::string& method, const std::string& target, const Headers& headers,
               const std::string& body = {}) {
        Headers h = headers;
        if (!body.empty()) h.emplace_back("Content-Type", "application/json");
        auto r = testing::HttpRequest(port_, method, target, body, h);
        return r ? r->status : -1;
    }

    json Stats() { return Get(admin_headers_, "/api/relays/stats"); }

    std::unique_ptr<testing::TempPgCluster> pg_;
    std::unique_ptr<testing::TempDir> dir_;
    std::unique_ptr<testing::ChildProcess> orchestrator_;
    std::string database_url_;
    std::uint16_t port_ = 0;
    crypto::EthereumKey admin_ = crypto::EthereumKey::Generate();
    crypto::EthereumKey relay_operator_ = crypto::EthereumKey::Generate();
    crypto::EthereumKey cgnat_operator_ = crypto::EthereumKey::Generate();
    crypto::EthereumKey stranger_ = crypto::EthereumKey::Generate();
    Headers admin_headers_, relay_operator_headers_, cgnat_operator_headers_, stranger_headers_;
};

TEST_F(RelayApiTest, AssignsListsRepairsAndReleases) {
    // A CGNAT node alone: no relay anywhere, so it waits.
    const auto cgnat = Register(cgnat_operator_);
    ASSERT_FALSE(cgnat.id.empty());
    Heartbeat(cgnat);
    ASSERT_TRUE(
        testing::WaitUntil([&] { return Stats().value("cgnatNodesAwaiting", 0) == 1; }, 10s))
        << Stats().dump() << orchestrator_->Log();
    EXPECT_EQ(Get(admin_headers_, "/api/relays")["relays"].size(), 0u);

    // Two public nodes come online: offered as relays, the CGNAT node gets primary and standby.
    const auto relay1 = Register(relay_operator_);
    const auto relay2 = Register(relay_operator_);
    ASSERT_FALSE(relay1.id.empty() || relay2.id.empty());
    MakePublic(relay1.id, "198.51.100.7");
    MakePublic(relay2.id, "198.51.100.8");
    Heartbeat(relay1);
    Heartbeat(relay2);
    json relays;
    ASSERT_TRUE(testing::WaitUntil(
        [&] {
            relays = Get(admin_headers_, "/api/relays")["relays"];
            return relays.size() == 2;
        },
        15s))
        << relays.dump() << orchestrator_->Log();
    std::set<std::string> relay_nodes, roles;
    json primary;
    for (const auto& a : relays) {
        EXPECT_EQ(a["cgnatNodeId"], cgnat.id);
        EXPECT_EQ(a["state"], "provisioning");
        EXPECT_FALSE(a["selectionReason"].get<std::string>().empty());
        relay_nodes.insert(a["relayNodeId"].get<std::string>());
        roles.insert(a["role"].get<std::string>());
        if (a["role"] == "primary") primary = a;
    }
    EXPECT_EQ(relay_nodes, (std::set<std::string>{relay1.id, relay2.id}));
    EXPECT_EQ(roles, (std::set<std::string>{"primary", "standby"}));
    ASSERT_TRUE(primary.is_object());
    const std::string endpoint = primary["relayEndpoint"];
    EXPECT_TRUE(endpoint == "198.51.100.7:51820" || endpoint == "198.51.100.8:51820") << endpoint;
    const std::string id = primary["id"];

    // The operators involved see both; someone else sees none and is told it does not exist.
    EXPECT_EQ(Get(relay_operator_headers_, "/api/relays")["relays"].size(), 2u);
    EXPECT_EQ(Get(cgnat_operator_headers_, "/api/relays")["relays"].size(), 2u);
    EXPECT_EQ(Get(stranger_headers_, "/api/relays")["relays"].size(), 0u);
    EXPECT_EQ(Get(cgnat_operator_headers_, "/api/relays/" + id)["id"], id);
    EXPECT_EQ(Get(relay_operator_headers_, "/api/relays/" + id)["id"], id);
    const auto hidden = Get(stranger_headers_, "/api/relays/" + id, 404);
    EXPECT_EQ(hidden.value("status", 0), 404);
    EXPECT_EQ(Status("GET", "/api/relays", {}), 401);
    EXPECT_EQ(Status("GET", "/api/relays/" + id, {}), 401);
    EXPECT_EQ(Status("GET", "/api/relays/stats", {}), 401);
    Get(admin_headers_, "/api/relays/00000000-0000-4000-8000-000000000000", 404);
    Get(admin_headers_, "/api/relays/not-a-uuid", 404);

    // Stats add up.
    auto stats = Stats();
    EXPECT_EQ(stats["relays"], 2);
    EXPECT_EQ(stats["relayOffers"], 2);
    EXPECT_EQ(stats["cgnatNodesServed"], 1);
    EXPECT_EQ(stats["cgnatNodesAwaiting"], 0);
    EXPECT_EQ(stats["assignments"], 2);
    EXPECT_EQ(stats["primaries"], 1);
    EXPECT_EQ(stats["standbys"], 1);
    EXPECT_EQ(stats["byState"]["provisioning"], 2);
    EXPECT_EQ(stats["portMappings"], 0);
    // Anyone signed in may see the platform-wide figures.
    EXPECT_EQ(Get(stranger_headers_, "/api/relays/stats"), stats);

    // Repair: admins only, with a reason; each call is one more attempt on record.
    const std::string repair = "/api/relays/" + id + "/repair";
    const std::string body = json{{"reason", "tunnel silent for 5 minutes"}}.dump();
    EXPECT_EQ(Status("POST", repair, {}, body), 401);
    EXPECT_EQ(Status("POST", repair, stranger_headers_, body), 403);
    EXPECT_EQ(Status("POST", repair, cgnat_operator_headers_, body), 403);
    EXPECT_EQ(Status("POST", repair, relay_operator_headers_, body), 403);
    EXPECT_EQ(Get(admin_headers_, "/api/relays/" + id)["state"], "provisioning");
    EXPECT_EQ(Status("POST", repair, admin_headers_, "{}"), 400);
    EXPECT_EQ(Status("POST", repair, admin_headers_, json{{"reason", ""}}.dump()), 400);
    EXPECT_EQ(Status("POST", repair, admin_headers_, json{{"reason", "x"}, {"y", 1}}.dump()), 400);
    EXPECT_EQ(Status("POST", "/api/relays/00000000-0000-4000-8000-000000000000/repair",
                     admin_headers_, body),
              404);
    auto r = testing::HttpRequest(port_, "POST", repair, body,
                                  {admin_headers_[0], {"Content-Type", "application/json"}});
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 202) << r->body;
    auto repaired = json::parse(r->body);
    EXPECT_EQ(repaired["state"], "repairing");
    EXPECT_EQ(repaired["repairAttempts"], 1);
    EXPECT_NE(repaired["stateReason"].get<std::string>().find("tunnel silent"), std::string::npos);
    EXPECT_EQ(Status("POST", repair, admin_headers_, body), 202);
    auto detail = Get(admin_headers_, "/api/relays/" + id);
    EXPECT_EQ(detail["state"], "repairing");
    EXPECT_EQ(detail["repairAttempts"], 2);
    ASSERT_GE(detail["events"].size(), 3u);
    EXPECT_EQ(detail["events"][0]["from"], nullptr);
    EXPECT_EQ(detail["events"][0]["to"], "provisioning");
    const auto& last = detail["events"].back();
    EXPECT_EQ(last["from"], "repairing");
    EXPECT_EQ(last["to"], "repairing");
    EXPECT_NE(last["reason"].get<std::string>().find("tunnel silent"), std::string::npos);
    stats = Stats();
    EXPECT_EQ(stats["byState"]["provisioning"], 1);
    EXPECT_EQ(stats["byState"]["repairing"], 1);
    EXPECT_EQ(stats["assignments"], 2);

    // The CGNAT node is gone for longer than relay.release_after_offline: both tunnels go.
    {
        pqxx::connection conn(database_url_);
        pqxx::work tx(conn);
        tx.exec_params(
            "UPDATE nodes SET status = 'offline', last_heartbeat_at = now() - interval '2 hours' "
            "WHERE id = $1::uuid",
            cgnat.id);
        tx.commit();
    }
    ASSERT_TRUE(testing::WaitUntil(
        [&] { return Get(admin_headers_, "/api/relays")["relays"].empty(); }, 10s))
        << orchestrator_->Log();
    detail = Get(admin_headers_, "/api/relays/" + id);
    EXPECT_EQ(detail["state"], "removed");
    EXPECT_NE(detail["stateReason"].get<std::string>().find("offline since"), std::string::npos);
    stats = Stats();
    EXPECT_EQ(stats["relays"], 0);
    EXPECT_EQ(stats["cgnatNodesServed"], 0);
    EXPECT_EQ(stats["assignments"], 0);
    EXPECT_EQ(stats["relayOffers"], 2);
    // A removed assignment cannot be repaired.
    EXPECT_EQ(Status("POST", repair, admin_headers_, body), 409);
}

// A VM on a CGNAT node gets public ports on its relay through the API, only for its owner; a
// port can be withdrawn, and the ports of a deleted VM are freed by the relay pass.
TEST_F(RelayApiTest, VmOwnersForwardPublicPortsThroughTheRelay) {
    const auto cgnat = Register(cgnat_operator_);
    const auto relay = Register(relay_operator_);
    ASSERT_FALSE(cgnat.id.empty() || relay.id.empty());
    MakePublic(relay.id, "198.51.100.7");
    Heartbeat(cgnat);
    Heartbeat(relay);
    ASSERT_TRUE(testing::WaitUntil([&] { return Stats().value("cgnatNodesServed", 0) == 1; }, 15s))
        << Stats().dump() << orchestrator_->Log();

    // A running VM of the CGNAT node's operator (as the VM service would have placed it).
    const auto vm = common::NewUuid();
    {
        pqxx::connection conn(database_url_);
        pqxx::work tx(conn);
        tx.exec_params0(
            "INSERT INTO vms (id, owner_wallet, name, node_id, state, cores, memory_mib, "
            "disk_gib, tier, image, created_at, updated_at) SELECT $1::uuid, wallet_address, "
            "'web', $2::uuid, 'running', 1, 512, 10, 'standard', 'debian-12', now(), now() "
            "FROM users WHERE lower(wallet_address) = lower($3)",
            vm, cgnat.id, cgnat_operator_.Address());
        tx.commit();
    }
    const std::string ports = "/api/vms/" + vm + "/ports";
    EXPECT_EQ(Get(cgnat_operator_headers_, ports)["ports"].size(), 0u);

    auto put = [&](const Headers& headers, const std::string& target) {
        return testing::HttpRequest(port_, "PUT", target, "", headers);
    };
    auto r = put(cgnat_operator_headers_, ports + "/8080");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    const auto mapping = json::parse(r->body);
    EXPECT_EQ(mapping["vmId"], vm);
    EXPECT_EQ(mapping["vmPort"], 8080);
    EXPECT_EQ(mapping["protocol"], "tcp");
    EXPECT_EQ(mapping["relayNodeId"], relay.id);
    const int public_port = mapping["publicPort"];
    EXPECT_EQ(mapping["publicUrl"], "198.51.100.7:" + std::to_string(public_port));
    r = put(cgnat_operator_headers_, ports + "/8080");
    ASSERT_TRUE(r);
    EXPECT_EQ(json::parse(r->body)["publicPort"], public_port) << "idempotent";
    r = put(cgnat_operator_headers_, ports + "/53?protocol=udp");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(Get(cgnat_operator_headers_, ports)["ports"].size(), 2u);
    EXPECT_EQ(Stats()["portMappings"], 2);

    // Refusals, each with nothing stored.
    EXPECT_EQ(Status("PUT", ports + "/22", {}), 401);
    EXPECT_EQ(Status("PUT", ports + "/22", stranger_headers_), 404);
    EXPECT_EQ(Status("GET", ports, stranger_headers_), 404);
    EXPECT_EQ(Status("DELETE", ports + "/8080", stranger_headers_), 404);
    EXPECT_EQ(Status("PUT", ports + "/0", cgnat_operator_headers_), 400);
    EXPECT_EQ(Status("PUT", ports + "/65536", cgnat_operator_headers_), 400);
    EXPECT_EQ(Status("PUT", ports + "/http", cgnat_operator_headers_), 400);
    EXPECT_EQ(Status("PUT", ports + "/22?protocol=sctp", cgnat_operator_headers_), 400);
    EXPECT_EQ(Status("PUT", "/api/vms/00000000-0000-4000-8000-000000000000/ports/22",
                     cgnat_operator_headers_),
              404);
    EXPECT_EQ(Get(cgnat_operator_headers_, ports)["ports"].size(), 2u);

    // Withdrawn one by one; the second time it is not forwarded any more.
    r = testing::HttpRequest(port_, "DELETE", ports + "/53?protocol=udp", "",
                             cgnat_operator_headers_);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(json::parse(r->body)["vmPort"], 53);
    EXPECT_EQ(Status("DELETE", ports + "/53?protocol=udp", cgnat_operator_headers_), 404);
    EXPECT_EQ(Get(cgnat_operator_headers_, ports)["ports"].size(), 1u);

    // The VM is deleted: the relay pass frees its public port.
    {
        pqxx::connection conn(database_url_);
        pqxx::work tx(conn);
        tx.exec_params0("UPDATE vms SET state = 'deleted' WHERE id = $1::uuid", vm);
        tx.commit();
    }
    ASSERT_TRUE(testing::WaitUntil([&] { return Stats().value("portMappings", -1) == 0; }, 10s))
        << Stats().dump() << orchestrator_->Log();
}

}  // namespace
}  // namespace decloud
