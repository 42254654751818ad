#include "agent/domain/relay/wireguard_key.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <string>

#include "decloud/testing/process.hpp"

namespace decloud::agent::domain::relay {
namespace {

std::string Trimmed(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
}

std::string FindWg() {
    for (const char* p : {"/usr/bin/wg", "/usr/local/bin/wg", "/bin/wg"}) {
        if (std::filesystem::exists(p)) return p;
    }
    return {};
}

// RFC 7748 section 6.1 (X25519 Diffie-Hellman), Alice's key pair.
TEST(WireGuardKeyTest, DerivesTheRfc7748PublicKey) {
    const auto priv =
        WireGuardKey::FromHex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
    ASSERT_TRUE(priv) << priv.error().message;
    EXPECT_EQ(priv->PublicKey().ToHex(),
              "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
}

TEST(WireGuardKeyTest, GeneratedKeysAreClampedDistinctAndRoundTrip) {
    std::set<WireGuardKey> seen;
    for (int i = 0; i < 16; ++i) {
        const auto key = WireGuardKey::Generate();
        EXPECT_FALSE(key.IsZero());
        EXPECT_EQ(key.bytes()[0] & 7, 0);
        EXPECT_EQ(key.bytes()[31] & 128, 0);
        EXPECT_EQ(key.bytes()[31] & 64, 64);
        EXPECT_TRUE(seen.insert(key).second);
        const auto b64 = key.ToBase64();
        EXPECT_EQ(b64.size(), 44u);
        EXPECT_EQ(b64.back(), '=');
        auto back = WireGuardKey::FromBase64(b64);
        ASSERT_TRUE(back);
        EXPECT_EQ(*back, key);
        auto from_hex = WireGuardKey::FromHex(key.ToHex());
        ASSERT_TRUE(from_hex);
        EXPECT_EQ(*from_hex, key);
    }
}

TEST(WireGuardKeyTest, RejectsMalformedText) {
    EXPECT_FALSE(WireGuardKey::FromBase64(""));
    EXPECT_FALSE(WireGuardKey::FromBase64("AAAA"));
    // 45 characters, 33 bytes.
    EXPECT_FALSE(WireGuardKey::FromBase64("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
    // Right length, a character outside base64.
    EXPECT_FALSE(WireGuardKey::FromBase64("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA*="));
    // Non-canonical: the last character's low bits must be zero for 32 bytes.
    EXPECT_FALSE(WireGuardKey::FromBase64("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB="));
    EXPECT_FALSE(WireGuardKey::FromHex(std::string(63, 'a')));
    EXPECT_FALSE(WireGuardKey::FromHex(std::string(64, 'g')));
    EXPECT_FALSE(WireGuardKey::FromHex("0x" + std::string(62, 'a')));
    EXPECT_TRUE(WireGuardKey().IsZero());
}

// The judge is wireguard-tools: its keys parse, and our public key is the one `wg pubkey` prints,
// for its keys and for ours.
TEST(WireGuardKeyTest, AgreesWithWgGenkeyAndPubkey) {
    const auto wg = FindWg();
    if (wg.empty()) GTEST_SKIP() << "wg (wireguard-tools) is not installed";
    for (int i = 0; i < 5; ++i) {
        const auto genkey = testing::RunCommand(wg, {"genkey"});
        ASSERT_EQ(genkey.exit_code, 0) << genkey.err;
        const auto priv_text = Trimmed(genkey.out);
        const auto pubkey = testing::RunCommand(wg, {"pubkey"}, {}, priv_text + "\n");
        ASSERT_EQ(pubkey.exit_code, 0) << pubkey.err;
        auto priv = WireGuardKey::FromBase64(priv_text);
        ASSERT_TRUE(priv) << priv_text;
        EXPECT_EQ(priv->ToBase64(), priv_text);
        EXPECT_EQ(priv->PublicKey().ToBase64(), Trimmed(pubkey.out));
    }
    for (int i = 0; i < 5; ++i) {
        const auto ours = WireGuardKey::Generate();
        const auto pubkey = testing::RunCommand(wg, {"pubkey"}, {}, ours.ToBase64() + "\n");
        ASSERT_EQ(pubkey.exit_code, 0) << pubkey.err;
        EXPECT_EQ(ours.PublicKey().ToBase64(), Trimmed(pubkey.out));
    }
}

}  // namespace
}  // namespace decloud::agent::domain::relay
