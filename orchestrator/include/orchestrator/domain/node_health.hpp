#pragma once

#include <span>

#include "orchestrator/domain/node.hpp"

namespace decloud::orchestrator::domain {

// Heartbeat slots a node skipped between its previous heartbeat and this one: a gap of k
// intervals (rounded down) means k-1 missed; a node never seen before has missed none.
std::uint64_t MissedHeartbeats(std::optional<common::TimePoint> previous, common::TimePoint current,
                               common::Duration interval);

// Whether a node whose last heartbeat was at `last` counts as offline at `now`.
bool IsStale(std::optional<common::TimePoint> last, common::TimePoint now,
             common::Duration timeout);

// Fraction (0..1) of [max(window_start, registered_at), now] covered by the intervals; an open
// interval counts up to `now`. Overlapping intervals are not double-counted.
double UptimeRatio(std::span<const AvailabilityInterval> intervals, common::TimePoint window_start,
                   common::TimePoint now, common::TimePoint registered_at);

// "YYYY-MM-DD" of t in UTC: the key of daily heartbeat statistics.
std::string UtcDay(common::TimePoint t);

}  // namespace decloud::orchestrator::domain
