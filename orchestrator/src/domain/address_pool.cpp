#include "orchestrator/domain/address_pool.hpp"

#include <cctype>
#include <cstdio>

#include <algorithm>
#include <boost/asio/ip/address_v4.hpp>
#include <charconv>
#include <vector>

#include "orchestrator/domain/cgnat.hpp"

namespace decloud::orchestrator::domain {

namespace {

namespace ip = boost::asio::ip;

std::optional<std::uint32_t> ParseV4(std::string_view text) {
    boost::system::error_code ec;
    const auto a = ip::make_address_v4(std::string(text), ec);
    if (ec) return std::nullopt;
    return a.to_uint();
}

std::string FormatV4(std::uint32_t a) { return ip::address_v4(a).to_string(); }

}  // namespace

common::Result<TunnelAddressPool> TunnelAddressPool::Parse(std::string_view cidr) {
    const auto slash = cidr.find('/');
    if (slash == std::string_view::npos)
        return common::Error::InvalidArgument("tunnel address pool '" + std::string(cidr) +
                                              "' is not a CIDR range (a.b.c.d/n)");
    const auto base = ParseV4(cidr.substr(0, slash));
    const auto len_text = cidr.substr(slash + 1);
    int prefix = -1;
    const auto [end, ec] =
        std::from_chars(len_text.data(), len_text.data() + len_text.size(), prefix);
    if (!base || ec != std::errc{} || end != len_text.data() + len_text.size() || len_text.empty())
        return common::Error::InvalidArgument("tunnel address pool '" + std::string(cidr) +
                                              "' is not an IPv4 CIDR range (a.b.c.d/n)");
    if (prefix < 8 || prefix > kTunnelPrefixLength)
        return common::Error::InvalidArgument(
            "tunnel address pool '" + std::string(cidr) +
            "' must have a prefix length between /8 and /30 (each tunnel takes a /30)");
    const std::uint32_t host_mask = ~std::uint32_t{0} >> prefix;
    if ((*base & host_mask) != 0)
        return common::Error::InvalidArgument(
            "tunnel address pool '" + std::string(cidr) + "' has host bits set; did you mean " +
            FormatV4(*base & ~host_mask) + "/" + std::to_string(prefix) + "?");
    // Both ends must lie in the same private range, so the whole pool does.
    const auto first = ClassifyAddress(FormatV4(*base));
    const auto last = ClassifyAddress(FormatV4(*base | host_mask));
    if (first.scope != AddressScope::kPrivate || last.scope != AddressScope::kPrivate ||
        first.range != last.range)
        return common::Error::InvalidArgument(
            "tunnel address pool '" + std::string(cidr) +
            "' must lie inside private space (10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16)");
    return TunnelAddressPool(*base, prefix);
}

TunnelAddressPool TunnelAddressPool::Default() { return TunnelAddressPool(0x0ac80000, 16); }

std::string TunnelAddressPool::ToString() const {
    return FormatV4(base_) + "/" + std::to_string(prefix_);
}

TunnelAddresses TunnelAddressPool::Block(std::uint32_t index) const {
    const std::uint32_t network = base_ + index * 4;
    return TunnelAddresses{
        .block = index,
        .network = FormatV4(network) + "/" + std::to_string(kTunnelPrefixLength),
        .relay_address = FormatV4(network + 1),
        .cgnat_address = FormatV4(network + 2),
    };
}

std::optional<std::uint32_t> TunnelAddressPool::BlockOf(std::string_view address) const {
    if (const auto slash = address.find('/'); slash != std::string_view::npos) {
        if (address.substr(slash + 1) != "30") return std::nullopt;
        address = address.substr(0, slash);
    }
    const auto a = ParseV4(address);
    if (!a) return std::nullopt;
    const std::uint32_t mask = ~(~std::uint32_t{0} >> prefix_);
    if ((*a & mask) != base_) return std::nullopt;
    return (*a - base_) / 4;
}

common::Result<TunnelAddresses> TunnelAddressPool::AllocateLowest(
    std::span<const std::uint32_t> used) const {
    std::vector<std::uint32_t> sorted(used.begin(), used.end());
    std::sort(sorted.begin(), sorted.end());
    std::uint32_t candidate = 0;
    for (const std::uint32_t u : sorted) {
        if (u > candidate) break;  // a gap below u
        if (u == candidate) ++candidate;
    }
    if (candidate >= capacity())
        return common::Error::Unprocessable("tunnel address pool " + ToString() +
                                            " is exhausted: all " + std::to_string(capacity()) +
                                            " tunnel blocks (/30) are in use");
    return Block(candidate);
}

std::string TunnelInterfaceName(std::uint32_t block) {
    char hex[13];
    std::snprintf(hex, sizeof hex, "%012x", block);
    return std::string("dcc") + hex;
}

std::string RelayInterfaceName(std::string_view relay_node_id) {
    std::string name = "dcr";
    for (const char c : relay_node_id) {
        if (name.size() == 15) break;
        if (std::isxdigit(static_cast<unsigned char>(c)))
            name += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return name;
}

}  // namespace decloud::orchestrator::domain
