#pragma once

#include <string>

#include <prometheus/registry.h>

namespace decloud::common {

// Prometheus text exposition (format 0.0.4) of everything in the registry, for GET /metrics.
std::string SerializeMetrics(const prometheus::Registry& registry);
inline constexpr const char* kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace decloud::common
