// End to end on a real anvil, a real PostgreSQL and a real orchestrator process: a wallet sends
// test USDC to the deposit address and, after the confirmations, GET /api/billing/balance shows
// the credit (pending before); an operator with earnings is paid on chain by the payout job and
// sees it in GET /api/billing/earnings and /api/billing/payouts. A treasury key file readable by
// others refuses the start, without the key in the log.

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "../chain/chain_fixture.hpp"
#include "decloud/crypto/crypto.hpp"
#include "decloud/testing/orchestrator.hpp"
#include "decloud/testing/process.hpp"
#include "decloud/testing/sign_in.hpp"
#include "decloud/testing/temp_pg_cluster.hpp"
#include "orchestrator/adapters/pg/migrations.hpp"
#include "orchestrator/adapters/pg/pg_ledger_repository.hpp"
#include "orchestrator/adapters/pg/pg_pool.hpp"

namespace decloud {
namespace {

using chain::U256;
using decloud::testing::RunSync;
using nlohmann::json;
using orchestrator::domain::Amount;
namespace pg = orchestrator::adapters::pg;

std::string Lower(std::string text) {
    for (auto& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return text;
}

class ChainE2eTest : public chain::testing_support::ChainFixture {
  protected:
    void SetUp() override {
        ChainFixture::SetUp();
        token_ = DeployToken(treasury_);
        database_url_ = pg_.CreateDatabase("chain_e2e");
        pool_ = std::make_unique<pg::PgPool>(database_url_, 2);
        ASSERT_TRUE(pg::RunMigrations(*pool_));
        ledger_ = std::make_unique<pg::PgLedgerRepository>(*pool_);
        key_file_ = dir_.path() + "/treasury.key";
        std::ofstream(key_file_) << decloud::testing::kAnvilKey0 << "\n";
        ASSERT_EQ(::chmod(key_file_.c_str(), 0600), 0);
    }

    void TearDown() override {
        if (ledger_) {
            auto report = ledger_->CheckInvariants();
            ASSERT_TRUE(report) << report.error().message;
            for (const auto& v : report->violations) ADD_FAILURE() << "ledger invariant: " << v;
        }
        if (orchestrator_.process) {
            EXPECT_EQ(orchestrator_.process->Terminate(), 0);
            if (HasFailure()) std::cerr << orchestrator_.process->Log();
        }
    }

    std::vector<std::string> Settings(std::uint64_t start_block) {
        return {"chain.enabled=true",
                "chain.rpc_url=" + anvil_->url(),
                "chain.poll_interval=200ms",
                "chain.start_block=" + std::to_string(start_block),
                "billing.deposit_chain_id=" + std::to_string(anvil_->chain_id()),
                "billing.deposit_token_address=" + Lower(chain::ToString(token_)),
                "billing.deposit_address=" + Lower(chain::ToString(platform_.address())),
                "billing.deposit_confirmations=3",
                "payouts.enabled=true",
                "payouts.minimum=10",
                "payouts.treasury_key_file=" + key_file_};
    }

    // Earnings as metering leaves them: a user deposit, then a charge paying the operator.
    void GiveEarnings(const std::string& operator_wallet, Amount amount) {
        const std::string user = "0x" + std::string(40, '2');
        auto deposit = orchestrator::domain::BuildTransaction(
            orchestrator::domain::DepositKey(1, "0x" + std::string(64, 'd'), 0),
            orchestrator::domain::TransactionKind::kDeposit,
            {{orchestrator::domain::PlatformAccount(orchestrator::domain::AccountKind::kTreasuryIn),
              Amount::Micros(-amount.micros())},
             {orchestrator::domain::UserBalance(user), amount}},
            json::object(), std::chrono::system_clock::now());
        ASSERT_TRUE(deposit);
        ASSERT_TRUE(ledger_->Post(*deposit));
        auto charge = orchestrator::domain::BuildTransaction(
            "e2e-charge", orchestrator::domain::TransactionKind::kCharge,
            {{orchestrator::domain::UserBalance(user), Amount::Micros(-amount.micros())},
             {orchestrator::domain::NodeEarnings(operator_wallet), amount}},
            json::object(), std::chrono::system_clock::now());
        ASSERT_TRUE(charge);
        ASSERT_TRUE(ledger_->Post(*charge));
    }

    json Get(const std::string& target, const std::pair<std::string, std::string>& header) {
        auto r = decloud::testing::HttpRequest(orchestrator_.port, "GET", target, {}, {header});
        EXPECT_TRUE(r);
        if (!r) return {};
        EXPECT_EQ(r->status, 200) << target << ": " << r->body;
        return json::parse(r->body, nullptr, false);
    }

    decloud::testing::TempPgCluster pg_;
    decloud::testing::TempDir dir_{"decloud-chain-e2e"};
    std::string database_url_;
    std::string key_file_;
    std::unique_ptr<pg::PgPool> pool_;
    std::unique_ptr<pg::PgLedgerRepository> ledger_;
    decloud::testing::TestOrchestrator orchestrator_;
    chain::PrivateKey treasury_ = Key(decloud::testing::kAnvilKey0);
    chain::PrivateKey platform_ = Key(decloud::testing::kAnvilKey1);
    chain::Address token_{};
};

TEST_F(ChainE2eTest, DepositIsCreditedAndTheOperatorIsPaidOnChain) {
    // The user: a fresh wallet with gas and 50 tUSDC. The operator: a fresh wallet with earnings.
    const auto user_key = crypto::EthereumKey::Generate();
    const auto user = chain::PrivateKey::FromBytes(user_key.Secret()).value();
    anvil_->Rpc("anvil_setBalance",
                {Lower(chain::ToString(user.address())), "0x56bc75e2d63100000"});  // 100 ETH
    ASSERT_TRUE(TransferToken(treasury_, token_, user.address(), U256(50'000'000)).success);
    const auto operator_key = crypto::EthereumKey::Generate();
    const auto operator_wallet = Lower(operator_key.Address());
    const auto operator_address = chain::ParseAddress(operator_wallet).value();
    GiveEarnings(operator_wallet, Amount::Micros(12'500'000));

    const auto head = RunSync(io_, chain_->BlockNumber()).value();
    orchestrator_ = decloud::testing::StartTestOrchestrator(DECLOUD_ORCHESTRATOR_BIN, database_url_,
                                                            dir_.path(), Settings(head + 1));
    ASSERT_TRUE(orchestrator_.ready) << orchestrator_.process->Log();
    const auto user_session = decloud::testing::SignIn(orchestrator_.port, user_key).value();
    const auto operator_session =
        decloud::testing::SignIn(orchestrator_.port, operator_key).value();

    // The deposit: pending first, credited once three blocks hold it.
    const auto receipt = TransferToken(user, token_, platform_.address(), U256(5'000'000));
    ASSERT_TRUE(receipt.success);
    json balance;
    EXPECT_TRUE(decloud::testing::WaitUntil(
        [&] {
            balance = Get("/api/billing/balance", user_session.Header());
            return balance["pendingDeposits"].size() == 1;
        },
        std::chrono::seconds{20}))
        << balance.dump();
    EXPECT_EQ(balance["balance"], "0.000000");
    EXPECT_EQ(balance["pendingDeposits"][0]["amount"], "5.000000");
    EXPECT_EQ(balance["pendingDeposits"][0]["txHash"], chain::ToString(receipt.transaction_hash));
    anvil_->Rpc("anvil_mine", {"0x2"});
    EXPECT_TRUE(decloud::testing::WaitUntil(
        [&] {
            balance = Get("/api/billing/balance", user_session.Header());
            return balance["balance"] == "5.000000";
        },
        std::chrono::seconds{20}))
        << balance.dump();
    EXPECT_TRUE(balance["pendingDeposits"].empty());

    // The payout: sent by the first batch, settled after its confirmations.
    EXPECT_TRUE(decloud::testing::WaitUntil(
        [&] { return BalanceOf(token_, operator_address) == U256(12'500'000); },
        std::chrono::seconds{30}));
    json earnings;
    EXPECT_TRUE(decloud::testing::WaitUntil(
        [&] {
            anvil_->Rpc("anvil_mine", {"0x1"});
            earnings = Get("/api/billing/earnings", operator_session.Header());
            return earnings["paid"] == "12.500000";
        },
        std::chrono::seconds{30}, std::chrono::milliseconds{300}))
        << earnings.dump();
    EXPECT_EQ(earnings["nodeEarnings"], "0.000000");
    EXPECT_EQ(earnings["inFlight"], "0.000000");
    const auto payouts = Get("/api/billing/payouts", operator_session.Header());
    ASSERT_EQ(payouts["payouts"].size(), 1u) << payouts.dump();
    EXPECT_EQ(payouts["payouts"][0]["state"], "settled");
    EXPECT_EQ(payouts["payouts"][0]["chainStatus"], "confirmed");
    EXPECT_EQ(payouts["payouts"][0]["amount"], "12.500000");
    EXPECT_TRUE(payouts["payouts"][0]["txHash"].is_string());
    anvil_->Rpc("anvil_mine", {"0x3"});
    std::this_thread::sleep_for(std::chrono::milliseconds{600});  // a few more job ticks
    EXPECT_EQ(BalanceOf(token_, operator_address), U256(12'500'000));
    EXPECT_EQ(Get("/api/billing/balance", user_session.Header())["balance"], "5.000000");
    const auto log = orchestrator_.process->Log();
    EXPECT_EQ(log.find(std::string(decloud::testing::kAnvilKey0).substr(2)), std::string::npos);
}

TEST_F(ChainE2eTest, ATreasuryKeyReadableByOthersRefusesTheStart) {
    ASSERT_EQ(::chmod(key_file_.c_str(), 0644), 0);
    std::vector<std::string> args;
    auto settings = Settings(1);
    settings.push_back("database.url=" + database_url_);
    settings.push_back("server.port=" + std::to_string(decloud::testing::FreeTcpPort()));
    settings.push_back("auth.key_file=" + dir_.path() + "/jwt.keys");
    for (auto& s : settings) {
        args.push_back("--set");
        args.push_back(std::move(s));
    }
    decloud::testing::ChildProcess process(DECLOUD_ORCHESTRATOR_BIN, args,
                                           dir_.path() + "/refused.log");
    EXPECT_TRUE(
        decloud::testing::WaitUntil([&] { return !process.Running(); }, std::chrono::seconds{20}));
    const auto log = process.Log();
    EXPECT_NE(log.find("must have mode 0600"), std::string::npos) << log;
    EXPECT_EQ(log.find(std::string(decloud::testing::kAnvilKey0).substr(2)), std::string::npos);
    EXPECT_EQ(process.Terminate(), 1);
}

}  // namespace
}  // namespace decloud
