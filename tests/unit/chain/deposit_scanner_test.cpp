#include <gtest/gtest.h>

#include "decloud/chain/abi.hpp"
#include "decloud/chain/deposit_scanner.hpp"
#include "decloud/crypto/crypto.hpp"

namespace decloud::chain {
namespace {

using common::ErrorCode;

const Address kToken = ParseAddress("0x5FbDB2315678afecb367f032d93F642f64180aa3").value();
const Address kDeposit = ParseAddress("0x70997970C51812dc3A010C7d01b50e0d17dc79C8").value();
const Address kUser = ParseAddress("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC").value();
const Address kOther = ParseAddress("0x90F79bf6EB2c4f870365E785982E1f101E93b906").value();

Hash H(std::string_view text) { return crypto::Keccak256(text); }

// A synthetic chain: branch "a" is the original, other branches fork off it.
class Chain {
  public:
    // Blocks [0, length) of branch "a".
    explicit Chain(std::uint64_t length) {
        for (std::uint64_t n = 0; n < length; ++n) Append("a");
    }
    // Replaces everything from `number` up with `count` blocks of another branch.
    void Fork(std::uint64_t number, std::uint64_t count, const std::string& branch) {
        blocks_.resize(number);
        std::erase_if(logs_, [&](const LogEntry& l) { return l.block_number >= number; });
        for (std::uint64_t i = 0; i < count; ++i) Append(branch);
    }
    void Append(const std::string& branch) {
        BlockHeader h;
        h.number = blocks_.size();
        h.hash = H(branch + std::to_string(h.number));
        h.parent_hash = blocks_.empty() ? Hash{} : blocks_.back().hash;
        blocks_.push_back(h);
    }
    // A Transfer log in block `number`.
    void Transfer(std::uint64_t number, const std::string& tx, std::uint64_t index, Address from,
                  Address to, std::uint64_t amount, Address token = kToken) {
        LogEntry log;
        log.address = token;
        log.topics = {abi::TransferTopic(), abi::AddressTopic(from), abi::AddressTopic(to)};
        const auto word = U256(amount).ToBigEndian();
        log.data.assign(word.begin(), word.end());
        log.block_number = number;
        log.block_hash = blocks_.at(number).hash;
        log.transaction_hash = H(tx);
        log.log_index = index;
        logs_.push_back(log);
    }
    std::uint64_t head() const { return blocks_.size() - 1; }
    std::vector<BlockHeader> Headers(const ScanStep& s) const {
        return {blocks_.begin() + static_cast<std::ptrdiff_t>(s.from),
                blocks_.begin() + static_cast<std::ptrdiff_t>(s.to + 1)};
    }
    std::vector<LogEntry> Logs(const ScanStep& s) const {
        std::vector<LogEntry> out;
        for (const auto& l : logs_) {
            if (l.block_number >= s.from && l.block_number <= s.to) out.push_back(l);
        }
        return out;
    }

  private:
    std::vector<BlockHeader> blocks_;
    std::vector<LogEntry> logs_;
};

DepositScanner Scanner(std::uint64_t confirmations, std::uint64_t max_range = 100) {
    return DepositScanner::Create({kToken, kDeposit, confirmations, 0, max_range}).value();
}

// Runs steps until caught up; collects all events.
ScanEvents ScanAll(DepositScanner& scanner, const Chain& chain) {
    ScanEvents all;
    for (int i = 0; i < 100; ++i) {
        auto step = scanner.Next(chain.head());
        if (!step) break;
        auto events = scanner.Apply(*step, chain.Headers(*step), chain.Logs(*step));
        EXPECT_TRUE(events) << events.error().message;
        if (!events) break;
        all.seen.insert(all.seen.end(), events->seen.begin(), events->seen.end());
        all.dropped.insert(all.dropped.end(), events->dropped.begin(), events->dropped.end());
        all.confirmed.insert(all.confirmed.end(), events->confirmed.begin(),
                             events->confirmed.end());
        all.reorg = all.reorg || events->reorg;
        // Caught up once the tip is the head and this step changed nothing.
        if (scanner.tip() == chain.head() && events->seen.empty() && events->dropped.empty() &&
            events->confirmed.empty() && !events->reorg)
            break;
    }
    return all;
}

TEST(DepositScannerTest, ConfirmsAfterNConfirmationsExactlyOnce) {
    Chain chain(2);
    chain.Transfer(1, "t1", 0, kUser, kDeposit, 5'000'000);
    chain.Transfer(1, "t2", 1, kUser, kOther, 7);            // not to us
    chain.Transfer(1, "t3", 2, kUser, kDeposit, 9, kOther);  // another token
    auto scanner = Scanner(3);
    auto first = ScanAll(scanner, chain);
    ASSERT_EQ(first.seen.size(), 1u);
    EXPECT_EQ(first.seen[0].from, kUser);
    EXPECT_EQ(first.seen[0].amount, U256(5'000'000));
    EXPECT_EQ(first.seen[0].block_number, 1u);
    EXPECT_TRUE(first.confirmed.empty());

    chain.Append("a");  // block 2: deposit has 2 confirmations
    EXPECT_TRUE(ScanAll(scanner, chain).confirmed.empty());
    chain.Append("a");  // block 3: 3 confirmations
    auto third = ScanAll(scanner, chain);
    ASSERT_EQ(third.confirmed.size(), 1u);
    EXPECT_EQ(third.confirmed[0], first.seen[0]);

    for (int i = 0; i < 10; ++i) chain.Append("a");
    auto later = ScanAll(scanner, chain);
    EXPECT_TRUE(later.confirmed.empty());
    EXPECT_TRUE(later.seen.empty());
    EXPECT_TRUE(scanner.state().pending.empty());
    // The kept window is bounded.
    EXPECT_LE(scanner.state().recent.size(), 8u);
}

TEST(DepositScannerTest, OneConfirmationConfirmsAtOnce) {
    Chain chain(3);
    chain.Transfer(2, "t1", 4, kUser, kDeposit, 1);
    auto scanner = Scanner(1);
    auto events = ScanAll(scanner, chain);
    ASSERT_EQ(events.confirmed.size(), 1u);
    EXPECT_EQ(events.seen.size(), 1u);
}

TEST(DepositScannerTest, ShallowReorgDropsTheUnconfirmedDepositAndSeesItAgain) {
    Chain chain(4);
    chain.Transfer(3, "t1", 0, kUser, kDeposit, 10);
    auto scanner = Scanner(3);
    ASSERT_EQ(ScanAll(scanner, chain).seen.size(), 1u);

    // Block 3 is replaced at the same height, without the deposit.
    chain.Fork(3, 1, "b");
    auto reorg = ScanAll(scanner, chain);
    EXPECT_TRUE(reorg.reorg);
    ASSERT_EQ(reorg.dropped.size(), 1u);
    EXPECT_EQ(reorg.dropped[0].amount, U256(10));
    EXPECT_TRUE(reorg.seen.empty());
    EXPECT_TRUE(scanner.state().pending.empty());

    // The transaction lands again in a later block: seen again, confirmed once.
    chain.Append("b");
    chain.Transfer(4, "t1", 0, kUser, kDeposit, 10);
    auto again = ScanAll(scanner, chain);
    ASSERT_EQ(again.seen.size(), 1u);
    EXPECT_EQ(again.seen[0].block_number, 4u);
    for (int i = 0; i < 3; ++i) chain.Append("b");
    auto confirmed = ScanAll(scanner, chain);
    ASSERT_EQ(confirmed.confirmed.size(), 1u);
    EXPECT_EQ(confirmed.confirmed[0].block_hash, H("b4"));
}

TEST(DepositScannerTest, ReorgBelowTheTipWalksBackToTheForkPoint) {
    Chain chain(6);  // a0..a5
    chain.Transfer(3, "t3", 0, kUser, kDeposit, 3);
    chain.Transfer(4, "t4", 0, kUser, kDeposit, 4);
    auto scanner = Scanner(4);
    ASSERT_EQ(ScanAll(scanner, chain).seen.size(), 2u);
    // Forks at block 3: the deposits in a3 and a4 disappear, blocks go up to b7.
    chain.Fork(3, 5, "b");
    auto events = ScanAll(scanner, chain);
    EXPECT_TRUE(events.reorg);
    ASSERT_EQ(events.dropped.size(), 2u);
    EXPECT_TRUE(events.confirmed.empty());
    EXPECT_EQ(scanner.tip(), 7u);
    EXPECT_EQ(scanner.state().recent.back().hash, H("b7"));
    EXPECT_EQ(scanner.state().recent.front().hash, H("a0"));
}

TEST(DepositScannerTest, ReorgDeeperThanTheConfirmationsIsRefusedAndNothingMoves) {
    Chain chain(6);  // a0..a5
    chain.Transfer(3, "t3", 0, kUser, kDeposit, 3);
    auto scanner = Scanner(2);
    auto before = ScanAll(scanner, chain);
    ASSERT_EQ(before.confirmed.size(), 1u);  // block 3 has 3 confirmations at a5

    chain.Fork(3, 5, "b");
    // Walking back: a5 and a4 go (nothing in them), then a3 would have to go: refused.
    std::optional<common::Error> refused;
    for (int i = 0; i < 10 && !refused; ++i) {
        auto step = scanner.Next(chain.head());
        ASSERT_TRUE(step);
        auto events = scanner.Apply(*step, chain.Headers(*step), chain.Logs(*step));
        if (!events) refused = events.error();
    }
    ASSERT_TRUE(refused);
    EXPECT_EQ(refused->code, ErrorCode::kConflict);
    const auto state = scanner.state();
    // Refused again, with the state untouched.
    auto step = scanner.Next(chain.head());
    ASSERT_TRUE(step);
    EXPECT_FALSE(scanner.Apply(*step, chain.Headers(*step), chain.Logs(*step)));
    EXPECT_EQ(scanner.state(), state);
    EXPECT_TRUE(scanner.state().confirmed_keys.contains({H("t3"), 0}));
}

TEST(DepositScannerTest, ChainGettingShorterDropsTheBlocksAboveItsHead) {
    Chain chain(6);
    chain.Transfer(5, "t5", 0, kUser, kDeposit, 5);
    auto scanner = Scanner(3);
    ASSERT_EQ(ScanAll(scanner, chain).seen.size(), 1u);
    chain.Fork(5, 0, "b");  // head is a4 now
    auto step = scanner.Next(chain.head());
    ASSERT_TRUE(step);
    EXPECT_EQ(*step, (ScanStep{4, 4}));
    auto events = scanner.Apply(*step, chain.Headers(*step), chain.Logs(*step));
    ASSERT_TRUE(events);
    ASSERT_EQ(events->dropped.size(), 1u);
    EXPECT_EQ(scanner.tip(), 4u);
}

TEST(DepositScannerTest, InconsistentFetchesChangeNothing) {
    Chain chain(4);
    chain.Transfer(2, "t1", 0, kUser, kDeposit, 1);
    auto scanner = Scanner(2);
    const auto state = scanner.state();
    auto step = scanner.Next(chain.head()).value();
    auto logs = chain.Logs(step);
    logs[0].block_hash = H("elsewhere");  // logs fetched after a reorg
    auto r = scanner.Apply(step, chain.Headers(step), logs);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
    EXPECT_EQ(scanner.state(), state);
    auto headers = chain.Headers(step);
    headers.pop_back();
    EXPECT_FALSE(scanner.Apply(step, headers, chain.Logs(step)));
    EXPECT_EQ(scanner.state(), state);
}

TEST(DepositScannerTest, RestoredStateContinuesWithoutRepeats) {
    Chain chain(3);
    chain.Transfer(1, "t1", 0, kUser, kDeposit, 1);
    chain.Transfer(2, "t2", 3, kUser, kDeposit, 2);
    auto scanner = Scanner(3, 2);
    auto first = ScanAll(scanner, chain);
    EXPECT_EQ(first.seen.size(), 2u);
    auto restored = DepositScanner::Restore(scanner.config(), scanner.state()).value();
    for (int i = 0; i < 4; ++i) chain.Append("a");
    auto events = ScanAll(restored, chain);
    EXPECT_TRUE(events.seen.empty());
    EXPECT_EQ(events.confirmed.size(), 2u);
    EXPECT_FALSE(DepositScanner::Create({kToken, kDeposit, 0, 0, 1}));
}

}  // namespace
}  // namespace decloud::chain
