#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "decloud/chain/key_file.hpp"
#include "decloud/testing/process.hpp"

namespace decloud::chain {
namespace {

using common::ErrorCode;

void Write(const std::string& path, const std::string& text, mode_t mode) {
    std::ofstream(path) << text;
    ::chmod(path.c_str(), mode);
}

TEST(KeyFileTest, LoadsOnlyFromAPrivateFile) {
    testing::TempDir dir;
    const std::string path = dir.path() + "/treasury.key";
    const std::string secret = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
    Write(path, "0x" + secret + "\n", 0600);
    auto key = LoadPrivateKeyFile(path);
    ASSERT_TRUE(key) << key.error().message;
    EXPECT_EQ(ToString(key->address()), "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266");

    for (mode_t mode : {0644, 0640, 0400, 0700}) {
        ::chmod(path.c_str(), mode);
        auto refused = LoadPrivateKeyFile(path);
        ASSERT_FALSE(refused) << std::oct << mode;
        EXPECT_EQ(refused.error().code, ErrorCode::kPermissionDenied);
        EXPECT_EQ(refused.error().message.find(secret), std::string::npos);
    }

    auto missing = LoadPrivateKeyFile(dir.path() + "/absent");
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);

    const std::string garbage = "not-a-key-but-secret-looking-" + secret.substr(0, 20);
    Write(path, garbage, 0600);
    auto bad = LoadPrivateKeyFile(path);
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
    EXPECT_EQ(bad.error().message.find(garbage), std::string::npos);
}

}  // namespace
}  // namespace decloud::chain
