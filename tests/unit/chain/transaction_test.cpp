#include <gtest/gtest.h>

#include "decloud/chain/rlp.hpp"
#include "decloud/chain/transaction.hpp"
#include "decloud/crypto/crypto.hpp"

namespace decloud::chain {
namespace {

Bytes FromHex(std::string_view h) { return crypto::HexDecode(h).value(); }

// The example of EIP-155 itself.
TEST(TransactionTest, Eip155Example) {
    auto signer =
        PrivateKey::FromHex("0x4646464646464646464646464646464646464646464646464646464646464646")
            .value();
    LegacyTransaction tx;
    tx.chain_id = 1;
    tx.nonce = 9;
    tx.gas_price = U256(20'000'000'000);
    tx.gas_limit = 21'000;
    tx.to = ParseAddress("0x3535353535353535353535353535353535353535").value();
    tx.value = U256(1'000'000'000'000'000'000);
    EXPECT_EQ(ToString(SigningHash(tx)),
              "0xdaf5a779ae972f972197303d7b574746c7ef83eadac0f2791ad23db92e4c8e53");
    const auto signed_tx = Sign(tx, signer);
    EXPECT_EQ(crypto::HexEncode(signed_tx.raw),
              "f86c098504a817c800825208943535353535353535353535353535353535353535880de0b6b3a76400"
              "008025a028ef61340bd939bc2195fe537567866003e1a15d3c71ff63e1590620aa636276a067cbe9d8"
              "997f761aecb703304b3800ccf555c9f3dc64214b297fb1966a3b6d83");
    EXPECT_EQ(ToString(signer.address()), "0x9d8A62f656a8d1615C1294fd71e9CFb3E4855A4F");
}

struct Eip1559Vector {
    std::uint64_t nonce;
    std::uint64_t value;
    std::uint64_t gas_limit;
    std::uint64_t tip;
    std::uint64_t max_fee;
    const char* signed_rlp;  // the typed transaction wrapped as an RLP byte string
};

// ethereumjs-monorepo packages/tx/test/json/eip1559.json (chain id 7822, key 0x8f2a...be63).
constexpr Eip1559Vector kVectors[] = {
    {819, 43203529, 35552, 75853, 121212,
     "b87302f870821e8e8203338301284d8301d97c828ae094000000000000000000000000000000000000aaaa8402"
     "933bc980c080a0d067f2167008c59219652f91cbf8788dbca5f771f6e91e2b7657e85b78b472e0a01d305af9fe"
     "81fdba43f0dfcd400ed24dcace0a7e30d4e85701dcaaf484cd079e"},
    {353, 61901619, 32593, 38850, 136295,
     "b87202f86f821e8e8201618297c283021467827f5194000000000000000000000000000000000000aaaa8403b0"
     "8b3380c001a004205678f13fc1d7b10feea6513dfa76e24418b6e08097d95c6f93a3b64e536da01d45ad61bfec"
     "e43862de2cce7d2575a8c1d08c26c87f3cb5f26d7b0be54a91b2"},
    {119, 65456115, 62341, 24721, 107729,
     "b87002f86d821e8e778260918301a4d182f38594000000000000000000000000000000000000aaaa8403e6c7f3"
     "80c001a0e38e239770801eb995498c821e55ac9c19ae09184bb27b34be105e02fe3b7615a067c64ca6bd6d9107"
     "e85fd581ab2e70a14b637eb36505bb40861ef9d6e800cab6"},
};

TEST(TransactionTest, Eip1559PublishedVectors) {
    auto key =
        PrivateKey::FromHex("0x8f2a55949038a9610f50fb23b5883af3b4ecb3c3bb792cbcefbd1542c692be63")
            .value();
    for (const auto& v : kVectors) {
        SCOPED_TRACE(v.nonce);
        Eip1559Transaction tx;
        tx.chain_id = 7822;
        tx.nonce = v.nonce;
        tx.max_priority_fee_per_gas = U256(v.tip);
        tx.max_fee_per_gas = U256(v.max_fee);
        tx.gas_limit = v.gas_limit;
        tx.to = ParseAddress("0x000000000000000000000000000000000000aaaa").value();
        tx.value = U256(v.value);
        const auto wrapped = rlp::Decode(FromHex(v.signed_rlp)).value();
        ASSERT_FALSE(wrapped.is_list);
        const auto signed_tx = Sign(tx, key);
        EXPECT_EQ(crypto::HexEncode(signed_tx.raw), crypto::HexEncode(wrapped.bytes));
        EXPECT_EQ(signed_tx.hash, crypto::Keccak256(std::span<const std::uint8_t>(wrapped.bytes)));

        // Decoding the published bytes recovers the key's address and the same fields.
        auto decoded = DecodeSignedEip1559(wrapped.bytes);
        ASSERT_TRUE(decoded) << decoded.error().message;
        EXPECT_EQ(decoded->sender, key.address());
        EXPECT_EQ(decoded->tx, tx);
        EXPECT_EQ(decoded->hash, signed_tx.hash);
    }
}

TEST(TransactionTest, ContractAddressesFollowSenderAndNonce) {
    const Address sender = ParseAddress("0x6ac7ea33f8831ea9dcc53393aaa88b25a785dbf0").value();
    EXPECT_EQ(ContractAddress(sender, 0),
              ParseAddress("0xcd234a471b72ba2f1ccf0a70fcaba648a5eecd8d").value());
    EXPECT_EQ(ContractAddress(sender, 1),
              ParseAddress("0x343c43a37d37dff08ae8c4a11544c718abb4fcf8").value());
}

TEST(TransactionTest, RecoveryDetectsTampering) {
    auto key = PrivateKey::FromHex(std::string(63, '0') + "1").value();
    Eip1559Transaction tx;
    tx.chain_id = 137;
    tx.nonce = 0;
    tx.max_priority_fee_per_gas = U256(30'000'000'000);
    tx.max_fee_per_gas = U256(100'000'000'000);
    tx.gas_limit = 65'000;
    tx.to = ParseAddress("0x3c499c542cEF5E3811e1192ce70d8cC03d5c3359").value();
    tx.data = {0xa9, 0x05, 0x9c, 0xbb};
    const auto signed_tx = Sign(tx, key);
    auto decoded = DecodeSignedEip1559(signed_tx.raw);
    ASSERT_TRUE(decoded);
    EXPECT_EQ(decoded->sender, key.address());
    EXPECT_EQ(ToString(key.address()), "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf");

    Bytes tampered = signed_tx.raw;
    tampered[5] ^= 0x01;  // inside the nonce/fee fields
    auto other = DecodeSignedEip1559(tampered);
    EXPECT_TRUE(!other || other->sender != key.address());
    EXPECT_FALSE(DecodeSignedEip1559(Bytes{0x01, 0xc0}));
    EXPECT_FALSE(PrivateKey::FromHex(std::string(64, '0')));
    EXPECT_FALSE(PrivateKey::FromHex("0x1234"));
}

}  // namespace
}  // namespace decloud::chain
