#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/domain/relay/wireguard_key.hpp"
#include "decloud/common/result.hpp"

namespace decloud::agent::domain::relay {

// Which side of a relay pairing an interface serves: the public-IP node that forwards ports
// (listens, one peer per CGNAT node) or the node behind CGNAT (dials the relay).
enum class RelayRole { kRelay, kCgnat };

// The persistent keepalive both roles use, so CGNAT mappings stay open.
inline constexpr std::chrono::seconds kRelayKeepalive{25};

// Interface name for one relay pairing: "dcr" (relay side) or "dcc" (CGNAT side) and the first
// 12 hex digits of SHA-256(relay_id): 15 characters, the most Linux allows, the same after every
// restart, distinct per relay so several tunnels coexist on one host. Pure.
std::string RelayInterfaceName(RelayRole role, std::string_view relay_id);

// True for the names this agent creates (see RelayInterfaceName).
bool IsRelayInterfaceName(std::string_view name);
// The role a name of ours serves; empty for other names.
std::optional<RelayRole> RelayInterfaceRole(std::string_view name);

// A Linux interface name: 1..15 characters of [A-Za-z0-9_.-], not "." or "..".
bool IsValidInterfaceName(std::string_view name);

// One peer as the agent wants it.
struct WireGuardPeer {
    WireGuardKey public_key;
    // "ip:port" or "[ipv6]:port" (an IP literal: the UAPI does not resolve names). Empty: the
    // endpoint is learned from the peer's handshakes (the relay side), and never overwritten.
    std::string endpoint;
    // CIDR prefixes routed to this peer; host bits are cleared ("10.0.0.5/24" means 10.0.0.0/24).
    // May be empty: such a peer can complete handshakes but carries no traffic yet (used while a
    // key is being rotated).
    std::vector<std::string> allowed_ips;
    std::chrono::seconds persistent_keepalive{0};  // 0: off
};

// One WireGuard interface as the agent wants it: applying it makes the interface exactly this.
struct WireGuardConfig {
    std::string interface;
    WireGuardKey private_key;
    std::uint16_t listen_port = 0;       // 0: whatever port the interface has (random at creation)
    std::vector<std::string> addresses;  // CIDR with host bits, e.g. "10.99.0.1/24"
    std::vector<WireGuardPeer> peers;    // the exact peer set: others are removed
};

struct WireGuardPeerState {
    WireGuardKey public_key;
    std::string endpoint;  // empty until known
    std::vector<std::string> allowed_ips;
    std::chrono::seconds persistent_keepalive{0};
    // Absent before the first handshake.
    std::optional<std::chrono::system_clock::time_point> latest_handshake;
    std::uint64_t rx_bytes = 0;
    std::uint64_t tx_bytes = 0;
};

// An interface as it is now.
struct WireGuardState {
    std::string interface;
    WireGuardKey public_key;  // of the interface's private key; zero if it has none
    std::uint16_t listen_port = 0;
    bool up = false;
    std::vector<std::string> addresses;
    std::vector<WireGuardPeerState> peers;
};

// Checks a config before anything is applied: valid interface name, a private key, peers with
// distinct non-zero keys, IP-literal endpoints, well-formed prefixes, no prefix given to two
// peers, well-formed addresses. kInvalidArgument naming the first problem.
common::Status ValidateConfig(const WireGuardConfig& config);

// "a.b.c.d/n" or "x:y::z/n" in canonical form; with `clear_host_bits` the address part is
// masked to the prefix. kInvalidArgument for anything else.
common::Result<std::string> NormalizeCidr(std::string_view cidr, bool clear_host_bits);

// "ip:port" / "[ipv6]:port" in canonical form (IPv6 compressed, lowercase); kInvalidArgument for
// anything else, including host names and port 0.
common::Result<std::string> NormalizeEndpoint(std::string_view endpoint);

}  // namespace decloud::agent::domain::relay
