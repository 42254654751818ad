// Sign-in logic with an injected clock and an in-memory repository: nonce lifecycle, binding to
// this service, message times, tokens and sessions.

#include "orchestrator/app/auth_service.hpp"

#include <gtest/gtest.h>

#include "decloud/crypto/crypto.hpp"
#include "decloud/crypto/ethereum.hpp"
#include "decloud/fakes/in_memory_auth_repository.hpp"
#include "decloud/proto/siwe.hpp"

namespace decloud::orchestrator::app {
namespace {

using namespace std::chrono_literals;
using common::ErrorCode;

class AuthServiceTest : public ::testing::Test {
  protected:
    AuthServiceTest() : service_(repo_, clock_, keys_, Options()) {}

    static AuthOptions Options() {
        AuthOptions o;
        o.domain = "api.decloud.test";
        o.uri = "https://api.decloud.test";
        o.chain_ids = {137};
        o.nonce_ttl = 5min;
        o.access_token_ttl = 15min;
        o.refresh_token_ttl = 24h;
        o.clock_skew = 30s;
        return o;
    }

    proto::SiweMessage Message(const std::string& nonce) const {
        proto::SiweMessage m;
        m.scheme = "https";
        m.domain = "api.decloud.test";
        m.address = wallet_.Address();
        m.statement = "Sign in to DeCloud.";
        m.uri = "https://api.decloud.test/login";
        m.chain_id = 137;
        m.nonce = nonce;
        m.issued_at = common::FormatRfc3339(clock_.Now());
        return m;
    }

    std::string Nonce() {
        auto n = service_.IssueNonce();
        EXPECT_TRUE(n);
        return n ? n->nonce : std::string();
    }

    common::Result<SignedIn> SignIn(const proto::SiweMessage& m) {
        const auto text = proto::FormatSiweMessage(m);
        return service_.Verify(text, wallet_.SignPersonalMessage(text));
    }

    static void ExpectRefused(const common::Result<SignedIn>& r, std::string_view reason) {
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error().code, ErrorCode::kUnauthenticated) << r.error().message;
        EXPECT_NE(r.error().message.find(reason), std::string::npos) << r.error().message;
    }

    common::ManualClock clock_;
    fakes::InMemoryAuthRepository repo_;
    crypto::JwtKeyRing keys_ = crypto::JwtKeyRing::Generate();
    AuthService service_;
    crypto::EthereumKey wallet_ = crypto::EthereumKey::Generate();
};

TEST_F(AuthServiceTest, NoncesAreFreshAlphanumericAndExpireAfterTheirTtl) {
    auto a = service_.IssueNonce();
    auto b = service_.IssueNonce();
    ASSERT_TRUE(a && b);
    EXPECT_GE(a->nonce.size(), 8u);
    EXPECT_EQ(a->nonce.find_first_not_of(
                  "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"),
              std::string::npos);
    EXPECT_NE(a->nonce, b->nonce);
    EXPECT_EQ(a->expires_at, clock_.Now() + 5min);
    EXPECT_EQ(repo_.nonce_count(), 2u);
}

TEST_F(AuthServiceTest, ANonceSignsInOnceAndOnlyBeforeItExpires) {
    const auto nonce = Nonce();
    auto first = SignIn(Message(nonce));
    ASSERT_TRUE(first) << first.error().message;
    EXPECT_EQ(first->wallet_address, wallet_.Address());
    ExpectRefused(SignIn(Message(nonce)), "already used");

    const auto late = Nonce();
    clock_.Advance(5min);
    ExpectRefused(SignIn(Message(late)), "expired");
    ExpectRefused(SignIn(Message("NeverIssued123")), "not issued");
}

TEST_F(AuthServiceTest, MessagesForAnotherServiceDoNotSpendTheNonce) {
    const auto nonce = Nonce();
    auto m = Message(nonce);
    m.domain = "evil.example";
    ExpectRefused(SignIn(m), "domain");
    for (const std::string uri :
         {"https://evil.example/login", "https://api.decloud.test.evil.example/",
          "https://api.decloud.testx", "http://api.decloud.test/login"}) {
        m = Message(nonce);
        m.uri = uri;
        ExpectRefused(SignIn(m), "URI");
    }
    m = Message(nonce);
    m.chain_id = 1;
    ExpectRefused(SignIn(m), "chain id 1");
    m = Message(nonce);
    m.uri = "https://api.decloud.test";
    EXPECT_TRUE(SignIn(m)) << "the origin itself is a valid URI, and the nonce is still unused";
}

TEST_F(AuthServiceTest, MessageTimesAreRespectedWithTheConfiguredSkew) {
    auto m = Message(Nonce());
    m.issued_at = common::FormatRfc3339(clock_.Now() + 20s);
    EXPECT_TRUE(SignIn(m)) << "within the 30 s skew";
    m = Message(Nonce());
    m.issued_at = common::FormatRfc3339(clock_.Now() + 2min);
    ExpectRefused(SignIn(m), "future");

    m = Message(Nonce());
    m.expiration_time = common::FormatRfc3339(clock_.Now() - 1min);
    ExpectRefused(SignIn(m), "expired at");
    m = Message(Nonce());
    m.not_before = common::FormatRfc3339(clock_.Now() + 1min);
    ExpectRefused(SignIn(m), "not valid before");
    m = Message(Nonce());
    m.not_before = common::FormatRfc3339(clock_.Now() - 1min);
    m.expiration_time = common::FormatRfc3339(clock_.Now() + 1h);
    auto ok = SignIn(m);
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->refresh_expires_at, clock_.Now() + 1h) << "the session ends with the message";
}

TEST_F(AuthServiceTest, SignatureAndAddressAreChecked) {
    const auto text = proto::FormatSiweMessage(Message(Nonce()));
    const auto other = crypto::EthereumKey::Generate();
    ExpectRefused(service_.Verify(text, other.SignPersonalMessage(text)), other.Address());
    auto malformed = service_.Verify(text, "0x1234");
    ASSERT_FALSE(malformed);
    EXPECT_EQ(malformed.error().code, ErrorCode::kInvalidArgument);

    auto lower = Message(Nonce());
    std::transform(lower.address.begin() + 2, lower.address.end(), lower.address.begin() + 2,
                   ::tolower);
    if (lower.address != wallet_.Address()) {
        const auto lower_text = proto::FormatSiweMessage(lower);
        auto r = service_.Verify(lower_text, wallet_.SignPersonalMessage(lower_text));
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
    }
}

TEST_F(AuthServiceTest, SessionRecordsTheRecoveredWalletKey) {
    ASSERT_TRUE(SignIn(Message(Nonce())));
    EXPECT_EQ(repo_.wallet_public_key(wallet_.Address()), crypto::HexEncode(wallet_.PublicKey()));
}

TEST_F(AuthServiceTest, AccessTokensExpireAndRefreshWithinTheSession) {
    auto s = SignIn(Message(Nonce()));
    ASSERT_TRUE(s);
    auto who = service_.Authenticate(s->access_token);
    ASSERT_TRUE(who);
    EXPECT_EQ(who->wallet_address, wallet_.Address());
    EXPECT_FALSE(who->admin);
    EXPECT_FALSE(service_.Authenticate(s->refresh_token)) << "a refresh token is not access";
    EXPECT_FALSE(service_.Refresh(s->access_token)) << "nor the reverse";

    clock_.Advance(16min);
    auto expired = service_.Authenticate(s->access_token);
    ASSERT_FALSE(expired);
    EXPECT_EQ(expired.error().code, ErrorCode::kUnauthenticated);
    auto refreshed = service_.Refresh(s->refresh_token);
    ASSERT_TRUE(refreshed) << refreshed.error().message;
    EXPECT_EQ(refreshed->access_expires_at, clock_.Now() + 15min);
    EXPECT_TRUE(service_.Authenticate(refreshed->access_token));

    clock_.Advance(24h);
    EXPECT_FALSE(service_.Refresh(s->refresh_token)) << "the session itself has ended";
}

TEST_F(AuthServiceTest, AnAccessTokenNeverOutlivesItsSession) {
    auto m = Message(Nonce());
    m.expiration_time = common::FormatRfc3339(clock_.Now() + 5min);
    auto s = SignIn(m);
    ASSERT_TRUE(s);
    EXPECT_EQ(s->access_expires_at, clock_.Now() + 5min);
}

TEST_F(AuthServiceTest, LogoutAndAdminRevocationEndSessions) {
    auto one = SignIn(Message(Nonce()));
    auto two = SignIn(Message(Nonce()));
    ASSERT_TRUE(one && two);
    ASSERT_TRUE(service_.Logout(one->access_token));
    EXPECT_FALSE(service_.Authenticate(one->access_token));
    EXPECT_FALSE(service_.Refresh(one->refresh_token));
    EXPECT_TRUE(service_.Authenticate(two->access_token)) << "only that session ends";

    auto revoked = service_.RevokeAllSessions(wallet_.Address());
    ASSERT_TRUE(revoked);
    EXPECT_EQ(*revoked, 1u);
    EXPECT_FALSE(service_.Authenticate(two->access_token));
    EXPECT_FALSE(service_.RevokeAllSessions("not-a-wallet"));
}

TEST_F(AuthServiceTest, AdminWalletsAreRecognised) {
    auto options = Options();
    options.admin_wallets = {wallet_.Address()};
    AuthService admin_service(repo_, clock_, keys_, options);
    const auto text = proto::FormatSiweMessage(Message(admin_service.IssueNonce()->nonce));
    auto s = admin_service.Verify(text, wallet_.SignPersonalMessage(text));
    ASSERT_TRUE(s);
    auto who = admin_service.Authenticate(s->access_token);
    ASSERT_TRUE(who);
    EXPECT_TRUE(who->admin);
}

TEST_F(AuthServiceTest, TokensFromAnotherKeyRingAreRefused) {
    auto s = SignIn(Message(Nonce()));
    ASSERT_TRUE(s);
    const auto other_keys = crypto::JwtKeyRing::Generate();
    AuthService other(repo_, clock_, other_keys, Options());
    EXPECT_FALSE(other.Authenticate(s->access_token));
}

}  // namespace
}  // namespace decloud::orchestrator::app
