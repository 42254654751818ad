#pragma once

#include "decloud/chain/payout_sender.hpp"
#include "orchestrator/adapters/pg/pg_pool.hpp"
#include "orchestrator/ports/chain_repository.hpp"

namespace decloud::orchestrator::adapters::pg {

// Chain-side billing state on PostgreSQL (migration 0009). WithLock holds one pooled connection
// while the body uses others: the pool needs at least two.
class PgChainRepository final : public ports::ChainRepository {
  public:
    explicit PgChainRepository(PgPool& pool) : pool_(pool) {}

    // ports::ChainRepository
    common::Result<bool> WithLock(ports::ChainLock lock,
                                  const std::function<void()>& body) override;
    common::Result<std::optional<chain::DepositScanner::State>> LoadScannerState(
        const ports::DepositWatch& watch) override;
    common::Status SaveScannerState(const ports::DepositWatch& watch,
                                    const chain::DepositScanner::State& state) override;
    common::Result<std::vector<ports::PendingDeposit>> PendingDeposits(
        const std::string& wallet) override;
    common::Result<std::vector<ports::OperatorEarnings>> OperatorsWithEarnings(
        domain::Amount minimum) override;
    common::Result<std::vector<ports::OpenPayout>> OpenPayouts() override;
    common::Result<ports::OperatorTotals> TotalsOf(const std::string& wallet) override;
    common::Result<std::vector<ports::PayoutView>> PayoutsOf(const std::string& wallet,
                                                             std::size_t limit) override;
    common::Result<std::optional<common::TimePoint>> LastPayoutBatch() override;
    common::Status SetLastPayoutBatch(common::TimePoint at) override;
    common::Result<int> CountPayoutRefusal(const std::string& payout_id,
                                           const std::string& error) override;
    common::Status ForgetPayoutRefusals(const std::string& payout_id) override;

  private:
    PgPool& pool_;
};

// The payout sender's journal in table chain_payout_journal: Save commits before it returns.
class PgPayoutJournal final : public chain::PayoutJournal {
  public:
    explicit PgPayoutJournal(PgPool& pool) : pool_(pool) {}

    // chain::PayoutJournal
    // Pending records and those of `also` only: a payout-id index range, not the whole history.
    common::Result<std::vector<chain::PayoutRecord>> Load(
        const std::vector<std::string>& also) override;
    common::Status Save(const chain::PayoutRecord& record) override;

  private:
    PgPool& pool_;
};

// JSON forms of the stored state (exposed for unit tests); the parsers reject anything else.
nlohmann::json ScannerStateToJson(const chain::DepositScanner::State& state);
common::Result<chain::DepositScanner::State> ScannerStateFromJson(const nlohmann::json& j);
nlohmann::json PayoutRecordToJson(const chain::PayoutRecord& record);
common::Result<chain::PayoutRecord> PayoutRecordFromJson(const nlohmann::json& j);

}  // namespace decloud::orchestrator::adapters::pg
