// Who may do what, over every endpoint the orchestrator serves: two users, each operating a node,
// an admin, the nodes themselves and an anonymous caller. Each cell asserts the status code; a
// refused call must leave the stored state as it was. Also the user-key endpoints' validation.

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

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

enum Caller { kAnonymous, kUserA, kUserB, kAdmin, kNodeA, kCallerCount };
constexpr const char* kCallerNames[] = {"anonymous", "user A", "user B", "admin", "node A"};

class AuthorizationTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        pg_ = new testing::TempPgCluster();
        dir_ = new testing::TempDir("decloud-authz");
        database_url_ = pg_->CreateDatabase("authz");
        admin_ = new crypto::EthereumKey(crypto::EthereumKey::Generate());
        auto started =
            testing::StartTestOrchestrator(DECLOUD_ORCHESTRATOR_BIN, database_url_, dir_->path(),
                                           {"auth.admin_wallets=" + admin_->Address()});
        port_ = started.port;
        orchestrator_ = started.process.release();
        ASSERT_TRUE(started.ready) << orchestrator_->Log();
    }

    static void TearDownTestSuite() {
        if (orchestrator_) {
            EXPECT_EQ(orchestrator_->Terminate(), 0) << orchestrator_->Log();
        }
        delete orchestrator_;
        delete admin_;
        delete dir_;
        delete pg_;
    }

    void SetUp() override {
        for (auto* key : {&user_a_, &user_b_}) *key = crypto::EthereumKey::Generate();
        auto a = testing::SignIn(port_, user_a_);
        auto b = testing::SignIn(port_, user_b_);
        auto admin = testing::SignIn(port_, *admin_);
        ASSERT_TRUE(a && b && admin);
        auto node_a =
            testing::RegisterNode(port_, crypto::Ed25519KeyPair::Generate(), user_a_.Address());
        auto node_b =
            testing::RegisterNode(port_, crypto::Ed25519KeyPair::Generate(), user_b_.Address());
        ASSERT_TRUE(node_a && node_b);
        node_a_ = *node_a;
        node_b_ = *node_b;
        headers_[kAnonymous] = {};
        headers_[kUserA] = {a->Header()};
        headers_[kUserB] = {b->Header()};
        headers_[kAdmin] = {admin->Header()};
        headers_[kNodeA] = {{"Authorization", "Bearer " + node_a_.token}};
    }

    static std::string SshPublicKey(const std::string& comment) {
        testing::TempDir dir("decloud-sshkey");
        auto gen = testing::RunCommand(
            "/usr/bin/ssh-keygen",
            {"-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", dir.path() + "/key"});
        EXPECT_EQ(gen.exit_code, 0) << gen.err;
        std::ifstream in(dir.path() + "/key.pub");
        std::string line;
        std::getline(in, line);
        return line;
    }

    std::optional<testing::HttpReply> Call(Caller who, const std::string& method,
                                           const std::string& target,
                                           const std::string& body = {}) {
        return testing::HttpRequest(port_, method, target, body, headers_[who]);
    }

    int Status(Caller who, const std::string& method, const std::string& target,
               const std::string& body = {}) {
        auto r = Call(who, method, target, body);
        return r ? r->status : -1;
    }

    // Rows of the tables a user-facing call could change, as one comparable string.
    static std::string UserState() {
        pqxx::connection conn(database_url_);
        pqxx::work tx(conn);
        auto r = tx.exec1(
            "SELECT (SELECT count(*) FROM ssh_keys)::text || '/' || "
            "(SELECT coalesce(string_agg(id::text || name || fingerprint, ',' ORDER BY id), '') "
            "   FROM ssh_keys) || '/' || "
            "(SELECT coalesce(string_agg(wallet_address || coalesce(encryption_public_key, '-'), "
            "   ',' ORDER BY wallet_address), '') FROM users) || '/' || "
            "(SELECT count(*) FROM auth_sessions WHERE revoked_at IS NULL)::text");
        return r[0].as<std::string>();
    }

    // The VMs and their command queue, as one comparable string.
    static std::string VmState() {
        pqxx::connection conn(database_url_);
        pqxx::work tx(conn);
        auto r = tx.exec1(
            "SELECT (SELECT coalesce(string_agg(id::text || state || updated_at::text, ',' "
            "   ORDER BY id), '') FROM vms) || '/' || "
            "(SELECT coalesce(string_agg(id::text || state, ',' ORDER BY id), '') "
            "   FROM node_commands)");
        return r[0].as<std::string>();
    }

    // Node profiles, prices and reviews, as one comparable string.
    static std::string MarketState() {
        pqxx::connection conn(database_url_);
        pqxx::work tx(conn);
        auto r = tx.exec1(
            "SELECT (SELECT coalesce(string_agg(node_id::text || display_name || updated_at::text,"
            "   ',' ORDER BY node_id), '') FROM node_profiles) || '/' || "
            "(SELECT coalesce(string_agg(id::text || price_per_point_micro_usdc::text, ',' "
            "   ORDER BY id), '') FROM nodes) || '/' || "
            "(SELECT count(*) FROM node_reviews)::text");
        return r[0].as<std::string>();
    }

    // Community template versions and their state, as one comparable string.
    static std::string TemplateState() {
        pqxx::connection conn(database_url_);
        pqxx::work tx(conn);
        auto r = tx.exec1(
            "SELECT coalesce(string_agg(name || '.v' || version || author_wallet || "
            "   coalesce(deprecated_at::text, '-'), ',' ORDER BY name, version), '') "
            "FROM community_templates");
        return r[0].as<std::string>();
    }

    // Asserts one status per caller for a request; `body` is sent by every caller.
    void ExpectRow(const std::string& method, const std::string& target,
                   std::array<int, kCallerCount> expected, const std::string& body = {}) {
        for (int c = 0; c < kCallerCount; ++c)
            EXPECT_EQ(Status(static_cast<Caller>(c), method, target, body), expected[c])
                << method << " " << target << " as " << kCallerNames[c];
    }

    static testing::TempPgCluster* pg_;
    static testing::TempDir* dir_;
    static testing::ChildProcess* orchestrator_;
    static std::string database_url_;
    static std::uint16_t port_;
    static crypto::EthereumKey* admin_;

    crypto::EthereumKey user_a_ = crypto::EthereumKey::Generate();
    crypto::EthereumKey user_b_ = crypto::EthereumKey::Generate();
    testing::RegisteredNode node_a_, node_b_;
    std::map<Caller, Headers> headers_;
};

testing::TempPgCluster* AuthorizationTest::pg_ = nullptr;
testing::TempDir* AuthorizationTest::dir_ = nullptr;
testing::ChildProcess* AuthorizationTest::orchestrator_ = nullptr;
std::string AuthorizationTest::database_url_;
std::uint16_t AuthorizationTest::port_ = 0;
crypto::EthereumKey* AuthorizationTest::admin_ = nullptr;

TEST_F(AuthorizationTest, MatrixOverEveryEndpoint) {
    const std::string na = "/api/nodes/" + node_a_.id, nb = "/api/nodes/" + node_b_.id;
    const std::string beat = proto::ToJson(proto::HeartbeatRequest{{5, 1, 1, 0}, "t"}).dump();
    //                                  anon  A    B    admin node-A
    // Public operational endpoints.
    ExpectRow("GET", "/healthz", {200, 200, 200, 200, 200});
    ExpectRow("GET", "/readyz", {200, 200, 200, 200, 200});
    ExpectRow("GET", "/metrics", {200, 200, 200, 200, 200});
    ExpectRow("GET", "/api/auth/nonce", {200, 200, 200, 200, 200});

    // Nodes: the operator and admins see a node; anyone else is told it does not exist; a node's
    // own token is not a user token.
    ExpectRow("GET", "/api/nodes", {401, 200, 200, 200, 401});
    ExpectRow("GET", na, {401, 200, 404, 200, 401});
    ExpectRow("GET", nb, {401, 404, 200, 200, 401});
    ExpectRow("GET", "/api/nodes/00000000-0000-4000-8000-000000000000", {401, 404, 404, 404, 401});
    // Heartbeats need that node's own credentials: no user, admin or other node may send them.
    ExpectRow("POST", na + "/heartbeat", {401, 401, 401, 401, 200}, beat);
    ExpectRow("POST", nb + "/heartbeat", {401, 401, 401, 401, 401}, beat);

    // Listings are filtered by owner, not merely guarded.
    auto list_a = json::parse(Call(kUserA, "GET", "/api/nodes")->body)["nodes"];
    ASSERT_EQ(list_a.size(), 1u);
    EXPECT_EQ(list_a[0]["id"], node_a_.id);
    auto list_b = json::parse(Call(kUserB, "GET", "/api/nodes")->body)["nodes"];
    ASSERT_EQ(list_b.size(), 1u);
    EXPECT_EQ(list_b[0]["id"], node_b_.id);
    auto list_admin = json::parse(Call(kAdmin, "GET", "/api/nodes?limit=500")->body)["nodes"];
    EXPECT_GE(list_admin.size(), 2u);

    // VMs: only their owner sees or touches them; everyone else is told they do not exist.
    // Node A came online with its heartbeat above; wait for the flush to record it.
    const std::string vm_body =
        json{{"name", "matrix"}, {"cpuCores", 1},        {"memoryMib", 512},
             {"diskGib", 1},     {"image", "debian-12"}, {"nodeId", node_a_.id}}
            .dump();
    std::optional<testing::HttpReply> vm;
    ASSERT_TRUE(testing::WaitUntil(
        [&] {
            vm = Call(kUserA, "POST", "/api/vms", vm_body);
            return vm && vm->status == 201;
        },
        10s))
        << (vm ? vm->body : "no answer");
    const std::string va = "/api/vms/" + json::parse(vm->body)["id"].get<std::string>();
    EXPECT_EQ(Status(kAnonymous, "POST", "/api/vms", vm_body), 401);
    EXPECT_EQ(Status(kNodeA, "POST", "/api/vms", vm_body), 401);
    ExpectRow("POST", "/api/vms/quote", {401, 200, 200, 200, 401}, vm_body);
    ExpectRow("GET", "/api/vms", {401, 200, 200, 200, 401});
    ExpectRow("GET", va, {401, 200, 404, 404, 401});
    ExpectRow("GET", va + "/events", {401, 200, 404, 404, 401});
    const auto vm_before = VmState();
    for (const char* action : {"/start", "/stop", "/reboot"})
        for (Caller c : {kAnonymous, kUserB, kAdmin, kNodeA})
            EXPECT_EQ(Status(c, "POST", va + action), c == kAnonymous || c == kNodeA ? 401 : 404)
                << action << " as " << kCallerNames[c];
    for (Caller c : {kAnonymous, kUserB, kAdmin, kNodeA})
        EXPECT_EQ(Status(c, "DELETE", va), c == kAnonymous || c == kNodeA ? 401 : 404)
            << "DELETE as " << kCallerNames[c];
    EXPECT_EQ(VmState(), vm_before) << "refused VM actions change nothing";
    auto vms_b = json::parse(Call(kUserB, "GET", "/api/vms")->body)["vms"];
    EXPECT_TRUE(vms_b.empty());
    // Node endpoints of the command channel need that node's token.
    const std::string fake_result =
        json{{"commandId", "00000000-0000-4000-8000-000000000000"}, {"success", true}}.dump();
    ExpectRow("POST", na + "/commands/00000000-0000-4000-8000-000000000000/result",
              {401, 401, 401, 401, 404}, fake_result);
    ExpectRow("POST", nb + "/commands/00000000-0000-4000-8000-000000000000/result",
              {401, 401, 401, 401, 401}, fake_result);
    ExpectRow("POST", na + "/vms/report", {401, 401, 401, 401, 200},
              json{{"domains", json::array()}}.dump());
    ExpectRow("POST", nb + "/vms/report", {401, 401, 401, 401, 401},
              json{{"domains", json::array()}}.dump());
    EXPECT_EQ(VmState(), vm_before);
    EXPECT_EQ(Status(kUserA, "DELETE", va), 202);

    // Marketplace: searches, profiles and reviews are public reads; a node's profile is its
    // operator's to change (403 for anyone else signed in); a VM's review is its owner's (404
    // for anyone else), and only once the VM has ended (409 while it is still being deleted).
    const std::string profile = json{{"displayName", "Node A"}, {"tags", {"ssd"}}}.dump();
    const auto market_before = MarketState();
    for (Caller c : {kAnonymous, kUserB, kAdmin, kNodeA})
        EXPECT_EQ(Status(c, "PUT", na + "/profile", profile),
                  c == kAnonymous || c == kNodeA ? 401 : 403)
            << "PUT profile as " << kCallerNames[c];
    EXPECT_EQ(MarketState(), market_before) << "refused profile changes change nothing";
    EXPECT_EQ(Status(kUserA, "PUT", na + "/profile", profile), 200);
    ExpectRow("GET", "/api/marketplace/nodes", {200, 200, 200, 200, 200});
    ExpectRow("GET", "/api/marketplace/featured", {200, 200, 200, 200, 200});
    ExpectRow("GET", "/api/marketplace/nodes/" + node_a_.id, {200, 200, 200, 200, 200});
    ExpectRow("GET", "/api/marketplace/nodes/" + node_a_.id + "/reviews",
              {200, 200, 200, 200, 200});
    const auto reviews_before = MarketState();
    ExpectRow("POST", va + "/review", {401, 409, 404, 404, 401}, json{{"rating", 5}}.dump());
    EXPECT_EQ(MarketState(), reviews_before) << "refused reviews change nothing";

    // Templates: signed-in users read the catalogue and publish; only a version's author may
    // deprecate it (404 for anyone else); a name stays its first author's (409).
    ExpectRow("GET", "/api/templates", {401, 200, 200, 200, 401});
    ExpectRow("GET", "/api/templates?source=community", {401, 200, 200, 200, 401});
    std::string tmpl_name = "authz-" + user_a_.Address().substr(2, 10);
    std::transform(tmpl_name.begin(), tmpl_name.end(), tmpl_name.begin(), ::tolower);
    const std::string tmpl_body =
        json{{"name", tmpl_name},
             {"description", "authorization matrix"},
             {"minimum", {{"cpuCores", 1}, {"memoryMib", 256}, {"diskGib", 1}}},
             {"userData", "#cloud-config\nruncmd:\n  - [echo, hi]\n"}}
            .dump();
    const auto templates_before = TemplateState();
    EXPECT_EQ(Status(kAnonymous, "POST", "/api/templates", tmpl_body), 401);
    EXPECT_EQ(Status(kNodeA, "POST", "/api/templates", tmpl_body), 401);
    EXPECT_EQ(TemplateState(), templates_before) << "refused publishes store nothing";
    EXPECT_EQ(Status(kUserA, "POST", "/api/templates", tmpl_body), 201);
    const auto published = TemplateState();
    EXPECT_EQ(Status(kUserB, "POST", "/api/templates", tmpl_body), 409);
    EXPECT_EQ(Status(kAdmin, "POST", "/api/templates", tmpl_body), 409);
    const std::string ta = "/api/templates/" + tmpl_name + ".v1";
    ExpectRow("GET", ta, {401, 200, 200, 200, 401});
    for (Caller c : {kAnonymous, kUserB, kAdmin, kNodeA})
        EXPECT_EQ(Status(c, "POST", ta + "/deprecate"), c == kAnonymous || c == kNodeA ? 401 : 404)
            << "deprecate as " << kCallerNames[c];
    EXPECT_EQ(Status(kUserB, "POST", "/api/templates/nextcloud/deprecate"), 404);
    EXPECT_EQ(TemplateState(), published) << "refused publishes and deprecations change nothing";
    EXPECT_EQ(Status(kUserA, "POST", ta + "/deprecate"), 200);
    EXPECT_NE(TemplateState(), published);

    // The caller's own account.
    ExpectRow("GET", "/api/users/me", {401, 200, 200, 200, 401});
    ExpectRow("GET", "/api/users/me/ssh-keys", {401, 200, 200, 200, 401});
    const std::string enc_key =
        json{{"publicKey", "0x" + crypto::HexEncode(crypto::EthereumKey::Generate().PublicKey())}}
            .dump();
    ExpectRow("PUT", "/api/users/me/encryption-key", {401, 200, 200, 200, 401}, enc_key);
    ExpectRow("DELETE", "/api/users/me/encryption-key", {401, 200, 200, 200, 401});

    // SSH keys: A's key is invisible to B and to the admin's own key list, and B cannot delete it.
    auto added = Call(kUserA, "POST", "/api/users/me/ssh-keys",
                      json{{"publicKey", SshPublicKey("a@host")}}.dump());
    ASSERT_TRUE(added && added->status == 201) << (added ? added->body : "");
    const std::string key_a =
        "/api/users/me/ssh-keys/" + json::parse(added->body)["id"].get<std::string>();
    EXPECT_EQ(Status(kAnonymous, "POST", "/api/users/me/ssh-keys",
                     json{{"publicKey", SshPublicKey("x@host")}}.dump()),
              401);
    EXPECT_EQ(Status(kNodeA, "POST", "/api/users/me/ssh-keys",
                     json{{"publicKey", SshPublicKey("x@host")}}.dump()),
              401);
    ExpectRow("GET", key_a, {401, 200, 404, 404, 401});
    const auto before = UserState();
    EXPECT_EQ(Status(kUserB, "DELETE", key_a), 404);
    EXPECT_EQ(Status(kAdmin, "DELETE", key_a), 404);
    EXPECT_EQ(Status(kNodeA, "DELETE", key_a), 401);
    EXPECT_EQ(Status(kAnonymous, "DELETE", key_a), 401);
    EXPECT_EQ(UserState(), before) << "refused deletes change nothing";
    EXPECT_EQ(Status(kUserA, "DELETE", key_a), 204);
    EXPECT_EQ(Status(kUserA, "GET", key_a), 404);

    // Platform operations need an admin wallet.
    const auto victim = crypto::EthereumKey::Generate();
    ASSERT_TRUE(testing::SignIn(port_, victim));
    const std::string revoke = "/api/admin/users/" + victim.Address() + "/sessions";
    const auto before_revoke = UserState();
    EXPECT_EQ(Status(kAnonymous, "DELETE", revoke), 401);
    EXPECT_EQ(Status(kUserA, "DELETE", revoke), 403);
    EXPECT_EQ(Status(kUserB, "DELETE", revoke), 403);
    EXPECT_EQ(Status(kNodeA, "DELETE", revoke), 401);
    EXPECT_EQ(UserState(), before_revoke);
    auto revoked = Call(kAdmin, "DELETE", revoke);
    ASSERT_TRUE(revoked && revoked->status == 200) << (revoked ? revoked->body : "");
    EXPECT_EQ(json::parse(revoked->body)["revokedSessions"], 1);

    // Logout ends only the caller's own session.
    EXPECT_EQ(Status(kNodeA, "POST", "/api/auth/logout"), 401);
    EXPECT_EQ(Status(kUserA, "POST", "/api/auth/logout"), 204);
    EXPECT_EQ(Status(kUserA, "GET", "/api/users/me"), 401);
    EXPECT_EQ(Status(kUserB, "GET", "/api/users/me"), 200);
}

TEST_F(AuthorizationTest, AdminRevocationEndsEverySessionOfThatWallet) {
    auto second = testing::SignIn(port_, user_a_);
    ASSERT_TRUE(second);
    auto r = Call(kAdmin, "DELETE", "/api/admin/users/" + user_a_.Address() + "/sessions");
    ASSERT_TRUE(r && r->status == 200);
    EXPECT_EQ(json::parse(r->body)["revokedSessions"], 2);
    EXPECT_EQ(Status(kUserA, "GET", "/api/users/me"), 401);
    EXPECT_EQ(testing::HttpRequest(port_, "GET", "/api/users/me", {}, {second->Header()})->status,
              401);
    EXPECT_EQ(testing::HttpRequest(port_, "POST", "/api/auth/refresh",
                                   json{{"refreshToken", second->refresh_token}}.dump())
                  ->status,
              401);
    EXPECT_EQ(Status(kUserB, "GET", "/api/users/me"), 200);
    EXPECT_EQ(Status(kAdmin, "DELETE", "/api/admin/users/not-a-wallet/sessions"), 400);
}

TEST_F(AuthorizationTest, SshKeyValidationRefusesBadKeysAndChangesNothing) {
    const auto key = SshPublicKey("alice@laptop");
    auto added = Call(kUserA, "POST", "/api/users/me/ssh-keys", json{{"publicKey", key}}.dump());
    ASSERT_TRUE(added && added->status == 201) << (added ? added->body : "");
    const auto j = json::parse(added->body);
    EXPECT_EQ(j["name"], "alice@laptop") << "the comment names the key by default";
    EXPECT_EQ(added->Header("Location"), "/api/users/me/ssh-keys/" + j["id"].get<std::string>());
    const auto before = UserState();

    auto problem = [&](const std::string& body, int status, const std::string& needle) {
        auto r = Call(kUserA, "POST", "/api/users/me/ssh-keys", body);
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, status) << body << " -> " << r->body;
        EXPECT_EQ(r->Header("Content-Type"), "application/problem+json");
        EXPECT_NE(r->body.find(needle), std::string::npos) << r->body;
    };
    problem(json{{"publicKey", key}}.dump(), 409, "already");
    problem(json{{"publicKey", SshPublicKey("other")}, {"name", "alice@laptop"}}.dump(), 409,
            "name");
    problem(json{{"publicKey", "ssh-ed25519 AAAA"}}.dump(), 400, "publicKey");
    problem(json{{"publicKey", "ssh-dss AAAAB3NzaC1kc3MAAACBAP"}}.dump(), 400, "publicKey");
    problem(json{{"publicKey", key}, {"name", std::string(200, 'n')}}.dump(), 400, "name");
    problem(json{{"publicKey", 42}}.dump(), 400, "publicKey");
    problem("{\"publicKey\": ", 400, "JSON");
    problem("[]", 400, "object");
    EXPECT_EQ(UserState(), before);

    // A comment that is no valid name gives way to one made from the fingerprint.
    auto odd = Call(kUserA, "POST", "/api/users/me/ssh-keys",
                    json{{"publicKey", SshPublicKey("alice (work) / laptop")}}.dump());
    ASSERT_TRUE(odd);
    ASSERT_EQ(odd->status, 201) << odd->body;
    EXPECT_EQ(json::parse(odd->body)["name"].get<std::string>().rfind("ed25519 ", 0), 0u);

    // B may register the same key: keys are per wallet.
    auto b = Call(kUserB, "POST", "/api/users/me/ssh-keys", json{{"publicKey", key}}.dump());
    ASSERT_TRUE(b);
    EXPECT_EQ(b->status, 201) << b->body;
}

TEST_F(AuthorizationTest, SshKeysPerUserAreLimited) {
    int created = 0;
    for (int i = 0; i < 40; ++i) {
        auto r = Call(kUserA, "POST", "/api/users/me/ssh-keys",
                      json{{"publicKey", SshPublicKey("k" + std::to_string(i))}}.dump());
        ASSERT_TRUE(r);
        if (r->status == 201) {
            ++created;
            continue;
        }
        EXPECT_EQ(r->status, 409) << r->body;
        EXPECT_NE(r->body.find("32"), std::string::npos) << r->body;
        break;
    }
    EXPECT_EQ(created, 32);
    auto listed = json::parse(Call(kUserA, "GET", "/api/users/me/ssh-keys")->body);
    EXPECT_EQ(listed["sshKeys"].size(), 32u);
}

TEST_F(AuthorizationTest, EncryptionKeyValidation) {
    const auto before = UserState();
    const std::vector<std::string> bad_keys{"0x04deadbeef", "not hex", "0x" + std::string(130, '0'),
                                            ""};
    for (const auto& bad : bad_keys) {
        auto r =
            Call(kUserA, "PUT", "/api/users/me/encryption-key", json{{"publicKey", bad}}.dump());
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 400) << bad << " -> " << r->body;
    }
    EXPECT_EQ(UserState(), before);

    auto me = json::parse(Call(kUserA, "GET", "/api/users/me")->body);
    EXPECT_EQ(me["encryptionKeySource"], "wallet");
    EXPECT_EQ(me["encryptionPublicKey"], me["walletPublicKey"]);
    EXPECT_EQ(me["walletPublicKey"], "0x" + crypto::HexEncode(user_a_.PublicKey()));

    // A compressed key is accepted and stored uncompressed.
    const auto derived = crypto::DeriveEncryptionKey(user_a_);
    auto compressed = crypto::HexEncode(derived.PublicKey()).substr(2, 64);
    compressed = ((derived.PublicKey()[64] & 1) ? "03" : "02") + compressed;
    auto r = Call(kUserA, "PUT", "/api/users/me/encryption-key",
                  json{{"publicKey", "0x" + compressed}}.dump());
    ASSERT_TRUE(r && r->status == 200) << (r ? r->body : "");
    me = json::parse(r->body);
    EXPECT_EQ(me["encryptionKeySource"], "registered");
    EXPECT_EQ(me["encryptionPublicKey"], "0x" + crypto::HexEncode(derived.PublicKey()));
    EXPECT_FALSE(me["encryptionKeyUpdatedAt"].is_null());
    // B's profile is untouched.
    EXPECT_EQ(json::parse(Call(kUserB, "GET", "/api/users/me")->body)["encryptionKeySource"],
              "wallet");
}

}  // namespace
}  // namespace decloud
