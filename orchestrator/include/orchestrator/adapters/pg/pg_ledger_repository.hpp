#pragma once

#include "orchestrator/adapters/pg/pg_pool.hpp"
#include "orchestrator/ports/ledger_repository.hpp"

namespace decloud::orchestrator::adapters::pg {

// The ledger on PostgreSQL (migration 0008): balances kept by trigger, balance checked at commit
// by a deferred constraint trigger, overdraft refused by a CHECK. Metering needs a pool of at
// least two connections (one holds the advisory lock while the body works).
class PgLedgerRepository final : public ports::LedgerRepository {
  public:
    explicit PgLedgerRepository(PgPool& pool) : pool_(pool) {}

    // ports::LedgerRepository
    common::Result<ports::PostedTransaction> Post(const domain::LedgerTransaction& tx) override;
    common::Result<std::optional<ports::PostedTransaction>> FindByKey(
        const std::string& key) override;
    common::Result<domain::Amount> Balance(const domain::AccountRef& account) override;
    common::Result<std::vector<ports::AccountBalance>> BalancesOf(
        const std::string& wallet) override;
    common::Result<std::vector<ports::PostedTransaction>> TransactionsOf(
        const std::string& wallet, std::size_t limit, std::int64_t before_id) override;
    common::Result<ports::InvariantReport> CheckInvariants() override;
    common::Result<bool> WithMeteringLock(const std::function<void()>& body) override;
    common::Result<std::optional<common::TimePoint>> MeteredUntil() override;
    common::Status SetMeteredUntil(common::TimePoint until) override;
    common::Result<std::optional<common::TimePoint>> FirstVmEvent() override;
    common::Result<std::vector<ports::MeterableVm>> MeterableVms(common::TimePoint from,
                                                                 common::TimePoint to) override;
    common::Result<std::vector<ports::RunningVm>> RunningVms() override;
    common::Result<bool> AddAccountEvent(const ports::AccountEvent& event,
                                         const std::string& dedupe_key) override;
    common::Result<std::vector<ports::AccountEvent>> AccountEvents(const std::string& wallet,
                                                                   std::size_t limit) override;

  private:
    PgPool& pool_;
};

}  // namespace decloud::orchestrator::adapters::pg
