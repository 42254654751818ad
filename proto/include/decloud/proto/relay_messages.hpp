#pragma once

// The relay part of heartbeats. An agent that takes part in relaying (as a relay or behind
// CGNAT) reports its WireGuard public key, its relay interfaces and what it forwards; the
// orchestrator answers with the complete relay state the agent should have. Full state every
// time, so a lost reply or a restarted agent converges on the next heartbeat. Same rules as
// node_messages.hpp: camelCase, strict types, unknown fields tolerated.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "decloud/common/result.hpp"

namespace decloud::proto {

// One port forwarded on an interface: connections to `publicPort` arriving for this node are
// sent to target_address:target_port. On a relay interface the target is the CGNAT node's tunnel
// address (the same port number); on a CGNAT interface it is the VM's address and port.
struct RelayForward {
    std::string interface;
    std::uint16_t public_port = 0;
    std::string protocol = "tcp";  // tcp or udp
    std::string target_address;    // dotted IPv4
    std::uint16_t target_port = 0;
    friend bool operator==(const RelayForward&, const RelayForward&) = default;
};

struct RelayPeerSpec {
    std::string public_key;  // base64
    std::string endpoint;    // "ip:port"; empty: learned from handshakes (relay side)
    std::vector<std::string> allowed_ips;
    std::uint32_t keepalive_seconds = 0;
    // Key rotation: this peer is the new key of the peer whose key is `replaces`. The agent adds
    // it without allowed IPs and moves `allowed_ips` to it from the replaced peer as soon as it
    // completes a handshake (the other end switched keys), so the tunnel carries traffic again
    // one handshake after the switch, without waiting for the orchestrator.
    std::string replaces;
    friend bool operator==(const RelayPeerSpec&, const RelayPeerSpec&) = default;
};

// A WireGuard interface as the orchestrator wants it; the agent adds its own private key.
struct RelayInterfaceSpec {
    std::string interface;
    std::uint16_t listen_port = 0;  // 0: any
    std::vector<std::string> addresses;
    std::vector<RelayPeerSpec> peers;
    friend bool operator==(const RelayInterfaceSpec&, const RelayInterfaceSpec&) = default;
};

// Everything relay-related the agent should have: interfaces not listed are removed, and so are
// forwards not listed.
struct RelayDesiredState {
    std::vector<RelayInterfaceSpec> interfaces;
    std::vector<RelayForward> forwards;
    // Key rotation of this agent's own key: "" none; "stage": generate a next key (or keep the
    // one already staged) and report its public half; "commit": switch every interface to the
    // staged key whose public half is `next_public_key` (the peers have it staged by now).
    std::string key_rotation;
    std::string next_public_key;
    friend bool operator==(const RelayDesiredState&, const RelayDesiredState&) = default;
};

struct RelayPeerReport {
    std::string public_key;
    std::string endpoint;
    std::uint64_t latest_handshake_unix = 0;  // seconds since the epoch; 0: never
    std::uint64_t rx_bytes = 0;
    std::uint64_t tx_bytes = 0;
    // Round-trip time over the tunnel to the peer's tunnel address, as this agent last measured
    // it (absent: never measured), and the probe rounds in a row since then without an echo.
    std::optional<std::uint32_t> rtt_us;
    std::uint32_t unanswered_probe_rounds = 0;
    friend bool operator==(const RelayPeerReport&, const RelayPeerReport&) = default;
};

struct RelayInterfaceReport {
    std::string interface;
    bool up = false;
    std::uint16_t listen_port = 0;
    std::vector<RelayPeerReport> peers;
    std::uint32_t forwards = 0;  // port forwards installed on it, as read back from the system
    std::string error;           // why the last change of this interface failed, if it did
    friend bool operator==(const RelayInterfaceReport&, const RelayInterfaceReport&) = default;
};

struct RelayReport {
    std::string public_key;  // the agent's WireGuard public key (base64); never the private one
    std::string next_public_key;  // a staged key not in use yet (key rotation), else empty
    std::vector<RelayInterfaceReport> interfaces;
    friend bool operator==(const RelayReport&, const RelayReport&) = default;
};

nlohmann::json ToJson(const RelayForward& v);
nlohmann::json ToJson(const RelayDesiredState& v);
nlohmann::json ToJson(const RelayReport& v);

common::Result<RelayForward> DecodeRelayForward(const nlohmann::json& j);
common::Result<RelayDesiredState> DecodeRelayDesiredState(const nlohmann::json& j);
common::Result<RelayReport> DecodeRelayReport(const nlohmann::json& j);

}  // namespace decloud::proto
