// Community templates over HTTP on a real orchestrator, PostgreSQL and cloud-init: publishing
// (versions, name ownership, every kind of bad input answered as problem+json with nothing
// stored, cloud-init's own complaints listed), the catalogue of seed + community templates,
// deprecation by the author only, immutability in the database, and VMs created from a
// community template exactly as from a seed one (refused once the version is deprecated).

#include <gtest/gtest.h>

#include <algorithm>
#include <future>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <set>

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

class TemplateApiTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        pg_ = new testing::TempPgCluster();
        dir_ = new testing::TempDir("decloud-template-api");
        database_url_ = pg_->CreateDatabase("template_api");
        auto started = testing::StartTestOrchestrator(
            DECLOUD_ORCHESTRATOR_BIN, database_url_, dir_->path(),
            {"templates.directory=" + std::string(DECLOUD_SOURCE_DIR) + "/templates",
             "nodes.heartbeat_flush_interval=50ms"});
        port_ = started.port;
        orchestrator_ = started.process.release();
        ASSERT_TRUE(started.ready) << orchestrator_->Log();
    }

    static void TearDownTestSuite() {
        if (orchestrator_) {
            EXPECT_EQ(orchestrator_->Terminate(), 0) << orchestrator_->Log();
        }
        delete orchestrator_;
        delete dir_;
        delete pg_;
    }

    static testing::HttpReply Call(const std::string& method, const std::string& target,
                                   const std::string& body, const Headers& headers,
                                   const std::string& content_type = "application/json") {
        Headers all = headers;
        if (!body.empty()) all.emplace_back("Content-Type", content_type);
        auto reply = testing::HttpRequest(port_, method, target, body, all);
        EXPECT_TRUE(reply.has_value()) << method << " " << target;
        return reply.value_or(testing::HttpReply{});
    }

    static void ExpectProblem(const testing::HttpReply& r, int status,
                              const std::string& fragment) {
        EXPECT_EQ(r.status, status) << r.body;
        EXPECT_NE(r.Header("Content-Type").find("application/problem+json"), std::string::npos)
            << r.headers;
        EXPECT_NE(r.body.find(fragment), std::string::npos) << r.body;
    }

    static long long StoredVersions() {
        pqxx::connection conn(database_url_);
        pqxx::work tx(conn);
        return tx.exec1("SELECT count(*) FROM community_templates")[0].as<long long>();
    }

    static json Body(const std::string& name) {
        return json{
            {"name", name},
            {"description", "A static page on nginx"},
            {"minimum", {{"cpuCores", 1}, {"memoryMib", 512}, {"diskGib", 2}}},
            {"ports", json::array({{{"port", 8080}, {"name", "web"}, {"protocol", "http"}}})},
            {"parameters", json::array({{{"name", "greeting"},
                                         {"type", "string"},
                                         {"description", "Page text"},
                                         {"default", "hello"}},
                                        {{"name", "workers"},
                                         {"type", "integer"},
                                         {"description", "nginx workers"},
                                         {"minimum", 1},
                                         {"maximum", 8},
                                         {"default", 2}}})},
            {"userData",
             "#cloud-config\npackages: [nginx]\nwrite_files:\n  - path: /var/www/html/index.html\n"
             "    content: {{greeting}}\nruncmd:\n  - [sh, -c, echo, !!str {{workers}}]\n"}};
    }

    static testing::TempPgCluster* pg_;
    static testing::TempDir* dir_;
    static testing::ChildProcess* orchestrator_;
    static std::string database_url_;
    static std::uint16_t port_;
};

testing::TempPgCluster* TemplateApiTest::pg_ = nullptr;
testing::TempDir* TemplateApiTest::dir_ = nullptr;
testing::ChildProcess* TemplateApiTest::orchestrator_ = nullptr;
std::string TemplateApiTest::database_url_;
std::uint16_t TemplateApiTest::port_ = 0;

TEST_F(TemplateApiTest, PublishVersionsOwnershipAndBadInput) {
    auto alice = testing::SignIn(port_, crypto::EthereumKey::Generate());
    auto bob = testing::SignIn(port_, crypto::EthereumKey::Generate());
    ASSERT_TRUE(alice && bob);
    const Headers a{alice->Header()}, b{bob->Header()};

    auto first = Call("POST", "/api/templates", Body("hello-web").dump(), a);
    ASSERT_EQ(first.status, 201) << first.body;
    auto v1 = json::parse(first.body);
    EXPECT_EQ(v1["id"], "hello-web.v1");
    EXPECT_EQ(v1["version"], 1);
    EXPECT_EQ(v1["source"], "community");
    EXPECT_EQ(v1["author"], alice->wallet_address);
    EXPECT_EQ(v1["deprecated"], false);
    EXPECT_EQ(v1["image"], "debian-12");
    EXPECT_EQ(first.Header("Location"), "/api/templates/hello-web.v1");

    // The same name by its author: the next version, the first one unchanged.
    auto changed = Body("hello-web");
    changed["description"] = "Second cut";
    auto second = Call("POST", "/api/templates", changed.dump(), a);
    ASSERT_EQ(second.status, 201) << second.body;
    EXPECT_EQ(json::parse(second.body)["id"], "hello-web.v2");
    auto got_v1 = Call("GET", "/api/templates/hello-web.v1", {}, b);
    ASSERT_EQ(got_v1.status, 200) << got_v1.body;
    EXPECT_EQ(json::parse(got_v1.body)["description"], "A static page on nginx");
    EXPECT_NE(json::parse(got_v1.body)["userData"].get<std::string>().find("{{greeting}}"),
              std::string::npos);

    // Everything refused below stores nothing.
    const auto stored = StoredVersions();
    ASSERT_EQ(stored, 2);
    ExpectProblem(Call("POST", "/api/templates", Body("hello-web").dump(), b), 409,
                  "another author");
    ExpectProblem(Call("POST", "/api/templates", Body("nextcloud").dump(), b), 409, "seed");
    ExpectProblem(Call("POST", "/api/templates", "{\"name\": \"x\", ", a), 400, "JSON");
    ExpectProblem(Call("POST", "/api/templates", "[]", a), 400, "object");
    ExpectProblem(Call("POST", "/api/templates", Body("plain").dump(), a, "text/plain"), 400,
                  "Content-Type");
    auto big = Body("big");
    big["userData"] = "#cloud-config\nruncmd: [[echo, '" + std::string(70 * 1024, 'x') + "']]\n";
    ExpectProblem(Call("POST", "/api/templates", big.dump(), a), 413, "65536 bytes");
    auto bad_type = Body("bad-type");
    bad_type["parameters"][0]["type"] = "float";
    ExpectProblem(Call("POST", "/api/templates", bad_type.dump(), a), 400,
                  "parameters.greeting.type");
    auto twice = Body("twice");
    twice["parameters"][1]["name"] = "greeting";
    ExpectProblem(Call("POST", "/api/templates", twice.dump(), a), 400, "declared twice");
    auto bad_name = Body("Hello_Web");
    ExpectProblem(Call("POST", "/api/templates", bad_name.dump(), a), 400, "name");
    auto unknown = Body("unknown");
    unknown["price"] = 1;
    ExpectProblem(Call("POST", "/api/templates", unknown.dump(), a), 400, "price");
    auto reserved = Body("reserved");
    reserved["userData"] = "#cloud-config\nssh_authorized_keys: [x]\n";
    reserved.erase("parameters");
    ExpectProblem(Call("POST", "/api/templates", reserved.dump(), a), 400, "ssh_authorized_keys");

    // cloud-init's schema: each complaint listed, the document's lines as the author wrote them.
    auto schema = Body("schema");
    schema.erase("parameters");
    schema["userData"] = "#cloud-config\npackages: 5\nruncmd: \"reboot\"\n";
    auto refused = Call("POST", "/api/templates", schema.dump(), a);
    ExpectProblem(refused, 422, "cloud-init schema");
    const auto problem = json::parse(refused.body);
    ASSERT_TRUE(problem["errors"].is_array()) << refused.body;
    ASSERT_EQ(problem["errors"].size(), 2u) << refused.body;
    EXPECT_NE(problem["errors"][0].get<std::string>().find("packages"), std::string::npos);
    EXPECT_NE(problem["errors"][1].get<std::string>().find("runcmd"), std::string::npos);
    schema["userData"] = "#cloud-config\nruncmd: [\n";
    refused = Call("POST", "/api/templates", schema.dump(), a);
    ExpectProblem(refused, 422, "not valid yaml");
    EXPECT_EQ(refused.body.find("/tmp/"), std::string::npos) << refused.body;
    EXPECT_EQ(StoredVersions(), stored);

    // Anonymous callers publish nothing either.
    EXPECT_EQ(Call("POST", "/api/templates", Body("anon").dump(), {}).status, 401);
    EXPECT_EQ(StoredVersions(), stored);
}

TEST_F(TemplateApiTest, ConcurrentPublishesOfOneNameGetDistinctVersions) {
    auto carol = testing::SignIn(port_, crypto::EthereumKey::Generate());
    ASSERT_TRUE(carol);
    const Headers c{carol->Header()};
    std::vector<std::future<testing::HttpReply>> replies;
    for (int i = 0; i < 3; ++i)
        replies.push_back(std::async(std::launch::async, [&] {
            return Call("POST", "/api/templates", Body("racy").dump(), c);
        }));
    std::set<std::string> ids;
    for (auto& f : replies) {
        const auto r = f.get();
        ASSERT_EQ(r.status, 201) << r.body;
        ids.insert(json::parse(r.body)["id"].get<std::string>());
    }
    EXPECT_EQ(ids, (std::set<std::string>{"racy.v1", "racy.v2", "racy.v3"}));
}

TEST_F(TemplateApiTest, CatalogueDeprecationAndVmsFromCommunityTemplates) {
    auto dave = testing::SignIn(port_, crypto::EthereumKey::Generate());
    auto erin = testing::SignIn(port_, crypto::EthereumKey::Generate());
    ASSERT_TRUE(dave && erin);
    const Headers d{dave->Header()}, e{erin->Header()};
    ASSERT_EQ(Call("POST", "/api/templates", Body("dave-web").dump(), d).status, 201);
    ASSERT_EQ(Call("POST", "/api/templates", Body("dave-web").dump(), d).status, 201);

    // The catalogue: seed templates flagged as such, then community ones with their author.
    auto all = Call("GET", "/api/templates", {}, e);
    ASSERT_EQ(all.status, 200) << all.body;
    const auto listed = json::parse(all.body)["templates"];
    std::size_t seeds = 0, community = 0;
    for (const auto& t : listed) {
        if (t["source"] == "seed") {
            ++seeds;
            EXPECT_FALSE(t.contains("author"));
        } else {
            ++community;
            EXPECT_EQ(t["source"], "community");
            EXPECT_TRUE(t["author"].is_string());
            EXPECT_TRUE(t["version"].is_number_integer());
        }
        EXPECT_FALSE(t.contains("userData")) << "listings leave the documents out";
    }
    EXPECT_EQ(seeds, 9u);
    EXPECT_GE(community, 2u);
    auto only_seeds = json::parse(Call("GET", "/api/templates?source=seed", {}, e).body);
    EXPECT_EQ(only_seeds["templates"].size(), seeds);
    auto only_community = json::parse(Call("GET", "/api/templates?source=community", {}, e).body);
    EXPECT_EQ(only_community["templates"].size(), community);
    EXPECT_TRUE(only_community["nextCursor"].is_null());

    // Page by page: every template once, in the same order as the whole listing, also when a
    // template is published between two pages (it comes at its place in the order).
    for (const std::size_t page_size : {1u, 4u, 9u, 10u}) {
        SCOPED_TRACE(page_size);
        std::vector<std::string> paged;
        std::string cursor;
        for (int pages = 0; pages < 100; ++pages) {
            std::string target = "/api/templates?limit=" + std::to_string(page_size);
            if (!cursor.empty()) target += "&cursor=" + cursor;
            auto page = Call("GET", target, {}, e);
            ASSERT_EQ(page.status, 200) << page.body;
            const auto body = json::parse(page.body);
            EXPECT_LE(body["templates"].size(), page_size);
            for (const auto& t : body["templates"]) paged.push_back(t["id"]);
            if (body["nextCursor"].is_null()) break;
            cursor = body["nextCursor"];
            EXPECT_EQ(cursor, paged.back());
            if (page_size == 4 && pages == 0) {
                ASSERT_EQ(Call("POST", "/api/templates", Body("zz-late").dump(), d).status, 201);
            }
        }
        std::vector<std::string> whole;
        const auto everything = json::parse(Call("GET", "/api/templates?limit=500", {}, e).body);
        for (const auto& t : everything["templates"]) whole.push_back(t["id"]);
        EXPECT_EQ(paged, whole);
    }
    ExpectProblem(Call("GET", "/api/templates?cursor=no.such", {}, e), 400, "cursor");
    ExpectProblem(Call("GET", "/api/templates?source=community&cursor=nextcloud", {}, e), 400,
                  "cursor");
    ExpectProblem(Call("GET", "/api/templates?limit=0", {}, e), 400, "limit");
    ExpectProblem(Call("GET", "/api/templates?limit=501", {}, e), 400, "limit");
    ExpectProblem(Call("GET", "/api/templates?source=mine", {}, e), 400, "source");
    ExpectProblem(Call("GET", "/api/templates?colour=blue", {}, e), 400, "colour");
    auto seed = Call("GET", "/api/templates/nextcloud", {}, e);
    ASSERT_EQ(seed.status, 200) << seed.body;
    EXPECT_EQ(json::parse(seed.body)["source"], "seed");
    ExpectProblem(Call("GET", "/api/templates/dave-web.v9", {}, e), 404, "dave-web.v9");
    ExpectProblem(Call("GET", "/api/templates/nothing", {}, e), 404, "nothing");

    // An online node to place VMs on.
    const auto operator_key = crypto::EthereumKey::Generate();
    auto node =
        testing::RegisterNode(port_, crypto::Ed25519KeyPair::Generate(), operator_key.Address());
    ASSERT_TRUE(node) << node.error().message;
    const auto heartbeat = [&] {
        proto::HeartbeatRequest hb;
        hb.usage = {5, 1, 1, 0};
        hb.agent_version = "t";
        auto r = testing::HttpRequest(port_, "POST", "/api/nodes/" + node->id + "/heartbeat",
                                      proto::ToJson(hb).dump(),
                                      {{"Authorization", "Bearer " + node->token}});
        EXPECT_TRUE(r && r->status == 200);
        return r ? json::parse(r->body, nullptr, false) : json();
    };
    heartbeat();
    const auto create = [&](const std::string& tmpl, const json& params) {
        json body{{"name", "from-" + tmpl},  {"cpuCores", 1},
                  {"memoryMib", 512},        {"diskGib", 2},
                  {"template", tmpl},        {"nodeId", node->id},
                  {"templateParams", params}};
        return Call("POST", "/api/vms", body.dump(), e);
    };
    testing::HttpReply vm;
    ASSERT_TRUE(testing::WaitUntil(
        [&] {
            vm = create("dave-web.v1", {{"greeting", "from the community"}});
            return vm.status == 201;
        },
        10s))
        << vm.body;
    const auto created = json::parse(vm.body);
    EXPECT_EQ(created["template"], "dave-web.v1");
    EXPECT_EQ(created["templateParams"]["greeting"], "from the community");
    // The node is handed the rendered document and the template's web port, as for a seed one.
    json command;
    ASSERT_TRUE(testing::WaitUntil(
        [&] {
            const auto beat = heartbeat();
            for (const auto& c : beat["commands"])
                if (c["type"] == "create_vm" && c["payload"]["vmId"] == created["id"]) command = c;
            return !command.is_null();
        },
        10s));
    const auto user_data = command["payload"]["userData"].get<std::string>();
    EXPECT_NE(user_data.find("content: \"from the community\""), std::string::npos) << user_data;
    EXPECT_NE(user_data.find("echo, !!str 2]"), std::string::npos) << user_data;
    EXPECT_EQ(command["payload"]["ingressPorts"], json::array({8080}));
    // Template rules apply: too small, wrong parameter.
    json small{{"name", "small"},
               {"cpuCores", 1},
               {"memoryMib", 256},
               {"diskGib", 2},
               {"template", "dave-web.v1"}};
    ExpectProblem(Call("POST", "/api/vms", small.dump(), e), 400, "needs at least");
    ExpectProblem(create("dave-web.v1", {{"workers", 99}}), 400, "workers");
    ExpectProblem(create("dave-web.v7", json::object()), 400, "no template");

    // Deprecation: only the author (404 for anyone else); listed with the flag; new VMs from it
    // refused, the one made before untouched; other versions unaffected.
    ExpectProblem(Call("POST", "/api/templates/dave-web.v1/deprecate", {}, e), 404, "dave-web.v1");
    ExpectProblem(Call("POST", "/api/templates/nextcloud/deprecate", {}, d), 404, "nextcloud");
    auto deprecated = Call("POST", "/api/templates/dave-web.v1/deprecate", {}, d);
    ASSERT_EQ(deprecated.status, 200) << deprecated.body;
    EXPECT_EQ(json::parse(deprecated.body)["deprecated"], true);
    EXPECT_TRUE(json::parse(deprecated.body)["deprecatedAt"].is_string());
    EXPECT_EQ(Call("POST", "/api/templates/dave-web.v1/deprecate", {}, d).status, 200);
    bool flagged = false;
    const auto community_list =
        json::parse(Call("GET", "/api/templates?source=community", {}, e).body);
    for (const auto& t : community_list["templates"])
        if (t["id"] == "dave-web.v1") flagged = t["deprecated"] == true;
    EXPECT_TRUE(flagged);
    ExpectProblem(create("dave-web.v1", json::object()), 422, "deprecated");
    json quote{{"name", "q"},
               {"cpuCores", 1},
               {"memoryMib", 512},
               {"diskGib", 2},
               {"template", "dave-web.v1"}};
    ExpectProblem(Call("POST", "/api/vms/quote", quote.dump(), e), 422, "deprecated");
    auto old_vm = Call("GET", "/api/vms/" + created["id"].get<std::string>(), {}, e);
    ASSERT_EQ(old_vm.status, 200);
    EXPECT_EQ(json::parse(old_vm.body)["template"], "dave-web.v1");
    auto v2 = create("dave-web.v2", json::object());
    EXPECT_EQ(v2.status, 201) << v2.body;

    // Versions are immutable below the API too.
    pqxx::connection conn(database_url_);
    {
        pqxx::work tx(conn);
        EXPECT_THROW(tx.exec("UPDATE community_templates SET user_data = '#cloud-config\n' "
                             "WHERE name = 'dave-web' AND version = 2"),
                     pqxx::sql_error);
    }
    {
        pqxx::work tx(conn);
        EXPECT_THROW(tx.exec("DELETE FROM community_templates WHERE name = 'dave-web'"),
                     pqxx::sql_error);
    }
    {
        pqxx::work tx(conn);
        EXPECT_THROW(tx.exec("UPDATE community_templates SET deprecated_at = now() "
                             "WHERE name = 'dave-web' AND version = 1"),
                     pqxx::sql_error)
            << "a deprecation is not moved either";
    }
}

}  // namespace
}  // namespace decloud
