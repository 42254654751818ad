// Wallet sign-in against the real orchestrator process and PostgreSQL: the whole EIP-4361 flow
// with a local secp256k1 key, and every way a sign-in must fail.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "decloud/common/clock.hpp"
#include "decloud/crypto/ethereum.hpp"
#include "decloud/proto/siwe.hpp"
#include "decloud/testing/orchestrator.hpp"
#include "decloud/testing/process.hpp"
#include "decloud/testing/temp_pg_cluster.hpp"

namespace decloud {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

class AuthApiTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        pg_ = new testing::TempPgCluster();
        dir_ = new testing::TempDir("decloud-auth");
        auto started = testing::StartTestOrchestrator(DECLOUD_ORCHESTRATOR_BIN,
                                                      pg_->CreateDatabase("auth"), dir_->path());
        port_ = started.port;
        orchestrator_ = started.process.release();
        ASSERT_TRUE(started.ready) << orchestrator_->Log();
    }

    static void TearDownTestSuite() {
        if (orchestrator_) {
            EXPECT_EQ(orchestrator_->Terminate(), 0) << orchestrator_->Log();
        }
        delete orchestrator_;
        delete dir_;
        delete pg_;
    }

    static std::string Nonce() {
        auto r = testing::HttpRequest(port_, "GET", "/api/auth/nonce");
        EXPECT_TRUE(r && r->status == 200);
        const auto j = json::parse(r->body);
        EXPECT_EQ(j["domain"], "127.0.0.1:" + std::to_string(port_));
        return j["nonce"];
    }

    static proto::SiweMessage Message(const crypto::EthereumKey& key, const std::string& nonce) {
        proto::SiweMessage m;
        m.scheme = "http";
        m.domain = "127.0.0.1:" + std::to_string(port_);
        m.address = key.Address();
        m.statement = "Sign in to DeCloud.";
        m.uri = "http://127.0.0.1:" + std::to_string(port_) + "/login";
        m.chain_id = 31337;
        m.nonce = nonce;
        m.issued_at = common::FormatRfc3339(std::chrono::system_clock::now());
        return m;
    }

    static std::optional<testing::HttpReply> Verify(const std::string& message,
                                                    const std::string& signature) {
        return testing::HttpRequest(port_, "POST", "/api/auth/verify",
                                    json{{"message", message}, {"signature", signature}}.dump());
    }

    static std::optional<testing::HttpReply> SignIn(const crypto::EthereumKey& key,
                                                    const proto::SiweMessage& m) {
        const auto text = proto::FormatSiweMessage(m);
        return Verify(text, key.SignPersonalMessage(text));
    }

    static int Status(const std::optional<testing::HttpReply>& r) { return r ? r->status : -1; }

    static std::optional<testing::HttpReply> Me(const std::string& token) {
        return testing::HttpRequest(port_, "GET", "/api/users/me", {},
                                    {{"Authorization", "Bearer " + token}});
    }

    static testing::TempPgCluster* pg_;
    static testing::TempDir* dir_;
    static testing::ChildProcess* orchestrator_;
    static std::uint16_t port_;
};

testing::TempPgCluster* AuthApiTest::pg_ = nullptr;
testing::TempDir* AuthApiTest::dir_ = nullptr;
testing::ChildProcess* AuthApiTest::orchestrator_ = nullptr;
std::uint16_t AuthApiTest::port_ = 0;

TEST_F(AuthApiTest, FullSignInRefreshAndLogout) {
    const auto key = crypto::EthereumKey::Generate();
    auto r = SignIn(key, Message(key, Nonce()));
    ASSERT_EQ(Status(r), 200) << (r ? r->body : "");
    const auto j = json::parse(r->body);
    EXPECT_EQ(j["walletAddress"], key.Address());
    const std::string token = j["token"], refresh = j["refreshToken"];

    auto me = Me(token);
    ASSERT_EQ(Status(me), 200);
    EXPECT_EQ(json::parse(me->body)["walletAddress"], key.Address());

    auto refreshed = testing::HttpRequest(port_, "POST", "/api/auth/refresh",
                                          json{{"refreshToken", refresh}}.dump());
    ASSERT_EQ(Status(refreshed), 200) << refreshed->body;
    const std::string token2 = json::parse(refreshed->body)["token"];
    EXPECT_EQ(Status(Me(token2)), 200);
    EXPECT_EQ(Status(testing::HttpRequest(port_, "POST", "/api/auth/refresh",
                                          json{{"refreshToken", token}}.dump())),
              401)
        << "an access token is not a refresh token";

    EXPECT_EQ(Status(testing::HttpRequest(port_, "POST", "/api/auth/logout", {},
                                          {{"Authorization", "Bearer " + token}})),
              204);
    EXPECT_EQ(Status(Me(token)), 401) << "token after logout";
    EXPECT_EQ(Status(Me(token2)), 401) << "the whole session is revoked";
    EXPECT_EQ(Status(testing::HttpRequest(port_, "POST", "/api/auth/refresh",
                                          json{{"refreshToken", refresh}}.dump())),
              401);
}

TEST_F(AuthApiTest, ReplayedMessageIsRefused) {
    const auto key = crypto::EthereumKey::Generate();
    const auto text = proto::FormatSiweMessage(Message(key, Nonce()));
    const auto sig = key.SignPersonalMessage(text);
    ASSERT_EQ(Status(Verify(text, sig)), 200);
    auto replay = Verify(text, sig);
    EXPECT_EQ(Status(replay), 401);
    EXPECT_NE(replay->body.find("already used"), std::string::npos) << replay->body;
}

TEST_F(AuthApiTest, MessagesNotBoundToThisServiceAreRefused) {
    const auto key = crypto::EthereumKey::Generate();
    const auto nonce = Nonce();
    auto other_domain = Message(key, nonce);
    other_domain.domain = "evil.example";
    EXPECT_EQ(Status(SignIn(key, other_domain)), 401);
    auto other_uri = Message(key, nonce);
    other_uri.uri = "https://evil.example/login";
    EXPECT_EQ(Status(SignIn(key, other_uri)), 401);
    auto other_chain = Message(key, nonce);
    other_chain.chain_id = 1;
    EXPECT_EQ(Status(SignIn(key, other_chain)), 401);
    EXPECT_EQ(Status(SignIn(key, Message(key, "NotIssuedByUs123"))), 401) << "nonce from elsewhere";
    // None of these spent the nonce: the proper message still signs in.
    EXPECT_EQ(Status(SignIn(key, Message(key, nonce))), 200);
}

TEST_F(AuthApiTest, ExpiredAndPrematureMessagesAreRefused) {
    const auto key = crypto::EthereumKey::Generate();
    auto expired = Message(key, Nonce());
    expired.expiration_time = common::FormatRfc3339(std::chrono::system_clock::now() - 10min);
    EXPECT_EQ(Status(SignIn(key, expired)), 401);
    auto early = Message(key, Nonce());
    early.not_before = common::FormatRfc3339(std::chrono::system_clock::now() + 10min);
    EXPECT_EQ(Status(SignIn(key, early)), 401);
    auto future = Message(key, Nonce());
    future.issued_at = common::FormatRfc3339(std::chrono::system_clock::now() + 10min);
    EXPECT_EQ(Status(SignIn(key, future)), 401);
}

TEST_F(AuthApiTest, SignatureByAnotherKeyIsRefused) {
    const auto claimed = crypto::EthereumKey::Generate();
    const auto signer = crypto::EthereumKey::Generate();
    const auto text = proto::FormatSiweMessage(Message(claimed, Nonce()));
    auto r = Verify(text, signer.SignPersonalMessage(text));
    EXPECT_EQ(Status(r), 401);
    EXPECT_NE(r->body.find(signer.Address()), std::string::npos);
}

TEST_F(AuthApiTest, MalformedInputIsABadRequest) {
    const auto key = crypto::EthereumKey::Generate();
    auto lower = Message(key, Nonce());
    std::transform(lower.address.begin(), lower.address.end(), lower.address.begin(), ::tolower);
    lower.address[1] = 'x';
    EXPECT_EQ(Status(SignIn(key, lower)), 400) << "address not in EIP-55 form";
    EXPECT_EQ(Status(Verify("hello", key.SignPersonalMessage("hello"))), 400);
    EXPECT_EQ(Status(Verify(proto::FormatSiweMessage(Message(key, Nonce())), "0x1234")), 400);
    EXPECT_EQ(Status(testing::HttpRequest(port_, "POST", "/api/auth/verify", "{\"message\": 1}")),
              400);
    EXPECT_EQ(Status(testing::HttpRequest(port_, "POST", "/api/auth/verify", "not json")), 400);
}

TEST_F(AuthApiTest, BadTokensAreRefused) {
    EXPECT_EQ(Status(testing::HttpRequest(port_, "GET", "/api/users/me")), 401);
    EXPECT_EQ(Status(Me("garbage")), 401);
    const auto key = crypto::EthereumKey::Generate();
    auto r = SignIn(key, Message(key, Nonce()));
    ASSERT_EQ(Status(r), 200);
    std::string token = json::parse(r->body)["token"];
    token[token.size() / 2] = token[token.size() / 2] == 'A' ? 'B' : 'A';
    EXPECT_EQ(Status(Me(token)), 401);
}

// A tight budget on its own orchestrator: the burst passes, the next request gets 429 with a
// Retry-After that says how long to wait, and other routes are not throttled.
TEST_F(AuthApiTest, SignInEndpointsAreRateLimitedPerClient) {
    testing::TempDir dir("decloud-auth-limit");
    auto started = testing::StartTestOrchestrator(
        DECLOUD_ORCHESTRATOR_BIN, pg_->CreateDatabase("auth_limit"), dir.path(),
        {"auth.rate_limit_per_minute=1", "auth.rate_limit_burst=3"});
    auto& limited = *started.process;
    const auto port = started.port;
    ASSERT_TRUE(started.ready) << limited.Log();
    for (int i = 0; i < 3; ++i)
        EXPECT_EQ(Status(testing::HttpRequest(port, "GET", "/api/auth/nonce")), 200) << i;
    auto refused = testing::HttpRequest(port, "POST", "/api/auth/verify",
                                        json{{"message", "m"}, {"signature", "0x"}}.dump());
    ASSERT_EQ(Status(refused), 429);
    EXPECT_EQ(refused->Header("Content-Type"), "application/problem+json");
    const int retry_after = std::stoi(refused->Header("Retry-After"));
    EXPECT_GE(retry_after, 1);
    EXPECT_LE(retry_after, 60);
    EXPECT_EQ(Status(testing::HttpRequest(port, "GET", "/api/auth/nonce")), 429);
    EXPECT_EQ(Status(testing::HttpRequest(port, "GET", "/readyz")), 200);
    EXPECT_EQ(limited.Terminate(), 0) << limited.Log();
}

}  // namespace
}  // namespace decloud
