#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "decloud/common/result.hpp"

namespace decloud::orchestrator::domain {

// A configured range of public ports on a relay, both ends included.
struct PortRange {
    std::uint16_t first = 30000;
    std::uint16_t last = 39999;

    // 1 <= first <= last <= 65535; kInvalidArgument otherwise.
    static common::Result<PortRange> Make(std::uint32_t first, std::uint32_t last);
    // "30000-39999" (or a single port "30000").
    static common::Result<PortRange> Parse(std::string_view text);

    std::uint32_t size() const { return std::uint32_t{last} - first + 1; }
    bool Contains(std::uint32_t port) const { return port >= first && port <= last; }
    std::string ToString() const;  // "30000-39999"
    friend bool operator==(const PortRange&, const PortRange&) = default;
};

// The first port of `range`, searching from `hint` upwards and wrapping around to range.first,
// that is not in `taken` (any order; ports outside the range are ignored). Starting from a
// moving hint rather than always from the bottom keeps a port that was just released from being
// handed to the next VM at once, where a stale URL would reach the wrong VM. A hint outside the
// range starts at range.first. kUnprocessable "all N ports of first-last are taken" when full.
common::Result<std::uint16_t> AllocatePort(const PortRange& range,
                                           std::span<const std::uint16_t> taken,
                                           std::uint32_t hint);

// `count` distinct ports by the same rule, each search continuing after the previous one; all
// or nothing (kUnprocessable saying how many are free when fewer than `count` are).
common::Result<std::vector<std::uint16_t>> AllocatePorts(const PortRange& range,
                                                         std::span<const std::uint16_t> taken,
                                                         std::uint32_t hint, std::size_t count);

}  // namespace decloud::orchestrator::domain
