#include "decloud/common/settings.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

namespace decloud::common {
namespace {

std::vector<SettingSpec> Specs() {
    return {{"server.port", "8080", ""},       {"server.address", "127.0.0.1", ""},
            {"nodes.offline_after", "2m", ""}, {"agent.tags", "", ""},
            {"feature.enabled", "false", ""},  {"ratio", "1.5", ""}};
}

class TempFile {
  public:
    explicit TempFile(const std::string& content) {
        char tmpl[] = "/tmp/decloud-settings-XXXXXX";
        const int fd = mkstemp(tmpl);
        EXPECT_GE(fd, 0);
        close(fd);
        path_ = tmpl;
        std::ofstream(path_) << content;
    }
    ~TempFile() { std::filesystem::remove(path_); }
    const std::string& path() const { return path_; }

  private:
    std::string path_;
};

Settings::EnvLookup Env(std::map<std::string, std::string> vars) {
    return [vars](const std::string& name) -> std::optional<std::string> {
        const auto it = vars.find(name);
        if (it == vars.end()) return std::nullopt;
        return it->second;
    };
}

TEST(Settings, DefaultsApplyWithoutAFile) {
    auto s = Settings::Load(Specs(), "", "DC", {}, Env({}));
    ASSERT_TRUE(s);
    EXPECT_EQ(*s->Int("server.port", 0, 65535), 8080);
    EXPECT_EQ(*s->Duration("nodes.offline_after"), std::chrono::minutes{2});
    EXPECT_FALSE(*s->Bool("feature.enabled"));
    EXPECT_TRUE(s->StringList("agent.tags")->empty());
}

TEST(Settings, FileThenEnvThenFlagsOverride) {
    TempFile file(R"(
ratio = 2.5
[server]
port = 9000
address = "0.0.0.0"
[agent]
tags = ["gpu", "ssd"]
)");
    auto s = Settings::Load(Specs(), file.path(), "DC", {"server.address=10.0.0.1"},
                            Env({{"DC_SERVER_PORT", "9100"}}));
    ASSERT_TRUE(s) << s.error().message;
    EXPECT_EQ(*s->Int("server.port", 0, 65535), 9100);
    EXPECT_EQ(*s->String("server.address"), "10.0.0.1");
    EXPECT_EQ(*s->StringList("agent.tags"), (std::vector<std::string>{"gpu", "ssd"}));
    EXPECT_DOUBLE_EQ(*s->Double("ratio", 0, 10), 2.5);
    EXPECT_NE(s->Describe().find("server.port = 9100    # env DC_SERVER_PORT"), std::string::npos);
}

TEST(Settings, UnknownKeysAreErrors) {
    TempFile file("[server]\nprot = 9000\n");
    auto s = Settings::Load(Specs(), file.path(), "DC", {}, Env({}));
    ASSERT_FALSE(s);
    EXPECT_NE(s.error().message.find("unknown key 'server.prot'"), std::string::npos);
    auto f = Settings::Load(Specs(), "", "DC", {"nope=1"}, Env({}));
    ASSERT_FALSE(f);
    EXPECT_NE(f.error().message.find("unknown key 'nope'"), std::string::npos);
    auto g = Settings::Load(Specs(), "", "DC", {"server.port"}, Env({}));
    ASSERT_FALSE(g);
}

TEST(Settings, SyntaxErrorsNameTheLine) {
    TempFile file("[server]\nport = = 9\n");
    auto s = Settings::Load(Specs(), file.path(), "DC", {}, Env({}));
    ASSERT_FALSE(s);
    EXPECT_NE(s.error().message.find("line 2"), std::string::npos) << s.error().message;
}

TEST(Settings, TypedAccessorsExplainBadValues) {
    auto s = Settings::Load(
        Specs(), "", "DC",
        {"server.port=eighty", "nodes.offline_after=2 weeks", "feature.enabled=maybe", "ratio=nan"},
        Env({}));
    ASSERT_TRUE(s);
    auto port = s->Int("server.port", 0, 65535);
    ASSERT_FALSE(port);
    EXPECT_NE(port.error().message.find("server.port (flag)"), std::string::npos);
    EXPECT_FALSE(s->Duration("nodes.offline_after"));
    EXPECT_FALSE(s->Bool("feature.enabled"));
    EXPECT_FALSE(s->Double("ratio", 0, 10));
    auto range = Settings::Load(Specs(), "", "DC", {"server.port=70000"}, Env({}));
    EXPECT_FALSE(range->Int("server.port", 0, 65535));
}

TEST(Settings, ParsesDurations) {
    EXPECT_EQ(*ParseDuration("250ms"), std::chrono::milliseconds{250});
    EXPECT_EQ(*ParseDuration("15"), std::chrono::seconds{15});
    EXPECT_EQ(*ParseDuration("15s"), std::chrono::seconds{15});
    EXPECT_EQ(*ParseDuration("2m"), std::chrono::minutes{2});
    EXPECT_EQ(*ParseDuration("1h"), std::chrono::hours{1});
    EXPECT_EQ(*ParseDuration("7d"), std::chrono::hours{24 * 7});
    EXPECT_FALSE(ParseDuration(""));
    EXPECT_FALSE(ParseDuration("-1s"));
    EXPECT_FALSE(ParseDuration("1y"));
    EXPECT_FALSE(ParseDuration("99999999999999999999d"));
}

}  // namespace
}  // namespace decloud::common
