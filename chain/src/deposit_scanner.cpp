#include "decloud/chain/deposit_scanner.hpp"

#include <algorithm>
#include <map>

#include "decloud/chain/abi.hpp"

namespace decloud::chain {

using common::Error;
using common::Result;
using common::Status;

namespace {

const BlockHeader* Kept(const DepositScanner::State& state, std::uint64_t number) {
    if (state.recent.empty() || number < state.recent.front().number ||
        number > state.recent.back().number)
        return nullptr;
    return &state.recent[number - state.recent.front().number];
}

}  // namespace

Result<DepositScanner> DepositScanner::Create(DepositScannerConfig config) {
    State state;
    state.next_block = config.start_block;
    return Restore(config, std::move(state));
}

Result<DepositScanner> DepositScanner::Restore(DepositScannerConfig config, State state) {
    if (config.confirmations == 0) return Error::InvalidArgument("confirmations must be >= 1");
    if (config.max_range == 0) return Error::InvalidArgument("max_range must be >= 1");
    for (std::size_t i = 1; i < state.recent.size(); ++i) {
        if (state.recent[i].number != state.recent[i - 1].number + 1 ||
            state.recent[i].parent_hash != state.recent[i - 1].hash)
            return Error::InvalidArgument("scanner state: kept blocks are not a chain");
    }
    return DepositScanner(config, std::move(state));
}

std::optional<std::uint64_t> DepositScanner::tip() const {
    if (state_.recent.empty()) return std::nullopt;
    return state_.recent.back().number;
}

std::optional<ScanStep> DepositScanner::Next(std::uint64_t head) const {
    if (state_.recent.empty()) {
        if (head < state_.next_block) return std::nullopt;
        return ScanStep{state_.next_block,
                        std::min(head, state_.next_block + config_.max_range - 1)};
    }
    const std::uint64_t tip_number = state_.recent.back().number;
    if (head < tip_number) {
        // The chain got shorter: look at the block at the new head (or the oldest kept one).
        const std::uint64_t at = std::max(head, state_.recent.front().number);
        return ScanStep{at, at};
    }
    // Always re-fetch the tip, so a block replaced at the same height is noticed.
    return ScanStep{tip_number, std::min(head, tip_number + config_.max_range)};
}

Status DepositScanner::DropFrom(std::uint64_t number, State& state, ScanEvents& events) const {
    if (state.final_block && number <= *state.final_block)
        return Error::Conflict("reorganisation reaches block " + std::to_string(number) +
                               ", at or below the final block " +
                               std::to_string(*state.final_block) +
                               ": deeper than the confirmations; confirmed deposits stand");
    while (!state.recent.empty() && state.recent.back().number >= number) state.recent.pop_back();
    auto gone = std::stable_partition(state.pending.begin(), state.pending.end(),
                                      [&](const Deposit& d) { return d.block_number < number; });
    events.dropped.insert(events.dropped.end(), gone, state.pending.end());
    state.pending.erase(gone, state.pending.end());
    state.next_block = number;
    events.reorg = true;
    return common::Ok();
}

Result<ScanEvents> DepositScanner::Apply(const ScanStep& step,
                                         const std::vector<BlockHeader>& headers,
                                         const std::vector<LogEntry>& logs) {
    // Validate the inputs as a whole before touching anything.
    if (step.to < step.from || headers.size() != step.to - step.from + 1)
        return Error::InvalidArgument("scan: headers do not cover the step");
    std::map<std::uint64_t, const BlockHeader*> by_number;
    for (std::size_t i = 0; i < headers.size(); ++i) {
        if (headers[i].number != step.from + i)
            return Error::InvalidArgument("scan: headers are not the step's blocks in order");
        if (i > 0 && headers[i].parent_hash != headers[i - 1].hash)
            return Error::Unavailable("scan: the chain moved while its headers were fetched");
        by_number[headers[i].number] = &headers[i];
    }
    std::map<std::uint64_t, std::vector<const LogEntry*>> logs_by_block;
    for (const auto& log : logs) {
        auto header = by_number.find(log.block_number);
        if (header == by_number.end())
            return Error::InvalidArgument("scan: a log lies outside the step");
        if (log.removed || log.block_hash != header->second->hash)
            return Error::Unavailable("scan: the chain moved between headers and logs");
        logs_by_block[log.block_number].push_back(&log);
    }

    State s = state_;
    ScanEvents events;
    bool stopped = false;
    for (const auto& h : headers) {
        if (const BlockHeader* kept = Kept(s, h.number)) {
            if (kept->hash == h.hash) continue;
            if (auto st = DropFrom(h.number, s, events); !st) return st.error();
        }
        if (!s.recent.empty()) {
            if (h.number != s.recent.back().number + 1)
                return Error::InvalidArgument("scan: step does not continue the kept blocks");
            if (h.parent_hash != s.recent.back().hash) {
                // The block below left the canonical chain too; walk back one block per step.
                if (auto st = DropFrom(s.recent.back().number, s, events); !st) return st.error();
                stopped = true;
                break;
            }
        } else if (h.number != s.next_block) {
            return Error::InvalidArgument("scan: step does not start at the next block");
        }
        s.recent.push_back(h);
        s.next_block = h.number + 1;

        auto block_logs = logs_by_block[h.number];
        std::sort(block_logs.begin(), block_logs.end(),
                  [](const LogEntry* a, const LogEntry* b) { return a->log_index < b->log_index; });
        for (const LogEntry* log : block_logs) {
            if (log->address != config_.token) continue;
            auto transfer = abi::DecodeTransferLog(log->topics, log->data);
            if (!transfer || transfer->to != config_.deposit_address || transfer->value.IsZero())
                continue;
            const auto key = std::make_pair(log->transaction_hash, log->log_index);
            if (s.confirmed_keys.contains(key)) continue;
            const bool known =
                std::any_of(s.pending.begin(), s.pending.end(), [&](const Deposit& d) {
                    return d.transaction_hash == key.first && d.log_index == key.second;
                });
            if (known) continue;
            Deposit d{log->transaction_hash, log->log_index, h.number, h.hash,
                      transfer->from,        transfer->value};
            s.pending.push_back(d);
            events.seen.push_back(d);
        }
    }
    if (!stopped && !s.recent.empty() && s.recent.back().number > step.to) {
        // The chain is shorter than what was processed: blocks above its head are gone.
        if (auto st = DropFrom(step.to + 1, s, events); !st) return st.error();
    }

    if (!s.recent.empty()) {
        const std::uint64_t tip_number = s.recent.back().number;
        if (tip_number + 1 >= config_.confirmations) {
            const std::uint64_t final_now = tip_number + 1 - config_.confirmations;
            if (!s.final_block || final_now > *s.final_block) s.final_block = final_now;
        }
        auto still = std::stable_partition(
            s.pending.begin(), s.pending.end(),
            [&](const Deposit& d) { return !s.final_block || d.block_number > *s.final_block; });
        for (auto it = still; it != s.pending.end(); ++it) {
            s.confirmed_keys.emplace(std::make_pair(it->transaction_hash, it->log_index),
                                     it->block_number);
            events.confirmed.push_back(*it);
        }
        s.pending.erase(still, s.pending.end());

        const std::size_t window = 2 * config_.confirmations + 2;
        while (s.recent.size() > window) s.recent.pop_front();
        const std::uint64_t oldest = s.recent.front().number;
        std::erase_if(s.confirmed_keys, [&](const auto& entry) { return entry.second < oldest; });
    }
    state_ = std::move(s);
    return events;
}

}  // namespace decloud::chain
