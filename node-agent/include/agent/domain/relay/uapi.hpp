#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/domain/relay/wireguard.hpp"
#include "agent/domain/relay/wireguard_key.hpp"
#include "decloud/common/result.hpp"

// The WireGuard cross-platform userspace API (https://www.wireguard.com/xplatform/), as
// wireguard-go serves it on /var/run/wireguard/<interface>.sock: "get=1\n\n" and "set=1\n...\n\n"
// requests of key=value lines, answered by key=value lines ending in "errno=N" and an empty
// line. Encoding, decoding and planning only; the socket is the adapter's. Pure.
namespace decloud::agent::domain::relay {

// The request for the full state.
inline constexpr std::string_view kUapiGetRequest = "get=1\n\n";

// One peer in a get=1 reply.
struct UapiPeer {
    WireGuardKey public_key;
    bool has_preshared_key = false;
    std::string endpoint;  // as the daemon prints it; empty if none
    std::vector<std::string> allowed_ips;
    std::uint32_t persistent_keepalive_interval = 0;  // seconds
    std::int64_t last_handshake_time_sec = 0;         // Unix time; 0: never
    std::int64_t last_handshake_time_nsec = 0;
    std::uint64_t rx_bytes = 0;
    std::uint64_t tx_bytes = 0;
    std::uint32_t protocol_version = 0;
};

// A get=1 reply.
struct UapiDevice {
    std::optional<WireGuardKey> private_key;  // absent while the interface has none
    std::uint16_t listen_port = 0;
    std::uint32_t fwmark = 0;
    std::vector<UapiPeer> peers;
};

// Decodes a get=1 reply (including its "errno=" line). A non-zero errno is kUnavailable with the
// number; malformed lines and unknown keys before the first peer are kInternal (a daemon we do
// not understand must not be half-read). Unknown peer keys are skipped (newer daemons add some).
common::Result<UapiDevice> DecodeUapiGet(std::string_view reply);

// Decodes the answer to a set=1 request: Ok for "errno=0", kInvalidArgument for EINVAL-like
// refusals of the request's content, kUnavailable otherwise, each with the errno.
common::Status DecodeUapiSetReply(std::string_view reply);

// One peer line group of a set=1 request.
struct UapiPeerUpdate {
    WireGuardKey public_key;
    bool remove = false;
    bool update_only = false;             // only touch an existing peer, never create one
    std::optional<std::string> endpoint;  // canonical "ip:port"
    std::optional<std::uint32_t> persistent_keepalive_interval;
    bool replace_allowed_ips = false;
    std::vector<std::string> allowed_ips;  // canonical prefixes

    friend bool operator==(const UapiPeerUpdate&, const UapiPeerUpdate&) = default;
};

// A set=1 request. Device-level keys come first, then one group per peer.
struct UapiSet {
    std::optional<WireGuardKey> private_key;
    std::optional<std::uint16_t> listen_port;
    bool replace_peers = false;
    std::vector<UapiPeerUpdate> peers;

    bool Empty() const { return !private_key && !listen_port && !replace_peers && peers.empty(); }
};

// "set=1\n" + the lines + "\n". Keys in hex, as the protocol wants.
std::string EncodeUapiSet(const UapiSet& set);

// The smallest set=1 request that turns `actual` into `desired` (a validated config): the private
// key and listen port only if they differ; peers not desired are removed; new peers are added
// with their endpoint, keepalive and allowed IPs; existing peers get only the fields that
// differ (an empty desired endpoint never overwrites a learned one). Peers are never replaced
// wholesale, so their sessions, counters and learned endpoints survive a reconcile. Empty when
// nothing differs.
UapiSet PlanUapiSet(const WireGuardConfig& desired, const UapiDevice& actual);

// The same set as one request that replaces everything (replace_peers=true): what a freshly
// started daemon gets.
UapiSet FullUapiSet(const WireGuardConfig& desired);

// The peers of a get=1 reply in the agent's terms (handshake time as a time point).
std::vector<WireGuardPeerState> ToPeerStates(const UapiDevice& device);

// An interface's state from its device (as either back end reads it) and its link.
WireGuardState ToWireGuardState(std::string interface, const UapiDevice& device, bool up,
                                std::vector<std::string> addresses);

}  // namespace decloud::agent::domain::relay
