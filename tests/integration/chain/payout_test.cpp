#include <gtest/gtest.h>

#include "chain_fixture.hpp"
#include "decloud/chain/payout_sender.hpp"
#include "decloud/testing/process.hpp"

namespace decloud::chain::testing_support {
namespace {

using common::ErrorCode;

class PayoutTest : public ChainFixture {
  protected:
    void SetUp() override {
        ChainFixture::SetUp();
        token_ = DeployToken(treasury_);
        config_.chain_id = anvil_->chain_id();
        config_.token = token_;
        config_.confirmations = 1;
    }

    std::unique_ptr<PayoutSender> NewSender() {
        auto sender = std::make_unique<PayoutSender>(*chain_, journal_, treasury_, config_);
        EXPECT_TRUE(sender->Start());
        return sender;
    }

    // Polls (mining a block between rounds) until `id` is no longer pending.
    PayoutRecord PollUntilSettled(PayoutSender& sender, const std::string& id) {
        for (int i = 0; i < 20; ++i) {
            auto changed = RunSync(io_, sender.Poll());
            EXPECT_TRUE(changed) << changed.error().message;
            if (sender.Find(id)->status != PayoutStatus::kPending) break;
            anvil_->Rpc("anvil_mine", {"0x1"});
        }
        return *sender.Find(id);
    }

    std::uint64_t TreasuryNonce() {
        return RunSync(io_, chain_->GetTransactionCount(treasury_.address(), BlockTag::kLatest))
            .value();
    }

    // 0x00...00nn: an operator's payout address with no key (it only receives).
    static Address Operator(int n) {
        Address a{};
        a[19] = static_cast<std::uint8_t>(n);
        return a;
    }

    PrivateKey treasury_ = Key(testing::kAnvilKey0);
    Address token_{};
    testing::TempDir dir_;
    FilePayoutJournal journal_{dir_.path() + "/payouts.json"};
    PayoutSenderConfig config_;
};

TEST_F(PayoutTest, PaysEachOperatorExactlyOnce) {
    config_.confirmations = 2;
    auto sender = NewSender();
    const std::vector<std::pair<std::string, std::uint64_t>> payouts = {
        {"p-1", 1'250'000}, {"p-2", 40'000'000}, {"p-3", 1}};
    for (std::size_t i = 0; i < payouts.size(); ++i) {
        auto r = RunSync(io_, sender->Submit({payouts[i].first, Operator(static_cast<int>(i + 1)),
                                              U256(payouts[i].second)}));
        ASSERT_TRUE(r) << r.error().message;
        EXPECT_EQ(r->status, PayoutStatus::kPending);
    }
    for (const auto& [id, amount] : payouts) {
        const auto record = PollUntilSettled(*sender, id);
        EXPECT_EQ(record.status, PayoutStatus::kConfirmed) << id;
        EXPECT_EQ(record.attempts.size(), 1u);
    }
    const auto nonce = TreasuryNonce();
    for (std::size_t i = 0; i < payouts.size(); ++i)
        EXPECT_EQ(BalanceOf(token_, Operator(static_cast<int>(i + 1))), U256(payouts[i].second));

    // Submitting again changes nothing on chain; a changed amount for the id is refused.
    auto again = RunSync(io_, sender->Submit({"p-1", Operator(1), U256(1'250'000)}));
    ASSERT_TRUE(again);
    EXPECT_EQ(again->status, PayoutStatus::kConfirmed);
    auto conflict = RunSync(io_, sender->Submit({"p-1", Operator(1), U256(9)}));
    ASSERT_FALSE(conflict);
    EXPECT_EQ(conflict.error().code, ErrorCode::kConflict);
    EXPECT_TRUE(RunSync(io_, sender->Poll()).value().empty());
    anvil_->Rpc("anvil_mine", {"0x2"});
    EXPECT_EQ(TreasuryNonce(), nonce);
    EXPECT_EQ(BalanceOf(token_, Operator(1)), U256(1'250'000));
}

TEST_F(PayoutTest, RestartBetweenSigningAndBroadcastPaysOnce) {
    const auto nonce_before = TreasuryNonce();
    {
        auto sender = NewSender();
        auto prepared = RunSync(io_, sender->Prepare({"p-crash", Operator(7), U256(3'000'000)}));
        ASSERT_TRUE(prepared) << prepared.error().message;
        // The process dies here: signed and journaled, never sent.
    }
    EXPECT_EQ(TreasuryNonce(), nonce_before);
    auto restarted = NewSender();
    ASSERT_NE(restarted->Find("p-crash"), nullptr);
    auto resubmitted = RunSync(io_, restarted->Submit({"p-crash", Operator(7), U256(3'000'000)}));
    ASSERT_TRUE(resubmitted);
    EXPECT_EQ(resubmitted->attempts.size(), 1u);
    const auto record = PollUntilSettled(*restarted, "p-crash");
    EXPECT_EQ(record.status, PayoutStatus::kConfirmed);
    EXPECT_EQ(record.attempts.size(), 1u);
    EXPECT_EQ(BalanceOf(token_, Operator(7)), U256(3'000'000));
    EXPECT_EQ(TreasuryNonce(), nonce_before + 1);
}

TEST_F(PayoutTest, RestartWhileTheTransactionIsInTheMempoolPaysOnce) {
    anvil_->Rpc("evm_setAutomine", {false});
    const auto nonce_before = TreasuryNonce();
    {
        auto sender = NewSender();
        auto sent = RunSync(io_, sender->Submit({"p-mempool", Operator(8), U256(2'000'000)}));
        ASSERT_TRUE(sent) << sent.error().message;
    }
    auto restarted = NewSender();
    auto again = RunSync(io_, restarted->Submit({"p-mempool", Operator(8), U256(2'000'000)}));
    ASSERT_TRUE(again);
    // Not mined, nonce not used: re-broadcast of the same bytes, no new transaction.
    auto changed = RunSync(io_, restarted->Poll());
    ASSERT_TRUE(changed) << changed.error().message;
    EXPECT_TRUE(changed->empty());
    EXPECT_EQ(restarted->Find("p-mempool")->attempts.size(), 1u);
    anvil_->Rpc("evm_setAutomine", {true});
    const auto record = PollUntilSettled(*restarted, "p-mempool");
    EXPECT_EQ(record.status, PayoutStatus::kConfirmed);
    EXPECT_EQ(record.attempts.size(), 1u);
    EXPECT_EQ(BalanceOf(token_, Operator(8)), U256(2'000'000));
    EXPECT_EQ(TreasuryNonce(), nonce_before + 1);
}

TEST_F(PayoutTest, ADeadNonceIsReplacedWithANewOne) {
    auto sender = NewSender();
    auto prepared = RunSync(io_, sender->Prepare({"p-dead", Operator(9), U256(4'000'000)}));
    ASSERT_TRUE(prepared);
    const auto dead_nonce = prepared->attempts[0].nonce;
    // Another transaction of the treasury takes that nonce first.
    ASSERT_TRUE(TransferToken(treasury_, token_, Operator(10), U256(1)).success);
    EXPECT_EQ(TreasuryNonce(), dead_nonce + 1);

    const auto record = PollUntilSettled(*sender, "p-dead");
    EXPECT_EQ(record.status, PayoutStatus::kConfirmed);
    ASSERT_EQ(record.attempts.size(), 2u);
    EXPECT_EQ(record.attempts[1].nonce, dead_nonce + 1);
    EXPECT_EQ(record.mined_hash, record.attempts[1].hash);
    EXPECT_EQ(BalanceOf(token_, Operator(9)), U256(4'000'000));
    // The dead transaction can never come back: its nonce is used.
    auto late = RunSync(io_, chain_->SendRawTransaction(record.attempts[0].raw));
    EXPECT_FALSE(late);
    EXPECT_EQ(BalanceOf(token_, Operator(9)), U256(4'000'000));
}

TEST_F(PayoutTest, AStuckTransactionIsReplacedWithHigherFeesAndPaysOnce) {
    config_.replace_after_blocks = 3;
    anvil_->Rpc("evm_setAutomine", {false});
    const auto nonce_before = TreasuryNonce();
    auto sender = NewSender();
    auto sent = RunSync(io_, sender->Submit({"p-stuck", Operator(12), U256(5'000'000)}));
    ASSERT_TRUE(sent) << sent.error().message;
    const auto first = DecodeSignedEip1559(sent->attempts[0].raw).value().tx;

    // The base fee jumps above what the transaction offers: blocks go by without it.
    const auto base = first.max_fee_per_gas.Mul(4).value();
    anvil_->Rpc("anvil_setNextBlockBaseFeePerGas", {base.ToQuantity()});
    anvil_->Rpc("anvil_mine", {"0x1"});
    auto changed = RunSync(io_, sender->Poll());
    ASSERT_TRUE(changed) << changed.error().message;
    EXPECT_TRUE(changed->empty()) << "replaced before it waited replace_after_blocks";
    anvil_->Rpc("anvil_mine", {"0x2"});
    EXPECT_EQ(TreasuryNonce(), nonce_before);

    changed = RunSync(io_, sender->Poll());
    ASSERT_TRUE(changed) << changed.error().message;
    ASSERT_EQ(changed->size(), 1u);
    const auto& replaced = changed->front();
    ASSERT_EQ(replaced.attempts.size(), 2u);
    EXPECT_EQ(replaced.attempts[1].nonce, replaced.attempts[0].nonce);
    const auto second = DecodeSignedEip1559(replaced.attempts[1].raw).value().tx;
    EXPECT_GE(second.max_fee_per_gas, first.max_fee_per_gas.Mul(9).value().DivMod(8).first);
    EXPECT_GT(second.max_fee_per_gas, first.max_fee_per_gas);
    EXPECT_EQ(second.data, first.data);
    EXPECT_EQ(second.gas_limit, first.gas_limit);
    // Journaled before it was broadcast: a restart sees both versions.
    auto restarted = NewSender();
    ASSERT_EQ(restarted->Find("p-stuck")->attempts.size(), 2u);

    anvil_->Rpc("evm_setAutomine", {true});
    const auto record = PollUntilSettled(*restarted, "p-stuck");
    EXPECT_EQ(record.status, PayoutStatus::kConfirmed);
    EXPECT_EQ(record.mined_hash, record.attempts.back().hash);
    EXPECT_EQ(BalanceOf(token_, Operator(12)), U256(5'000'000));
    EXPECT_EQ(TreasuryNonce(), nonce_before + 1);
    // The first version can never be mined any more: its nonce is used.
    EXPECT_FALSE(RunSync(io_, chain_->SendRawTransaction(record.attempts[0].raw)));
    anvil_->Rpc("anvil_mine", {"0x2"});
    EXPECT_EQ(BalanceOf(token_, Operator(12)), U256(5'000'000));
}

TEST_F(PayoutTest, CapsRefuseInsteadOfOverpaying) {
    config_.max_fee = U256(1);
    auto cheap = NewSender();
    auto fee = RunSync(io_, cheap->Prepare({"p-fee", Operator(11), U256(1)}));
    ASSERT_FALSE(fee);
    EXPECT_EQ(fee.error().code, ErrorCode::kUnavailable);
    EXPECT_EQ(cheap->Find("p-fee"), nullptr);

    config_ = PayoutSenderConfig{};
    config_.chain_id = anvil_->chain_id();
    config_.token = token_;
    config_.gas_limit_cap = 30'000;
    auto tight = NewSender();
    auto gas = RunSync(io_, tight->Prepare({"p-gas", Operator(11), U256(1)}));
    ASSERT_FALSE(gas);
    EXPECT_EQ(gas.error().code, ErrorCode::kUnprocessable);

    // More than the treasury holds: the estimate fails, nothing is signed or journaled.
    config_.gas_limit_cap = 150'000;
    auto sender = NewSender();
    auto too_much =
        RunSync(io_, sender->Prepare({"p-big", Operator(11), U256(2'000'000'000'000'000)}));
    ASSERT_FALSE(too_much);
    EXPECT_EQ(journal_.Load({}).value().size(), 0u);
}

}  // namespace
}  // namespace decloud::chain::testing_support
