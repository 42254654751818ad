#include "agent/adapters/identity.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "decloud/testing/process.hpp"

namespace decloud::agent::adapters {
namespace {

TEST(NodeKey, CreatedOnceWithPrivatePermissionsThenLoaded) {
    testing::TempDir dir("decloud-key");
    const std::string path = dir.path() + "/state/node.key";
    auto created = LoadOrCreateNodeKey(path);
    ASSERT_TRUE(created) << created.error().message;
    struct stat st {};
    ASSERT_EQ(::stat(path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    ASSERT_EQ(::stat((dir.path() + "/state").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u);
    auto loaded = LoadOrCreateNodeKey(path);
    ASSERT_TRUE(loaded);
    EXPECT_EQ(loaded->PublicKeyBase64(), created->PublicKeyBase64());
}

TEST(NodeKey, RefusesAKeyOthersCanRead) {
    testing::TempDir dir("decloud-key");
    const std::string path = dir.path() + "/node.key";
    ASSERT_TRUE(LoadOrCreateNodeKey(path));
    ::chmod(path.c_str(), 0644);
    auto r = LoadOrCreateNodeKey(path);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, common::ErrorCode::kPermissionDenied);
    EXPECT_NE(r.error().message.find("chmod 600"), std::string::npos);
}

TEST(NodeKey, RefusesGarbage) {
    testing::TempDir dir("decloud-key");
    const std::string path = dir.path() + "/node.key";
    std::ofstream(path) << "this is not a key\n";
    ::chmod(path.c_str(), 0600);
    auto r = LoadOrCreateNodeKey(path);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, common::ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace decloud::agent::adapters
