#pragma once

#include <string_view>

#include "decloud/common/result.hpp"

namespace decloud::common {

// Configures spdlog's default logger on stderr: level trace|debug|info|warn|error, format
// "human" (one readable line) or "json" (one JSON object per line, for log shippers).
Status SetupLogging(std::string_view level, std::string_view format, std::string_view name);

}  // namespace decloud::common
