// The billing API of a real orchestrator process on a real PostgreSQL: balance, paged
// transactions, deposit info, problem+json refusals, admin-only invariants, and the metering
// job stopping a running VM of a user at zero balance (startable again after a deposit).

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "decloud/crypto/crypto.hpp"
#include "decloud/proto/node_messages.hpp"
#include "decloud/testing/orchestrator.hpp"
#include "decloud/testing/process.hpp"
#include "decloud/testing/sign_in.hpp"
#include "decloud/testing/temp_pg_cluster.hpp"
#include "orchestrator/adapters/pg/pg_ledger_repository.hpp"
#include "orchestrator/adapters/pg/pg_pool.hpp"

namespace decloud {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using orchestrator::domain::Amount;

constexpr const char* kDepositAddress = "0x1111111111111111111111111111111111111111";
constexpr const char* kOperator = "0x8617E340B3D01FA5F11F306F4090FD50E238070D";

class BillingApiTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        pg_ = new testing::TempPgCluster();
        dir_ = new testing::TempDir("decloud-billing-api");
        database_url_ = pg_->CreateDatabase("billing_api");
        admin_ = new crypto::EthereumKey(crypto::EthereumKey::Generate());
        user_ = new crypto::EthereumKey(crypto::EthereumKey::Generate());
        auto started = testing::StartTestOrchestrator(
            DECLOUD_ORCHESTRATOR_BIN, database_url_, dir_->path(),
            {"auth.admin_wallets=" + admin_->Address(),
             std::string("billing.deposit_address=") + kDepositAddress,
             "billing.deposit_chain_id=80002", "billing.deposit_confirmations=12",
             "billing.metering_interval=1s", "billing.require_balance_to_start=true",
             "nodes.heartbeat_flush_interval=50ms", "vms.command_poll_interval=100ms"});
        port_ = started.port;
        orchestrator_ = started.process.release();
        ASSERT_TRUE(started.ready) << orchestrator_->Log();
        auto admin = testing::SignIn(port_, *admin_);
        ASSERT_TRUE(admin) << admin.error().message;
        admin_header_ = admin->Header();
        auto user = testing::SignIn(port_, *user_);
        ASSERT_TRUE(user) << user.error().message;
        user_header_ = user->Header();
        pool_ = new orchestrator::adapters::pg::PgPool(database_url_, 2);
        ledger_ = new orchestrator::adapters::pg::PgLedgerRepository(*pool_);
    }

    static void TearDownTestSuite() {
        if (ledger_) {
            auto report = ledger_->CheckInvariants();
            EXPECT_TRUE(report && report->ok());
        }
        if (orchestrator_) {
            EXPECT_EQ(orchestrator_->Terminate(), 0) << orchestrator_->Log();
        }
        delete ledger_;
        delete pool_;
        delete orchestrator_;
        delete admin_;
        delete user_;
        delete dir_;
        delete pg_;
    }

    void TearDown() override {
        if (HasFailure() && orchestrator_) std::cerr << orchestrator_->Log();
    }

    static std::string UserKey() {
        return orchestrator::domain::NormalizeWallet(user_->Address()).value();
    }

    // What the deposit watcher does once a transfer is confirmed: a deposit through the ledger.
    static void Deposit(Amount amount, int n, const std::string& wallet = UserKey()) {
        const std::string hash = "0x" + std::string(63, 'b') + std::to_string(n);
        auto tx = orchestrator::domain::BuildTransaction(
            orchestrator::domain::DepositKey(80002, hash, 0),
            orchestrator::domain::TransactionKind::kDeposit,
            {{orchestrator::domain::PlatformAccount(orchestrator::domain::AccountKind::kTreasuryIn),
              Amount::Micros(-amount.micros())},
             {orchestrator::domain::UserBalance(wallet), amount}},
            json{{"txHash", hash}, {"chainId", 80002}, {"logIndex", 0}},
            std::chrono::system_clock::now());
        ASSERT_TRUE(tx);
        ASSERT_TRUE(ledger_->Post(*tx));
    }

    static json Get(const std::string& target, int status = 200,
                    std::pair<std::string, std::string> header = user_header_) {
        auto r = testing::HttpRequest(port_, "GET", target, {}, {header});
        EXPECT_TRUE(r);
        if (!r) return {};
        EXPECT_EQ(r->status, status) << target << ": " << r->body;
        if (status >= 400) {
            EXPECT_NE(r->headers.find("application/problem+json"), std::string::npos);
        }
        return json::parse(r->body, nullptr, false);
    }

    static testing::TempPgCluster* pg_;
    static testing::TempDir* dir_;
    static testing::ChildProcess* orchestrator_;
    static std::string database_url_;
    static std::uint16_t port_;
    static crypto::EthereumKey* admin_;
    static crypto::EthereumKey* user_;
    static std::pair<std::string, std::string> admin_header_;
    static std::pair<std::string, std::string> user_header_;
    static orchestrator::adapters::pg::PgPool* pool_;
    static orchestrator::adapters::pg::PgLedgerRepository* ledger_;
};

testing::TempPgCluster* BillingApiTest::pg_ = nullptr;
testing::TempDir* BillingApiTest::dir_ = nullptr;
testing::ChildProcess* BillingApiTest::orchestrator_ = nullptr;
std::string BillingApiTest::database_url_;
std::uint16_t BillingApiTest::port_ = 0;
crypto::EthereumKey* BillingApiTest::admin_ = nullptr;
crypto::EthereumKey* BillingApiTest::user_ = nullptr;
std::pair<std::string, std::string> BillingApiTest::admin_header_;
std::pair<std::string, std::string> BillingApiTest::user_header_;
orchestrator::adapters::pg::PgPool* BillingApiTest::pool_ = nullptr;
orchestrator::adapters::pg::PgLedgerRepository* BillingApiTest::ledger_ = nullptr;

TEST_F(BillingApiTest, DepositInfoComesFromTheConfiguration) {
    const auto info = Get("/api/billing/deposit-info");
    EXPECT_EQ(info["chainId"], 80002);
    EXPECT_EQ(info["confirmations"], 12);
    EXPECT_EQ(info["decimals"], 6);
    EXPECT_EQ(info["currency"], "USDC");
    EXPECT_EQ(info["depositAddress"], kDepositAddress);
    EXPECT_EQ(info["tokenAddress"], "0x3c499c542cEF5E3811e1192ce70d8cC03d5c3359");
}

TEST_F(BillingApiTest, BalanceAndTransactionsAsDecimalStringsWithAStableCursor) {
    const auto before = Get("/api/billing/balance");
    ASSERT_TRUE(before["balance"].is_string());
    const auto start = orchestrator::domain::ParseAmount(before["balance"].get<std::string>());
    ASSERT_TRUE(start);
    Deposit(Amount::Micros(12'345'678), 1);
    Deposit(Amount::Micros(1), 2);
    Deposit(Amount::Micros(2'000'000), 3);
    const auto after = Get("/api/billing/balance");
    EXPECT_EQ(after["balance"],
              orchestrator::domain::FormatAmount(Amount::Micros(start->micros() + 14'345'679)));
    EXPECT_EQ(after["nodeEarnings"], "0.000000");

    auto page1 = Get("/api/billing/transactions?limit=2");
    ASSERT_EQ(page1["transactions"].size(), 2u) << page1.dump();
    EXPECT_EQ(page1["transactions"][0]["balanceChange"], "2.000000");
    EXPECT_EQ(page1["transactions"][0]["kind"], "deposit");
    EXPECT_EQ(page1["transactions"][0]["entries"].size(), 1u);  // the caller's own entry only
    EXPECT_EQ(page1["transactions"][0]["entries"][0]["direction"], "credit");
    ASSERT_TRUE(page1["nextCursor"].is_string());
    Deposit(Amount::Micros(5), 4);  // a new one between pages does not shift the next page
    auto page2 =
        Get("/api/billing/transactions?limit=2&cursor=" + page1["nextCursor"].get<std::string>());
    ASSERT_GE(page2["transactions"].size(), 1u);
    EXPECT_EQ(page2["transactions"][0]["balanceChange"], "12.345678");

    Get("/api/billing/transactions?cursor=zzz", 400);
    Get("/api/billing/transactions?limit=0", 400);
    auto anonymous = testing::HttpRequest(port_, "GET", "/api/billing/balance", {}, {});
    ASSERT_TRUE(anonymous);
    EXPECT_EQ(anonymous->status, 401);
    EXPECT_NE(anonymous->headers.find("application/problem+json"), std::string::npos);
}

TEST_F(BillingApiTest, InvariantsAreForAdminsOnly) {
    Get("/api/admin/billing/invariants", 403);
    const auto report = Get("/api/admin/billing/invariants", 200, admin_header_);
    EXPECT_EQ(report["ok"], true) << report.dump();
    EXPECT_GE(report["transactions"].get<int>(), 0);
    EXPECT_TRUE(report["violations"].empty());
}

TEST_F(BillingApiTest, TheMeteringJobStopsRunningVmsAtZeroBalanceAndADepositAllowsAStart) {
    // A second user with nothing deposited yet.
    const auto key = crypto::EthereumKey::Generate();
    auto session = testing::SignIn(port_, key);
    ASSERT_TRUE(session) << session.error().message;
    const auto header = session->Header();

    const auto node_key = crypto::Ed25519KeyPair::Generate();
    auto node = testing::RegisterNode(port_, node_key, kOperator);
    ASSERT_TRUE(node) << node.error().message;
    const auto heartbeat = [&] {
        proto::HeartbeatRequest hb;
        hb.usage = {5, 1, 1, 0};
        hb.agent_version = "t";
        const auto body = proto::ToJson(hb).dump();
        auto r = testing::HttpRequest(port_, "POST", "/api/nodes/" + node->id + "/heartbeat", body,
                                      {{"Authorization", "Bearer " + node->token}});
        EXPECT_TRUE(r && r->status == 200);
        return r ? json::parse(r->body, nullptr, false) : json();
    };
    // Acknowledges every command the node is handed (heartbeat reply), as its agent would.
    const auto ack_all = [&] {
        auto beat = heartbeat();
        int acked = 0;
        for (const auto& c : beat["commands"]) {
            proto::CommandResult result;
            result.command_id = c["id"].get<std::string>();
            result.success = true;
            result.data = {{"addresses", json::array()}};
            auto r = testing::HttpRequest(
                port_, "POST",
                "/api/nodes/" + node->id + "/commands/" + result.command_id + "/result",
                proto::ToJson(result).dump(), {{"Authorization", "Bearer " + node->token}});
            EXPECT_TRUE(r && r->status < 300) << (r ? r->body : "no reply");
            ++acked;
        }
        return acked;
    };
    const auto vm_state = [&](const std::string& id) {
        auto r = testing::HttpRequest(port_, "GET", "/api/vms/" + id, {}, {header});
        return r ? json::parse(r->body, nullptr, false).value("state", "") : std::string();
    };
    heartbeat();
    ASSERT_TRUE(testing::WaitUntil(
        [&] {
            auto r =
                testing::HttpRequest(port_, "GET", "/api/nodes/" + node->id, {}, {admin_header_});
            return r && r->status == 200 &&
                   json::parse(r->body, nullptr, false).value("status", "") == "online";
        },
        10s));

    const json create{{"name", "billed"}, {"cpuCores", 1},        {"memoryMib", 512},
                      {"diskGib", 2},     {"image", "debian-12"}, {"nodeId", node->id}};
    const auto vm_count = [&] {
        auto r = testing::HttpRequest(port_, "GET", "/api/vms", {}, {header});
        return r ? json::parse(r->body, nullptr, false)["vms"].size() : 1000;
    };
    // Nothing deposited: a VM that costs something is refused with what to do, and nothing is
    // created.
    auto refused = testing::HttpRequest(port_, "POST", "/api/vms", create.dump(),
                                        {header, {"Content-Type", "application/json"}});
    ASSERT_TRUE(refused);
    EXPECT_EQ(refused->status, 402) << refused->body;
    EXPECT_NE(refused->headers.find("application/problem+json"), std::string::npos);
    EXPECT_NE(refused->body.find("deposit-info"), std::string::npos) << refused->body;
    EXPECT_EQ(vm_count(), 0u);

    // One micro-USDC is enough to start; a charge then takes it, as metering would.
    const auto wallet = orchestrator::domain::NormalizeWallet(key.Address()).value();
    Deposit(Amount::Micros(1), 99, wallet);
    auto created = testing::HttpRequest(port_, "POST", "/api/vms", create.dump(),
                                        {header, {"Content-Type", "application/json"}});
    ASSERT_TRUE(created);
    ASSERT_EQ(created->status, 201) << created->body;
    EXPECT_EQ(vm_count(), 1u);
    const auto vm_id = json::parse(created->body)["id"].get<std::string>();
    ASSERT_TRUE(testing::WaitUntil([&] { return ack_all() > 0; }, 10s));
    ASSERT_EQ(vm_state(vm_id), "running");
    auto charge = orchestrator::domain::BuildTransaction(
        "test-charge:" + vm_id, orchestrator::domain::TransactionKind::kCharge,
        {{orchestrator::domain::UserBalance(wallet), Amount::Micros(-1)},
         {orchestrator::domain::NodeEarnings(
              orchestrator::domain::NormalizeWallet(kOperator).value()),
          Amount::Micros(1)}},
        json{{"vmId", vm_id}}, std::chrono::system_clock::now());
    ASSERT_TRUE(charge);
    ASSERT_TRUE(ledger_->Post(*charge));

    // Balance zero with a running VM: the job (every second) stops it, and says so.
    ASSERT_TRUE(testing::WaitUntil([&] { return vm_state(vm_id) == "stopping"; }, 15s))
        << vm_state(vm_id);
    auto balance = testing::HttpRequest(port_, "GET", "/api/billing/balance", {}, {header});
    ASSERT_TRUE(balance);
    const auto view = json::parse(balance->body);
    EXPECT_EQ(view["balance"], "0.000000");
    ASSERT_FALSE(view["events"].empty()) << view.dump();
    EXPECT_EQ(view["events"][0]["kind"], "vms_stopped");
    EXPECT_EQ(view["events"][0]["detail"]["vmIds"][0], vm_id);
    ASSERT_TRUE(testing::WaitUntil([&] { return ack_all() > 0; }, 10s));
    ASSERT_EQ(vm_state(vm_id), "stopped");  // stopped, not deleted
    // Not startable again before a deposit; the refusal changes nothing.
    auto unfunded =
        testing::HttpRequest(port_, "POST", "/api/vms/" + vm_id + "/start", {}, {header});
    ASSERT_TRUE(unfunded);
    EXPECT_EQ(unfunded->status, 402) << unfunded->body;
    EXPECT_EQ(vm_state(vm_id), "stopped");
    EXPECT_EQ(ack_all(), 0) << "no command reached the node";

    Deposit(Amount::Micros(50'000'000), 100, wallet);
    auto started =
        testing::HttpRequest(port_, "POST", "/api/vms/" + vm_id + "/start", {}, {header});
    ASSERT_TRUE(started);
    EXPECT_EQ(started->status, 202) << started->body;
    ASSERT_TRUE(testing::WaitUntil([&] { return ack_all() > 0; }, 10s));
    EXPECT_EQ(vm_state(vm_id), "running");
    balance = testing::HttpRequest(port_, "GET", "/api/billing/balance", {}, {header});
    ASSERT_TRUE(balance);
    EXPECT_EQ(json::parse(balance->body)["balance"], "50.000000");
}

}  // namespace
}  // namespace decloud
