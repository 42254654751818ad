#include <gtest/gtest.h>

#include "chain_fixture.hpp"
#include "decloud/chain/deposit_poll.hpp"

namespace decloud::chain::testing_support {
namespace {

class DepositTest : public ChainFixture {
  protected:
    // Polls until a round changes nothing; collects the events.
    ScanEvents PollUntilIdle(DepositScanner& scanner) {
        ScanEvents all;
        for (int i = 0; i < 50; ++i) {
            auto events = RunSync(io_, PollDeposits(*chain_, scanner));
            EXPECT_TRUE(events) << events.error().message;
            if (!events) break;
            all.seen.insert(all.seen.end(), events->seen.begin(), events->seen.end());
            all.dropped.insert(all.dropped.end(), events->dropped.begin(), events->dropped.end());
            all.confirmed.insert(all.confirmed.end(), events->confirmed.begin(),
                                 events->confirmed.end());
            all.reorg = all.reorg || events->reorg;
            const auto head = RunSync(io_, chain_->BlockNumber()).value();
            if (scanner.tip() == head && events->seen.empty() && events->dropped.empty() &&
                events->confirmed.empty() && !events->reorg)
                break;
        }
        return all;
    }
};

TEST_F(DepositTest, ConfirmsRealTransfersAndDropsOneRemovedByAReorg) {
    const auto deployer = Key(testing::kAnvilKey0);
    const auto platform = Key(testing::kAnvilKey1);  // its address receives deposits
    const auto user = Key(testing::kAnvilKey2);
    const Address token = DeployToken(deployer);
    ASSERT_TRUE(TransferToken(deployer, token, user.address(), U256(100'000'000)).success);

    DepositScannerConfig config;
    config.token = token;
    config.deposit_address = platform.address();
    config.confirmations = 3;
    config.start_block = 0;
    config.max_range = 4;  // several steps even for this short chain
    auto scanner = DepositScanner::Create(config).value();
    EXPECT_TRUE(PollUntilIdle(scanner).seen.empty());

    // A deposit of 5 tUSDC: seen at once, confirmed after two more blocks.
    const auto receipt = TransferToken(user, token, platform.address(), U256(5'000'000));
    ASSERT_TRUE(receipt.success);
    auto first = PollUntilIdle(scanner);
    ASSERT_EQ(first.seen.size(), 1u);
    EXPECT_EQ(first.seen[0].from, user.address());
    EXPECT_EQ(first.seen[0].amount, U256(5'000'000));
    EXPECT_EQ(first.seen[0].transaction_hash, receipt.transaction_hash);
    EXPECT_TRUE(first.confirmed.empty());
    anvil_->Rpc("anvil_mine", {"0x1"});
    EXPECT_TRUE(PollUntilIdle(scanner).confirmed.empty());
    anvil_->Rpc("anvil_mine", {"0x1"});
    auto confirmed = PollUntilIdle(scanner);
    ASSERT_EQ(confirmed.confirmed.size(), 1u);
    EXPECT_EQ(confirmed.confirmed[0], first.seen[0]);

    // A second deposit, then a reorganisation that takes its block away before it confirms.
    const auto snapshot = anvil_->Rpc("evm_snapshot");
    const auto doomed = TransferToken(user, token, platform.address(), U256(7'000'000));
    ASSERT_TRUE(doomed.success);
    auto pending = PollUntilIdle(scanner);
    ASSERT_EQ(pending.seen.size(), 1u);
    EXPECT_EQ(pending.seen[0].amount, U256(7'000'000));
    ASSERT_TRUE(anvil_->Rpc("evm_revert", {snapshot}).get<bool>());
    anvil_->Rpc("anvil_mine", {"0x2"});  // a different chain, longer than before
    auto reorg = PollUntilIdle(scanner);
    EXPECT_TRUE(reorg.reorg);
    ASSERT_EQ(reorg.dropped.size(), 1u);
    EXPECT_EQ(reorg.dropped[0].transaction_hash, doomed.transaction_hash);
    EXPECT_TRUE(reorg.confirmed.empty());

    // Many blocks later: nothing else is ever confirmed, the first deposit is not repeated, and
    // the chain agrees: the platform holds exactly the one confirmed deposit.
    anvil_->Rpc("anvil_mine", {"0xa"});
    auto later = PollUntilIdle(scanner);
    EXPECT_TRUE(later.confirmed.empty());
    EXPECT_TRUE(later.seen.empty());
    EXPECT_EQ(BalanceOf(token, platform.address()), U256(5'000'000));
}

}  // namespace
}  // namespace decloud::chain::testing_support
