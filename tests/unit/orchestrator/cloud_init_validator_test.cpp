// CloudInitValidator against the real `cloud-init schema` (Debian 12's cloud-init 22.4), and the
// parsing of its complaints.

#include "orchestrator/adapters/templates/cloud_init_validator.hpp"

#include <gtest/gtest.h>

#include <filesystem>

namespace decloud::orchestrator::adapters::templates {
namespace {

constexpr const char* kCloudInit = "/usr/bin/cloud-init";

TEST(SchemaComplaints, SplitsTheListPerKeyAndHidesTheFilePath) {
    const std::string output =
        "Cloud config schema deprecations: \nError:\nCloud config schema errors: packages: 5 is "
        "not of type 'array', runcmd: 'a, b' is not of type 'array', write_files.0.path: 3 is "
        "not of type 'string'\n";
    const auto complaints = ParseSchemaComplaints(output, "/tmp/decloud-cloud-config-abc");
    ASSERT_EQ(complaints.size(), 3u);
    EXPECT_EQ(complaints[0], "packages: 5 is not of type 'array'");
    EXPECT_EQ(complaints[1], "runcmd: 'a, b' is not of type 'array'");
    EXPECT_EQ(complaints[2], "write_files.0.path: 3 is not of type 'string'");

    const auto yaml = ParseSchemaComplaints(
        "Error:\nCloud config schema errors: format-l3.c1: File /tmp/decloud-cloud-config-abc is "
        "not valid yaml.\n",
        "/tmp/decloud-cloud-config-abc");
    ASSERT_EQ(yaml.size(), 1u);
    EXPECT_EQ(yaml[0], "format-l3.c1: File userData is not valid yaml.");

    const auto other = ParseSchemaComplaints("Traceback: boom\n", "/tmp/f");
    ASSERT_EQ(other.size(), 1u);
    EXPECT_EQ(other[0], "Traceback: boom");
}

TEST(CloudInitValidator, RealCloudInitAcceptsValidAndListsComplaints) {
    if (!std::filesystem::exists(kCloudInit)) GTEST_SKIP() << "cloud-init is not installed";
    CloudInitValidator validator;
    auto valid = validator.Check("#cloud-config\npackages: [nginx]\nruncmd:\n  - echo hi\n");
    ASSERT_TRUE(valid) << valid.error().message;
    EXPECT_TRUE(valid->empty());

    auto invalid =
        validator.Check("#cloud-config\npackages: 5\nruncmd: \"x\"\nwrite_files:\n  - path: 3\n");
    ASSERT_TRUE(invalid) << invalid.error().message;
    ASSERT_EQ(invalid->size(), 3u);
    EXPECT_NE((*invalid)[0].find("packages"), std::string::npos) << (*invalid)[0];
    EXPECT_NE((*invalid)[2].find("write_files.0.path"), std::string::npos) << (*invalid)[2];

    auto broken = validator.Check("#cloud-config\nfoo: [\n");
    ASSERT_TRUE(broken) << broken.error().message;
    ASSERT_FALSE(broken->empty());
    EXPECT_NE(broken->front().find("not valid yaml"), std::string::npos) << broken->front();
    EXPECT_EQ(broken->front().find("/tmp/"), std::string::npos) << broken->front();
}

TEST(CloudInitValidator, AMissingProgramOrASlowOneIsAnErrorNotAVerdict) {
    CloudInitValidatorOptions missing;
    missing.program = "decloud-no-such-cloud-init";
    auto r = CloudInitValidator(missing).Check("#cloud-config\n");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, common::ErrorCode::kUnavailable) << r.error().message;

    // `sleep schema --config-file f` fails at once on its arguments; a shell script that sleeps
    // stands in for a hung cloud-init.
    const auto dir = std::filesystem::temp_directory_path() /
                     ("decloud-slow-cloud-init-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    const auto script = dir / "slow-cloud-init";
    {
        std::FILE* f = std::fopen(script.c_str(), "w");
        ASSERT_NE(f, nullptr);
        std::fputs("#!/bin/sh\nexec sleep 30\n", f);
        std::fclose(f);
    }
    std::filesystem::permissions(script, std::filesystem::perms::owner_all);
    CloudInitValidatorOptions slow;
    slow.program = script.string();
    slow.timeout = std::chrono::milliseconds(300);
    const auto started = std::chrono::steady_clock::now();
    auto t = CloudInitValidator(slow).Check("#cloud-config\n");
    const auto took = std::chrono::steady_clock::now() - started;
    std::filesystem::remove_all(dir);
    ASSERT_FALSE(t);
    EXPECT_EQ(t.error().code, common::ErrorCode::kTimeout) << t.error().message;
    EXPECT_LT(took, std::chrono::seconds(5));
}

}  // namespace
}  // namespace decloud::orchestrator::adapters::templates
