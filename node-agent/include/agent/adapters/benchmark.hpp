#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "decloud/common/clock.hpp"
#include "decloud/common/result.hpp"
#include "decloud/proto/node_messages.hpp"

namespace decloud::agent::adapters {

struct BenchmarkOptions {
    std::string sysbench = "sysbench";
    std::uint32_t threads = 0;  // 0: all hardware threads
    std::uint32_t seconds = 10;
    std::string cache_file;  // empty: never cache
    std::chrono::hours max_age{24 * 7};
};

// The node's compute score: from the cache file when it was measured on this CPU with these
// settings less than max_age ago, else by running `sysbench cpu --threads=N --time=S run` (no
// shell; killed if it overruns by 30 s) and caching the result (written atomically).
common::Result<proto::ComputeScore> RunOrLoadBenchmark(const BenchmarkOptions& options,
                                                       const proto::NodeResources& resources,
                                                       double baseline_events_per_second_per_core,
                                                       double points_per_baseline_core,
                                                       common::TimePoint now);

}  // namespace decloud::agent::adapters
