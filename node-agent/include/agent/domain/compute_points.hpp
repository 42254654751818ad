#pragma once

#include <cstdint>
#include <string_view>

#include "decloud/common/result.hpp"

namespace decloud::agent::domain {

// "events per second: 8942.21" from `sysbench cpu ... run` (sysbench 1.0.x).
common::Result<double> ParseSysbenchEventsPerSecond(std::string_view output);

// Compute points: the per-thread rate against a reference core's, times the physical cores,
// scaled so one reference core is worth `points_per_baseline_core`. Zero for unusable inputs.
std::uint32_t ComputePoints(double total_events_per_second, std::uint32_t benchmark_threads,
                            std::uint32_t cores, double baseline_events_per_second_per_core,
                            double points_per_baseline_core);

}  // namespace decloud::agent::domain
