#include "orchestrator/domain/port_pool.hpp"

#include <charconv>

namespace decloud::orchestrator::domain {

namespace {

bool ParseNumber(std::string_view text, std::uint32_t& out) {
    if (text.empty()) return false;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc{} && end == text.data() + text.size();
}

// Marks the ports of `range` in use; index 0 is range.first.
std::vector<bool> TakenMap(const PortRange& range, std::span<const std::uint16_t> taken) {
    std::vector<bool> in_use(range.size(), false);
    for (const std::uint16_t p : taken) {
        if (range.Contains(p)) in_use[p - range.first] = true;
    }
    return in_use;
}

std::uint32_t StartOffset(const PortRange& range, std::uint32_t hint) {
    return range.Contains(hint) ? hint - range.first : 0;
}

common::Error Exhausted(const PortRange& range, std::size_t wanted, std::size_t free) {
    if (wanted <= 1)
        return common::Error::Unprocessable("all " + std::to_string(range.size()) +
                                            " public ports of " + range.ToString() + " are taken");
    return common::Error::Unprocessable("needs " + std::to_string(wanted) + " public ports of " +
                                        range.ToString() + ", only " + std::to_string(free) +
                                        " free");
}

}  // namespace

common::Result<PortRange> PortRange::Make(std::uint32_t first, std::uint32_t last) {
    if (first < 1 || last > 65535 || first > last)
        return common::Error::InvalidArgument("port range " + std::to_string(first) + "-" +
                                              std::to_string(last) +
                                              " must satisfy 1 <= first <= last <= 65535");
    return PortRange{static_cast<std::uint16_t>(first), static_cast<std::uint16_t>(last)};
}

common::Result<PortRange> PortRange::Parse(std::string_view text) {
    const auto dash = text.find('-');
    std::uint32_t first = 0;
    std::uint32_t last = 0;
    const bool ok =
        dash == std::string_view::npos
            ? ParseNumber(text, first) && ParseNumber(text, last)
            : ParseNumber(text.substr(0, dash), first) && ParseNumber(text.substr(dash + 1), last);
    if (!ok)
        return common::Error::InvalidArgument("port range '" + std::string(text) +
                                              "' is not first-last (e.g. 30000-39999)");
    return Make(first, last);
}

std::string PortRange::ToString() const {
    return std::to_string(first) + "-" + std::to_string(last);
}

common::Result<std::uint16_t> AllocatePort(const PortRange& range,
                                           std::span<const std::uint16_t> taken,
                                           std::uint32_t hint) {
    auto ports = AllocatePorts(range, taken, hint, 1);
    if (!ports) return ports.error();
    return ports->front();
}

common::Result<std::vector<std::uint16_t>> AllocatePorts(const PortRange& range,
                                                         std::span<const std::uint16_t> taken,
                                                         std::uint32_t hint, std::size_t count) {
    std::vector<bool> in_use = TakenMap(range, taken);
    std::size_t free = 0;
    for (const bool used : in_use) free += used ? 0 : 1;
    if (free < count || free == 0) return Exhausted(range, count, free);
    std::vector<std::uint16_t> out;
    out.reserve(count);
    const std::uint32_t size = range.size();
    std::uint32_t offset = StartOffset(range, hint);
    while (out.size() < count) {
        // Enough are free, so this finds one within one lap.
        while (in_use[offset]) offset = (offset + 1) % size;
        in_use[offset] = true;
        out.push_back(static_cast<std::uint16_t>(range.first + offset));
        offset = (offset + 1) % size;
    }
    return out;
}

}  // namespace decloud::orchestrator::domain
