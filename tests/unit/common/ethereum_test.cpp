#include "decloud/crypto/ethereum.hpp"

#include <gtest/gtest.h>

namespace decloud::crypto {
namespace {

// The published example of web3.js' accounts.sign: this key, message "Some data".
constexpr const char* kSecret = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318";
constexpr const char* kAddress = "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23";
constexpr const char* kSignature =
    "0xb91467e570a6466aa9e9876cbcd013baba02900b8979d43fe208a4a4f339f5fd6007e74cd82e037b800186422fc2"
    "da167c7"
    "47ef045e5d18a5f5d4300f8e1a0291c";

TEST(PersonalSign, HashMatchesThePublishedVector) {
    EXPECT_EQ(HexEncode(PersonalMessageHash("Some data")),
              "1da44b586eb0729ff70a73c326926f6ed5a25f5b056e7f47fbc6e58d86871655");
}

TEST(PersonalSign, KeyDerivesThePublishedAddressAndSignature) {
    auto key = EthereumKey::FromPrivateKey(*HexDecode(kSecret));
    ASSERT_TRUE(key);
    EXPECT_EQ(key->Address(), kAddress);
    // RFC 6979 nonces make the signature deterministic: byte-identical to web3.js'.
    EXPECT_EQ(key->SignPersonalMessage("Some data"), kSignature);
}

TEST(PersonalSign, RecoversTheSigner) {
    auto addr = RecoverPersonalSignAddress("Some data", kSignature);
    ASSERT_TRUE(addr) << addr.error().message;
    EXPECT_EQ(*addr, kAddress);
    // v as 0/1 instead of 27/28 is the same signature.
    std::string v01 = std::string(kSignature).substr(0, 130) + "01";
    EXPECT_EQ(*RecoverPersonalSignAddress("Some data", v01), kAddress);
}

TEST(PersonalSign, OtherMessagesOrKeysRecoverOtherAddresses) {
    EXPECT_NE(*RecoverPersonalSignAddress("Some data!", kSignature), kAddress);
    const auto other = EthereumKey::Generate();
    const auto sig = other.SignPersonalMessage("hello");
    EXPECT_EQ(*RecoverPersonalSignAddress("hello", sig), other.Address());
    EXPECT_NE(other.Address(), kAddress);
}

TEST(PersonalSign, MalformedSignaturesAreRejected) {
    EXPECT_FALSE(RecoverPersonalSignAddress("m", ""));
    EXPECT_FALSE(RecoverPersonalSignAddress("m", "b91467e5"));
    EXPECT_FALSE(RecoverPersonalSignAddress("m", "0x1234"));
    EXPECT_FALSE(
        RecoverPersonalSignAddress("m", std::string(kSignature).substr(0, 130) + "1d"));  // v = 29
    EXPECT_FALSE(RecoverPersonalSignAddress("m", "0x" + std::string(128, 'f') + "1b"))
        << "r, s >= n";
    EXPECT_FALSE(RecoverPersonalSignAddress("m", std::string(kSignature).substr(0, 131) + "z"));
}

TEST(EthereumKey, RejectsInvalidSecrets) {
    EXPECT_FALSE(EthereumKey::FromPrivateKey(Bytes(32, 0)));
    EXPECT_FALSE(EthereumKey::FromPrivateKey(Bytes(31, 1)));
    EXPECT_FALSE(EthereumKey::FromPrivateKey(*HexDecode(std::string(64, 'f'))));
}

}  // namespace
}  // namespace decloud::crypto
