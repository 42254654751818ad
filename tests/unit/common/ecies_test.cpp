#include "decloud/crypto/ecies.hpp"

#include <gtest/gtest.h>

#include "decloud/crypto/ethereum.hpp"

namespace decloud::crypto {
namespace {

constexpr const char* kSecret = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318";
constexpr const char* kPublic =
    "044e3b81af9c2234cad09d679ce6035ed1392347ce64ce405f5dcd36228a25de6e47fd35c4215d1edf53e6f83de34"
    "4615ce719bdb0fd878f6ed76f06dd277956de";
// Produced by eciesjs 0.5.0 `encrypt(kPublic, "correct horse battery staple")` (default config).
constexpr const char* kEciesjsPayload =
    "0413b7098157bed16198638c2f69cba61552e041744a5a10d66f910103079f6533adc1b008891d3fa2d9b53a8f525"
    "d1e1ff98e13fd93863d299ac2be9ec9049b1d35749c2476b92aaa3b578774a81577fd4744d69ca1fda064b6e2f499"
    "24ab5b4ef1619bba66d4d6b9c7dd361dfe4baca987869e9402adaf97913e37a9";

EthereumKey Key() { return *EthereumKey::FromPrivateKey(*HexDecode(kSecret)); }

std::string Text(const Bytes& b) { return {b.begin(), b.end()}; }
Bytes Data(std::string_view s) { return {s.begin(), s.end()}; }

TEST(Ecies, DecryptsWhatEciesjsEncrypted) {
    const auto key = Key();
    EXPECT_EQ(HexEncode(key.PublicKey()), kPublic);
    auto plain = EciesDecrypt(key.Secret(), *HexDecode(kEciesjsPayload));
    ASSERT_TRUE(plain) << plain.error().message;
    EXPECT_EQ(Text(*plain), "correct horse battery staple");
}

TEST(Ecies, RoundTripsWithUncompressedAndCompressedReceiverKeys) {
    const auto key = EthereumKey::Generate();
    auto parsed = ParseSecp256k1PublicKey(key.PublicKey());
    ASSERT_TRUE(parsed);
    Bytes compressed(33);
    compressed[0] = (key.PublicKey()[64] & 1) ? 0x03 : 0x02;
    std::copy(key.PublicKey().begin() + 1, key.PublicKey().begin() + 33, compressed.begin() + 1);
    EXPECT_EQ(*ParseSecp256k1PublicKey(compressed), key.PublicKey());
    for (const auto& receiver :
         {Bytes(key.PublicKey().begin(), key.PublicKey().end()), compressed}) {
        for (std::string_view message : {"", "p", "a longer secret: \xff\x00 binary is fine"}) {
            auto payload = EciesEncrypt(receiver, Data(message));
            ASSERT_TRUE(payload);
            EXPECT_EQ(payload->size(), kEciesOverhead + message.size());
            EXPECT_EQ((*payload)[0], 0x04);  // uncompressed ephemeral key
            auto plain = EciesDecrypt(key.Secret(), *payload);
            ASSERT_TRUE(plain) << plain.error().message;
            EXPECT_EQ(Text(*plain), message);
        }
    }
}

TEST(Ecies, EncryptionIsRandomised) {
    const auto key = Key();
    EXPECT_NE(*EciesEncrypt(key.PublicKey(), Data("same")),
              *EciesEncrypt(key.PublicKey(), Data("same")));
}

TEST(Ecies, DeterministicVariantIsStable) {
    const auto key = Key();
    std::array<std::uint8_t, 32> eph{};
    eph[31] = 7;
    std::array<std::uint8_t, 16> nonce{};
    auto a = EciesEncryptWith(key.PublicKey(), Data("x"), eph, nonce);
    auto b = EciesEncryptWith(key.PublicKey(), Data("x"), eph, nonce);
    ASSERT_TRUE(a && b);
    EXPECT_EQ(*a, *b);
    EXPECT_EQ(Text(*EciesDecrypt(key.Secret(), *a)), "x");
    std::array<std::uint8_t, 32> zero{};
    EXPECT_FALSE(EciesEncryptWith(key.PublicKey(), Data("x"), zero, nonce));
}

TEST(Ecies, EveryTamperedByteIsDetected) {
    const auto key = Key();
    const auto payload = *HexDecode(kEciesjsPayload);
    for (std::size_t i = 0; i < payload.size(); ++i) {
        auto bad = payload;
        bad[i] ^= 0x01;
        auto plain = EciesDecrypt(key.Secret(), bad);
        EXPECT_FALSE(plain) << "byte " << i;
    }
    // Tag and ciphertext changes fail authentication specifically.
    auto bad = payload;
    bad.back() ^= 0x80;
    EXPECT_EQ(EciesDecrypt(key.Secret(), bad).error().code, common::ErrorCode::kUnauthenticated);
}

TEST(Ecies, WrongKeyFailsAuthentication) {
    const auto other = EthereumKey::Generate();
    auto plain = EciesDecrypt(other.Secret(), *HexDecode(kEciesjsPayload));
    ASSERT_FALSE(plain);
    EXPECT_EQ(plain.error().code, common::ErrorCode::kUnauthenticated);
}

TEST(Ecies, MalformedInputsAreRefused) {
    const auto key = Key();
    EXPECT_FALSE(EciesDecrypt(key.Secret(), Bytes(kEciesOverhead - 1, 4)));
    Bytes not_a_point(kEciesOverhead + 4, 0);
    not_a_point[0] = 0x04;
    EXPECT_EQ(EciesDecrypt(key.Secret(), not_a_point).error().code,
              common::ErrorCode::kInvalidArgument);
    EXPECT_FALSE(ParseSecp256k1PublicKey(Bytes(64, 1)));
    EXPECT_FALSE(ParseSecp256k1PublicKeyHex("zz"));
    Bytes off_curve(65, 0);
    off_curve[0] = 0x04;
    off_curve[64] = 1;
    EXPECT_FALSE(ParseSecp256k1PublicKey(off_curve));
    EXPECT_FALSE(EciesEncrypt(off_curve, Data("x")));
}

TEST(PersonalSign, RecoversThePublicKey) {
    const auto key = EthereumKey::Generate();
    const auto sig = key.SignPersonalMessage("hello");
    auto pk = RecoverPersonalSignPublicKey("hello", sig);
    ASSERT_TRUE(pk);
    EXPECT_EQ(*pk, key.PublicKey());
}

TEST(DerivedEncryptionKey, IsRepeatablePerWalletAndDecryptsWhatItsPublicKeyEncrypts) {
    const auto wallet = EthereumKey::Generate();
    const auto first = DeriveEncryptionKey(wallet);
    const auto second = DeriveEncryptionKey(wallet);
    EXPECT_EQ(first.PublicKey(), second.PublicKey()) << "RFC 6979 signatures are deterministic";
    EXPECT_NE(first.PublicKey(), wallet.PublicKey());
    EXPECT_NE(first.PublicKey(), DeriveEncryptionKey(EthereumKey::Generate()).PublicKey());

    auto from_signature = DeriveEncryptionKey(wallet.SignPersonalMessage(kEncryptionKeyMessage));
    ASSERT_TRUE(from_signature);
    EXPECT_EQ(from_signature->PublicKey(), first.PublicKey());

    auto sealed = EciesEncrypt(first.PublicKey(), Data("vm password"));
    ASSERT_TRUE(sealed);
    auto opened = EciesDecrypt(second.Secret(), *sealed);
    ASSERT_TRUE(opened);
    EXPECT_EQ(std::string(opened->begin(), opened->end()), "vm password");
    EXPECT_FALSE(DeriveEncryptionKey("0x1234"));
}

}  // namespace
}  // namespace decloud::crypto
