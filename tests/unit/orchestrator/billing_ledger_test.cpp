#include <gtest/gtest.h>

#include <random>

#include "orchestrator/domain/ledger.hpp"

namespace decloud::orchestrator::domain {
namespace {

const std::string kUser = "0xdbf03b407c01e7cd3cbea99509d93f8dddc8c6fb";
const std::string kNode = "0x8617e340b3d01fa5f11f306f4090fd50e238070d";
const std::string kRelay = "0x52908400098527886e0f7030069857d2e4169ee7";

Amount Sum(const std::vector<Entry>& entries) {
    Amount s;
    for (const auto& e : entries) s = s.Plus(e.amount).value();
    return s;
}

TEST(BillingLedgerTest, BuildsBalancedTransactionsOnly) {
    auto ok = BuildTransaction("k", TransactionKind::kDeposit,
                               {{PlatformAccount(AccountKind::kTreasuryIn), Amount::Micros(-5)},
                                {UserBalance(kUser), Amount::Micros(5)}},
                               nlohmann::json::object(), {});
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->entries.size(), 2u);

    auto unbalanced =
        BuildTransaction("k", TransactionKind::kDeposit,
                         {{PlatformAccount(AccountKind::kTreasuryIn), Amount::Micros(-5)},
                          {UserBalance(kUser), Amount::Micros(4)}},
                         nlohmann::json::object(), {});
    ASSERT_FALSE(unbalanced);
    EXPECT_NE(unbalanced.error().message.find("-0.000001"), std::string::npos);

    EXPECT_FALSE(BuildTransaction("", TransactionKind::kDeposit,
                                  {{PlatformAccount(AccountKind::kTreasuryIn), Amount::Micros(-5)},
                                   {UserBalance(kUser), Amount::Micros(5)}},
                                  nlohmann::json::object(), {}));
    // One account only (legs merged to nothing) is no movement.
    EXPECT_FALSE(BuildTransaction(
        "k", TransactionKind::kDeposit,
        {{UserBalance(kUser), Amount::Micros(-5)}, {UserBalance(kUser), Amount::Micros(5)}},
        nlohmann::json::object(), {}));
    // A platform account with an owner, a wallet account without one.
    EXPECT_FALSE(
        BuildTransaction("k", TransactionKind::kDeposit,
                         {{AccountRef{AccountKind::kTreasuryIn, kUser}, Amount::Micros(-5)},
                          {UserBalance(kUser), Amount::Micros(5)}},
                         nlohmann::json::object(), {}));
    EXPECT_FALSE(BuildTransaction("k", TransactionKind::kDeposit,
                                  {{PlatformAccount(AccountKind::kTreasuryIn), Amount::Micros(-5)},
                                   {UserBalance(""), Amount::Micros(5)}},
                                  nlohmann::json::object(), {}));
    // Overflow on the way is an error, not a wrap.
    EXPECT_FALSE(BuildTransaction(
        "k", TransactionKind::kDeposit,
        {{UserBalance(kUser), Amount::Micros(std::numeric_limits<std::int64_t>::max())},
         {NodeEarnings(kNode), Amount::Micros(1)},
         {PlatformAccount(AccountKind::kTreasuryIn), Amount::Micros(-1)}},
        nlohmann::json::object(), {}));
}

TEST(BillingLedgerTest, MergesLegsAndDropsZeros) {
    auto tx = BuildTransaction("k", TransactionKind::kPayoutReserve,
                               {{NodeEarnings(kNode), Amount::Micros(-3)},
                                {RelayEarnings(kNode), Amount::Micros(0)},
                                {NodeEarnings(kNode), Amount::Micros(-2)},
                                {PayoutsInFlight(kNode), Amount::Micros(5)}},
                               nlohmann::json::object(), {});
    ASSERT_TRUE(tx);
    ASSERT_EQ(tx->entries.size(), 2u);
    EXPECT_EQ(tx->entries[0], (Entry{NodeEarnings(kNode), Amount::Micros(-5)}));
}

TEST(BillingLedgerTest, SplitRoundsExplicitly) {
    // 10% fee, 20% of the rest to the relay: 1.000000 -> 0.1 / 0.18 / 0.72.
    EXPECT_EQ(
        SplitCharge(Amount::Micros(1'000'000), 1000, true, 2000),
        (ChargeSplit{Amount::Micros(100'000), Amount::Micros(180'000), Amount::Micros(720'000)}));
    // Remainders go to the node operator: 7 -> fee floor(0.7)=0, relay floor(1.4)=1, node 6.
    EXPECT_EQ(SplitCharge(Amount::Micros(7), 1000, true, 2000),
              (ChargeSplit{Amount::Micros(0), Amount::Micros(1), Amount::Micros(6)}));
    // Without a relay the node keeps all but the fee.
    EXPECT_EQ(SplitCharge(Amount::Micros(999), 1000, false, 2000),
              (ChargeSplit{Amount::Micros(99), Amount::Micros(0), Amount::Micros(900)}));
    // Shares above 100% are capped.
    EXPECT_EQ(SplitCharge(Amount::Micros(50), 20'000, true, 2000),
              (ChargeSplit{Amount::Micros(50), Amount::Micros(0), Amount::Micros(0)}));
    EXPECT_EQ(SplitCharge(Amount::Micros(0), 1000, true, 2000), ChargeSplit{});
}

// Property: for random amounts and shares the legs always balance and no unit is lost.
TEST(BillingLedgerTest, RandomSplitsAlwaysBalance) {
    std::mt19937_64 rng(20261125);
    std::uniform_int_distribution<std::int64_t> amounts(0,
                                                        std::numeric_limits<std::int64_t>::max());
    std::uniform_int_distribution<std::int64_t> small(0, 10'000);
    std::uniform_int_distribution<std::uint32_t> bps(0, 12'000);
    for (int i = 0; i < 20'000; ++i) {
        const Amount charge = Amount::Micros(i % 2 ? amounts(rng) : small(rng));
        const std::uint32_t fee = bps(rng);
        const std::uint32_t relay = bps(rng);
        const bool has_relay = (i % 3) != 0;
        const auto s = SplitCharge(charge, fee, has_relay, relay);
        ASSERT_GE(s.platform_fee.micros(), 0);
        ASSERT_GE(s.relay.micros(), 0);
        ASSERT_GE(s.node.micros(), 0);
        ASSERT_EQ(s.platform_fee.Plus(s.relay).value().Plus(s.node).value(), charge);
        ASSERT_EQ(s.platform_fee,
                  MulDivFloor(charge, std::min<std::uint32_t>(fee, kBasisPoints), kBasisPoints));
        if (!has_relay) {
            ASSERT_TRUE(s.relay.IsZero());
        }
        if (charge.IsZero()) continue;
        auto tx = BuildTransaction("k", TransactionKind::kCharge,
                                   ChargeLegs(kUser, kNode, has_relay ? kRelay : "", charge, s),
                                   nlohmann::json::object(), {});
        ASSERT_TRUE(tx) << tx.error().message;
        ASSERT_TRUE(Sum(tx->entries).IsZero());
    }
}

TEST(BillingLedgerTest, KeysAndNames) {
    EXPECT_EQ(DepositKey(137, "0xABCD", 3), "deposit:137:0xabcd:3");
    EXPECT_EQ(ChargeKey("vm-1", common::TimePoint{std::chrono::hours{500'000}}),
              "charge:vm-1:1800000000");
    EXPECT_NE(PayoutReserveKey("p"), PayoutFinalKey("p"));
    EXPECT_EQ(AccountName(UserBalance(kUser)), "user_balance:" + kUser);
    EXPECT_EQ(AccountName(PlatformAccount(AccountKind::kPlatformFee)), "platform_fee");
    EXPECT_EQ(NormalizeWallet("0xDBF03B407c01E7cD3CBea99509d93f8DDDC8C6FB").value(), kUser);
    EXPECT_FALSE(NormalizeWallet("0xdbf03b407c01e7cd3cbea99509d93f8dddc8c6f"));
    EXPECT_FALSE(NormalizeWallet("dbf03b407c01e7cd3cbea99509d93f8dddc8c6fb00"));
    EXPECT_FALSE(NormalizeWallet("0xdbf03b407c01e7cd3cbea99509d93f8dddc8c6fg"));
    for (auto k : {AccountKind::kUserBalance, AccountKind::kNodeEarnings,
                   AccountKind::kRelayEarnings, AccountKind::kPlatformFee, AccountKind::kTreasuryIn,
                   AccountKind::kTreasuryOut, AccountKind::kPayoutsInFlight})
        EXPECT_EQ(ParseAccountKind(ToString(k)), k);
}

}  // namespace
}  // namespace decloud::orchestrator::domain
