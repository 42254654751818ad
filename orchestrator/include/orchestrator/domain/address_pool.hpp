#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "decloud/common/result.hpp"

namespace decloud::orchestrator::domain {

// Every relay tunnel gets its own /30 out of the pool: the first usable address is the relay's
// end, the second the CGNAT node's; the network and broadcast addresses are never handed out.
// A /30 rather than a /31 pair so that any tool (ip, wg-quick, nft) treats it as an ordinary
// point-to-point subnet. Blocks are unique across the platform, not per relay, so that a CGNAT
// node holding a primary and a standby tunnel never sees the same address twice.
inline constexpr int kTunnelPrefixLength = 30;

struct TunnelAddresses {
    std::uint32_t block = 0;    // index of the /30 in its pool
    std::string network;        // "10.200.0.4/30"
    std::string relay_address;  // "10.200.0.5"
    std::string cgnat_address;  // "10.200.0.6"
    friend bool operator==(const TunnelAddresses&, const TunnelAddresses&) = default;
};

// An IPv4 CIDR range carved into /30 blocks. A value type; cheap to copy; thread-compatible.
class TunnelAddressPool {
  public:
    // "10.200.0.0/16": an IPv4 network in private space (RFC 1918; never 100.64.0.0/10, which
    // is what the CGNAT nodes themselves are numbered from), prefix length 8..30, no host bits
    // set. kInvalidArgument saying what is wrong otherwise.
    static common::Result<TunnelAddressPool> Parse(std::string_view cidr);
    // 10.200.0.0/16: 16,384 tunnels.
    static TunnelAddressPool Default();

    // Number of /30 blocks: 2^(30 - prefix length).
    std::uint32_t capacity() const { return std::uint32_t{1} << (kTunnelPrefixLength - prefix_); }
    std::string ToString() const;  // "10.200.0.0/16"

    // The addresses of block `index`. Precondition: index < capacity().
    TunnelAddresses Block(std::uint32_t index) const;
    // The block an address of the pool belongs to (any of its four addresses, an optional
    // "/30" suffix allowed); nullopt for anything outside the pool or not an IPv4 address.
    std::optional<std::uint32_t> BlockOf(std::string_view address) const;

    // The lowest block not in `used` (any order; duplicates and indices out of range are
    // ignored). kUnprocessable naming the pool and its size when every block is taken.
    common::Result<TunnelAddresses> AllocateLowest(std::span<const std::uint32_t> used) const;

  private:
    TunnelAddressPool(std::uint32_t base, int prefix) : base_(base), prefix_(prefix) {}

    std::uint32_t base_ = 0;
    int prefix_ = 16;
};

// The name of a tunnel's WireGuard interface on the CGNAT node: "dcc" + the block index as 12
// hex digits (15 characters, Linux's maximum, the form agents accept as theirs). Unique across
// the platform because blocks are, so a CGNAT node's primary and standby never clash.
std::string TunnelInterfaceName(std::uint32_t block);

// The one WireGuard interface of a relay node, carrying all its tunnels: "dcr" + the first 12
// hex digits of the node's UUID (distinct per relay, so several relays can share a test host).
std::string RelayInterfaceName(std::string_view relay_node_id);

}  // namespace decloud::orchestrator::domain
