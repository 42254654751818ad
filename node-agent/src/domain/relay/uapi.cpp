#include "agent/domain/relay/uapi.hpp"

#include <algorithm>
#include <charconv>
#include <map>
#include <set>

namespace decloud::agent::domain::relay {

using common::Error;
using common::Result;
using common::Status;

namespace {

template <class T>
std::optional<T> ParseNumber(std::string_view text) {
    T value{};
    const auto* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (text.empty() || ec != std::errc{} || ptr != end) return std::nullopt;
    return value;
}

Error Malformed(std::string_view line) {
    return Error::Internal("unexpected UAPI line '" + std::string(line.substr(0, 120)) + "'");
}

// The errno a reply ends with, or nullopt if it has none.
std::optional<std::int64_t> FindErrno(std::string_view reply) {
    std::optional<std::int64_t> found;
    std::size_t pos = 0;
    while (pos < reply.size()) {
        auto end = reply.find('\n', pos);
        if (end == std::string_view::npos) end = reply.size();
        const auto line = reply.substr(pos, end - pos);
        if (line.starts_with("errno=")) found = ParseNumber<std::int64_t>(line.substr(6));
        pos = end + 1;
    }
    return found;
}

Error ErrnoError(std::int64_t code, std::string_view what) {
    // wireguard-go reports errnos positive; older daemons sent them negative.
    const auto e = code < 0 ? -code : code;
    std::string message =
        "WireGuard UAPI " + std::string(what) + " failed: errno " + std::to_string(e);
    if (e == 22) return Error::InvalidArgument(message + " (invalid argument)");
    if (e == 98) return Error::Conflict(message + " (listen port in use)");
    return Error::Unavailable(message);
}

std::set<std::string> NormalizedPrefixes(const std::vector<std::string>& prefixes) {
    std::set<std::string> out;
    for (const auto& p : prefixes) {
        auto n = NormalizeCidr(p, true);
        out.insert(n ? *n : p);
    }
    return out;
}

UapiPeerUpdate NewPeer(const WireGuardPeer& peer) {
    UapiPeerUpdate update;
    update.public_key = peer.public_key;
    if (!peer.endpoint.empty()) {
        auto e = NormalizeEndpoint(peer.endpoint);
        update.endpoint = e ? *e : peer.endpoint;
    }
    if (peer.persistent_keepalive.count() != 0)
        update.persistent_keepalive_interval =
            static_cast<std::uint32_t>(peer.persistent_keepalive.count());
    update.replace_allowed_ips = true;
    const auto prefixes = NormalizedPrefixes(peer.allowed_ips);
    update.allowed_ips.assign(prefixes.begin(), prefixes.end());
    return update;
}

}  // namespace

Result<UapiDevice> DecodeUapiGet(std::string_view reply) {
    UapiDevice device;
    UapiPeer* peer = nullptr;
    bool saw_errno = false;
    std::size_t pos = 0;
    while (pos < reply.size()) {
        auto end = reply.find('\n', pos);
        if (end == std::string_view::npos) end = reply.size();
        const auto line = reply.substr(pos, end - pos);
        pos = end + 1;
        if (line.empty()) break;  // the empty line ends the reply
        const auto eq = line.find('=');
        if (eq == std::string_view::npos) return Malformed(line);
        const auto key = line.substr(0, eq);
        const auto value = line.substr(eq + 1);
        if (key == "errno") {
            const auto code = ParseNumber<std::int64_t>(value);
            if (!code) return Malformed(line);
            if (*code != 0) return ErrnoError(*code, "get");
            saw_errno = true;
            continue;
        }
        if (key == "public_key") {
            auto k = WireGuardKey::FromHex(value);
            if (!k) return Malformed(line);
            device.peers.emplace_back();
            peer = &device.peers.back();
            peer->public_key = *k;
            continue;
        }
        if (peer == nullptr) {
            if (key == "private_key") {
                auto k = WireGuardKey::FromHex(value);
                if (!k) return Error::Internal("malformed private_key in a UAPI reply");
                if (!k->IsZero()) device.private_key = *k;
            } else if (key == "listen_port") {
                const auto port = ParseNumber<std::uint16_t>(value);
                if (!port) return Malformed(line);
                device.listen_port = *port;
            } else if (key == "fwmark") {
                const auto mark = ParseNumber<std::uint32_t>(value);
                if (!mark) return Malformed(line);
                device.fwmark = *mark;
            } else {
                return Malformed(line);
            }
            continue;
        }
        bool ok = true;
        if (key == "preshared_key") {
            peer->has_preshared_key = value != std::string(64, '0');
        } else if (key == "endpoint") {
            peer->endpoint = std::string(value);
        } else if (key == "allowed_ip") {
            peer->allowed_ips.emplace_back(value);
        } else if (key == "persistent_keepalive_interval") {
            const auto v = ParseNumber<std::uint32_t>(value);
            ok = v.has_value();
            if (v) peer->persistent_keepalive_interval = *v;
        } else if (key == "last_handshake_time_sec") {
            const auto v = ParseNumber<std::int64_t>(value);
            ok = v.has_value();
            if (v) peer->last_handshake_time_sec = *v;
        } else if (key == "last_handshake_time_nsec") {
            const auto v = ParseNumber<std::int64_t>(value);
            ok = v.has_value();
            if (v) peer->last_handshake_time_nsec = *v;
        } else if (key == "rx_bytes") {
            const auto v = ParseNumber<std::uint64_t>(value);
            ok = v.has_value();
            if (v) peer->rx_bytes = *v;
        } else if (key == "tx_bytes") {
            const auto v = ParseNumber<std::uint64_t>(value);
            ok = v.has_value();
            if (v) peer->tx_bytes = *v;
        } else if (key == "protocol_version") {
            const auto v = ParseNumber<std::uint32_t>(value);
            ok = v.has_value();
            if (v) peer->protocol_version = *v;
        }
        if (!ok) return Malformed(line);
    }
    if (!saw_errno) return Error::Unavailable("truncated WireGuard UAPI reply (no errno line)");
    return device;
}

Status DecodeUapiSetReply(std::string_view reply) {
    const auto code = FindErrno(reply);
    if (!code) return Error::Unavailable("truncated WireGuard UAPI reply (no errno line)");
    if (*code != 0) return ErrnoError(*code, "set");
    return common::Ok();
}

std::string EncodeUapiSet(const UapiSet& set) {
    std::string out = "set=1\n";
    if (set.private_key) out += "private_key=" + set.private_key->ToHex() + "\n";
    if (set.listen_port) out += "listen_port=" + std::to_string(*set.listen_port) + "\n";
    if (set.replace_peers) out += "replace_peers=true\n";
    for (const auto& peer : set.peers) {
        out += "public_key=" + peer.public_key.ToHex() + "\n";
        if (peer.remove) {
            out += "remove=true\n";
            continue;
        }
        if (peer.update_only) out += "update_only=true\n";
        if (peer.endpoint) out += "endpoint=" + *peer.endpoint + "\n";
        if (peer.persistent_keepalive_interval)
            out += "persistent_keepalive_interval=" +
                   std::to_string(*peer.persistent_keepalive_interval) + "\n";
        if (peer.replace_allowed_ips) out += "replace_allowed_ips=true\n";
        for (const auto& prefix : peer.allowed_ips) out += "allowed_ip=" + prefix + "\n";
    }
    out += "\n";
    return out;
}

UapiSet PlanUapiSet(const WireGuardConfig& desired, const UapiDevice& actual) {
    UapiSet set;
    if (!actual.private_key || *actual.private_key != desired.private_key)
        set.private_key = desired.private_key;
    if (desired.listen_port != 0 && desired.listen_port != actual.listen_port)
        set.listen_port = desired.listen_port;

    std::map<WireGuardKey, const UapiPeer*> existing;
    for (const auto& peer : actual.peers) existing.emplace(peer.public_key, &peer);
    std::set<WireGuardKey> wanted;
    for (const auto& peer : desired.peers) wanted.insert(peer.public_key);

    // Removals first: a prefix moving from a removed peer to a new one must be free by then.
    for (const auto& peer : actual.peers) {
        if (wanted.count(peer.public_key) != 0) continue;
        UapiPeerUpdate update;
        update.public_key = peer.public_key;
        update.remove = true;
        set.peers.push_back(std::move(update));
    }
    for (const auto& peer : desired.peers) {
        const auto it = existing.find(peer.public_key);
        if (it == existing.end()) {
            set.peers.push_back(NewPeer(peer));
            continue;
        }
        const UapiPeer& now = *it->second;
        UapiPeerUpdate update;
        update.public_key = peer.public_key;
        update.update_only = true;
        bool changed = false;
        if (!peer.endpoint.empty()) {
            const auto want = NormalizeEndpoint(peer.endpoint);
            const auto have = NormalizeEndpoint(now.endpoint);
            if (want && (!have || *have != *want)) {
                update.endpoint = *want;
                changed = true;
            }
        }
        const auto keepalive = static_cast<std::uint32_t>(peer.persistent_keepalive.count());
        if (keepalive != now.persistent_keepalive_interval) {
            update.persistent_keepalive_interval = keepalive;
            changed = true;
        }
        const auto want_prefixes = NormalizedPrefixes(peer.allowed_ips);
        if (want_prefixes != NormalizedPrefixes(now.allowed_ips)) {
            update.replace_allowed_ips = true;
            update.allowed_ips.assign(want_prefixes.begin(), want_prefixes.end());
            changed = true;
        }
        if (changed) set.peers.push_back(std::move(update));
    }
    return set;
}

UapiSet FullUapiSet(const WireGuardConfig& desired) {
    UapiSet set;
    set.private_key = desired.private_key;
    if (desired.listen_port != 0) set.listen_port = desired.listen_port;
    set.replace_peers = true;
    for (const auto& peer : desired.peers) set.peers.push_back(NewPeer(peer));
    return set;
}

WireGuardState ToWireGuardState(std::string interface, const UapiDevice& device, bool up,
                                std::vector<std::string> addresses) {
    WireGuardState state;
    state.interface = std::move(interface);
    if (device.private_key) state.public_key = device.private_key->PublicKey();
    state.listen_port = device.listen_port;
    state.up = up;
    state.addresses = std::move(addresses);
    state.peers = ToPeerStates(device);
    return state;
}

std::vector<WireGuardPeerState> ToPeerStates(const UapiDevice& device) {
    std::vector<WireGuardPeerState> out;
    out.reserve(device.peers.size());
    for (const auto& peer : device.peers) {
        WireGuardPeerState state;
        state.public_key = peer.public_key;
        state.endpoint = peer.endpoint;
        state.allowed_ips = peer.allowed_ips;
        state.persistent_keepalive = std::chrono::seconds{peer.persistent_keepalive_interval};
        if (peer.last_handshake_time_sec != 0 || peer.last_handshake_time_nsec != 0) {
            state.latest_handshake =
                std::chrono::system_clock::time_point{} +
                std::chrono::duration_cast<std::chrono::system_clock::duration>(
                    std::chrono::seconds{peer.last_handshake_time_sec} +
                    std::chrono::nanoseconds{peer.last_handshake_time_nsec});
        }
        state.rx_bytes = peer.rx_bytes;
        state.tx_bytes = peer.tx_bytes;
        out.push_back(std::move(state));
    }
    return out;
}

}  // namespace decloud::agent::domain::relay
