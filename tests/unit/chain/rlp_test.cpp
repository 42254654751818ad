#include <gtest/gtest.h>

#include "decloud/chain/rlp.hpp"
#include "decloud/crypto/crypto.hpp"

namespace decloud::chain::rlp {
namespace {

std::string Hex(const Bytes& b) { return crypto::HexEncode(b); }
Bytes Str(std::string_view s) { return Bytes(s.begin(), s.end()); }
Bytes FromHex(std::string_view h) { return crypto::HexDecode(h).value(); }

// The examples of the RLP specification (Ethereum wiki / yellow paper appendix B).
TEST(RlpTest, EncodesTheSpecificationExamples) {
    EXPECT_EQ(Hex(EncodeBytes(Str("dog"))), "83646f67");
    EXPECT_EQ(Hex(EncodeList({EncodeBytes(Str("cat")), EncodeBytes(Str("dog"))})),
              "c88363617483646f67");
    EXPECT_EQ(Hex(EncodeBytes({})), "80");
    EXPECT_EQ(Hex(EncodeList({})), "c0");
    EXPECT_EQ(Hex(EncodeUint(std::uint64_t{0})), "80");
    EXPECT_EQ(Hex(EncodeBytes(Bytes{0x00})), "00");
    EXPECT_EQ(Hex(EncodeUint(std::uint64_t{15})), "0f");
    EXPECT_EQ(Hex(EncodeUint(std::uint64_t{1024})), "820400");
    // The set-theoretic representation of three: [ [], [[]], [ [], [[]] ] ].
    const Bytes empty = EncodeList({});
    const Bytes one = EncodeList({empty});
    EXPECT_EQ(Hex(EncodeList({empty, one, EncodeList({empty, one})})), "c7c0c1c0c3c0c1c0");
    const std::string lorem = "Lorem ipsum dolor sit amet, consectetur adipisicing elit";
    EXPECT_EQ(Hex(EncodeBytes(Str(lorem))), "b838" + crypto::HexEncode(Str(lorem)));
}

TEST(RlpTest, LongListsUseTheLongForm) {
    std::vector<Bytes> items(60, EncodeBytes(Str("a")));
    const Bytes encoded = EncodeList(items);
    EXPECT_EQ(encoded[0], 0xf8);
    EXPECT_EQ(encoded[1], 60);
    auto decoded = Decode(encoded);
    ASSERT_TRUE(decoded);
    EXPECT_TRUE(decoded->is_list);
    EXPECT_EQ(decoded->items.size(), 60u);
}

TEST(RlpTest, DecodesWhatItEncodes) {
    const Bytes encoded =
        EncodeList({EncodeBytes(Str("cat")), EncodeList({EncodeUint(std::uint64_t{1024})}),
                    EncodeBytes(Bytes(300, 0xab))});
    auto item = Decode(encoded);
    ASSERT_TRUE(item);
    ASSERT_EQ(item->items.size(), 3u);
    EXPECT_EQ(item->items[0].bytes, Str("cat"));
    EXPECT_EQ(ToUint(item->items[1].items[0]).value(), U256(1024));
    EXPECT_EQ(item->items[2].bytes, Bytes(300, 0xab));
}

TEST(RlpTest, RejectsNonCanonicalAndTruncatedInput) {
    EXPECT_FALSE(Decode(FromHex("8105")));        // single byte < 0x80 with a prefix
    EXPECT_FALSE(Decode(FromHex("b80161")));      // long form for 1 byte
    EXPECT_FALSE(Decode(FromHex("b9000161")));    // length with a leading zero
    EXPECT_FALSE(Decode(FromHex("83646f")));      // truncated
    EXPECT_FALSE(Decode(FromHex("83646f6767")));  // trailing byte
    EXPECT_FALSE(Decode(FromHex("c883636174")));  // list shorter than announced
    EXPECT_FALSE(Decode({}));
    EXPECT_FALSE(ToUint(Decode(FromHex("820004")).value()));  // integer with leading zero
}

}  // namespace
}  // namespace decloud::chain::rlp
