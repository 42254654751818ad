#include "orchestrator/app/deposit_watcher.hpp"

#include <spdlog/spdlog.h>

#include <limits>

#include "decloud/chain/deposit_poll.hpp"

namespace decloud::orchestrator::app {

using common::Error;
using common::ErrorCode;
using common::Result;

namespace {

std::string Lower(std::string text) {
    for (auto& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return text;
}

}  // namespace

DepositWatcher::DepositWatcher(ChainSession& session, ports::ChainRepository& repository,
                               BillingService& billing, DepositWatcherOptions options)
    : session_(session), repository_(repository), billing_(billing), options_(options) {}

ports::DepositWatch DepositWatcher::watch() const {
    return ports::DepositWatch{options_.chain_id, Lower(chain::ToString(options_.token)),
                               Lower(chain::ToString(options_.deposit_address))};
}

Result<DepositWatchReport> DepositWatcher::Tick() {
    DepositWatchReport report;
    common::Status inner = common::Ok();
    auto locked = repository_.WithLock(ports::ChainLock::kDeposits, [&] { inner = Scan(report); });
    if (!locked) return locked.error();
    report.ran = *locked;
    if (!inner) return inner.error();
    return report;
}

common::Status DepositWatcher::Scan(DepositWatchReport& report) {
    auto& chain = session_.chain();
    if (!chain_checked_) {
        // Crediting deposits of another chain would create money: refuse to scan at all.
        auto id = session_.Run(chain.ChainId());
        if (!id) return id.error();
        if (*id != options_.chain_id)
            return Error::Unprocessable("the chain node reports chain id " + std::to_string(*id) +
                                        ", billing.deposit_chain_id is " +
                                        std::to_string(options_.chain_id));
        chain_checked_ = true;
    }
    const auto key = watch();
    auto stored = repository_.LoadScannerState(key);
    if (!stored) return stored.error();
    chain::DepositScannerConfig config;
    config.token = options_.token;
    config.deposit_address = options_.deposit_address;
    config.confirmations = options_.confirmations;
    config.start_block = options_.start_block;
    config.max_range = options_.max_range;
    std::optional<chain::DepositScanner> scanner;
    if (*stored) {
        auto restored = chain::DepositScanner::Restore(config, std::move(**stored));
        if (!restored) return restored.error();
        scanner.emplace(std::move(*restored));
    } else {
        if (config.start_block == 0) {
            auto head = session_.Run(chain.BlockNumber());
            if (!head) return head.error();
            config.start_block = *head;
            spdlog::info("deposit watcher: first scan starts at the chain head, block {}", *head);
        }
        auto created = chain::DepositScanner::Create(config);
        if (!created) return created.error();
        scanner.emplace(std::move(*created));
        // Persist the starting point at once, so every replica continues from the same block.
        if (auto st = repository_.SaveScannerState(key, scanner->state()); !st) return st;
    }

    for (std::size_t step = 0; step < options_.max_steps_per_tick; ++step) {
        const auto before = scanner->state();
        auto events = session_.Run(chain::PollDeposits(chain, *scanner));
        if (!events) {
            if (events.error().code == ErrorCode::kConflict) {
                // Deposits already credited would have to move: that needs a human. Nothing
                // changes here; every tick repeats this until it is resolved.
                report.deep_reorg = true;
                spdlog::critical(
                    "deposit watcher: chain reorganisation deeper than {} confirmations, "
                    "scanning stopped and no deposit moved: {}",
                    options_.confirmations, events.error().message);
                return common::Ok();
            }
            return events.error();
        }
        ++report.steps;
        report.seen += events->seen.size();
        report.dropped += events->dropped.size();
        if (events->reorg) {
            report.reorg = true;
            spdlog::warn(
                "deposit watcher: chain reorganisation below block {}, {} unconfirmed "
                "deposit(s) dropped",
                before.next_block, events->dropped.size());
        }
        for (const auto& d : events->dropped)
            spdlog::warn("deposit watcher: unconfirmed deposit {}#{} left the chain",
                         chain::ToString(d.transaction_hash), d.log_index);
        for (const auto& d : events->confirmed)
            if (auto st = Credit(d, report); !st) return st;
        report.tip = scanner->tip();
        if (scanner->state() == before) break;  // caught up
        if (auto st = repository_.SaveScannerState(key, scanner->state()); !st) return st;
    }
    return common::Ok();
}

common::Status DepositWatcher::Credit(const chain::Deposit& d, DepositWatchReport& report) {
    const auto hash = chain::ToString(d.transaction_hash);
    if (d.amount.IsZero()) {
        spdlog::info("deposit watcher: ignoring a zero transfer {}#{}", hash, d.log_index);
        return common::Ok();
    }
    const auto micros = d.amount.ToU64();
    if (!micros || *micros > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
        return Error::Internal("deposit " + hash + "#" + std::to_string(d.log_index) + " of " +
                               d.amount.ToDecimal() + " units does not fit the ledger");
    const auto amount = domain::Amount::Micros(static_cast<std::int64_t>(*micros));
    const auto wallet = Lower(chain::ToString(d.from));
    auto credited = billing_.CreditDeposit(wallet, amount, options_.chain_id, hash, d.log_index);
    if (!credited) return credited.error();
    if (!credited->replayed) {
        ++report.credited;
        report.credited_micros += amount.micros();
        spdlog::info("deposit watcher: credited {} USDC to {} ({}#{}, block {})",
                     domain::FormatAmount(amount), wallet, hash, d.log_index, d.block_number);
    }
    return common::Ok();
}

}  // namespace decloud::orchestrator::app
