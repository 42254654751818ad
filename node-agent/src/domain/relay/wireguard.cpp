#include "agent/domain/relay/wireguard.hpp"

#include <arpa/inet.h>

#include <array>
#include <charconv>
#include <cstring>
#include <set>

#include "decloud/crypto/crypto.hpp"

namespace decloud::agent::domain::relay {

using common::Error;
using common::Result;
using common::Status;

namespace {

constexpr std::string_view kRelayPrefix = "dcr";
constexpr std::string_view kCgnatPrefix = "dcc";
constexpr std::size_t kHashDigits = 12;
constexpr std::size_t kMaxInterfaceName = 15;

bool IsLowerHex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

std::optional<unsigned> ParseUnsigned(std::string_view text, unsigned max) {
    if (text.empty() || text.size() > 5 || (text.size() > 1 && text[0] == '0')) return std::nullopt;
    unsigned value = 0;
    const auto* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (ec != std::errc{} || ptr != end || value > max) return std::nullopt;
    return value;
}

// An IP literal in canonical text form (inet_ntop), with its family and bytes.
struct IpLiteral {
    int family = AF_INET;
    std::array<unsigned char, 16> bytes{};
    std::size_t size() const { return family == AF_INET ? 4 : 16; }
    std::string Text() const {
        char buf[INET6_ADDRSTRLEN] = {};
        ::inet_ntop(family, bytes.data(), buf, sizeof buf);
        return buf;
    }
};

std::optional<IpLiteral> ParseIp(std::string_view text) {
    if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
    const std::string s(text);
    IpLiteral ip;
    if (::inet_pton(AF_INET, s.c_str(), ip.bytes.data()) == 1) {
        ip.family = AF_INET;
        return ip;
    }
    if (::inet_pton(AF_INET6, s.c_str(), ip.bytes.data()) == 1) {
        ip.family = AF_INET6;
        return ip;
    }
    return std::nullopt;
}

}  // namespace

std::string RelayInterfaceName(RelayRole role, std::string_view relay_id) {
    const auto digest = crypto::Sha256(relay_id);
    std::string name(role == RelayRole::kRelay ? kRelayPrefix : kCgnatPrefix);
    name += crypto::HexEncode(digest).substr(0, kHashDigits);
    return name;
}

bool IsRelayInterfaceName(std::string_view name) {
    if (name.size() != kRelayPrefix.size() + kHashDigits) return false;
    if (!name.starts_with(kRelayPrefix) && !name.starts_with(kCgnatPrefix)) return false;
    for (const char c : name.substr(kRelayPrefix.size())) {
        if (!IsLowerHex(c)) return false;
    }
    return true;
}

std::optional<RelayRole> RelayInterfaceRole(std::string_view name) {
    if (!IsRelayInterfaceName(name)) return std::nullopt;
    return name.starts_with(kRelayPrefix) ? RelayRole::kRelay : RelayRole::kCgnat;
}

bool IsValidInterfaceName(std::string_view name) {
    if (name.empty() || name.size() > kMaxInterfaceName || name == "." || name == "..")
        return false;
    for (const char c : name) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                        (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
        if (!ok) return false;
    }
    return true;
}

Result<std::string> NormalizeCidr(std::string_view cidr, bool clear_host_bits) {
    const auto slash = cidr.find('/');
    if (slash == std::string_view::npos)
        return Error::InvalidArgument("not a CIDR prefix: '" + std::string(cidr) + "'");
    auto ip = ParseIp(cidr.substr(0, slash));
    const unsigned max_len = ip && ip->family == AF_INET6 ? 128 : 32;
    const auto len = ParseUnsigned(cidr.substr(slash + 1), max_len);
    if (!ip || !len)
        return Error::InvalidArgument("not a CIDR prefix: '" + std::string(cidr) + "'");
    if (clear_host_bits) {
        for (std::size_t i = 0; i < ip->size(); ++i) {
            const unsigned bit = static_cast<unsigned>(i) * 8;
            if (bit >= *len) {
                ip->bytes[i] = 0;
            } else if (*len - bit < 8) {
                ip->bytes[i] &= static_cast<unsigned char>(0xff << (8 - (*len - bit)));
            }
        }
    }
    return ip->Text() + "/" + std::to_string(*len);
}

Result<std::string> NormalizeEndpoint(std::string_view endpoint) {
    const auto bad = [&] {
        return Error::InvalidArgument("not an endpoint (ip:port): '" + std::string(endpoint) + "'");
    };
    std::string_view host;
    std::string_view port;
    if (endpoint.starts_with('[')) {
        const auto close = endpoint.find("]:");
        if (close == std::string_view::npos) return bad();
        host = endpoint.substr(1, close - 1);
        port = endpoint.substr(close + 2);
    } else {
        const auto colon = endpoint.rfind(':');
        if (colon == std::string_view::npos) return bad();
        host = endpoint.substr(0, colon);
        port = endpoint.substr(colon + 1);
    }
    const auto ip = ParseIp(host);
    const auto port_number = ParseUnsigned(port, 65535);
    if (!ip || !port_number || *port_number == 0) return bad();
    if (ip->family == AF_INET6 && !endpoint.starts_with('[')) return bad();
    if (ip->family == AF_INET) return ip->Text() + ":" + std::to_string(*port_number);
    return "[" + ip->Text() + "]:" + std::to_string(*port_number);
}

Status ValidateConfig(const WireGuardConfig& config) {
    if (!IsValidInterfaceName(config.interface))
        return Error::InvalidArgument("invalid interface name '" + config.interface + "'");
    if (config.private_key.IsZero())
        return Error::InvalidArgument("interface " + config.interface + " has no private key");
    for (const auto& address : config.addresses) {
        if (auto n = NormalizeCidr(address, false); !n) return n.error();
    }
    std::set<WireGuardKey> keys;
    std::set<std::string> prefixes;  // over all peers: WireGuard routes a prefix to one peer
    const auto own_public = config.private_key.PublicKey();
    for (const auto& peer : config.peers) {
        if (peer.public_key.IsZero())
            return Error::InvalidArgument("a peer of " + config.interface + " has no public key");
        if (peer.public_key == own_public)
            return Error::InvalidArgument("a peer of " + config.interface +
                                          " has the interface's own public key");
        if (!keys.insert(peer.public_key).second)
            return Error::InvalidArgument("peer " + peer.public_key.ToBase64() +
                                          " is listed twice");
        if (!peer.endpoint.empty()) {
            if (auto e = NormalizeEndpoint(peer.endpoint); !e) return e.error();
        }
        if (peer.persistent_keepalive.count() < 0 || peer.persistent_keepalive.count() > 65535)
            return Error::InvalidArgument("persistent keepalive out of range (0..65535 s)");
        for (const auto& prefix : peer.allowed_ips) {
            auto n = NormalizeCidr(prefix, true);
            if (!n) return n.error();
            if (!prefixes.insert(*n).second)
                return Error::InvalidArgument("allowed IP " + *n +
                                              " appears twice among the peers");
        }
    }
    return common::Ok();
}

}  // namespace decloud::agent::domain::relay
