#include "agent/domain/compute_points.hpp"

#include <charconv>
#include <cmath>
#include <limits>

namespace decloud::agent::domain {

common::Result<double> ParseSysbenchEventsPerSecond(std::string_view output) {
    constexpr std::string_view kLabel = "events per second:";
    const auto at = output.find(kLabel);
    if (at == std::string_view::npos)
        return common::Error::InvalidArgument("sysbench output has no 'events per second' line");
    auto rest = output.substr(at + kLabel.size());
    while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t')) rest.remove_prefix(1);
    double value = 0;
    const auto [p, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), value);
    if (ec != std::errc{} || p == rest.data() || !std::isfinite(value) || value <= 0)
        return common::Error::InvalidArgument(
            "sysbench reported an unusable events-per-second value");
    return value;
}

std::uint32_t ComputePoints(double total_events_per_second, std::uint32_t benchmark_threads,
                            std::uint32_t cores, double baseline_events_per_second_per_core,
                            double points_per_baseline_core) {
    if (!(total_events_per_second > 0) || benchmark_threads == 0 || cores == 0 ||
        !(baseline_events_per_second_per_core > 0) || !(points_per_baseline_core > 0) ||
        !std::isfinite(total_events_per_second))
        return 0;
    const double per_thread = total_events_per_second / benchmark_threads;
    const double points =
        per_thread / baseline_events_per_second_per_core * cores * points_per_baseline_core;
    if (points >= static_cast<double>(std::numeric_limits<std::uint32_t>::max())) return 0;
    return static_cast<std::uint32_t>(std::lround(points));
}

}  // namespace decloud::agent::domain
