// The deposit watcher and the payout batch on a real anvil and a real PostgreSQL: deposits are
// credited after the confirmations and once across restarts (the scanner state lives in the
// database), an unconfirmed deposit taken away by a reorganisation is never credited, and payouts
// pay each operator exactly once whatever point a "crash" (dropping every object) hits: after
// reserve, after signing, after broadcast before settle. Every test ends with the ledger's
// invariant check.

#include <gtest/gtest.h>

#include <pqxx/pqxx>

#include "../chain/chain_fixture.hpp"
#include "decloud/chain/payout_sender.hpp"
#include "decloud/testing/temp_pg_cluster.hpp"
#include "orchestrator/adapters/pg/migrations.hpp"
#include "orchestrator/adapters/pg/pg_chain_repository.hpp"
#include "orchestrator/adapters/pg/pg_ledger_repository.hpp"
#include "orchestrator/adapters/pg/pg_pool.hpp"
#include "orchestrator/adapters/pg/pg_user_repository.hpp"
#include "orchestrator/adapters/pg/pg_vm_repository.hpp"
#include "orchestrator/app/billing_service.hpp"
#include "orchestrator/app/deposit_watcher.hpp"
#include "orchestrator/app/payout_service.hpp"
#include "orchestrator/app/vm_service.hpp"

namespace decloud::orchestrator {
namespace {

using chain::Address;
using chain::U256;
using domain::Amount;
namespace pg = adapters::pg;
using decloud::testing::RunSync;

std::string Lower(std::string text) {
    for (auto& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return text;
}

class ChainBillingTest : public chain::testing_support::ChainFixture {
  protected:
    static void SetUpTestSuite() { cluster_ = new decloud::testing::TempPgCluster(); }
    static void TearDownTestSuite() { delete cluster_; }

    void SetUp() override {
        ChainFixture::SetUp();
        token_ = DeployToken(treasury_);
        const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
        url_ = cluster_->CreateDatabase(std::string("chain_") + info->name());
        pool_ = std::make_unique<pg::PgPool>(url_, 8);
        ASSERT_TRUE(pg::RunMigrations(*pool_));
        user_repository_ = std::make_unique<pg::PgUserRepository>(*pool_);
        vm_repository_ = std::make_unique<pg::PgVmRepository>(*pool_);
        ledger_ = std::make_unique<pg::PgLedgerRepository>(*pool_);
        chain_repository_ = std::make_unique<pg::PgChainRepository>(*pool_);
        vms_ = std::make_unique<app::VmService>(*vm_repository_, *user_repository_, clock_,
                                                app::VmServiceOptions{});
        app::BillingOptions options;
        options.deposit.chain_id = anvil_->chain_id();
        billing_ = std::make_unique<app::BillingService>(*ledger_, *vms_, clock_, options);
    }

    void TearDown() override {
        if (billing_) {
            auto report = billing_->Invariants();
            ASSERT_TRUE(report) << report.error().message;
            for (const auto& v : report->violations) ADD_FAILURE() << "ledger invariant: " << v;
        }
        if (HasFailure()) std::cerr << anvil_->Log();
    }

    app::DepositWatcherOptions WatchOptions() {
        app::DepositWatcherOptions o;
        o.chain_id = anvil_->chain_id();
        o.token = token_;
        o.deposit_address = platform_.address();
        o.confirmations = 3;
        o.start_block = 1;
        o.max_range = 4;
        return o;
    }

    // A fresh watcher with its own chain connection, as a (re)started orchestrator builds it.
    struct Watcher {
        std::unique_ptr<app::ChainSession> session;
        std::unique_ptr<app::DepositWatcher> watcher;
    };
    Watcher NewWatcher() {
        Watcher w;
        w.session = app::ChainSession::Open(anvil_->url(), std::chrono::seconds{10}).value();
        w.watcher = std::make_unique<app::DepositWatcher>(*w.session, *chain_repository_, *billing_,
                                                          WatchOptions());
        return w;
    }

    app::DepositWatchReport Tick(Watcher& w) {
        auto r = w.watcher->Tick();
        EXPECT_TRUE(r) << r.error().message;
        EXPECT_TRUE(r && r->ran);
        return r ? *r : app::DepositWatchReport{};
    }

    struct Payer {
        std::unique_ptr<app::ChainSession> session;
        std::unique_ptr<pg::PgPayoutJournal> journal;
        std::unique_ptr<app::PayoutService> service;
    };
    Payer NewPayer() {
        Payer p;
        p.session = app::ChainSession::Open(anvil_->url(), std::chrono::seconds{10}).value();
        p.journal = std::make_unique<pg::PgPayoutJournal>(*pool_);
        app::PayoutOptions options;
        options.sender.chain_id = anvil_->chain_id();
        options.sender.token = token_;
        options.sender.confirmations = 2;
        options.minimum = Amount::Micros(10'000'000);
        p.service = std::make_unique<app::PayoutService>(*p.session, *chain_repository_, *p.journal,
                                                         *billing_, treasury_, clock_, options);
        return p;
    }

    app::PayoutReport Tick(Payer& p) {
        auto r = p.service->Tick();
        EXPECT_TRUE(r) << r.error().message;
        EXPECT_TRUE(r && r->ran);
        return r ? *r : app::PayoutReport{};
    }

    // Earnings as metering leaves them: a user deposit, then a charge paying the operator.
    void GiveEarnings(const Address& operator_address, Amount amount, int n) {
        const std::string user = "0x" + std::string(39, '1') + std::to_string(n % 10);
        const std::string hash = "0x" + std::string(63, 'c') + std::to_string(n % 10);
        ASSERT_TRUE(billing_->CreditDeposit(user, amount, 1, hash, 0));
        auto tx = domain::BuildTransaction(
            "test-charge-" + std::to_string(n), domain::TransactionKind::kCharge,
            {{domain::UserBalance(user), Amount::Micros(-amount.micros())},
             {domain::NodeEarnings(Lower(chain::ToString(operator_address))), amount}},
            nlohmann::json::object(), clock_.Now());
        ASSERT_TRUE(tx) << tx.error().message;
        ASSERT_TRUE(ledger_->Post(*tx));
    }

    Amount LedgerBalance(const domain::AccountRef& account) {
        auto b = ledger_->Balance(account);
        EXPECT_TRUE(b) << b.error().message;
        return b ? *b : Amount::Micros(-1);
    }

    std::string UserWallet() { return Lower(chain::ToString(user_.address())); }

    std::int64_t Count(const std::string& sql) {
        pqxx::connection c(url_);
        pqxx::work tx(c);
        return tx.exec1(sql)[0].as<std::int64_t>();
    }

    std::uint64_t TreasuryNonce() {
        return RunSync(io_,
                       chain_->GetTransactionCount(treasury_.address(), chain::BlockTag::kLatest))
            .value();
    }

    static Address Operator(int n) {
        Address a{};
        a[0] = 0x77;
        a[19] = static_cast<std::uint8_t>(n);
        return a;
    }

    static decloud::testing::TempPgCluster* cluster_;
    chain::PrivateKey treasury_ = Key(decloud::testing::kAnvilKey0);
    chain::PrivateKey platform_ = Key(decloud::testing::kAnvilKey1);
    chain::PrivateKey user_ = Key(decloud::testing::kAnvilKey2);
    Address token_{};
    std::string url_;
    common::ManualClock clock_{common::TimePoint{std::chrono::seconds{1'800'000'000}}};
    std::unique_ptr<pg::PgPool> pool_;
    std::unique_ptr<pg::PgUserRepository> user_repository_;
    std::unique_ptr<pg::PgVmRepository> vm_repository_;
    std::unique_ptr<pg::PgLedgerRepository> ledger_;
    std::unique_ptr<pg::PgChainRepository> chain_repository_;
    std::unique_ptr<app::VmService> vms_;
    std::unique_ptr<app::BillingService> billing_;
};

decloud::testing::TempPgCluster* ChainBillingTest::cluster_ = nullptr;

TEST_F(ChainBillingTest, ADepositIsCreditedOnceAfterTheConfirmationsAcrossRestarts) {
    ASSERT_TRUE(TransferToken(treasury_, token_, user_.address(), U256(100'000'000)).success);
    {
        auto w = NewWatcher();
        EXPECT_EQ(Tick(w).credited, 0u);
    }
    const auto receipt = TransferToken(user_, token_, platform_.address(), U256(5'250'000));
    ASSERT_TRUE(receipt.success);
    {
        // Seen, not confirmed: pending for the user, no money yet.
        auto w = NewWatcher();
        const auto r = Tick(w);
        EXPECT_EQ(r.seen, 1u);
        EXPECT_EQ(r.credited, 0u);
        auto pending = chain_repository_->PendingDeposits(UserWallet());
        ASSERT_TRUE(pending);
        ASSERT_EQ(pending->size(), 1u);
        EXPECT_EQ((*pending)[0].amount, U256(5'250'000));
        EXPECT_EQ((*pending)[0].tx_hash, chain::ToString(receipt.transaction_hash));
        EXPECT_EQ(LedgerBalance(domain::UserBalance(UserWallet())), Amount::Micros(0));
    }
    anvil_->Rpc("anvil_mine", {"0x2"});
    {
        // A restarted watcher continues from the stored state and credits it now.
        auto w = NewWatcher();
        const auto r = Tick(w);
        EXPECT_EQ(r.credited, 1u);
        EXPECT_EQ(r.credited_micros, 5'250'000);
        EXPECT_EQ(LedgerBalance(domain::UserBalance(UserWallet())), Amount::Micros(5'250'000));
        EXPECT_TRUE(chain_repository_->PendingDeposits(UserWallet()).value().empty());
    }
    // The state is lost between the credit and its save (a crash): the rescan replays the credit.
    {
        pqxx::connection c(url_);
        pqxx::work tx(c);
        tx.exec0("DELETE FROM chain_deposit_scanner");
        tx.commit();
    }
    anvil_->Rpc("anvil_mine", {"0x5"});
    for (int i = 0; i < 3; ++i) {
        auto w = NewWatcher();
        EXPECT_EQ(Tick(w).credited, 0u);
    }
    EXPECT_EQ(LedgerBalance(domain::UserBalance(UserWallet())), Amount::Micros(5'250'000));
    EXPECT_EQ(Count("SELECT count(*) FROM ledger_transactions WHERE kind = 'deposit'"), 1);
}

TEST_F(ChainBillingTest, ACreditedDepositIsNoLongerPendingBeforeTheScannerStateIsSaved) {
    ASSERT_TRUE(TransferToken(treasury_, token_, user_.address(), U256(100'000'000)).success);
    auto w = NewWatcher();
    Tick(w);
    const auto receipt = TransferToken(user_, token_, platform_.address(), U256(3'000'000));
    ASSERT_TRUE(receipt.success);
    EXPECT_EQ(Tick(w).seen, 1u);
    const auto pending = chain_repository_->PendingDeposits(UserWallet()).value();
    ASSERT_EQ(pending.size(), 1u);
    // The credit lands in the ledger; the watcher has not saved its state yet (the moment a
    // balance request can fall into): the deposit is balance, and no longer pending too.
    ASSERT_TRUE(billing_->CreditDeposit(UserWallet(), Amount::Micros(3'000'000),
                                        WatchOptions().chain_id, pending[0].tx_hash,
                                        pending[0].log_index));
    EXPECT_EQ(Count("SELECT count(*) FROM chain_pending_deposits"), 1);
    EXPECT_TRUE(chain_repository_->PendingDeposits(UserWallet()).value().empty());
    EXPECT_EQ(LedgerBalance(domain::UserBalance(UserWallet())), Amount::Micros(3'000'000));
}

TEST_F(ChainBillingTest, AReorganisedUnconfirmedDepositIsNeverCredited) {
    ASSERT_TRUE(TransferToken(treasury_, token_, user_.address(), U256(100'000'000)).success);
    auto w = NewWatcher();
    Tick(w);
    const auto snapshot = anvil_->Rpc("evm_snapshot");
    ASSERT_TRUE(TransferToken(user_, token_, platform_.address(), U256(7'000'000)).success);
    EXPECT_EQ(Tick(w).seen, 1u);
    EXPECT_EQ(chain_repository_->PendingDeposits(UserWallet()).value().size(), 1u);
    ASSERT_TRUE(anvil_->Rpc("evm_revert", {snapshot}).get<bool>());
    anvil_->Rpc("anvil_mine", {"0x2"});
    auto restarted = NewWatcher();
    const auto r = Tick(restarted);
    EXPECT_TRUE(r.reorg);
    EXPECT_EQ(r.dropped, 1u);
    anvil_->Rpc("anvil_mine", {"0xa"});
    EXPECT_EQ(Tick(restarted).credited, 0u);
    EXPECT_TRUE(chain_repository_->PendingDeposits(UserWallet()).value().empty());
    EXPECT_EQ(LedgerBalance(domain::UserBalance(UserWallet())), Amount::Micros(0));
}

TEST_F(ChainBillingTest, ADepositOfAnotherChainIsRefused) {
    auto session = app::ChainSession::Open(anvil_->url(), std::chrono::seconds{10}).value();
    auto options = WatchOptions();
    options.chain_id = 137;
    app::DepositWatcher watcher(*session, *chain_repository_, *billing_, options);
    auto r = watcher.Tick();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, common::ErrorCode::kUnprocessable);
}

TEST_F(ChainBillingTest, ACrashAfterBroadcastBeforeSettlePaysOnce) {
    GiveEarnings(Operator(1), Amount::Micros(12'500'000), 1);
    GiveEarnings(Operator(2), Amount::Micros(9'999'999), 2);  // below the minimum
    const auto nonce_before = TreasuryNonce();
    {
        auto p = NewPayer();
        const auto r = Tick(p);
        EXPECT_TRUE(r.batch_ran);
        EXPECT_EQ(r.reserved, 1u);
        EXPECT_EQ(r.submitted, 1u);
        EXPECT_EQ(r.settled, 0u);
        // The process dies here: sent (anvil mined it), not settled in the ledger.
    }
    EXPECT_EQ(BalanceOf(token_, Operator(1)), U256(12'500'000));
    EXPECT_EQ(LedgerBalance(domain::PayoutsInFlight(Lower(chain::ToString(Operator(1))))),
              Amount::Micros(12'500'000));
    anvil_->Rpc("anvil_mine", {"0x2"});
    for (int i = 0; i < 3; ++i) {
        auto p = NewPayer();
        const auto r = Tick(p);
        EXPECT_FALSE(r.batch_ran);
        EXPECT_EQ(r.in_flight, 0u);
        EXPECT_EQ(r.settled, i == 0 ? 1u : 0u);
    }
    EXPECT_EQ(BalanceOf(token_, Operator(1)), U256(12'500'000));
    EXPECT_EQ(BalanceOf(token_, Operator(2)), U256(0));
    EXPECT_EQ(TreasuryNonce(), nonce_before + 1);
    const auto op = Lower(chain::ToString(Operator(1)));
    EXPECT_EQ(LedgerBalance(domain::NodeEarnings(op)), Amount::Micros(0));
    EXPECT_EQ(LedgerBalance(domain::PayoutsInFlight(op)), Amount::Micros(0));
    EXPECT_EQ(Count("SELECT count(*) FROM ledger_transactions WHERE kind = 'payout_settle'"), 1);
    auto views = chain_repository_->PayoutsOf(op, 10).value();
    ASSERT_EQ(views.size(), 1u);
    EXPECT_EQ(views[0].state, "settled");
    EXPECT_EQ(views[0].chain_status, "confirmed");
    EXPECT_EQ(views[0].tx_hash.size(), 66u);
    app::ChainAccountService accounts(*chain_repository_);
    EXPECT_EQ(accounts.Earnings(op).value().paid, Amount::Micros(12'500'000));

    // A week later the next batch pays only what was earned since.
    GiveEarnings(Operator(1), Amount::Micros(10'000'000), 3);
    clock_.Advance(std::chrono::hours{24 * 7});
    auto p = NewPayer();
    EXPECT_EQ(Tick(p).reserved, 1u);
    anvil_->Rpc("anvil_mine", {"0x2"});
    EXPECT_EQ(Tick(p).settled, 1u);
    EXPECT_EQ(BalanceOf(token_, Operator(1)), U256(22'500'000));
    EXPECT_EQ(BalanceOf(token_, Operator(2)), U256(0));
}

TEST_F(ChainBillingTest, ACrashAfterReserveBeforeSigningStillPaysOnce) {
    GiveEarnings(Operator(3), Amount::Micros(20'000'000), 1);
    const auto op = Lower(chain::ToString(Operator(3)));
    // What the batch does first, then the process dies: reserved, nothing signed.
    ASSERT_TRUE(billing_->ReservePayout(op, Amount::Micros(20'000'000), "batch-1-" + op));
    ASSERT_TRUE(chain_repository_->SetLastPayoutBatch(clock_.Now()));
    const auto nonce_before = TreasuryNonce();
    auto p = NewPayer();
    auto r = Tick(p);
    EXPECT_EQ(r.submitted, 1u);
    EXPECT_EQ(r.reserved, 0u);
    anvil_->Rpc("anvil_mine", {"0x2"});
    r = Tick(p);
    EXPECT_EQ(r.settled, 1u);
    EXPECT_EQ(BalanceOf(token_, Operator(3)), U256(20'000'000));
    EXPECT_EQ(TreasuryNonce(), nonce_before + 1);
    EXPECT_EQ(LedgerBalance(domain::PayoutsInFlight(op)), Amount::Micros(0));
}

TEST_F(ChainBillingTest, ACrashAfterSigningBeforeBroadcastPaysOnce) {
    GiveEarnings(Operator(4), Amount::Micros(15'000'000), 1);
    const auto op = Lower(chain::ToString(Operator(4)));
    const std::string id = "batch-1-" + op;
    ASSERT_TRUE(billing_->ReservePayout(op, Amount::Micros(15'000'000), id));
    ASSERT_TRUE(chain_repository_->SetLastPayoutBatch(clock_.Now()));
    const auto nonce_before = TreasuryNonce();
    {
        // Signed and journaled in PostgreSQL, never broadcast.
        pg::PgPayoutJournal journal(*pool_);
        chain::PayoutSenderConfig config;
        config.chain_id = anvil_->chain_id();
        config.token = token_;
        config.confirmations = 2;
        chain::PayoutSender sender(*chain_, journal, treasury_, config);
        ASSERT_TRUE(sender.Start());
        auto prepared = RunSync(io_, sender.Prepare({id, Operator(4), U256(15'000'000)}));
        ASSERT_TRUE(prepared) << prepared.error().message;
    }
    EXPECT_EQ(TreasuryNonce(), nonce_before);
    auto p = NewPayer();
    for (int i = 0; i < 10 && LedgerBalance(domain::PayoutsInFlight(op)).micros() != 0; ++i) {
        Tick(p);
        anvil_->Rpc("anvil_mine", {"0x1"});
    }
    EXPECT_EQ(LedgerBalance(domain::PayoutsInFlight(op)), Amount::Micros(0));
    EXPECT_EQ(BalanceOf(token_, Operator(4)), U256(15'000'000));
    EXPECT_EQ(TreasuryNonce(), nonce_before + 1);
    EXPECT_EQ(Count("SELECT count(*) FROM chain_payout_journal"), 1);
}

TEST_F(ChainBillingTest, APayoutTheChainRefusesIsCancelledAndPaidOnceTheTreasuryCan) {
    GiveEarnings(Operator(1), Amount::Micros(12'500'000), 1);
    // The treasury keeps 1 USDC: the transfer reverts, so it cannot even be estimated.
    const U256 kept(1'000'000);
    const U256 moved = BalanceOf(token_, treasury_.address()).Sub(kept).value();
    ASSERT_TRUE(TransferToken(treasury_, token_, user_.address(), moved).success);
    const auto nonce_before = TreasuryNonce();
    const auto op = Lower(chain::ToString(Operator(1)));
    auto p = NewPayer();
    for (int tick = 1; tick <= 3; ++tick) {
        SCOPED_TRACE(tick);
        // A restart between the ticks continues the count of the refusals.
        if (tick == 3) p = NewPayer();
        const auto r = Tick(p);
        EXPECT_EQ(r.reserved, tick == 1 ? 1u : 0u);
        EXPECT_EQ(r.submitted, 0u);
        EXPECT_EQ(r.cancelled, tick == 3 ? 1u : 0u);
        EXPECT_EQ(r.in_flight, tick == 3 ? 0u : 1u);
        if (tick < 3) {
            EXPECT_EQ(Count("SELECT refusals FROM chain_payout_refusals"), tick);
        }
    }
    // Nothing was sent; the earnings are the operator's again, none in flight.
    EXPECT_EQ(TreasuryNonce(), nonce_before);
    EXPECT_EQ(Count("SELECT count(*) FROM chain_payout_refusals"), 0);
    EXPECT_EQ(LedgerBalance(domain::NodeEarnings(op)), Amount::Micros(12'500'000));
    EXPECT_EQ(LedgerBalance(domain::PayoutsInFlight(op)), Amount::Micros(0));

    // Funded again, the next batch pays it, once.
    ASSERT_TRUE(TransferToken(user_, token_, treasury_.address(), moved).success);
    clock_.Advance(std::chrono::hours{24 * 7});
    EXPECT_EQ(Tick(p).submitted, 1u);
    anvil_->Rpc("anvil_mine", {"0x2"});
    EXPECT_EQ(Tick(p).settled, 1u);
    EXPECT_EQ(BalanceOf(token_, Operator(1)), U256(12'500'000));
    EXPECT_EQ(LedgerBalance(domain::NodeEarnings(op)), Amount::Micros(0));
}

TEST_F(ChainBillingTest, TheJournalReadsPendingPayoutsAndTheOnesAskedFor) {
    pg::PgPayoutJournal journal(*pool_);
    const auto record = [&](std::string id, chain::PayoutStatus status) {
        chain::PayoutRecord r;
        r.id = std::move(id);
        r.to = Operator(1);
        r.amount = U256(1'000'000);
        r.status = status;
        r.attempts.push_back({7, chain::Hash{}, chain::Bytes{0x01}});
        return r;
    };
    ASSERT_TRUE(journal.Save(record("a-pending", chain::PayoutStatus::kPending)));
    ASSERT_TRUE(journal.Save(record("b-confirmed", chain::PayoutStatus::kConfirmed)));
    ASSERT_TRUE(journal.Save(record("c-failed", chain::PayoutStatus::kFailed)));
    const auto ids = [](const std::vector<chain::PayoutRecord>& records) {
        std::vector<std::string> out;
        for (const auto& r : records) out.push_back(r.id);
        return out;
    };
    EXPECT_EQ(ids(journal.Load({}).value()), std::vector<std::string>{"a-pending"});
    EXPECT_EQ(ids(journal.Load({"b-confirmed", "unknown"}).value()),
              (std::vector<std::string>{"a-pending", "b-confirmed"}));
    const auto again = journal.Load({"a-pending", "c-failed"}).value();
    ASSERT_EQ(again.size(), 2u);
    EXPECT_EQ(again[1], record("c-failed", chain::PayoutStatus::kFailed));
    EXPECT_FALSE(journal.Load({"x,y"})) << "a comma would split an id";
}

TEST_F(ChainBillingTest, StoredStateRoundTrips) {
    ASSERT_TRUE(TransferToken(treasury_, token_, user_.address(), U256(100'000'000)).success);
    ASSERT_TRUE(TransferToken(user_, token_, platform_.address(), U256(1)).success);
    auto w = NewWatcher();
    Tick(w);
    auto stored = chain_repository_->LoadScannerState(w.watcher->watch());
    ASSERT_TRUE(stored && *stored);
    EXPECT_EQ((*stored)->pending.size(), 1u);
    auto again = pg::ScannerStateFromJson(pg::ScannerStateToJson(**stored));
    ASSERT_TRUE(again);
    EXPECT_EQ(*again, **stored);
}

}  // namespace
}  // namespace decloud::orchestrator
