// Our ECIES against the eciesjs npm package (the scheme the console and third-party clients use):
// eciesjs encrypts and we decrypt, we encrypt and eciesjs decrypts, for the wallet's key and for
// the derived encryption key, and tampering is caught on both sides.

#include <gtest/gtest.h>

#include <filesystem>

#include "decloud/crypto/crypto.hpp"
#include "decloud/crypto/ecies.hpp"
#include "decloud/crypto/ethereum.hpp"
#include "decloud/testing/process.hpp"

namespace decloud::crypto {
namespace {

using namespace std::chrono_literals;

const std::string kScript = std::string(DECLOUD_ECIES_JS_DIR) + "/ecies.mjs";

class EciesInteropTest : public ::testing::Test {
  protected:
    void SetUp() override {
        ASSERT_TRUE(
            std::filesystem::exists(std::string(DECLOUD_ECIES_JS_DIR) + "/node_modules/eciesjs"))
            << "eciesjs is not installed: run scripts/test.sh, or npm ci --prefix "
            << DECLOUD_ECIES_JS_DIR;
    }

    static testing::CommandResult EciesJs(const std::string& command, const std::string& key,
                                          const std::string& input = {}) {
        return testing::RunCommand("/usr/bin/env", {"node", kScript, command, key}, {}, input, 60s);
    }

    static std::string Text(const Bytes& b) { return std::string(b.begin(), b.end()); }
    static Bytes Data(std::string_view s) { return Bytes(s.begin(), s.end()); }
};

TEST_F(EciesInteropTest, EciesJsDerivesTheSamePublicKey) {
    const auto key = EthereumKey::Generate();
    auto r = EciesJs("public-key", HexEncode(key.Secret()));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, HexEncode(key.PublicKey()));
}

TEST_F(EciesInteropTest, WeDecryptWhatEciesJsEncrypts) {
    const auto key = EthereumKey::Generate();
    for (const std::string& plain : {std::string("p"), std::string("correct horse battery staple"),
                                     std::string("pässwörd ✓ 密码"), std::string(5000, 'x')}) {
        auto r = EciesJs("encrypt", HexEncode(key.PublicKey()), plain);
        ASSERT_EQ(r.exit_code, 0) << r.err;
        auto payload = HexDecode(r.out);
        ASSERT_TRUE(payload);
        EXPECT_EQ(payload->size(), plain.size() + kEciesOverhead);
        auto opened = EciesDecrypt(key.Secret(), *payload);
        ASSERT_TRUE(opened) << opened.error().message;
        EXPECT_EQ(Text(*opened), plain);
    }
}

TEST_F(EciesInteropTest, EciesJsDecryptsWhatWeEncrypt) {
    const auto key = EthereumKey::Generate();
    for (const std::string& plain :
         {std::string("p"), std::string("pässwörd ✓ 密码"), std::string(5000, 'y')}) {
        auto sealed = EciesEncrypt(key.PublicKey(), Data(plain));
        ASSERT_TRUE(sealed);
        auto r = EciesJs("decrypt", HexEncode(key.Secret()), HexEncode(*sealed));
        ASSERT_EQ(r.exit_code, 0) << r.err;
        EXPECT_EQ(r.out, plain);
    }
}

TEST_F(EciesInteropTest, CompressedReceiverKeysAndDerivedKeysWork) {
    const auto wallet = EthereumKey::Generate();
    const auto derived = DeriveEncryptionKey(wallet);
    const auto& pk = derived.PublicKey();
    const std::string compressed =
        std::string((pk[64] & 1) ? "03" : "02") + HexEncode(std::span(pk).subspan(1, 32));
    auto r = EciesJs("encrypt", compressed, "hunter2");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto payload = HexDecode(r.out);
    ASSERT_TRUE(payload);
    auto opened = EciesDecrypt(derived.Secret(), *payload);
    ASSERT_TRUE(opened);
    EXPECT_EQ(Text(*opened), "hunter2");
    EXPECT_FALSE(EciesDecrypt(wallet.Secret(), *payload)) << "the wallet key is a different key";

    auto sealed = EciesEncrypt(*ParseSecp256k1PublicKeyHex(compressed), Data("hunter3"));
    ASSERT_TRUE(sealed);
    r = EciesJs("decrypt", HexEncode(derived.Secret()), HexEncode(*sealed));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "hunter3");
}

TEST_F(EciesInteropTest, TamperingIsDetectedOnBothSides) {
    const auto key = EthereumKey::Generate();
    auto r = EciesJs("encrypt", HexEncode(key.PublicKey()), "secret");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto payload = *HexDecode(r.out);
    payload.back() ^= 0x01;
    auto opened = EciesDecrypt(key.Secret(), payload);
    ASSERT_FALSE(opened);
    EXPECT_EQ(opened.error().code, common::ErrorCode::kUnauthenticated);

    auto sealed = *EciesEncrypt(key.PublicKey(), Data("secret"));
    sealed[65 + 16] ^= 0x80;  // first byte of the tag
    r = EciesJs("decrypt", HexEncode(key.Secret()), HexEncode(sealed));
    EXPECT_NE(r.exit_code, 0) << "eciesjs must refuse a forged tag, printed: " << r.out;
    EXPECT_EQ(r.out, "");
}

}  // namespace
}  // namespace decloud::crypto
