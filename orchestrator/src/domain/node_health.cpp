#include "orchestrator/domain/node_health.hpp"

#include <algorithm>
#include <cstdio>
#include <vector>

namespace decloud::orchestrator::domain {

std::string_view ToString(NodeStatus s) {
    switch (s) {
        case NodeStatus::kOnline:
            return "online";
        case NodeStatus::kOffline:
            return "offline";
    }
    return "offline";
}

std::optional<NodeStatus> ParseNodeStatus(std::string_view s) {
    if (s == "online") return NodeStatus::kOnline;
    if (s == "offline") return NodeStatus::kOffline;
    return std::nullopt;
}

std::uint64_t MissedHeartbeats(std::optional<common::TimePoint> previous, common::TimePoint current,
                               common::Duration interval) {
    if (!previous || interval <= common::Duration::zero() || current <= *previous) return 0;
    const auto slots = (current - *previous) / interval;
    return slots > 1 ? static_cast<std::uint64_t>(slots - 1) : 0;
}

bool IsStale(std::optional<common::TimePoint> last, common::TimePoint now,
             common::Duration timeout) {
    return !last || now - *last > timeout;
}

double UptimeRatio(std::span<const AvailabilityInterval> intervals, common::TimePoint window_start,
                   common::TimePoint now, common::TimePoint registered_at) {
    const auto start = std::max(window_start, registered_at);
    if (now <= start) return 0.0;
    std::vector<std::pair<common::TimePoint, common::TimePoint>> clipped;
    clipped.reserve(intervals.size());
    for (const auto& iv : intervals) {
        const auto b = std::max(iv.start, start);
        const auto e = std::min(iv.end.value_or(now), now);
        if (e > b) clipped.emplace_back(b, e);
    }
    std::sort(clipped.begin(), clipped.end());
    common::Duration covered{0};
    common::TimePoint reach = start;
    for (const auto& [b, e] : clipped) {
        const auto from = std::max(b, reach);
        if (e > from) {
            covered += e - from;
            reach = e;
        }
    }
    return std::chrono::duration<double>(covered).count() /
           std::chrono::duration<double>(now - start).count();
}

std::string UtcDay(common::TimePoint t) {
    const auto days = std::chrono::floor<std::chrono::days>(t);
    const std::chrono::year_month_day ymd{days};
    char buf[32];
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", static_cast<int>(ymd.year()),
                  static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
    return buf;
}

}  // namespace decloud::orchestrator::domain
