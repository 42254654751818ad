#include "decloud/common/ids.hpp"

#include <gtest/gtest.h>

#include <set>

namespace decloud::common {
namespace {

TEST(Ids, UuidsAreVersion4AndDistinct) {
    std::set<std::string> seen;
    for (int i = 0; i < 1000; ++i) {
        const auto id = NewUuid();
        ASSERT_TRUE(IsUuid(id)) << id;
        EXPECT_EQ(id[14], '4');
        EXPECT_TRUE(id[19] == '8' || id[19] == '9' || id[19] == 'a' || id[19] == 'b');
        EXPECT_TRUE(seen.insert(id).second);
    }
}

TEST(Ids, IsUuidRejectsOtherShapes) {
    EXPECT_FALSE(IsUuid(""));
    EXPECT_FALSE(IsUuid("not-a-uuid"));
    EXPECT_FALSE(IsUuid("123e4567e89b12d3a456426614174000"));
    EXPECT_FALSE(IsUuid("123e4567-e89b-12d3-a456-42661417400g"));
    EXPECT_FALSE(IsUuid("../../../../etc/passwd-aaaaaaaaaaaaaaaa"));
    EXPECT_TRUE(IsUuid("123E4567-E89B-12D3-A456-426614174000"));
}

TEST(Ids, RandomHexHasRequestedLength) {
    EXPECT_EQ(RandomHex(8).size(), 16u);
    EXPECT_NE(RandomHex(16), RandomHex(16));
}

}  // namespace
}  // namespace decloud::common
