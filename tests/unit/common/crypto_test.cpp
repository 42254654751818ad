#include "decloud/crypto/crypto.hpp"

#include <gtest/gtest.h>

namespace decloud::crypto {
namespace {

std::string Hex(const Hash256& h) { return HexEncode(h); }

TEST(Hashes, Keccak256IsEthereumsNotSha3) {
    // Published vectors: Keccak-256("") and Keccak-256("abc"); SHA3-256("") would be a7ffc6f8...
    EXPECT_EQ(Hex(Keccak256(std::string_view{})),
              "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470");
    EXPECT_EQ(Hex(Keccak256(std::string_view{"abc"})),
              "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45");
}

TEST(Hashes, Sha256Vectors) {
    EXPECT_EQ(Hex(Sha256("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    EXPECT_EQ(Hex(Sha256("abc")),
              "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Encoding, HexRoundTripAndErrors) {
    const Bytes b{0x00, 0x01, 0xab, 0xff};
    EXPECT_EQ(HexEncode(b), "0001abff");
    EXPECT_EQ(*HexDecode("0x0001ABff"), b);
    EXPECT_FALSE(HexDecode("abc"));
    EXPECT_FALSE(HexDecode("zz"));
}

TEST(Encoding, Base64RoundTripAndErrors) {
    for (std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar"}) {
        const Bytes b(s.begin(), s.end());
        const auto enc = Base64Encode(b);
        auto dec = Base64Decode(enc);
        ASSERT_TRUE(dec) << s;
        EXPECT_EQ(*dec, b);
    }
    EXPECT_EQ(Base64Encode(Bytes{'f', 'o', 'o', 'b', 'a'}), "Zm9vYmE=");
    EXPECT_FALSE(Base64Decode("Zm9v!mE="));
    EXPECT_FALSE(Base64Decode("Z"));
    EXPECT_FALSE(Base64Decode("Zm9=")) << "non-canonical trailing bits";
}

TEST(Encoding, RandomTokenIsUrlSafe) {
    const auto t = RandomToken(32);
    EXPECT_EQ(t.size(), 43u);
    EXPECT_EQ(t.find_first_of("+/="), std::string::npos);
    EXPECT_NE(RandomToken(), RandomToken());
}

TEST(Eip55, AcceptsTheEipExamples) {
    for (const char* a : {"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
                          "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
                          "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
                          "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb"}) {
        auto r = NormalizeEthereumAddress(a);
        ASSERT_TRUE(r) << a;
        EXPECT_EQ(*r, a);
    }
}

TEST(Eip55, NormalizesUnchecksummedAndRejectsBadChecksums) {
    EXPECT_EQ(*NormalizeEthereumAddress("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"),
              "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed");
    EXPECT_EQ(*NormalizeEthereumAddress("0x5AAEB6053F3E94C9B9A09F33669435E7EF1BEAED"),
              "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed");
    auto bad = NormalizeEthereumAddress("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD");
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message.find("checksum"), std::string::npos);
    EXPECT_FALSE(NormalizeEthereumAddress("5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"));
    EXPECT_FALSE(NormalizeEthereumAddress("0x5aaeb6053f3e94c9b9a09f33669435e7ef1bea"));
    EXPECT_FALSE(NormalizeEthereumAddress("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beagg"));
}

TEST(Ed25519, MatchesRfc8032Vector1) {
    const auto seed =
        *HexDecode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
    auto kp = Ed25519KeyPair::FromPrivateKey(seed);
    ASSERT_TRUE(kp);
    EXPECT_EQ(HexEncode(*Base64Decode(kp->PublicKeyBase64())),
              "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
    const auto sig = kp->SignBase64("");
    EXPECT_EQ(HexEncode(*Base64Decode(sig)),
              "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e"
              "39701cf9b46bd25bf5f0595bbe24655141438e7a100b");
    EXPECT_TRUE(VerifyEd25519(kp->PublicKeyBase64(), "", sig));
}

TEST(Ed25519, DetectsTamperingAndWrongKeys) {
    const auto a = Ed25519KeyPair::Generate();
    const auto b = Ed25519KeyPair::Generate();
    const auto sig = a.SignBase64("register me");
    EXPECT_TRUE(VerifyEd25519(a.PublicKeyBase64(), "register me", sig));
    EXPECT_FALSE(VerifyEd25519(a.PublicKeyBase64(), "register mE", sig));
    EXPECT_FALSE(VerifyEd25519(b.PublicKeyBase64(), "register me", sig));
    EXPECT_FALSE(VerifyEd25519("not base64!", "register me", sig));
    EXPECT_FALSE(VerifyEd25519(a.PublicKeyBase64(), "register me", "AAAA"));
    EXPECT_FALSE(Ed25519KeyPair::FromPrivateKey(Bytes(31, 1)));
}

TEST(ConstantTime, ComparesContentAndLength) {
    EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
    EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
    EXPECT_FALSE(ConstantTimeEquals("abc", "abcd"));
}

}  // namespace
}  // namespace decloud::crypto
