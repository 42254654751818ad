// Community templates without a database: the publish body's validation (problem fields named,
// nothing stored on a refusal), versions per name and author, deprecation by the author only,
// and the catalogue's seed + community listing.

#include "orchestrator/app/template_service.hpp"

#include <gtest/gtest.h>

#include <map>

namespace decloud::orchestrator::app {
namespace {

using common::ErrorCode;
using nlohmann::json;

constexpr const char* kAlice = "0xAAAA";
constexpr const char* kBob = "0xBBBB";

// The repository contract in memory, enough to test the service's rules.
class InMemoryCommunityTemplates final : public ports::CommunityTemplateRepository {
  public:
    common::Result<ports::CommunityTemplate> Publish(const ports::NewCommunityTemplate& v,
                                                     common::TimePoint now) override {
        auto [owner, inserted] = owners_.emplace(v.name, v.author_wallet);
        if (owner->second != v.author_wallet)
            return common::Error::Conflict("name: belongs to another author");
        const std::int64_t version = ++latest_[v.name];
        json manifest = v.manifest;
        manifest["id"] = v.name;
        manifest["name"] = v.name;
        manifest["version"] = version;
        auto tmpl = domain::ParseTemplate(manifest, v.user_data);
        if (!tmpl) return tmpl.error();
        ports::CommunityTemplate t;
        t.tmpl = std::move(*tmpl);
        t.tmpl.id = CommunityTemplateId(v.name, version);
        t.name = v.name;
        t.author_wallet = v.author_wallet;
        t.version = version;
        t.created_at = now;
        rows_[{v.name, version}] = t;
        return t;
    }
    common::Result<ports::CommunityTemplate> Get(const std::string& name,
                                                 std::int64_t version) override {
        const auto it = rows_.find({name, version});
        if (it == rows_.end()) return common::Error::NotFound("no such version");
        return it->second;
    }
    common::Result<std::vector<ports::CommunityTemplate>> List(
        const std::optional<std::pair<std::string, std::int64_t>>& after,
        std::size_t limit) override {
        std::vector<ports::CommunityTemplate> out;
        auto it = after ? rows_.upper_bound(*after) : rows_.begin();
        for (; it != rows_.end() && out.size() < limit; ++it) out.push_back(it->second);
        return out;
    }
    common::Result<ports::CommunityTemplate> Deprecate(const std::string& author,
                                                       const std::string& name,
                                                       std::int64_t version,
                                                       common::TimePoint now) override {
        const auto it = rows_.find({name, version});
        if (it == rows_.end() || it->second.author_wallet != author)
            return common::Error::NotFound("no such version");
        if (!it->second.deprecated) {
            it->second.deprecated = true;
            it->second.deprecated_at = now;
        }
        return it->second;
    }
    std::size_t size() const { return rows_.size(); }

  private:
    std::map<std::string, std::string> owners_;
    std::map<std::string, std::int64_t> latest_;
    std::map<std::pair<std::string, std::int64_t>, ports::CommunityTemplate> rows_;
};

// Records what it was asked to check and answers with the complaints set by the test.
class ScriptedValidator final : public ports::CloudConfigValidator {
  public:
    common::Result<std::vector<std::string>> Check(const std::string& cloud_config) override {
        checked.push_back(cloud_config);
        return complaints;
    }
    std::vector<std::string> checked;
    std::vector<std::string> complaints;
};

json ValidBody(const std::string& name = "hello-web") {
    return json{
        {"name", name},
        {"description", "A static page on nginx"},
        {"minimum", {{"cpuCores", 1}, {"memoryMib", 512}, {"diskGib", 4}}},
        {"ports", json::array({{{"port", 80}, {"name", "web"}, {"protocol", "http"}}})},
        {"parameters", json::array({{{"name", "greeting"},
                                     {"type", "string"},
                                     {"description", "Page text"},
                                     {"default", "hello"}},
                                    {{"name", "workers"},
                                     {"type", "integer"},
                                     {"description", "nginx workers"},
                                     {"minimum", 2},
                                     {"maximum", 8}}})},
        {"userData",
         "#cloud-config\npackages: [nginx]\nwrite_files:\n  - path: /var/www/html/index.html\n"
         "    content: {{greeting}}\nbootcmd:\n  - [sh, -c, echo, !!str {{workers}}]\n"}};
}

// The field the refusal names, and that nothing was stored.
void ExpectRefused(const json& body, ErrorCode code, const std::string& fragment) {
    auto parsed = ParseCommunityTemplate(body);
    ASSERT_FALSE(parsed) << body.dump();
    EXPECT_EQ(parsed.error().code, code) << parsed.error().message;
    EXPECT_NE(parsed.error().message.find(fragment), std::string::npos) << parsed.error().message;
}

TEST(CommunityTemplateParse, AcceptsAValidBodyWithDefaultsFilledIn) {
    auto draft = ParseCommunityTemplate(ValidBody());
    ASSERT_TRUE(draft) << draft.error().message;
    EXPECT_EQ(draft->name, "hello-web");
    EXPECT_EQ(draft->manifest["image"], "debian-12");
    EXPECT_FALSE(draft->manifest.contains("id"));
    EXPECT_FALSE(draft->manifest.contains("version"));
    ASSERT_EQ(draft->tmpl.parameters.size(), 2u);
    EXPECT_EQ(draft->tmpl.parameters[1].type, domain::ParameterType::kInteger);
    EXPECT_EQ(draft->tmpl.ports[0].port, 80);
}

TEST(CommunityTemplateParse, RefusesBadInputNamingTheField) {
    ExpectRefused(json::array(), ErrorCode::kInvalidArgument, "JSON object");
    auto body = ValidBody();
    body["colour"] = "blue";
    ExpectRefused(body, ErrorCode::kInvalidArgument, "colour");
    for (const auto* name : {"", "Hello", "-x", "a_b", "a.v1", "x y"}) {
        body = ValidBody(name);
        ExpectRefused(body, ErrorCode::kInvalidArgument, "name");
    }
    ExpectRefused(ValidBody(std::string(49, 'a')), ErrorCode::kInvalidArgument, "name");
    body = ValidBody();
    body.erase("userData");
    ExpectRefused(body, ErrorCode::kInvalidArgument, "userData");
    body = ValidBody();
    body["userData"] = "#!/bin/sh\necho hi\n";
    ExpectRefused(body, ErrorCode::kInvalidArgument, "userData: must start with a #cloud-config");
    body = ValidBody();
    body["userData"] = "#cloud-config\nruncmd: [[echo, '" + std::string(64 * 1024, 'x') + "']]\n";
    ExpectRefused(body, ErrorCode::kPayloadTooLarge, "65536 bytes");
    body = ValidBody();
    body["parameters"][1]["type"] = "float";
    ExpectRefused(body, ErrorCode::kInvalidArgument, "parameters.workers.type");
    body = ValidBody();
    body["parameters"][1]["name"] = "greeting";
    body["parameters"][1].erase("minimum");
    body["parameters"][1].erase("maximum");
    body["parameters"][1]["type"] = "string";
    ExpectRefused(body, ErrorCode::kInvalidArgument, "greeting is declared twice");
    body = ValidBody();
    body["parameters"][0]["pattern"] = "(a+)+$";
    ExpectRefused(body, ErrorCode::kInvalidArgument, "pattern");
    body = ValidBody();
    body["parameters"][1]["default"] = 99;
    ExpectRefused(body, ErrorCode::kInvalidArgument, "parameters.workers.default");
    body = ValidBody();
    body["minimum"]["cpuCores"] = 0;
    ExpectRefused(body, ErrorCode::kInvalidArgument, "minimum.cpuCores");
    body = ValidBody();
    body["ports"][0]["port"] = 70000;
    ExpectRefused(body, ErrorCode::kInvalidArgument, "ports[0].port");
    body = ValidBody();
    body["userData"] = "#cloud-config\nhostname: mine\n";
    body.erase("parameters");
    ExpectRefused(body, ErrorCode::kInvalidArgument, "hostname");
    body = ValidBody();
    body["userData"] = "#cloud-config\nruncmd: [[echo, {{undeclared}}]]\n";
    ExpectRefused(body, ErrorCode::kInvalidArgument, "undeclared");
}

TEST(CommunityTemplateParse, SampleDocumentFillsEveryPlaceholder) {
    auto draft = ParseCommunityTemplate(ValidBody());
    ASSERT_TRUE(draft);
    const auto doc = SampleCloudConfig(draft->tmpl);
    EXPECT_EQ(doc.find("{{"), std::string::npos) << doc;
    EXPECT_NE(doc.find("content: \"hello\""), std::string::npos) << doc;  // the default
    EXPECT_NE(doc.find("!!str 2"), std::string::npos) << doc;             // within minimum..maximum
}

TEST(CommunityTemplateIds, RoundTripAndRejectOtherShapes) {
    EXPECT_EQ(CommunityTemplateId("hello-web", 3), "hello-web.v3");
    const auto parsed = ParseCommunityTemplateId("hello-web.v3");
    ASSERT_TRUE(parsed);
    EXPECT_EQ(parsed->first, "hello-web");
    EXPECT_EQ(parsed->second, 3);
    for (const auto* id : {"hello-web", "hello-web.v0", "hello-web.v", "hello-web.v01", ".v1",
                           "Hello.v1", "a.v1x", "a.v99999999999999999999"})
        EXPECT_FALSE(ParseCommunityTemplateId(id)) << id;
}

class TemplateServiceTest : public ::testing::Test {
  protected:
    TemplateServiceTest() {
        json manifest{{"id", "nextcloud"},
                      {"name", "Nextcloud"},
                      {"description", "Files"},
                      {"version", 1},
                      {"image", "debian-12"},
                      {"minimum", {{"cpuCores", 2}, {"memoryMib", 2048}, {"diskGib", 20}}}};
        auto seed = domain::ParseTemplate(manifest, "#cloud-config\npackages: [apache2]\n");
        EXPECT_TRUE(seed);
        seeds_.push_back(*seed);
    }

    std::vector<domain::VmTemplate> seeds_;
    InMemoryCommunityTemplates repo_;
    ScriptedValidator validator_;
    common::ManualClock clock_;
    TemplateService service_{seeds_, repo_, validator_, clock_};
};

TEST_F(TemplateServiceTest, PublishingAgainMakesTheNextVersionForItsAuthorOnly) {
    auto first = service_.Publish(kAlice, ValidBody());
    ASSERT_TRUE(first) << first.error().message;
    ASSERT_TRUE(first->published);
    EXPECT_EQ(first->published->tmpl.id, "hello-web.v1");
    // The validator saw the document with placeholders filled, not the raw template.
    ASSERT_EQ(validator_.checked.size(), 1u);
    EXPECT_EQ(validator_.checked[0].find("{{"), std::string::npos);

    auto second = service_.Publish(kAlice, ValidBody());
    ASSERT_TRUE(second && second->published);
    EXPECT_EQ(second->published->version, 2);
    EXPECT_EQ(second->published->tmpl.id, "hello-web.v2");

    auto other = service_.Publish(kBob, ValidBody());
    ASSERT_FALSE(other);
    EXPECT_EQ(other.error().code, ErrorCode::kConflict);
    auto seed_name = service_.Publish(kBob, ValidBody("nextcloud"));
    ASSERT_FALSE(seed_name);
    EXPECT_EQ(seed_name.error().code, ErrorCode::kConflict);
    EXPECT_EQ(repo_.size(), 2u);
}

TEST_F(TemplateServiceTest, SchemaComplaintsComeBackAndNothingIsStored) {
    validator_.complaints = {"packages: 5 is not of type 'array'", "runcmd: 'x' is not valid"};
    auto outcome = service_.Publish(kAlice, ValidBody());
    ASSERT_TRUE(outcome) << outcome.error().message;
    EXPECT_FALSE(outcome->published);
    EXPECT_EQ(outcome->schema_errors, validator_.complaints);
    EXPECT_EQ(repo_.size(), 0u);
    // Bad input never reaches the validator.
    auto body = ValidBody();
    body["parameters"][0]["type"] = "list";
    EXPECT_FALSE(service_.Publish(kAlice, body));
    EXPECT_EQ(validator_.checked.size(), 1u);
}

TEST_F(TemplateServiceTest, DeprecateIsForTheAuthorAndListsKeepTheVersion) {
    ASSERT_TRUE(service_.Publish(kAlice, ValidBody()));
    auto by_bob = service_.Deprecate(kBob, "hello-web.v1");
    ASSERT_FALSE(by_bob);
    EXPECT_EQ(by_bob.error().code, ErrorCode::kNotFound);
    auto seed = service_.Deprecate(kAlice, "nextcloud");
    ASSERT_FALSE(seed);
    EXPECT_EQ(seed.error().code, ErrorCode::kNotFound);
    auto done = service_.Deprecate(kAlice, "hello-web.v1");
    ASSERT_TRUE(done) << done.error().message;
    EXPECT_TRUE(done->deprecated);

    auto all = service_.List(std::nullopt, "", 100);
    ASSERT_TRUE(all);
    ASSERT_EQ(all->templates.size(), 2u);
    EXPECT_EQ(all->templates[0].source, TemplateSource::kSeed);
    EXPECT_EQ(all->templates[1].source, TemplateSource::kCommunity);
    EXPECT_TRUE(all->templates[1].entry.deprecated);
    EXPECT_EQ(all->next_cursor, "");
    auto seeds = service_.List(TemplateSource::kSeed, "", 100);
    ASSERT_TRUE(seeds);
    EXPECT_EQ(seeds->templates.size(), 1u);
    auto community = service_.List(TemplateSource::kCommunity, "", 100);
    ASSERT_TRUE(community);
    ASSERT_EQ(community->templates.size(), 1u);
    EXPECT_EQ(community->templates.front().entry.author_wallet, kAlice);

    // One at a time: the seed, then the community version, then nothing more.
    auto first = service_.List(std::nullopt, "", 1);
    ASSERT_TRUE(first);
    ASSERT_EQ(first->templates.size(), 1u);
    EXPECT_EQ(first->next_cursor, "nextcloud");
    auto second = service_.List(std::nullopt, first->next_cursor, 1);
    ASSERT_TRUE(second);
    ASSERT_EQ(second->templates.size(), 1u);
    EXPECT_EQ(second->templates[0].entry.tmpl.id, "hello-web.v1");
    EXPECT_EQ(second->next_cursor, "");
    EXPECT_EQ(service_.List(std::nullopt, "nothing", 1).error().code, ErrorCode::kInvalidArgument);
    EXPECT_EQ(service_.List(TemplateSource::kCommunity, "nextcloud", 1).error().code,
              ErrorCode::kInvalidArgument);

    auto got = service_.Get("hello-web.v1");
    ASSERT_TRUE(got);
    EXPECT_EQ(got->source, TemplateSource::kCommunity);
    auto got_seed = service_.Get("nextcloud");
    ASSERT_TRUE(got_seed);
    EXPECT_EQ(got_seed->source, TemplateSource::kSeed);
    EXPECT_EQ(service_.Get("hello-web.v9").error().code, ErrorCode::kNotFound);
    EXPECT_EQ(service_.Get("nothing").error().code, ErrorCode::kNotFound);
}

}  // namespace
}  // namespace decloud::orchestrator::app
