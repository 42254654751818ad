#include "orchestrator/adapters/templates/template_catalog.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>

namespace decloud::orchestrator::adapters::templates {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::string kRepoTemplates = std::string(DECLOUD_SOURCE_DIR) + "/templates";
constexpr const char* kCloudInit = "/usr/bin/cloud-init";

// A valid WireGuard key ("wg genkey"), and a password that matches code-server's pattern
// while holding everything that would break YAML if it were pasted in unquoted.
constexpr const char* kPrivateKey = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
constexpr const char* kHostilePassword =
    "p\"a#s: s'{{password}}' --- ... [x] {y: z} & *a !b | > % @ ` \\ caf\xc3\xa9 \xf0\x9f\x94\x91";

// Values for the required parameters of every template in templates/; a new template with a
// required parameter has to be given one here.
const std::map<std::string, json> kValidParameters = {
    {"code-server", json{{"password", "correct horse battery staple"}}},
    {"relay-wireguard", json{{"private_key", kPrivateKey}}},
    {"jellyfin", json::object()},
    {"mastodon", json{{"domain", "social.example.org"}, {"owner_email", "owner@example.org"}}},
    {"minecraft", json{{"max_players", 20}}},
    {"nextcloud", json{{"admin_password", "correct horse battery staple"}}},
    {"stable-diffusion", json{{"password", "correct horse battery staple"}}},
    {"whisper", json{{"model", "small"}}},
    {"wireguard-vpn", json{{"client_public_key", "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw="}}},
};

class TempDir {
  public:
    TempDir() {
        std::string pattern = (fs::temp_directory_path() / "decloud-templates-XXXXXX").string();
        if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
        path_ = pattern;
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const fs::path& path() const { return path_; }

  private:
    fs::path path_;
};

void WriteFile(const fs::path& path, const std::string& text) {
    fs::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << text;
}

struct CommandResult {
    int status = -1;
    std::string output;
};

CommandResult Run(const std::string& command) {
    CommandResult r;
    FILE* pipe = ::popen(command.c_str(), "r");
    if (pipe == nullptr) return r;
    char buffer[4096];
    std::size_t n = 0;
    while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) r.output.append(buffer, n);
    const int status = ::pclose(pipe);
    r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
}

// `cloud-init schema` on a rendered document: exit status 0 and "Valid cloud-config" on success.
CommandResult CloudInitSchema(const TempDir& dir, const std::string& document) {
    const fs::path file = dir.path() / "user-data";
    WriteFile(file, document);
    return Run(std::string(kCloudInit) + " schema --config-file " + file.string() + " 2>&1");
}

// The document as PyYAML (cloud-init's own parser) reads it, as JSON.
std::optional<json> LoadYaml(const TempDir& dir, const std::string& document) {
    const fs::path file = dir.path() / "user-data.yaml-check";
    WriteFile(file, document);
    const auto r =
        Run("/usr/bin/python3 -c 'import json, sys, yaml; "
            "print(json.dumps(yaml.safe_load(open(sys.argv[1], encoding=\"utf-8\"))))' " +
            file.string() + " 2>&1");
    if (r.status != 0) {
        ADD_FAILURE() << "PyYAML could not read the document: " << r.output;
        return std::nullopt;
    }
    return json::parse(r.output);
}

std::optional<std::string> FileContent(const json& doc, const std::string& path) {
    for (const json& file : doc.at("write_files")) {
        if (file.at("path") == path) return file.at("content").get<std::string>();
    }
    return std::nullopt;
}

TEST(TemplateCatalog, LoadsTheRepositoryTemplates) {
    auto catalog = TemplateCatalog::Load(kRepoTemplates);
    ASSERT_TRUE(catalog) << catalog.error().message;
    // Sorted by id: the seed catalogue.
    std::vector<std::string> ids;
    for (const auto& t : catalog->All()) ids.push_back(t.id);
    EXPECT_EQ(ids, (std::vector<std::string>{"code-server", "jellyfin", "mastodon", "minecraft",
                                             "nextcloud", "relay-wireguard", "stable-diffusion",
                                             "whisper", "wireguard-vpn"}));
    // Every template declares the ports it serves, so the proxy and relays can expose them.
    for (const auto& t : catalog->All()) EXPECT_FALSE(t.ports.empty()) << t.id;
    EXPECT_EQ(catalog->Find("nope"), nullptr);
    EXPECT_EQ(catalog->Find(""), nullptr);

    const domain::VmTemplate* code = catalog->Find("code-server");
    ASSERT_NE(code, nullptr);
    EXPECT_EQ(code->image, "debian-12");
    ASSERT_EQ(code->ports.size(), 1u);
    EXPECT_EQ(code->ports[0].port, 8080);
    EXPECT_EQ(code->ports[0].protocol, "http");
    const domain::TemplateParameter* password = code->FindParameter("password");
    ASSERT_NE(password, nullptr);
    EXPECT_TRUE(password->secret);
    EXPECT_FALSE(password->default_value.has_value());

    const domain::VmTemplate* relay = catalog->Find("relay-wireguard");
    ASSERT_NE(relay, nullptr);
    EXPECT_EQ(relay->FindParameter("listen_port")->default_value, json(51820));
    EXPECT_EQ(relay->FindParameter("address")->default_value, json("10.200.0.1/24"));
    EXPECT_TRUE(relay->FindParameter("private_key")->secret);
}

TEST(TemplateCatalog, CodeServerPasswordRules) {
    auto catalog = TemplateCatalog::Load(kRepoTemplates);
    ASSERT_TRUE(catalog) << catalog.error().message;
    const domain::VmTemplate& t = *catalog->Find("code-server");
    EXPECT_FALSE(domain::RenderTemplate(t, json::object())) << "the password is required";
    EXPECT_FALSE(domain::RenderTemplate(t, json{{"password", "short12"}}));
    EXPECT_FALSE(domain::RenderTemplate(t, json{{"password", "two\nlines!"}}));
    EXPECT_FALSE(domain::RenderTemplate(t, json{{"password", std::string(257, 'a')}}));
    EXPECT_TRUE(domain::RenderTemplate(t, json{{"password", "exactly8"}}));
    EXPECT_TRUE(domain::RenderTemplate(t, json{{"password", std::string(256, 'a')}}));
    // At the string limit the pattern runs on 4096 bytes and must fail cleanly.
    EXPECT_FALSE(domain::RenderTemplate(t, json{{"password", std::string(4096, 'a')}}));
}

TEST(TemplateCatalog, RelayParameterRules) {
    auto catalog = TemplateCatalog::Load(kRepoTemplates);
    ASSERT_TRUE(catalog) << catalog.error().message;
    const domain::VmTemplate& t = *catalog->Find("relay-wireguard");
    const auto with = [&](json extra) {
        json params{{"private_key", kPrivateKey}};
        params.update(extra);
        return domain::RenderTemplate(t, params);
    };
    EXPECT_TRUE(with(json::object()));
    EXPECT_TRUE(with(json{{"address", "192.168.7.1/30"}, {"listen_port", 1}}));
    EXPECT_FALSE(with(json{{"listen_port", 0}}));
    EXPECT_FALSE(with(json{{"listen_port", 65536}}));
    EXPECT_FALSE(with(json{{"listen_port", "51820"}}));
    for (const char* bad : {"10.200.0.1", "10.200.0.256/24", "10.200.0.1/33", "fd00::1/64",
                            "10.200.0.1/24\nPostUp = reboot", "010.1.1.1/8"}) {
        EXPECT_FALSE(with(json{{"address", bad}})) << bad;
    }
    for (const char* bad : {"", "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk",
                            "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBml=",
                            "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=\n",
                            "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk==", "not a key"}) {
        EXPECT_FALSE(domain::RenderTemplate(t, json{{"private_key", bad}})) << bad;
    }
}

TEST(TemplateCatalog, EveryRepositoryTemplateRendersToValidCloudConfig) {
    if (!fs::exists(kCloudInit)) GTEST_SKIP() << "cloud-init is not installed";
    auto catalog = TemplateCatalog::Load(kRepoTemplates);
    ASSERT_TRUE(catalog) << catalog.error().message;
    TempDir dir;
    for (const domain::VmTemplate& t : catalog->All()) {
        SCOPED_TRACE(t.id);
        const auto params = kValidParameters.find(t.id);
        ASSERT_NE(params, kValidParameters.end()) << "add valid parameters for " << t.id;
        auto rendered = domain::RenderTemplate(t, params->second);
        ASSERT_TRUE(rendered) << rendered.error().message;
        const auto r = CloudInitSchema(dir, *rendered);
        EXPECT_EQ(r.status, 0) << r.output;
        EXPECT_NE(r.output.find("Valid cloud-config"), std::string::npos) << r.output;
    }
}

TEST(TemplateCatalog, RenderedValuesLandInTheRightFiles) {
    auto catalog = TemplateCatalog::Load(kRepoTemplates);
    ASSERT_TRUE(catalog) << catalog.error().message;
    TempDir dir;

    auto relay = domain::RenderTemplate(
        *catalog->Find("relay-wireguard"),
        json{{"private_key", kPrivateKey}, {"listen_port", 443}, {"address", "10.9.8.1/28"}});
    ASSERT_TRUE(relay) << relay.error().message;
    const auto relay_doc = LoadYaml(dir, *relay);
    ASSERT_TRUE(relay_doc.has_value());
    EXPECT_EQ(FileContent(*relay_doc, "/etc/decloud-relay/listen_port"), "443");
    EXPECT_EQ(FileContent(*relay_doc, "/etc/decloud-relay/address"), "10.9.8.1/28");
    EXPECT_EQ(FileContent(*relay_doc, "/etc/decloud-relay/private_key"), kPrivateKey);
    EXPECT_EQ(FileContent(*relay_doc, "/etc/sysctl.d/90-decloud-relay.conf"),
              "net.ipv4.ip_forward = 1\n");
    EXPECT_EQ(relay_doc->at("packages"), (json{"wireguard-tools", "nftables"}));
    EXPECT_NE(relay_doc->at("runcmd").dump().find("wg-quick@wg0"), std::string::npos);

    auto code = domain::RenderTemplate(*catalog->Find("code-server"),
                                       json{{"password", "correct horse battery staple"}});
    ASSERT_TRUE(code) << code.error().message;
    const auto code_doc = LoadYaml(dir, *code);
    ASSERT_TRUE(code_doc.has_value());
    EXPECT_EQ(FileContent(*code_doc, "/etc/code-server/password"), "correct horse battery staple");
    const auto start = FileContent(*code_doc, "/usr/local/libexec/code-server-start");
    ASSERT_TRUE(start.has_value());
    EXPECT_NE(start->find("--bind-addr 0.0.0.0:8080 --auth password"), std::string::npos);
    // The password is only in its root-only file, not in a unit, a script or a command.
    EXPECT_EQ(code->find("correct horse"), code->rfind("correct horse"));
}

TEST(TemplateCatalog, AHostilePasswordKeepsTheDocumentValidAndIntact) {
    if (!fs::exists(kCloudInit)) GTEST_SKIP() << "cloud-init is not installed";
    auto catalog = TemplateCatalog::Load(kRepoTemplates);
    ASSERT_TRUE(catalog) << catalog.error().message;
    const domain::VmTemplate& t = *catalog->Find("code-server");
    TempDir dir;
    auto rendered = domain::RenderTemplate(t, json{{"password", kHostilePassword}});
    ASSERT_TRUE(rendered) << rendered.error().message;
    const auto r = CloudInitSchema(dir, *rendered);
    EXPECT_EQ(r.status, 0) << r.output;
    EXPECT_NE(r.output.find("Valid cloud-config"), std::string::npos) << r.output;

    const auto doc = LoadYaml(dir, *rendered);
    ASSERT_TRUE(doc.has_value());
    EXPECT_EQ(FileContent(*doc, "/etc/code-server/password"), kHostilePassword);
    auto plain = domain::RenderTemplate(t, json{{"password", "plainpassword"}});
    ASSERT_TRUE(plain);
    const auto plain_doc = LoadYaml(dir, *plain);
    ASSERT_TRUE(plain_doc.has_value());
    json expected = *plain_doc;
    for (json& file : expected["write_files"]) {
        if (file["path"] == "/etc/code-server/password") file["content"] = kHostilePassword;
    }
    EXPECT_EQ(*doc, expected);
}

// What cloud-init schema itself says about a broken document, so that a pass above means
// something.
TEST(TemplateCatalog, CloudInitSchemaRejectsBrokenDocuments) {
    if (!fs::exists(kCloudInit)) GTEST_SKIP() << "cloud-init is not installed";
    TempDir dir;
    EXPECT_NE(CloudInitSchema(dir, "#cloud-config\npackages: 5\n").status, 0);
    EXPECT_NE(CloudInitSchema(dir, "#cloud-config\nruncmd: [[sh, 1]\n").status, 0);
    EXPECT_NE(CloudInitSchema(dir, "packages: [curl]\n").status, 0);
    EXPECT_NE(CloudInitSchema(dir, "#cloud-config\nwrite_files: [{path: /x, mode: 1}]\n").status,
              0);
}

class TemplateCatalogLoad : public ::testing::Test {
  protected:
    void AddTemplate(const std::string& folder, const std::string& id,
                     const std::string& user_data = "#cloud-config\nfinal_message: {{msg}}\n") {
        const json manifest = {
            {"id", id},
            {"name", "Test " + id},
            {"description", "A test template"},
            {"version", 1},
            {"image", "debian-12"},
            {"minimum", {{"cpuCores", 1}, {"memoryMib", 256}, {"diskGib", 2}}},
            {"parameters",
             {{{"name", "msg"}, {"type", "string"}, {"description", "d"}, {"default", "hi"}}}}};
        WriteFile(dir_.path() / folder / "template.json", manifest.dump(2));
        WriteFile(dir_.path() / folder / "user-data.yaml", user_data);
    }

    common::Result<TemplateCatalog> Load() { return TemplateCatalog::Load(dir_.path().string()); }

    void ExpectError(const std::string& file, const std::string& text) {
        auto catalog = Load();
        ASSERT_FALSE(catalog);
        EXPECT_EQ(catalog.error().code, common::ErrorCode::kInvalidArgument);
        const std::string& message = catalog.error().message;
        EXPECT_TRUE(message.starts_with((dir_.path() / file).string() + ": "))
            << "should name " << file << ": " << message;
        EXPECT_NE(message.find(text), std::string::npos) << message;
    }

    TempDir dir_;
};

TEST_F(TemplateCatalogLoad, AnEmptyDirectoryIsAnEmptyCatalogue) {
    WriteFile(dir_.path() / "README.md", "# templates\n");
    fs::create_directories(dir_.path() / ".git");
    auto catalog = Load();
    ASSERT_TRUE(catalog) << catalog.error().message;
    EXPECT_TRUE(catalog->All().empty());
}

TEST_F(TemplateCatalogLoad, SortsByIdAndSkipsPlainFiles) {
    AddTemplate("zeta", "zeta");
    AddTemplate("alpha", "alpha");
    WriteFile(dir_.path() / "README.md", "# templates\n");
    auto catalog = Load();
    ASSERT_TRUE(catalog) << catalog.error().message;
    ASSERT_EQ(catalog->All().size(), 2u);
    EXPECT_EQ(catalog->All()[0].id, "alpha");
    EXPECT_EQ(catalog->All()[1].id, "zeta");
    ASSERT_NE(catalog->Find("zeta"), nullptr);
    EXPECT_EQ(catalog->Find("zeta")->name, "Test zeta");
}

TEST_F(TemplateCatalogLoad, AMissingDirectoryIsNotFound) {
    auto catalog = TemplateCatalog::Load((dir_.path() / "absent").string());
    ASSERT_FALSE(catalog);
    EXPECT_EQ(catalog.error().code, common::ErrorCode::kNotFound);
    EXPECT_NE(catalog.error().message.find("absent"), std::string::npos);
}

TEST_F(TemplateCatalogLoad, NamesAMissingManifest) {
    WriteFile(dir_.path() / "lonely" / "user-data.yaml", "#cloud-config\n");
    ExpectError("lonely/template.json", "missing");
}

TEST_F(TemplateCatalogLoad, NamesAMissingUserData) {
    AddTemplate("half", "half");
    fs::remove(dir_.path() / "half" / "user-data.yaml");
    ExpectError("half/user-data.yaml", "missing");
}

TEST_F(TemplateCatalogLoad, NamesInvalidJson) {
    AddTemplate("broken", "broken");
    WriteFile(dir_.path() / "broken" / "template.json", "{\"id\": \"broken\",");
    ExpectError("broken/template.json", "not valid JSON");
}

TEST_F(TemplateCatalogLoad, NamesAnInvalidManifest) {
    AddTemplate("good", "good");
    AddTemplate("bad", "bad");
    auto manifest = json::parse(std::ifstream(dir_.path() / "bad" / "template.json"));
    manifest["minimum"]["cpuCores"] = 0;
    WriteFile(dir_.path() / "bad" / "template.json", manifest.dump());
    ExpectError("bad/template.json", "minimum.cpuCores: must be between 1");
}

TEST_F(TemplateCatalogLoad, NamesInvalidUserData) {
    AddTemplate("bad", "bad", "#cloud-config\nfinal_message: \"{{msg}}\"\n");
    ExpectError("bad/user-data.yaml", "user-data line 2: {{msg}} must stand alone");
}

TEST_F(TemplateCatalogLoad, NamesAnUnusedParameterInTheManifest) {
    AddTemplate("bad", "bad", "#cloud-config\nfinal_message: hi\n");
    ExpectError("bad/template.json", "msg is declared but user-data never uses it");
}

TEST_F(TemplateCatalogLoad, TheFolderIsTheId) {
    AddTemplate("folder", "other");
    ExpectError("folder/template.json", "id other differs from its folder's name folder");
}

TEST_F(TemplateCatalogLoad, RefusesOversizedFiles) {
    AddTemplate("big", "big",
                "#cloud-config\nfinal_message: {{msg}}\n# " +
                    std::string(domain::kMaxTemplateUserDataBytes, 'x') + "\n");
    ExpectError("big/user-data.yaml", "larger than 65536 bytes");
}

}  // namespace
}  // namespace decloud::orchestrator::adapters::templates
