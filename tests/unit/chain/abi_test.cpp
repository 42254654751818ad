#include <gtest/gtest.h>

#include "decloud/chain/abi.hpp"
#include "decloud/crypto/crypto.hpp"

namespace decloud::chain::abi {
namespace {

TEST(AbiTest, SelectorsMatchTheirSignatures) {
    EXPECT_EQ(Selector("transfer(address,uint256)"), kTransferSelector);
    EXPECT_EQ(Selector("balanceOf(address)"), kBalanceOfSelector);
    EXPECT_EQ(ToString(TransferTopic()),
              "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef");
}

TEST(AbiTest, EncodesTransfer) {
    const Address to = ParseAddress("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed").value();
    const Bytes data = EncodeTransfer(to, U256(1'500'000));
    EXPECT_EQ(crypto::HexEncode(data),
              "a9059cbb"
              "0000000000000000000000005aaeb6053f3e94c9b9a09f33669435e7ef1beaed"
              "000000000000000000000000000000000000000000000000000000000016e360");
    EXPECT_EQ(crypto::HexEncode(EncodeBalanceOf(to)),
              "70a08231"
              "0000000000000000000000005aaeb6053f3e94c9b9a09f33669435e7ef1beaed");
}

TEST(AbiTest, DecodesTransferLogsStrictly) {
    const Address from = ParseAddress("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed").value();
    const Address to = ParseAddress("0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359").value();
    const auto amount = U256(42).ToBigEndian();
    auto event = DecodeTransferLog({TransferTopic(), AddressTopic(from), AddressTopic(to)}, amount);
    ASSERT_TRUE(event);
    EXPECT_EQ(event->from, from);
    EXPECT_EQ(event->to, to);
    EXPECT_EQ(event->value, U256(42));
    // ERC-721 Transfer: the token id is a fourth topic.
    EXPECT_FALSE(DecodeTransferLog({TransferTopic(), AddressTopic(from), AddressTopic(to), amount},
                                   Bytes{}));
    Hash dirty = AddressTopic(to);
    dirty[0] = 1;
    EXPECT_FALSE(DecodeTransferLog({TransferTopic(), AddressTopic(from), dirty}, amount));
    EXPECT_FALSE(
        DecodeTransferLog({TransferTopic(), AddressTopic(from), AddressTopic(to)}, Bytes(31, 0)));
    EXPECT_FALSE(DecodeUint256(Bytes(33, 0)));
}

}  // namespace
}  // namespace decloud::chain::abi
