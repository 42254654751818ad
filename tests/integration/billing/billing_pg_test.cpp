// The billing use cases on the real PostgreSQL ledger with an injected clock: idempotent deposits
// (also raced from two threads), payout reserve/settle/cancel, the database's own guards
// (balanced transactions, no overdraft, append-only), hourly metering (crash and rerun, a day of
// catch-up, stop/start within an hour, the revenue split), low balance and stop at zero, paging,
// and concurrent metering with reads. Every test ends with the ledger's invariant check.

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <pqxx/pqxx>
#include <set>
#include <thread>

#include "decloud/common/ids.hpp"
#include "decloud/testing/temp_pg_cluster.hpp"
#include "orchestrator/adapters/pg/migrations.hpp"
#include "orchestrator/adapters/pg/pg_auth_repository.hpp"
#include "orchestrator/adapters/pg/pg_ledger_repository.hpp"
#include "orchestrator/adapters/pg/pg_node_repository.hpp"
#include "orchestrator/adapters/pg/pg_pool.hpp"
#include "orchestrator/adapters/pg/pg_user_repository.hpp"
#include "orchestrator/adapters/pg/pg_vm_repository.hpp"
#include "orchestrator/app/billing_service.hpp"
#include "orchestrator/app/node_service.hpp"
#include "orchestrator/app/vm_service.hpp"

namespace decloud::orchestrator {
namespace {

using namespace std::chrono;
using domain::Amount;
using domain::VmAction;
using domain::VmState;
namespace pg = adapters::pg;

constexpr const char* kAlice = "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB";
constexpr const char* kBob = "0x52908400098527886E0F7030069857D2E4169EE7";
constexpr const char* kOperator = "0x8617E340B3D01FA5F11F306F4090FD50E238070D";
constexpr const char* kRelayOperator = "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359";
const std::string kAliceKey = "0xdbf03b407c01e7cd3cbea99509d93f8dddc8c6fb";
const std::string kOperatorKey = "0x8617e340b3d01fa5f11f306f4090fd50e238070d";
const std::string kRelayKey = "0xfb6916095ca1df60bb79ce92ce3ea74c37c5d359";

std::string TxHash(int n) {
    std::string h = std::to_string(n);
    return "0x" + std::string(64 - h.size(), 'a') + h;
}

Amount Usdc(std::int64_t whole) { return Amount::Micros(whole * domain::kMicrosPerUnit); }

class BillingPgTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() { cluster_ = new testing::TempPgCluster(); }
    static void TearDownTestSuite() { delete cluster_; }

    void SetUp() override {
        const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
        url_ = cluster_->CreateDatabase(std::string("billing_") + info->name());
        pool_ = std::make_unique<pg::PgPool>(url_, 8);
        ASSERT_TRUE(pg::RunMigrations(*pool_));
        node_repository_ = std::make_unique<pg::PgNodeRepository>(*pool_);
        user_repository_ = std::make_unique<pg::PgUserRepository>(*pool_);
        vm_repository_ = std::make_unique<pg::PgVmRepository>(*pool_);
        ledger_ = std::make_unique<pg::PgLedgerRepository>(*pool_);
        nodes_ = std::make_unique<app::NodeService>(*node_repository_, clock_,
                                                    app::NodeServiceOptions{});
        vms_ = std::make_unique<app::VmService>(*vm_repository_, *user_repository_, clock_,
                                                app::VmServiceOptions{});
        billing_ = std::make_unique<app::BillingService>(*ledger_, *vms_, clock_, options_);
        pg::PgAuthRepository auth(*pool_);
        for (const char* wallet : {kAlice, kBob})
            ASSERT_TRUE(auth.CreateSession(common::NewUuid(), wallet, "", clock_.Now(),
                                           clock_.Now() + hours{1}));
    }

    // The invariants hold after every test, whatever it did.
    void TearDown() override {
        if (!billing_) return;
        auto report = billing_->Invariants();
        ASSERT_TRUE(report) << report.error().message;
        for (const auto& v : report->violations) ADD_FAILURE() << "ledger invariant: " << v;
    }

    std::string AddNode(const char* operator_wallet = kOperator, std::uint64_t price = 25) {
        const auto key = crypto::Ed25519KeyPair::Generate();
        proto::RegisterNodeRequest r;
        r.node_public_key = key.PublicKeyBase64();
        r.operator_wallet = operator_wallet;
        r.public_ip = "203.0.113.10";
        r.region = "eu-west";
        r.resources.cpu_model = "CPU";
        r.resources.cpu_cores = 8;
        r.resources.cpu_threads = 16;
        r.resources.memory_bytes = 32ull << 30;
        r.resources.storage_total_bytes = 500ull << 30;
        r.resources.storage_free_bytes = 200ull << 30;
        r.resources.vms_enabled = true;
        r.compute = {800, 8000, 8};
        r.price_per_point_micro_usdc = price;
        r.timestamp = common::FormatRfc3339(clock_.Now());
        const auto body = proto::ToJson(r).dump();
        auto reg = nodes_->Register(body, key.SignBase64(body), "203.0.113.10");
        EXPECT_TRUE(reg) << reg.error().message;
        proto::HeartbeatRequest hb;
        hb.usage = {5, 1 << 30, 1ull << 30, 0};
        hb.agent_version = "0.1.0";
        EXPECT_EQ(nodes_->TryHeartbeat(reg->node_id, reg->node_token, hb),
                  app::FastAuth::kAccepted);
        EXPECT_TRUE(nodes_->FlushHeartbeats());
        return reg->node_id;
    }

    // Acknowledges every command waiting for the node (the agent did what it was told).
    void AckAll(const std::string& node_id) {
        auto taken = vms_->TakeCommands(node_id);
        ASSERT_TRUE(taken) << taken.error().message;
        for (const auto& c : *taken) {
            proto::CommandResult r;
            r.command_id = c.id;
            r.success = true;
            r.data = {{"addresses", nlohmann::json::array()}};
            ASSERT_TRUE(vms_->CompleteCommand(node_id, r));
        }
    }

    // A VM of `owner` running from now on on `node_id`.
    ports::VmRecord RunningVm(const std::string& node_id, const char* owner = kAlice) {
        app::CreateVmRequest r;
        r.name = "billed";
        r.requirements.cores = 2;
        r.requirements.memory_mib = 2048;
        r.requirements.disk_gib = 20;
        r.requirements.tier = domain::QualityTier::kStandard;
        r.requirements.target_node_id = node_id;
        r.image = "debian-12";
        auto created = vms_->Create(owner, std::move(r));
        EXPECT_TRUE(created) << created.error().message;
        AckAll(node_id);
        auto vm = vms_->Get(owner, created->vm.id);
        EXPECT_TRUE(vm && vm->state == VmState::kRunning);
        EXPECT_GT(vm->hourly_rate_micro_usdc, 0u);
        return *vm;
    }

    void Deposit(const char* wallet, Amount amount, int n) {
        auto r = billing_->CreditDeposit(wallet, amount, 137, TxHash(n), 0);
        ASSERT_TRUE(r) << r.error().message;
    }

    Amount BalanceOf(const domain::AccountRef& account) {
        auto b = ledger_->Balance(account);
        EXPECT_TRUE(b) << b.error().message;
        return b ? *b : Amount::Micros(-1);
    }

    app::MeteringReport Meter() {
        auto r = billing_->RunMetering();
        EXPECT_TRUE(r) << r.error().message;
        EXPECT_TRUE(r && r->ran);
        return r ? *r : app::MeteringReport{};
    }

    void Exec(const std::string& sql) {
        pqxx::connection c(url_);
        pqxx::work tx(c);
        tx.exec0(sql);
        tx.commit();
    }

    static testing::TempPgCluster* cluster_;
    std::string url_;
    common::ManualClock clock_{common::TimePoint{seconds{1'800'000'000}}};  // an hour boundary
    app::BillingOptions options_;
    std::unique_ptr<pg::PgPool> pool_;
    std::unique_ptr<pg::PgNodeRepository> node_repository_;
    std::unique_ptr<pg::PgUserRepository> user_repository_;
    std::unique_ptr<pg::PgVmRepository> vm_repository_;
    std::unique_ptr<pg::PgLedgerRepository> ledger_;
    std::unique_ptr<app::NodeService> nodes_;
    std::unique_ptr<app::VmService> vms_;
    std::unique_ptr<app::BillingService> billing_;
};

testing::TempPgCluster* BillingPgTest::cluster_ = nullptr;

TEST_F(BillingPgTest, DepositIsCreditedOncePerChainTransactionAndLog) {
    auto first = billing_->CreditDeposit(kAlice, Usdc(10), 137, TxHash(1), 4);
    ASSERT_TRUE(first) << first.error().message;
    EXPECT_FALSE(first->replayed);
    // The watcher sees the same log again (restart, overlap): nothing moves, same answer.
    auto again =
        billing_->CreditDeposit(kAlice, Usdc(10), 137, "0x" + std::string(63, 'A') + "1", 4);
    ASSERT_TRUE(again) << again.error().message;
    EXPECT_TRUE(again->replayed);
    EXPECT_EQ(again->transaction_id, first->transaction_id);
    // Another log of the same transaction is another deposit; another amount on a used key is not.
    ASSERT_TRUE(billing_->CreditDeposit(kAlice, Usdc(1), 137, TxHash(1), 5));
    auto forged = billing_->CreditDeposit(kAlice, Usdc(99), 137, TxHash(1), 4);
    ASSERT_FALSE(forged);
    EXPECT_EQ(forged.error().code, common::ErrorCode::kConflict);
    EXPECT_EQ(BalanceOf(domain::UserBalance(kAliceKey)), Usdc(11));
    EXPECT_EQ(BalanceOf(domain::PlatformAccount(domain::AccountKind::kTreasuryIn)), Usdc(-11));

    EXPECT_FALSE(billing_->CreditDeposit(kAlice, Amount::Micros(0), 137, TxHash(2), 0));
    EXPECT_FALSE(billing_->CreditDeposit("alice", Usdc(1), 137, TxHash(2), 0));
    EXPECT_FALSE(billing_->CreditDeposit(kAlice, Usdc(1), 137, "0x1234", 0));
}

TEST_F(BillingPgTest, StartingAPaidVmNeedsABalanceAboveZero) {
    const auto refused = billing_->MayStart(kAlice, 10);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, common::ErrorCode::kPaymentRequired);
    EXPECT_NE(refused.error().message.find("0.000010 USDC an hour"), std::string::npos)
        << refused.error().message;
    EXPECT_TRUE(billing_->MayStart(kAlice, 0)) << "a free node needs no balance";
    Deposit(kAlice, Amount::Micros(1), 1);
    EXPECT_TRUE(billing_->MayStart(kAlice, 10));
    EXPECT_TRUE(billing_->MayStart("0xdbf03b407c01e7cd3cbea99509d93f8dddc8c6fb", 10))
        << "the wallet is matched whatever its letter case";
    EXPECT_FALSE(billing_->MayStart("not a wallet", 10));
}

TEST_F(BillingPgTest, ConcurrentReplaysOfOneDepositCreditItOnce) {
    constexpr int kThreads = 4;
    constexpr int kRounds = 25;
    std::atomic<int> fresh{0};
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < kRounds; ++i) {
                auto r =
                    billing_->CreditDeposit(kAlice, Amount::Micros(1'234'567), 137, TxHash(i), 0);
                if (!r)
                    ++failures;
                else if (!r->replayed)
                    ++fresh;
            }
        });
    for (auto& t : threads) t.join();
    EXPECT_EQ(failures.load(), 0);
    EXPECT_EQ(fresh.load(), kRounds);
    EXPECT_EQ(BalanceOf(domain::UserBalance(kAliceKey)), Amount::Micros(1'234'567LL * kRounds));
}

TEST_F(BillingPgTest, TheDatabaseRefusesUnbalancedOverdrawnAndEditedMovements) {
    Deposit(kAlice, Usdc(5), 1);
    // Overdraft through the repository: refused, nothing written.
    auto tx = domain::BuildTransaction(
        "overdraw", domain::TransactionKind::kCharge,
        {{domain::UserBalance(kAliceKey), Usdc(-6)}, {domain::NodeEarnings(kOperatorKey), Usdc(6)}},
        nlohmann::json::object(), clock_.Now());
    ASSERT_TRUE(tx);
    auto posted = ledger_->Post(*tx);
    ASSERT_FALSE(posted);
    EXPECT_EQ(posted.error().code, common::ErrorCode::kUnprocessable);
    auto none = ledger_->FindByKey("overdraw");
    ASSERT_TRUE(none);
    EXPECT_FALSE(*none);

    // Unbalanced entries written by hand: refused at commit by the deferred trigger.
    EXPECT_THROW(Exec("INSERT INTO ledger_transactions (idempotency_key, kind, created_at) "
                      "VALUES ('bad', 'deposit', now());"
                      "INSERT INTO ledger_entries SELECT currval('ledger_transactions_id_seq'), "
                      "id, 7 FROM ledger_accounts WHERE kind = 'treasury_in'"),
                 std::exception);
    // Append-only.
    EXPECT_THROW(Exec("UPDATE ledger_entries SET amount = amount * 2"), std::exception);
    EXPECT_THROW(Exec("DELETE FROM ledger_transactions"), std::exception);
    // A duplicate key is refused by the UNIQUE constraint itself.
    EXPECT_THROW(Exec("INSERT INTO ledger_transactions (idempotency_key, kind, created_at) "
                      "SELECT idempotency_key, kind, created_at FROM ledger_transactions"),
                 std::exception);
    EXPECT_EQ(BalanceOf(domain::UserBalance(kAliceKey)), Usdc(5));
}

TEST_F(BillingPgTest, PayoutsReserveSettleAndCancelOnce) {
    // Earnings: 3 USDC as node operator, 2 as relay operator (posted as one charge).
    Deposit(kAlice, Usdc(10), 1);
    auto charge = domain::BuildTransaction("charge:setup", domain::TransactionKind::kCharge,
                                           {{domain::UserBalance(kAliceKey), Usdc(-5)},
                                            {domain::NodeEarnings(kOperatorKey), Usdc(3)},
                                            {domain::RelayEarnings(kOperatorKey), Usdc(2)}},
                                           nlohmann::json::object(), clock_.Now());
    ASSERT_TRUE(charge);
    ASSERT_TRUE(ledger_->Post(*charge));

    auto too_much = billing_->ReservePayout(kOperator, Usdc(6), "p0");
    ASSERT_FALSE(too_much);
    EXPECT_EQ(too_much.error().code, common::ErrorCode::kUnprocessable);

    auto reserved = billing_->ReservePayout(kOperator, Usdc(4), "p1");
    ASSERT_TRUE(reserved) << reserved.error().message;
    EXPECT_EQ(BalanceOf(domain::NodeEarnings(kOperatorKey)), Usdc(0));
    EXPECT_EQ(BalanceOf(domain::RelayEarnings(kOperatorKey)), Usdc(1));
    EXPECT_EQ(BalanceOf(domain::PayoutsInFlight(kOperatorKey)), Usdc(4));
    // Replays answer from the first reserve even though the earnings left no longer cover it.
    auto replay = billing_->ReservePayout(kOperator, Usdc(4), "p1");
    ASSERT_TRUE(replay) << replay.error().message;
    EXPECT_TRUE(replay->replayed);
    EXPECT_EQ(replay->transaction_id, reserved->transaction_id);
    EXPECT_EQ(billing_->ReservePayout(kOperator, Usdc(3), "p1").error().code,
              common::ErrorCode::kConflict);

    auto settled = billing_->SettlePayout("p1");
    ASSERT_TRUE(settled) << settled.error().message;
    auto settled_again = billing_->SettlePayout("p1");
    ASSERT_TRUE(settled_again);
    EXPECT_TRUE(settled_again->replayed);
    EXPECT_EQ(billing_->CancelPayout("p1").error().code, common::ErrorCode::kConflict);
    EXPECT_EQ(BalanceOf(domain::PayoutsInFlight(kOperatorKey)), Usdc(0));
    EXPECT_EQ(BalanceOf(domain::PlatformAccount(domain::AccountKind::kTreasuryOut)), Usdc(4));

    ASSERT_TRUE(billing_->ReservePayout(kOperator, Usdc(1), "p2"));
    auto cancelled = billing_->CancelPayout("p2");
    ASSERT_TRUE(cancelled) << cancelled.error().message;
    EXPECT_TRUE(billing_->CancelPayout("p2")->replayed);
    EXPECT_EQ(billing_->SettlePayout("p2").error().code, common::ErrorCode::kConflict);
    EXPECT_EQ(BalanceOf(domain::RelayEarnings(kOperatorKey)), Usdc(1));
    EXPECT_EQ(BalanceOf(domain::PayoutsInFlight(kOperatorKey)), Usdc(0));
    EXPECT_EQ(billing_->SettlePayout("never").error().code, common::ErrorCode::kNotFound);
}

TEST_F(BillingPgTest, SettleAndCancelRacingEndThePayoutOneWay) {
    Deposit(kAlice, Usdc(10), 1);
    auto charge = domain::BuildTransaction("charge:setup", domain::TransactionKind::kCharge,
                                           {{domain::UserBalance(kAliceKey), Usdc(-10)},
                                            {domain::NodeEarnings(kOperatorKey), Usdc(10)}},
                                           nlohmann::json::object(), clock_.Now());
    ASSERT_TRUE(ledger_->Post(*charge));
    for (int i = 0; i < 10; ++i) {
        const std::string id = "race-" + std::to_string(i);
        ASSERT_TRUE(billing_->ReservePayout(kOperator, Usdc(1), id));
        std::atomic<int> ok{0};
        std::thread settle([&] { ok += billing_->SettlePayout(id) ? 1 : 0; });
        std::thread cancel([&] { ok += billing_->CancelPayout(id) ? 1 : 0; });
        settle.join();
        cancel.join();
        EXPECT_EQ(ok.load(), 1) << id;
    }
    EXPECT_EQ(BalanceOf(domain::PayoutsInFlight(kOperatorKey)), Usdc(0));
    const auto paid = BalanceOf(domain::PlatformAccount(domain::AccountKind::kTreasuryOut));
    EXPECT_EQ(paid.micros() + BalanceOf(domain::NodeEarnings(kOperatorKey)).micros(),
              Usdc(10).micros());
}

TEST_F(BillingPgTest, MeteringBillsEachHourOnceAndSplitsExactly) {
    const auto node = AddNode();
    const auto relay = AddNode(kRelayOperator);
    Deposit(kAlice, Usdc(1000), 1);
    const auto vm = RunningVm(node);
    Exec("UPDATE vms SET relay_node_id = '" + relay + "' WHERE id = '" + vm.id + "'");
    const auto rate = Amount::Micros(static_cast<std::int64_t>(vm.hourly_rate_micro_usdc));

    clock_.Advance(hours{3} + minutes{20});
    const auto first = Meter();
    EXPECT_EQ(first.charges, 3u);
    EXPECT_EQ(first.already_billed, 0u);
    EXPECT_EQ(first.billed_micros, 3 * rate.micros());

    const auto split =
        domain::SplitCharge(rate, options_.platform_fee_bps, true, options_.relay_share_bps);
    EXPECT_EQ(BalanceOf(domain::NodeEarnings(kOperatorKey)).micros(), 3 * split.node.micros());
    EXPECT_EQ(BalanceOf(domain::RelayEarnings(kRelayKey)).micros(), 3 * split.relay.micros());
    EXPECT_EQ(BalanceOf(domain::PlatformAccount(domain::AccountKind::kPlatformFee)).micros(),
              3 * split.platform_fee.micros());
    EXPECT_EQ(BalanceOf(domain::UserBalance(kAliceKey)).micros(),
              Usdc(1000).micros() - 3 * rate.micros());

    // Run again at once: nothing new. Then "crash" before the watermark was written (set it
    // back) and rerun: every slice is found billed, nothing moves.
    EXPECT_EQ(Meter().charges, 0u);
    Exec("UPDATE billing_metering SET metered_until = to_timestamp(1800000000)");
    const auto rerun = Meter();
    EXPECT_EQ(rerun.charges, 0u);
    EXPECT_EQ(rerun.already_billed, 3u);
    EXPECT_EQ(BalanceOf(domain::UserBalance(kAliceKey)).micros(),
              Usdc(1000).micros() - 3 * rate.micros());

    // The charge as its owner sees it.
    auto page = billing_->Transactions(kAlice, 10, "");
    ASSERT_TRUE(page) << page.error().message;
    ASSERT_EQ(page->transactions.size(), 4u);  // 3 charges and the deposit, newest first
    const auto& newest = page->transactions.front().transaction;
    EXPECT_EQ(newest.kind, domain::TransactionKind::kCharge);
    EXPECT_EQ(newest.metadata["runningSeconds"], 3600);
    EXPECT_EQ(newest.metadata["vmId"], vm.id);
}

TEST_F(BillingPgTest, CatchUpAfterADayDownBillsTwentyFourFullHours) {
    const auto node = AddNode();
    Deposit(kAlice, Usdc(1000), 1);
    const auto vm = RunningVm(node);
    const auto rate = static_cast<std::int64_t>(vm.hourly_rate_micro_usdc);
    ASSERT_EQ(Meter().charges, 0u);  // the first run starts the watermark at this hour

    clock_.Advance(hours{24} + seconds{59});
    const auto report = Meter();
    EXPECT_EQ(report.charges, 24u);
    EXPECT_EQ(report.billed_micros, 24 * rate);
    auto txs = ledger_->TransactionsOf(kAliceKey, 100, 0);
    ASSERT_TRUE(txs);
    std::set<std::string> hours_billed;
    for (const auto& t : *txs) {
        if (t.transaction.kind != domain::TransactionKind::kCharge) continue;
        EXPECT_EQ(t.transaction.metadata["runningSeconds"], 3600);
        hours_billed.insert(t.transaction.metadata["hourStart"].get<std::string>());
    }
    EXPECT_EQ(hours_billed.size(), 24u);
    EXPECT_EQ(BalanceOf(domain::UserBalance(kAliceKey)).micros(), Usdc(1000).micros() - 24 * rate);
}

TEST_F(BillingPgTest, StopAndStartWithinAnHourBillsOnlyRunningSeconds) {
    const auto node = AddNode();
    Deposit(kAlice, Usdc(1000), 1);
    clock_.Advance(minutes{5});
    const auto vm = RunningVm(node);  // running from 00:05:00
    const auto rate = Amount::Micros(static_cast<std::int64_t>(vm.hourly_rate_micro_usdc));
    clock_.Advance(minutes{10} + milliseconds{400});  // 00:15:00.4
    ASSERT_TRUE(vms_->Act(kAlice, vm.id, VmAction::kStop));
    clock_.Advance(seconds{30});
    AckAll(node);  // stopped at 00:15:30.4
    clock_.Advance(minutes{20});
    ASSERT_TRUE(vms_->Act(kAlice, vm.id, VmAction::kStart));
    clock_.Advance(seconds{20});
    AckAll(node);                 // running again from 00:35:50.4
    clock_.Advance(minutes{30});  // 01:05:50.4

    const auto report = Meter();
    ASSERT_EQ(report.charges, 1u);
    // Only time in `running` counts, in whole seconds: 00:05:00 -> 00:15:00 (the stop request
    // leaves running), then 00:35:50 (the agent's start acknowledged) -> 01:00:00.
    const std::int64_t seconds_running = 600 + (3600 - (35 * 60 + 50));
    EXPECT_EQ(report.billed_micros, domain::ChargeForSeconds(rate, seconds_running).micros());
    auto txs = ledger_->TransactionsOf(kAliceKey, 10, 0);
    ASSERT_TRUE(txs);
    EXPECT_EQ(txs->front().transaction.metadata["runningSeconds"], seconds_running);
}

TEST_F(BillingPgTest, LowBalanceWarnsThenStopsAtZeroAndADepositAllowsAStart) {
    const auto node = AddNode();
    const auto vm = RunningVm(node);
    const auto rate = static_cast<std::int64_t>(vm.hourly_rate_micro_usdc);
    // Half an hour's worth: warned (not stopped).
    Deposit(kAlice, Amount::Micros(rate / 2), 1);
    auto checked = billing_->CheckBalances();
    ASSERT_TRUE(checked) << checked.error().message;
    EXPECT_EQ(checked->warned, std::vector<std::string>{kAliceKey});
    EXPECT_TRUE(checked->stopped.empty());
    EXPECT_TRUE(billing_->CheckBalances()->warned.empty());  // once per hour
    auto view = billing_->Balance(kAlice);
    ASSERT_TRUE(view);
    EXPECT_TRUE(view->low);
    ASSERT_FALSE(view->events.empty());
    EXPECT_EQ(view->events.front().kind, "low_balance");

    // An hour later the charge takes what there is (never below zero) and the VM is stopped.
    clock_.Advance(hours{1} + minutes{1});
    ASSERT_TRUE(billing_->Tick());
    EXPECT_EQ(BalanceOf(domain::UserBalance(kAliceKey)), Amount::Micros(0));
    auto stopped = vms_->Get(kAlice, vm.id);
    ASSERT_TRUE(stopped);
    EXPECT_EQ(stopped->state, VmState::kStopping);
    AckAll(node);
    EXPECT_EQ(vms_->Get(kAlice, vm.id)->state, VmState::kStopped);
    view = billing_->Balance(kAlice);
    ASSERT_TRUE(view);
    EXPECT_EQ(view->events.front().kind, "vms_stopped");

    // Not deleted: after a deposit the owner starts it again.
    Deposit(kAlice, Usdc(5), 2);
    ASSERT_TRUE(vms_->Act(kAlice, vm.id, VmAction::kStart));
    AckAll(node);
    EXPECT_EQ(vms_->Get(kAlice, vm.id)->state, VmState::kRunning);
}

TEST_F(BillingPgTest, TransactionPagesAreStableWhileNewOnesArrive) {
    for (int i = 0; i < 7; ++i) Deposit(kAlice, Usdc(i + 1), i);
    auto first = billing_->Transactions(kAlice, 3, "");
    ASSERT_TRUE(first);
    ASSERT_EQ(first->transactions.size(), 3u);
    ASSERT_FALSE(first->next_cursor.empty());
    Deposit(kAlice, Usdc(100), 100);  // arrives between pages
    auto second = billing_->Transactions(kAlice, 3, first->next_cursor);
    ASSERT_TRUE(second);
    auto third = billing_->Transactions(kAlice, 3, second->next_cursor);
    ASSERT_TRUE(third);
    EXPECT_TRUE(third->next_cursor.empty());
    std::vector<std::int64_t> ids;
    for (const auto* page : {&*first, &*second, &*third})
        for (const auto& t : page->transactions) ids.push_back(t.id);
    ASSERT_EQ(ids.size(), 7u);
    EXPECT_TRUE(std::is_sorted(ids.rbegin(), ids.rend()));
    EXPECT_EQ(std::set<std::int64_t>(ids.begin(), ids.end()).size(), 7u);
    EXPECT_FALSE(billing_->Transactions(kAlice, 3, "abc"));
    auto bob = billing_->Transactions(kBob, 10, "");
    ASSERT_TRUE(bob);
    EXPECT_TRUE(bob->transactions.empty());
}

TEST_F(BillingPgTest, ConcurrentMeteringAndReadsKeepTheLedgerSound) {
    const auto node = AddNode();
    Deposit(kAlice, Amount::Micros(20'000), 1);  // runs out within the simulated hours
    Deposit(kBob, Usdc(100), 2);
    std::vector<ports::VmRecord> vms;
    for (int i = 0; i < 3; ++i) vms.push_back(RunningVm(node, kAlice));
    for (int i = 0; i < 2; ++i) vms.push_back(RunningVm(node, kBob));
    ASSERT_TRUE(billing_->RunMetering());

    std::atomic<bool> done{false};
    std::atomic<int> errors{0};
    std::atomic<int> ran{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 3; ++t)
        threads.emplace_back([&] {
            while (!done) {
                auto r = billing_->RunMetering();
                if (!r)
                    ++errors;
                else if (r->ran)
                    ++ran;
            }
        });
    threads.emplace_back([&] {
        while (!done) {
            for (const char* w : {kAlice, kBob}) {
                auto b = billing_->Balance(w);
                if (!b || b->balance.IsNegative()) ++errors;
                if (!billing_->Transactions(w, 5, "")) ++errors;
            }
        }
    });
    for (int h = 0; h < 12; ++h) {
        clock_.Advance(minutes{30});
        std::this_thread::yield();
        auto inv = billing_->Invariants();
        ASSERT_TRUE(inv);
        EXPECT_TRUE(inv->ok());
    }
    // Let the runners catch up with the last hour, bounded.
    for (int i = 0; i < 200 && ran.load() < 5; ++i) std::this_thread::sleep_for(milliseconds{10});
    done = true;
    for (auto& t : threads) t.join();
    EXPECT_EQ(errors.load(), 0);
    ASSERT_TRUE(billing_->RunMetering());
    // Six whole hours passed: Bob paid exactly 6 hours of his two VMs; Alice never below zero.
    std::int64_t bob_rate = 0;
    for (const auto& vm : vms)
        if (vm.owner_wallet == kBob)
            bob_rate += static_cast<std::int64_t>(vm.hourly_rate_micro_usdc);
    EXPECT_EQ(BalanceOf(domain::UserBalance(domain::NormalizeWallet(kBob).value())).micros(),
              Usdc(100).micros() - 6 * bob_rate);
    EXPECT_GE(BalanceOf(domain::UserBalance(kAliceKey)).micros(), 0);
}

}  // namespace
}  // namespace decloud::orchestrator
