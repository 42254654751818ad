#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "decloud/common/clock.hpp"
#include "decloud/common/result.hpp"
#include "orchestrator/domain/ledger.hpp"
#include "orchestrator/domain/metering.hpp"

namespace decloud::orchestrator::ports {

struct PostedTransaction {
    std::int64_t id = 0;
    domain::LedgerTransaction transaction;
    bool replayed = false;  // the key was used before: this is the first result, nothing changed
};

struct AccountBalance {
    domain::AccountRef account;
    domain::Amount balance;
};

struct InvariantReport {
    std::int64_t transactions = 0;
    std::int64_t entries = 0;
    std::vector<std::string> violations;  // empty: the ledger is sound
    bool ok() const { return violations.empty(); }
};

// A VM metering must look at: its history and who shares its charges.
struct MeterableVm {
    std::string vm_id;
    std::string owner_wallet;    // lowercase
    std::string node_operator;   // lowercase; empty if never placed
    std::string relay_operator;  // lowercase; empty without a relay
    domain::Amount hourly_rate;
    std::vector<domain::StateChange> history;
};

// A running VM and its rate, for the low-balance check.
struct RunningVm {
    std::string vm_id;
    std::string owner_wallet;  // as stored on the VM (the VM service's owner key)
    domain::Amount hourly_rate;
};

struct AccountEvent {
    std::int64_t id = 0;
    std::string wallet;
    std::string kind;  // low_balance, vms_stopped
    nlohmann::json detail = nlohmann::json::object();
    common::TimePoint at{};
};

// The ledger, metering state and account events. Blocking, thread-safe.
class LedgerRepository {
  public:
    virtual ~LedgerRepository() = default;

    // Writes a balanced transaction in one database transaction, creating accounts as needed.
    // If its idempotency key was used before, writes nothing and returns the first transaction
    // (replayed = true), also when two callers race. kUnprocessable "insufficient funds" if an
    // account other than treasury_in would go below zero (nothing is written).
    virtual common::Result<PostedTransaction> Post(const domain::LedgerTransaction& tx) = 0;
    // The transaction with this key, if any.
    virtual common::Result<std::optional<PostedTransaction>> FindByKey(const std::string& key) = 0;

    // Balance of one account (zero if it has no entries yet).
    virtual common::Result<domain::Amount> Balance(const domain::AccountRef& account) = 0;
    // Every account owned by a wallet, with its balance.
    virtual common::Result<std::vector<AccountBalance>> BalancesOf(const std::string& wallet) = 0;
    // Transactions touching the wallet's accounts, newest first, with ids below `before_id`
    // (0: from the newest); ids never change, so a cursor stays stable while new ones arrive.
    virtual common::Result<std::vector<PostedTransaction>> TransactionsOf(
        const std::string& wallet, std::size_t limit, std::int64_t before_id) = 0;
    // Sum of entries per currency zero, each transaction balanced, no account overdrawn (from
    // the entries themselves, not the cached balances), cached balances equal to the entries.
    virtual common::Result<InvariantReport> CheckInvariants() = 0;

    // Runs `body` while holding the cluster-wide metering lock (a PostgreSQL advisory lock held
    // by one connection); false without running it when another replica holds it.
    virtual common::Result<bool> WithMeteringLock(const std::function<void()>& body) = 0;
    // The hour up to which every VM has been metered; nullopt before the first run.
    virtual common::Result<std::optional<common::TimePoint>> MeteredUntil() = 0;
    virtual common::Status SetMeteredUntil(common::TimePoint until) = 0;
    // The earliest VM state change (where metering starts on a fresh database).
    virtual common::Result<std::optional<common::TimePoint>> FirstVmEvent() = 0;
    // VMs that may have run within [from, to), with their whole state history.
    virtual common::Result<std::vector<MeterableVm>> MeterableVms(common::TimePoint from,
                                                                  common::TimePoint to) = 0;
    // Every VM in state running now, with its owner as the VM service stores it.
    virtual common::Result<std::vector<RunningVm>> RunningVms() = 0;

    // Records an event unless one with `dedupe_key` exists; true if recorded now.
    virtual common::Result<bool> AddAccountEvent(const AccountEvent& event,
                                                 const std::string& dedupe_key) = 0;
    virtual common::Result<std::vector<AccountEvent>> AccountEvents(const std::string& wallet,
                                                                    std::size_t limit) = 0;
};

}  // namespace decloud::orchestrator::ports
