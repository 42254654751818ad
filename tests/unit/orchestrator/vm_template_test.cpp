#include "orchestrator/domain/vm_template.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace decloud::orchestrator::domain {
namespace {

using nlohmann::json;

json ValidManifest() {
    return json::parse(R"({
        "id": "demo-1",
        "name": "Demo",
        "description": "A template for tests",
        "version": 3,
        "image": "debian-12",
        "minimum": {"cpuCores": 1, "memoryMib": 512, "diskGib": 4},
        "ports": [{"port": 8080, "name": "http", "protocol": "http"},
                  {"port": 51820, "name": "wg", "protocol": "udp"}],
        "parameters": [
            {"name": "greeting", "type": "string", "description": "Shown at boot",
             "default": "hello"},
            {"name": "count", "type": "integer", "description": "How many",
             "default": 5, "minimum": 1, "maximum": 10},
            {"name": "verbose", "type": "boolean", "description": "Say more", "default": false},
            {"name": "token", "type": "string", "description": "A secret",
             "pattern": "[a-z]{8,}", "secret": true}
        ]
    })");
}

const std::string kValidUserData =
    "#cloud-config\n"
    "final_message: {{greeting}}\n"
    "write_files:\n"
    "  - path: /etc/demo/token\n"
    "    permissions: \"0600\"\n"
    "    content: {{token}}\n"
    "  - path: /etc/demo/count\n"
    "    content: !!str {{count}}  # a string field filled by an integer\n"
    "bootcmd:\n"
    "  - [echo, {{greeting}}, {{token}}]\n"
    "demo: {verbose: {{verbose}}, count: {{count}}}\n";

VmTemplate ValidTemplate() {
    auto t = ParseTemplate(ValidManifest(), kValidUserData);
    EXPECT_TRUE(t) << t.error().message;
    return t.value();
}

// Runs a command, returning its exit status and standard output.
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

// YAML read back by PyYAML (which cloud-init itself uses, so Debian's python3 has it), as JSON.
std::optional<json> LoadYaml(const std::string& document) {
    char path[] = "/tmp/decloud-yaml-XXXXXX";
    const int fd = ::mkstemp(path);
    if (fd < 0) return std::nullopt;
    ::close(fd);
    std::ofstream(path, std::ios::binary) << document;
    const auto r = Run(std::string("/usr/bin/python3 -c 'import json, sys, yaml; "
                                   "print(json.dumps(yaml.safe_load(open(sys.argv[1], "
                                   "encoding=\"utf-8\"))))' ") +
                       path + " 2>&1");
    std::filesystem::remove(path);
    if (r.status != 0) {
        ADD_FAILURE() << "PyYAML could not read the document: " << r.output;
        return std::nullopt;
    }
    return json::parse(r.output);
}

bool PyYamlAvailable() { return Run("/usr/bin/python3 -c 'import yaml' 2>/dev/null").status == 0; }

TEST(VmTemplateParse, ReadsAValidTemplate) {
    const VmTemplate t = ValidTemplate();
    EXPECT_EQ(t.id, "demo-1");
    EXPECT_EQ(t.name, "Demo");
    EXPECT_EQ(t.version, 3);
    EXPECT_EQ(t.image, "debian-12");
    EXPECT_EQ(t.minimum.cpu_cores, 1u);
    EXPECT_EQ(t.minimum.memory_mib, 512u);
    EXPECT_EQ(t.minimum.disk_gib, 4u);
    ASSERT_EQ(t.ports.size(), 2u);
    EXPECT_EQ(t.ports[1].port, 51820);
    EXPECT_EQ(t.ports[1].protocol, "udp");
    ASSERT_EQ(t.parameters.size(), 4u);
    const TemplateParameter* count = t.FindParameter("count");
    ASSERT_NE(count, nullptr);
    EXPECT_EQ(count->type, ParameterType::kInteger);
    EXPECT_EQ(count->minimum, 1);
    EXPECT_EQ(count->maximum, 10);
    EXPECT_EQ(count->default_value, json(5));
    const TemplateParameter* token = t.FindParameter("token");
    ASSERT_NE(token, nullptr);
    EXPECT_TRUE(token->secret);
    EXPECT_FALSE(token->default_value.has_value());
    EXPECT_EQ(token->pattern, "[a-z]{8,}");
    EXPECT_EQ(t.FindParameter("nope"), nullptr);
    EXPECT_EQ(t.user_data, kValidUserData);
}

TEST(VmTemplateParse, PortsAndParametersAreOptional) {
    json m = ValidManifest();
    m.erase("ports");
    m.erase("parameters");
    auto t = ParseTemplate(m, "#cloud-config\npackages: [curl]\n");
    ASSERT_TRUE(t) << t.error().message;
    EXPECT_TRUE(t->ports.empty());
    EXPECT_TRUE(t->parameters.empty());
}

struct ManifestCase {
    const char* what;
    std::function<void(json&)> mutate;
    const char* expected;  // a part of the error message
};

TEST(VmTemplateParse, RejectsEveryMalformedManifest) {
    const std::vector<ManifestCase> cases = {
        {"not an object", [](json& m) { m = json::array(); }, "manifest: must be a JSON object"},
        {"unknown key", [](json& m) { m["extra"] = 1; }, "manifest: unknown key \"extra\""},
        {"no id", [](json& m) { m.erase("id"); }, "id: required"},
        {"id not a string", [](json& m) { m["id"] = 7; }, "id: must be a string"},
        {"empty id", [](json& m) { m["id"] = ""; }, "id: must match"},
        {"uppercase id", [](json& m) { m["id"] = "Demo"; }, "id: must match"},
        {"underscore id", [](json& m) { m["id"] = "de_mo"; }, "id: must match"},
        {"id with slash", [](json& m) { m["id"] = "../etc"; }, "id: must match"},
        {"id too long", [](json& m) { m["id"] = std::string(65, 'a'); }, "id: must match"},
        {"no name", [](json& m) { m.erase("name"); }, "name: required"},
        {"empty name", [](json& m) { m["name"] = ""; }, "name: 1 to 100"},
        {"name with newline", [](json& m) { m["name"] = "a\nb"; }, "name: 1 to 100"},
        {"no description", [](json& m) { m.erase("description"); }, "description: required"},
        {"no version", [](json& m) { m.erase("version"); }, "version: required"},
        {"version zero", [](json& m) { m["version"] = 0; }, "version: must be between 1"},
        {"negative version", [](json& m) { m["version"] = -1; }, "version: must be between 1"},
        {"version as string", [](json& m) { m["version"] = "1"; }, "version: must be an integer"},
        {"fractional version", [](json& m) { m["version"] = 1.5; }, "version: must be an integer"},
        {"huge version", [](json& m) { m["version"] = 18446744073709551615u; },
         "version: out of range"},
        {"no image", [](json& m) { m.erase("image"); }, "image: required"},
        {"image with space", [](json& m) { m["image"] = "debian 12"; }, "image: must match"},
        {"no minimum", [](json& m) { m.erase("minimum"); }, "minimum: required"},
        {"minimum not an object", [](json& m) { m["minimum"] = 1; }, "minimum: must be an object"},
        {"minimum unknown key", [](json& m) { m["minimum"]["gpus"] = 1; },
         "minimum: unknown key \"gpus\""},
        {"zero cores", [](json& m) { m["minimum"]["cpuCores"] = 0; },
         "minimum.cpuCores: must be between 1"},
        {"negative memory", [](json& m) { m["minimum"]["memoryMib"] = -512; },
         "minimum.memoryMib: must be between 1"},
        {"disk as string", [](json& m) { m["minimum"]["diskGib"] = "4"; },
         "minimum.diskGib: must be an integer"},
        {"no disk", [](json& m) { m["minimum"].erase("diskGib"); }, "minimum.diskGib: required"},
        {"ports not an array", [](json& m) { m["ports"] = json::object(); },
         "ports: must be an array"},
        {"port not an object", [](json& m) { m["ports"][0] = 8080; },
         "ports[0]: must be an object"},
        {"port zero", [](json& m) { m["ports"][0]["port"] = 0; },
         "ports[0].port: must be between 1 and 65535"},
        {"port too high", [](json& m) { m["ports"][1]["port"] = 65536; },
         "ports[1].port: must be between 1 and 65535"},
        {"port without name", [](json& m) { m["ports"][0].erase("name"); },
         "ports[0].name: required"},
        {"port name uppercase", [](json& m) { m["ports"][0]["name"] = "HTTP"; },
         "ports[0].name: must match"},
        {"unknown protocol", [](json& m) { m["ports"][0]["protocol"] = "sctp"; },
         "ports[0].protocol: must be http, https, tcp or udp"},
        {"port unknown key", [](json& m) { m["ports"][0]["public"] = true; },
         "ports[0]: unknown key \"public\""},
        {"port twice", [](json& m) { m["ports"].push_back(m["ports"][0]); },
         "ports[2].port: 8080 is listed twice"},
        {"parameters not an array", [](json& m) { m["parameters"] = "x"; },
         "parameters: must be an array"},
        {"parameter not an object", [](json& m) { m["parameters"][0] = "greeting"; },
         "parameters[0]: must be an object"},
        {"parameter unknown key", [](json& m) { m["parameters"][0]["required"] = true; },
         "parameters[0]: unknown key \"required\""},
        {"parameter without name", [](json& m) { m["parameters"][0].erase("name"); },
         "parameters[0].name: required"},
        {"parameter name uppercase", [](json& m) { m["parameters"][0]["name"] = "Greeting"; },
         "parameters[0].name: must match"},
        {"parameter name starting with a digit",
         [](json& m) { m["parameters"][0]["name"] = "1greeting"; },
         "parameters[0].name: must match"},
        {"parameter name with dash", [](json& m) { m["parameters"][0]["name"] = "greet-ing"; },
         "parameters[0].name: must match"},
        {"parameter without type", [](json& m) { m["parameters"][0].erase("type"); },
         "parameters.greeting.type: required"},
        {"unknown type", [](json& m) { m["parameters"][0]["type"] = "float"; },
         "parameters.greeting.type: must be string, integer or boolean"},
        {"parameter without description", [](json& m) { m["parameters"][0].erase("description"); },
         "parameters.greeting.description: required"},
        {"secret not a boolean", [](json& m) { m["parameters"][3]["secret"] = "yes"; },
         "parameters.token.secret: must be a boolean"},
        {"parameter twice", [](json& m) { m["parameters"].push_back(m["parameters"][1]); },
         "parameters[4].name: count is declared twice"},
        {"pattern on an integer", [](json& m) { m["parameters"][1]["pattern"] = "[0-9]+"; },
         "parameters.count.pattern: only string parameters"},
        {"pattern not a string", [](json& m) { m["parameters"][3]["pattern"] = 5; },
         "parameters.token.pattern: must be a string"},
        {"empty pattern", [](json& m) { m["parameters"][3]["pattern"] = ""; },
         "parameters.token.pattern: must be a string"},
        {"invalid pattern", [](json& m) { m["parameters"][3]["pattern"] = "([a-z"; },
         "parameters.token.pattern: is not a valid ECMAScript regular expression"},
        {"minimum on a string", [](json& m) { m["parameters"][0]["minimum"] = 1; },
         "parameters.greeting.minimum: only integer parameters"},
        {"maximum not an integer", [](json& m) { m["parameters"][1]["maximum"] = "10"; },
         "parameters.count.maximum: must be an integer"},
        {"minimum above maximum", [](json& m) { m["parameters"][1]["minimum"] = 11; },
         "parameters.count.minimum: greater than maximum"},
        {"string default for an integer", [](json& m) { m["parameters"][1]["default"] = "5"; },
         "parameters.count.default: parameter \"count\": must be an integer"},
        {"fractional default", [](json& m) { m["parameters"][1]["default"] = 5.5; },
         "parameters.count.default: parameter \"count\": must be an integer"},
        {"default out of range", [](json& m) { m["parameters"][1]["default"] = 11; },
         "parameters.count.default: parameter \"count\": must be between 1 and 10"},
        {"string default for a boolean", [](json& m) { m["parameters"][2]["default"] = "false"; },
         "parameters.verbose.default: parameter \"verbose\": must be a boolean"},
        {"integer default for a string", [](json& m) { m["parameters"][0]["default"] = 1; },
         "parameters.greeting.default: parameter \"greeting\": must be a string"},
        {"null default", [](json& m) { m["parameters"][0]["default"] = nullptr; },
         "parameters.greeting.default: parameter \"greeting\": must be a string"},
        {"default not matching the pattern",
         [](json& m) {
             m["parameters"][0]["pattern"] = "[a-z]+";
             m["parameters"][0]["default"] = "Hello!";
         },
         "parameters.greeting.default: parameter \"greeting\": does not match the pattern"},
        {"secret with a default", [](json& m) { m["parameters"][3]["default"] = "abcdefghij"; },
         "parameters.token.default: a secret parameter cannot have one"},
    };
    for (const ManifestCase& c : cases) {
        json m = ValidManifest();
        c.mutate(m);
        auto t = ParseTemplate(m, kValidUserData);
        ASSERT_FALSE(t) << c.what;
        EXPECT_EQ(t.error().code, common::ErrorCode::kInvalidArgument) << c.what;
        EXPECT_NE(t.error().message.find(c.expected), std::string::npos)
            << c.what << ": got \"" << t.error().message << "\"";
    }
}

struct UserDataCase {
    const char* what;
    std::string user_data;
    const char* expected;
};

TEST(VmTemplateParse, RejectsEveryMalformedUserData) {
    // Every case but the first keeps all four parameters in use, so the error is the one named.
    const std::string uses_all = "a: {{greeting}}\nb: {{count}}\nc: {{verbose}}\nd: {{token}}\n";
    const std::vector<UserDataCase> cases = {
        {"unused parameter", "#cloud-config\na: {{greeting}}\nb: {{count}}\nc: {{verbose}}\n",
         "parameters: token is declared but user-data never uses it"},
        {"no header", uses_all, "user-data: must start with a #cloud-config line"},
        {"shell script", "#!/bin/sh\n" + uses_all, "must start with a #cloud-config line"},
        {"undeclared placeholder", "#cloud-config\n" + uses_all + "e: {{other}}\n",
         "user-data: {{other}} is not a declared parameter"},
        {"unclosed", "#cloud-config\n" + uses_all + "e: {{greeting\n",
         "user-data line 6: unclosed {{"},
        {"closed on the next line", "#cloud-config\n" + uses_all + "e: {{greeting\n}}\n",
         "user-data line 6: unclosed {{"},
        {"spaces inside", "#cloud-config\n" + uses_all + "e: {{ greeting }}\n",
         "user-data line 6: {{\" greeting \"}} is not a placeholder"},
        {"uppercase name", "#cloud-config\n" + uses_all + "e: {{Greeting}}\n",
         "is not a placeholder"},
        {"empty name", "#cloud-config\n" + uses_all + "e: {{}}\n", "is not a placeholder"},
        {"inside a double-quoted scalar", "#cloud-config\n" + uses_all + "e: \"x {{count}}\"\n",
         "user-data line 6: {{count}} must stand alone"},
        {"inside a single-quoted scalar", "#cloud-config\n" + uses_all + "e: '{{count}}'\n",
         "must stand alone"},
        {"part of a plain scalar", "#cloud-config\n" + uses_all + "e: port {{count}}\n",
         "must stand alone"},
        {"followed by text", "#cloud-config\n" + uses_all + "e: {{count}}/24\n",
         "must stand alone"},
        {"as a key", "#cloud-config\n" + uses_all + "{{greeting}}: 1\n", "must stand alone"},
        {"no space after the colon", "#cloud-config\n" + uses_all + "e:{{count}}\n",
         "must stand alone"},
        {"in a comment", "#cloud-config\n" + uses_all + "# e: {{count}}\n", "must stand alone"},
        {"after a comment", "#cloud-config\n" + uses_all + "e: 1 # f: {{count}}\n",
         "must stand alone"},
        {"after a dash in a word", "#cloud-config\n" + uses_all + "e: x- {{count}}\n",
         "must stand alone"},
        {"sets users", "#cloud-config\n" + uses_all + "users: [default]\n",
         "user-data line 6: users is set by the orchestrator"},
        {"sets ssh keys", "#cloud-config\n" + uses_all + "ssh_authorized_keys: []\n",
         "ssh_authorized_keys is set by the orchestrator"},
        {"sets the hostname", "#cloud-config\nhostname: x\n" + uses_all,
         "hostname is set by the orchestrator"},
        {"quoted reserved key", "#cloud-config\n\"merge_how\": []\n" + uses_all,
         "merge_how is set by the orchestrator"},
        {"too large",
         "#cloud-config\n" + uses_all + "# " + std::string(kMaxTemplateUserDataBytes, 'x') + "\n",
         "user-data: at most 65536 bytes"},
    };
    for (const UserDataCase& c : cases) {
        auto t = ParseTemplate(ValidManifest(), c.user_data);
        ASSERT_FALSE(t) << c.what;
        EXPECT_EQ(t.error().code, common::ErrorCode::kInvalidArgument) << c.what;
        EXPECT_NE(t.error().message.find(c.expected), std::string::npos)
            << c.what << ": got \"" << t.error().message << "\"";
    }
}

TEST(VmTemplateParse, AcceptsPlaceholdersWhereverAWholeScalarGoes) {
    const std::vector<std::string> accepted = {
        "a: {{greeting}}\nb: {{count}}\nc: {{verbose}}\nd: {{token}}\n",
        "a:\n  - {{greeting}}\n  - - {{count}}\n  -   {{verbose}}   \n  - {{token}}\n",
        "a: [{{greeting}}, {{count}},{{verbose}} ]\nb: [ {{token}}]\n",
        "a: {x: {{greeting}}, y: {{count}}}\nb: {z: {{verbose}}, t: {{token}}}\n",
        "a: !!str {{count}}\nb: {{greeting}}  # trailing comment\nc: {{verbose}}\r\n"
        "d: {{token}}\n",
        "runcmd:\n  - [sh, -c, 'echo \"$1\"', sh, {{greeting}}]\nb: {{count}}\n"
        "c: {{verbose}}\nd: {{token}}\n",
    };
    for (const std::string& body : accepted) {
        auto t = ParseTemplate(ValidManifest(), "#cloud-config\n" + body);
        EXPECT_TRUE(t) << body << ": " << t.error().message;
    }
}

TEST(VmTemplateRender, SubstitutesDefaultsAndGivenValues) {
    const VmTemplate t = ValidTemplate();
    auto out = RenderTemplate(t, json{{"token", "abcdefgh"}});
    ASSERT_TRUE(out) << out.error().message;
    EXPECT_EQ(*out,
              "#cloud-config\n"
              "final_message: \"hello\"\n"
              "write_files:\n"
              "  - path: /etc/demo/token\n"
              "    permissions: \"0600\"\n"
              "    content: \"abcdefgh\"\n"
              "  - path: /etc/demo/count\n"
              "    content: !!str 5  # a string field filled by an integer\n"
              "bootcmd:\n"
              "  - [echo, \"hello\", \"abcdefgh\"]\n"
              "demo: {verbose: false, count: 5}\n");

    auto given = RenderTemplate(
        t, json{{"token", "zyxwvuts"}, {"greeting", "hi"}, {"count", 10}, {"verbose", true}});
    ASSERT_TRUE(given) << given.error().message;
    EXPECT_NE(given->find("final_message: \"hi\"\n"), std::string::npos);
    EXPECT_NE(given->find("demo: {verbose: true, count: 10}\n"), std::string::npos);
    EXPECT_NE(given->find("content: !!str 10  #"), std::string::npos);
}

TEST(VmTemplateRender, WithoutParametersNeedsNothing) {
    json m = ValidManifest();
    m.erase("parameters");
    auto t = ParseTemplate(m, "#cloud-config\npackages: [curl]\n");
    ASSERT_TRUE(t);
    for (const json& params : {json(), json::object()}) {
        auto out = RenderTemplate(*t, params);
        ASSERT_TRUE(out) << out.error().message;
        EXPECT_EQ(*out, "#cloud-config\npackages: [curl]\n");
    }
}

struct ParamsCase {
    const char* what;
    json params;
    const char* expected;
};

TEST(VmTemplateRender, RejectsMissingExtraAndMistypedParameters) {
    const VmTemplate t = ValidTemplate();
    const std::vector<ParamsCase> cases = {
        {"null: token is required", json(), "parameter \"token\": required"},
        {"missing required", json::object(), "parameter \"token\": required"},
        {"not an object", json::array({"abcdefgh"}), "parameters: must be a JSON object"},
        {"a string", json("token=abcdefgh"), "parameters: must be a JSON object"},
        {"undeclared", json{{"token", "abcdefgh"}, {"extra", 1}},
         "parameter \"extra\": template demo-1 has no such parameter"},
        {"near miss", json{{"token", "abcdefgh"}, {"Token", "abcdefgh"}},
         "parameter \"Token\": template demo-1 has no such parameter"},
        {"integer as string", json{{"token", "abcdefgh"}, {"count", "5"}},
         "parameter \"count\": must be an integer"},
        {"integer as float", json{{"token", "abcdefgh"}, {"count", 5.0}},
         "parameter \"count\": must be an integer"},
        {"integer as boolean", json{{"token", "abcdefgh"}, {"count", true}},
         "parameter \"count\": must be an integer"},
        {"integer below minimum", json{{"token", "abcdefgh"}, {"count", 0}},
         "parameter \"count\": must be between 1 and 10"},
        {"integer above maximum", json{{"token", "abcdefgh"}, {"count", 11}},
         "parameter \"count\": must be between 1 and 10"},
        {"integer beyond int64", json{{"token", "abcdefgh"}, {"count", 18446744073709551615u}},
         "parameter \"count\": out of range"},
        {"boolean as string", json{{"token", "abcdefgh"}, {"verbose", "true"}},
         "parameter \"verbose\": must be a boolean"},
        {"boolean as integer", json{{"token", "abcdefgh"}, {"verbose", 1}},
         "parameter \"verbose\": must be a boolean"},
        {"string as integer", json{{"token", 12345678}}, "parameter \"token\": must be a string"},
        {"string as null", json{{"token", nullptr}}, "parameter \"token\": must be a string"},
        {"string as object", json{{"token", json::object()}},
         "parameter \"token\": must be a string"},
        {"pattern mismatch", json{{"token", "short"}},
         "parameter \"token\": does not match the pattern \"[a-z]{8,}\""},
        {"pattern must match whole", json{{"token", "abcdefgh!"}},
         "parameter \"token\": does not match the pattern"},
        {"too long", json{{"token", "abcdefgh"}, {"greeting", std::string(4097, 'a')}},
         "parameter \"greeting\": at most 4096 bytes"},
        {"invalid UTF-8",
         json{{"token", "abcdefgh"},
              {"greeting", std::string("a\xff"
                                       "b")}},
         "parameter \"greeting\": is not valid UTF-8"},
        {"overlong UTF-8", json{{"token", "abcdefgh"}, {"greeting", std::string("\xc0\xaf")}},
         "parameter \"greeting\": is not valid UTF-8"},
        {"UTF-8 surrogate", json{{"token", "abcdefgh"}, {"greeting", std::string("\xed\xa0\x80")}},
         "parameter \"greeting\": is not valid UTF-8"},
        {"truncated UTF-8", json{{"token", "abcdefgh"}, {"greeting", std::string("\xe2\x82")}},
         "parameter \"greeting\": is not valid UTF-8"},
    };
    for (const ParamsCase& c : cases) {
        auto out = RenderTemplate(t, c.params);
        ASSERT_FALSE(out) << c.what;
        EXPECT_EQ(out.error().code, common::ErrorCode::kInvalidArgument) << c.what;
        EXPECT_NE(out.error().message.find(c.expected), std::string::npos)
            << c.what << ": got \"" << out.error().message << "\"";
    }
}

TEST(VmTemplateRender, ErrorsNeverContainTheValue) {
    const VmTemplate t = ValidTemplate();
    auto out = RenderTemplate(t, json{{"token", "SuperSecret-1"}});
    ASSERT_FALSE(out);
    EXPECT_EQ(out.error().message.find("SuperSecret"), std::string::npos) << out.error().message;
}

TEST(VmTemplateRender, AcceptsTheLongestString) {
    const VmTemplate t = ValidTemplate();
    const std::string longest(kMaxTemplateStringParameterBytes, 'q');
    auto out = RenderTemplate(t, json{{"token", longest}, {"greeting", longest}});
    ASSERT_TRUE(out) << out.error().message;
    EXPECT_NE(out->find("content: \"" + longest + "\"\n"), std::string::npos);
}

TEST(VmTemplateRender, InsertedTextIsNotExpandedAgain) {
    const VmTemplate t = ValidTemplate();
    auto out = RenderTemplate(t, json{{"token", "abcdefgh"}, {"greeting", "{{token}}"}});
    ASSERT_TRUE(out) << out.error().message;
    EXPECT_NE(out->find("final_message: \"{{token}}\"\n"), std::string::npos);
}

// Values that would change the document if they were pasted in as they are.
const std::vector<std::string> kHostileValues = {
    "line one\nline two",
    "\nusers: [{name: evil}]\n",
    "\n---\nruncmd: [reboot]\n",
    "---",
    "...",
    "a\n...\nb",
    "say \"hi\"",
    "\"",
    "'single' quotes",
    "# not a comment",
    "value # with a comment",
    "key: value",
    "a: b: c",
    "{{greeting}}",
    "{{nope}}",
    "}}{{",
    "back\\slash\\n",
    "tab\there",
    "cr\rlf\r\n",
    "caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80 \xe4\xb8\xad\xe6\x96\x87",
    std::string("nul\0byte", 8),
    "\x01\x02\x1b[31m",
    "del\x7f",
    "nel\xc2\x85here",
    "c1\xc2\x9f",
    "ls\xe2\x80\xa8ps\xe2\x80\xa9",
    "bom\xef\xbb\xbf",
    "nonchar\xef\xbf\xbe\xef\xbf\xbf",
    "&anchor *alias !!binary !tag %YAML 1.2 @ `",
    "[1, 2]",
    "{a: b}",
    "- item",
    "? key",
    "|",
    ">-",
    "true",
    "null",
    "0x1F",
    "",
    " leading and trailing ",
};

TEST(VmTemplateRender, HostileStringsAreQuotedAsJson) {
    const VmTemplate t = ValidTemplate();
    for (const std::string& value : kHostileValues) {
        auto out = RenderTemplate(t, json{{"token", "abcdefgh"}, {"greeting", value}});
        ASSERT_TRUE(out) << out.error().message;
        // The value sits on one line, as one double-quoted scalar.
        const auto begin = out->find("final_message: \"");
        ASSERT_NE(begin, std::string::npos);
        const auto end = out->find('\n', begin);
        const std::string line = out->substr(begin, end - begin);
        EXPECT_TRUE(line.ends_with('"')) << line;
        EXPECT_EQ(json::parse(line.substr(std::string("final_message: ").size())), json(value))
            << line;
        // Everything outside the placeholders is as in the template.
        auto plain = RenderTemplate(t, json{{"token", "abcdefgh"}, {"greeting", "x"}});
        ASSERT_TRUE(plain);
        EXPECT_EQ(std::count(out->begin(), out->end(), '\n'),
                  std::count(plain->begin(), plain->end(), '\n'));
    }
}

TEST(VmTemplateRender, HostileStringsReadBackAsOneScalarWithTheSameValue) {
    if (!PyYamlAvailable()) GTEST_SKIP() << "/usr/bin/python3 with PyYAML is not installed";
    const VmTemplate t = ValidTemplate();
    for (const std::string& value : kHostileValues) {
        SCOPED_TRACE(json(value).dump(-1, ' ', true, json::error_handler_t::replace));
        auto out = RenderTemplate(t, json{{"token", "abcdefgh"}, {"greeting", value}});
        ASSERT_TRUE(out) << out.error().message;
        const auto doc = LoadYaml(*out);
        ASSERT_TRUE(doc.has_value());
        const json expected = {
            {"final_message", value},
            {"write_files",
             {{{"path", "/etc/demo/token"}, {"permissions", "0600"}, {"content", "abcdefgh"}},
              {{"path", "/etc/demo/count"}, {"content", "5"}}}},
            {"bootcmd", {{"echo", value, "abcdefgh"}}},
            {"demo", {{"verbose", false}, {"count", 5}}}};
        EXPECT_EQ(*doc, expected) << doc->dump();
    }
}

TEST(VmTemplateJson, ManifestRoundTrips) {
    const VmTemplate t = ValidTemplate();
    const json out = ToJson(t);
    EXPECT_EQ(out["parameters"][3]["secret"], true);
    EXPECT_FALSE(out["parameters"][3].contains("default"));
    EXPECT_FALSE(out.contains("userData"));
    auto again = ParseTemplate(out, t.user_data);
    ASSERT_TRUE(again) << again.error().message;
    EXPECT_EQ(ToJson(*again), out);
}

TEST(VmTemplateJson, PublicParametersDropSecretsAndUnknownKeys) {
    const VmTemplate t = ValidTemplate();
    const json given = {{"token", "abcdefgh"}, {"greeting", "hi"}, {"count", 3}, {"x", 1}};
    EXPECT_EQ(PublicParameters(t, given), (json{{"greeting", "hi"}, {"count", 3}}));
    EXPECT_EQ(PublicParameters(t, json()), json::object());
}

}  // namespace
}  // namespace decloud::orchestrator::domain
