#include "decloud/crypto/jwt.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <nlohmann/json.hpp>

namespace decloud::crypto {
namespace {

using namespace std::chrono;

class JwtTest : public ::testing::Test {
  protected:
    JwtClaims Claims() {
        JwtClaims c;
        c.subject = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";
        c.issuer = "https://orchestrator.example";
        c.audience = "decloud-api";
        c.token_id = "session-1";
        c.kind = "access";
        c.issued_at = now_;
        c.expires_at = now_ + minutes{15};
        return c;
    }
    JwtExpectations Expect(common::TimePoint at) {
        return {"https://orchestrator.example", "decloud-api", "access", at, seconds{30}};
    }
    // Assembles a token from a chosen header, payload and signature (for forgery attempts).
    static std::string Forge(const nlohmann::json& header, const nlohmann::json& payload,
                             std::string signature) {
        auto b64 = [](const std::string& s) {
            auto t =
                Base64Encode(std::span(reinterpret_cast<const std::uint8_t*>(s.data()), s.size()));
            for (auto& c : t) {
                if (c == '+') c = '-';
                if (c == '/') c = '_';
            }
            while (!t.empty() && t.back() == '=') t.pop_back();
            return t;
        };
        return b64(header.dump()) + "." + b64(payload.dump()) + "." + signature;
    }

    common::TimePoint now_{seconds{1'800'000'000}};
    JwtKeyRing keys_ = JwtKeyRing::Generate();
};

TEST_F(JwtTest, RoundTrips) {
    const auto token = SignJwt(Claims(), keys_);
    auto c = VerifyJwt(token, keys_, Expect(now_ + minutes{1}));
    ASSERT_TRUE(c) << c.error().message;
    EXPECT_EQ(*c, Claims());
}

TEST_F(JwtTest, RefusesExpiredEarlyAndMisdirectedTokens) {
    const auto token = SignJwt(Claims(), keys_);
    EXPECT_FALSE(VerifyJwt(token, keys_, Expect(now_ + minutes{16})));
    EXPECT_TRUE(VerifyJwt(token, keys_, Expect(now_ + minutes{15} + seconds{10})))
        << "within leeway";
    EXPECT_FALSE(VerifyJwt(token, keys_, Expect(now_ - minutes{1})));
    auto e = Expect(now_);
    e.audience = "other";
    EXPECT_FALSE(VerifyJwt(token, keys_, e));
    e = Expect(now_);
    e.issuer = "https://evil.example";
    EXPECT_FALSE(VerifyJwt(token, keys_, e));
    e = Expect(now_);
    e.kind = "refresh";
    EXPECT_FALSE(VerifyJwt(token, keys_, e)) << "an access token is not a refresh token";
}

TEST_F(JwtTest, RefusesAlgNoneTamperingAndOtherKeys) {
    const auto token = SignJwt(Claims(), keys_);
    const auto dot = token.rfind('.');
    const auto kid = keys_.signing_key().id;
    nlohmann::json payload{{"sub", "0xattacker"},  {"iss", "https://orchestrator.example"},
                           {"aud", "decloud-api"}, {"jti", "x"},
                           {"typ", "access"},      {"iat", 1'800'000'000},
                           {"exp", 1'900'000'000}};
    EXPECT_FALSE(
        VerifyJwt(Forge({{"alg", "none"}, {"kid", kid}}, payload, ""), keys_, Expect(now_)));
    EXPECT_FALSE(VerifyJwt(Forge({{"alg", "HS512"}, {"kid", kid}}, payload, token.substr(dot + 1)),
                           keys_, Expect(now_)));
    EXPECT_FALSE(VerifyJwt(Forge({{"alg", "HS256"}, {"kid", kid}}, payload, token.substr(dot + 1)),
                           keys_, Expect(now_)))
        << "payload swapped under a valid signature";
    const auto other = JwtKeyRing::Generate();
    EXPECT_FALSE(VerifyJwt(SignJwt(Claims(), other), keys_, Expect(now_)));
    EXPECT_FALSE(VerifyJwt("a.b", keys_, Expect(now_)));
    EXPECT_FALSE(VerifyJwt("a.b.c.d", keys_, Expect(now_)));
    EXPECT_FALSE(VerifyJwt(token + "x", keys_, Expect(now_)));
}

TEST_F(JwtTest, RotationKeepsOldTokensValid) {
    const auto before = SignJwt(Claims(), keys_);
    ASSERT_TRUE(keys_.Rotate());
    const auto after = SignJwt(Claims(), keys_);
    EXPECT_TRUE(VerifyJwt(before, keys_, Expect(now_)));
    EXPECT_TRUE(VerifyJwt(after, keys_, Expect(now_)));
    ASSERT_TRUE(keys_.Rotate());
    EXPECT_FALSE(VerifyJwt(before, keys_, Expect(now_)))
        << "two rotations later the first key is gone";
    EXPECT_TRUE(VerifyJwt(after, keys_, Expect(now_)));
}

TEST(JwtKeyRingFile, CreatedPrivateReloadedAndRotated) {
    const auto dir =
        std::filesystem::temp_directory_path() / ("decloud-jwt-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    const auto path = (dir / "jwt.keys").string();
    auto ring = JwtKeyRing::LoadOrCreate(path);
    ASSERT_TRUE(ring) << ring.error().message;
    struct stat st {};
    ASSERT_EQ(::stat(path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    ASSERT_TRUE(ring->Rotate(path));
    auto reloaded = JwtKeyRing::LoadOrCreate(path);
    ASSERT_TRUE(reloaded);
    EXPECT_EQ(reloaded->size(), 2u);
    EXPECT_EQ(reloaded->signing_key().id, ring->signing_key().id);
    ::chmod(path.c_str(), 0644);
    EXPECT_EQ(JwtKeyRing::LoadOrCreate(path).error().code, common::ErrorCode::kPermissionDenied);
    std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace decloud::crypto
