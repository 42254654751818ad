#include "decloud/common/metrics.hpp"

#include <prometheus/text_serializer.h>

namespace decloud::common {

std::string SerializeMetrics(const prometheus::Registry& registry) {
    const prometheus::TextSerializer serializer;
    return serializer.Serialize(registry.Collect());
}

}  // namespace decloud::common
