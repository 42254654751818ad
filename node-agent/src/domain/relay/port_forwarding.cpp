#include "agent/domain/relay/port_forwarding.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>
#include <unordered_map>
#include <utility>

#include "agent/domain/relay/wireguard.hpp"

namespace decloud::agent::domain::relay {

using common::Error;
using common::Result;
using common::Status;
using Json = nlohmann::json;

namespace {

constexpr std::string_view kIfaceSet = "relay_ifaces";
constexpr std::string_view kPortMap = "ports";

// (protocol, public port) as one small number: the key space is 2 x 65536, so sets of keys are
// bitmaps and the hot path (one change among 10,000 mappings) is a few linear passes without
// trees, sorting or hashing.
constexpr std::size_t kKeySpace = std::size_t{2} << 16;
std::size_t KeyOf(const PortMapping& m) {
    return (m.protocol == Protocol::kTcp ? 0 : std::size_t{1} << 16) | m.public_port;
}

// Dotted quad without leading zeros, each part 0..255.
bool IsCanonicalIpv4(std::string_view text) {
    int parts = 0;
    std::size_t i = 0;
    while (parts < 4) {
        const std::size_t start = i;
        unsigned value = 0;
        while (i < text.size() && text[i] >= '0' && text[i] <= '9' && i - start < 3) {
            value = value * 10 + static_cast<unsigned>(text[i] - '0');
            ++i;
        }
        const std::size_t digits = i - start;
        if (digits == 0 || value > 255 || (digits > 1 && text[start] == '0')) return false;
        ++parts;
        if (parts < 4) {
            if (i >= text.size() || text[i] != '.') return false;
            ++i;
        }
    }
    return i == text.size();
}

std::string Element(const PortMapping& m) {
    return std::string(ToString(m.protocol)) + " . " + std::to_string(m.public_port);
}

std::string Quoted(std::string_view text) { return "\"" + std::string(text) + "\""; }

// The inner value of an element that may carry a comment: {"elem": {"val": X, "comment": C}}.
std::pair<const Json*, std::string> Unwrap(const Json& element) {
    if (element.is_object() && element.contains("elem")) {
        const Json& inner = element.at("elem");
        std::string comment;
        if (inner.contains("comment") && inner.at("comment").is_string())
            comment = inner.at("comment").get<std::string>();
        return {&inner.at("val"), comment};
    }
    return {&element, std::string()};
}

std::optional<Protocol> ParseProtocol(const Json& value) {
    if (value.is_string()) {
        const auto s = value.get<std::string>();
        if (s == "tcp") return Protocol::kTcp;
        if (s == "udp") return Protocol::kUdp;
    } else if (value.is_number_unsigned() || value.is_number_integer()) {
        const auto n = value.get<long long>();
        if (n == 6) return Protocol::kTcp;
        if (n == 17) return Protocol::kUdp;
    }
    return std::nullopt;
}

std::optional<std::uint16_t> ParsePort(const Json& value) {
    if (!value.is_number_integer() && !value.is_number_unsigned()) return std::nullopt;
    const auto n = value.get<long long>();
    if (n <= 0 || n > 65535) return std::nullopt;
    return static_cast<std::uint16_t>(n);
}

Result<PortMapping> ParseMapElement(const Json& pair) {
    const auto bad = [&] {
        return Error::Internal("unexpected element in nft map: " + pair.dump().substr(0, 200));
    };
    if (!pair.is_array() || pair.size() != 2) return bad();
    const auto [key, comment] = Unwrap(pair.at(0));
    const Json& value = pair.at(1);
    if (!key->is_object() || !key->contains("concat") || !value.is_object() ||
        !value.contains("concat"))
        return bad();
    const Json& k = key->at("concat");
    const Json& v = value.at("concat");
    if (!k.is_array() || k.size() != 2 || !v.is_array() || v.size() != 2 || !v.at(0).is_string())
        return bad();
    const auto protocol = ParseProtocol(k.at(0));
    const auto public_port = ParsePort(k.at(1));
    const auto vm_port = ParsePort(v.at(1));
    if (!protocol || !public_port || !vm_port) return bad();
    PortMapping m;
    m.protocol = *protocol;
    m.public_port = *public_port;
    m.tunnel_address = v.at(0).get<std::string>();
    m.vm_port = *vm_port;
    return m;
}

}  // namespace

std::string_view ToString(Protocol protocol) { return protocol == Protocol::kTcp ? "tcp" : "udp"; }

bool IsValidNftName(std::string_view name) {
    if (name.empty() || name.size() > 64) return false;
    if (!((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= 'A' && name[0] <= 'Z'))) return false;
    return std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_';
    });
}

Status ValidateMappings(const std::vector<PortMapping>& mappings) {
    std::vector<bool> seen(kKeySpace);
    for (const auto& m : mappings) {
        if (m.public_port == 0 || m.vm_port == 0)
            return Error::InvalidArgument("port 0 in a port mapping");
        if (!IsCanonicalIpv4(m.tunnel_address))
            return Error::InvalidArgument("tunnel address '" + m.tunnel_address +
                                          "' is not a dotted IPv4 address");
        if (seen[KeyOf(m)])
            return Error::InvalidArgument("public port " + std::string(ToString(m.protocol)) + "/" +
                                          std::to_string(m.public_port) + " is mapped twice");
        seen[KeyOf(m)] = true;
    }
    return common::Ok();
}

Result<MappingDiff> DiffMappings(std::string_view interface,
                                 const std::vector<PortMapping>& desired,
                                 const NftTableState& actual, HeldElsewhere held_elsewhere) {
    MappingDiff diff;
    diff.add_interface = std::find(actual.interfaces.begin(), actual.interfaces.end(), interface) ==
                         actual.interfaces.end();
    // Keys held by other owners, and where each of ours sits.
    std::vector<bool> taken(kKeySpace);
    for (const auto& [owner, mappings] : actual.mappings) {
        if (owner == interface) continue;
        for (const auto& m : mappings) taken[KeyOf(m)] = true;
    }
    // Built on the first take-over only: a take-over is rare (a failover), a diff is not.
    std::unordered_map<std::size_t, const PortMapping*> held_by_other;
    const auto holder_of = [&](std::size_t key) {
        if (held_by_other.empty()) {
            for (const auto& [owner, mappings] : actual.mappings) {
                if (owner == interface) continue;
                for (const auto& other : mappings) held_by_other.emplace(KeyOf(other), &other);
            }
        }
        return held_by_other.at(key);
    };
    static const std::vector<PortMapping> kNone;
    const auto mine_it = actual.mappings.find(std::string(interface));
    const auto& mine = mine_it == actual.mappings.end() ? kNone : mine_it->second;
    std::vector<std::int32_t> slot(kKeySpace, -1);
    for (std::size_t i = 0; i < mine.size(); ++i)
        slot[KeyOf(mine[i])] = static_cast<std::int32_t>(i);

    std::vector<bool> wanted(kKeySpace);
    for (const auto& m : desired) {
        const auto key = KeyOf(m);
        wanted[key] = true;
        if (taken[key] && held_elsewhere == HeldElsewhere::kTakeOver) {
            diff.remove.push_back(*holder_of(key));
            diff.add.push_back(m);
            continue;
        }
        if (taken[key]) {
            std::string owner = "an unknown owner";
            for (const auto& [name, mappings] : actual.mappings) {
                for (const auto& other : mappings) {
                    if (KeyOf(other) == key && name != interface)
                        owner = name.empty() ? owner : "interface " + name;
                }
            }
            return Error::Conflict(std::string(ToString(m.protocol)) + " port " +
                                   std::to_string(m.public_port) + " is forwarded for " + owner);
        }
        if (slot[key] < 0) {
            diff.add.push_back(m);
        } else if (mine[static_cast<std::size_t>(slot[key])] != m) {
            diff.remove.push_back(mine[static_cast<std::size_t>(slot[key])]);
            diff.add.push_back(m);
        }
    }
    for (const auto& m : mine) {
        if (!wanted[KeyOf(m)]) diff.remove.push_back(m);
    }
    std::sort(diff.remove.begin(), diff.remove.end());
    std::sort(diff.add.begin(), diff.add.end());
    return diff;
}

MappingDiff RemovalDiff(std::string_view interface, const NftTableState& actual) {
    MappingDiff diff;
    diff.remove_interface = std::find(actual.interfaces.begin(), actual.interfaces.end(),
                                      interface) != actual.interfaces.end();
    if (const auto mine = actual.mappings.find(std::string(interface));
        mine != actual.mappings.end()) {
        diff.remove = mine->second;
        std::sort(diff.remove.begin(), diff.remove.end());
    }
    return diff;
}

void ApplyDiff(NftTableState& state, std::string_view interface, const MappingDiff& diff) {
    state.exists = true;
    auto& ifaces = state.interfaces;
    const std::string name(interface);
    if (diff.add_interface && std::find(ifaces.begin(), ifaces.end(), name) == ifaces.end())
        ifaces.insert(std::lower_bound(ifaces.begin(), ifaces.end(), name), name);
    if (diff.remove_interface) std::erase(ifaces, name);
    if (!diff.remove.empty()) {
        std::vector<bool> removed(kKeySpace);
        for (const auto& m : diff.remove) removed[KeyOf(m)] = true;
        // Keys are unique in the map: a removed key leaves whichever interface held it.
        for (auto it = state.mappings.begin(); it != state.mappings.end();) {
            std::erase_if(it->second, [&](const PortMapping& m) { return removed[KeyOf(m)]; });
            it = it->second.empty() ? state.mappings.erase(it) : std::next(it);
        }
    }
    if (!diff.add.empty()) {
        auto& mine = state.mappings[name];
        mine.insert(mine.end(), diff.add.begin(), diff.add.end());
    }
}

bool SkeletonIntact(const NftTableState& state) {
    const std::map<std::string, int> expected = {
        {"prerouting", 1}, {"forward", 4}, {"postrouting", 1}};
    return state.exists && state.has_interface_set && state.has_port_map &&
           state.rules_per_chain == expected;
}

std::string RenderSkeleton(std::string_view table) {
    const std::string t = "inet " + std::string(table);
    std::string out;
    out += "add table " + t + "\n";
    out += "add set " + t + " " + std::string(kIfaceSet) + " { type ifname; }\n";
    out += "add map " + t + " " + std::string(kPortMap) +
           " { type inet_proto . inet_service : ipv4_addr . inet_service; }\n";
    out += "add chain " + t +
           " prerouting { type nat hook prerouting priority dstnat; policy accept; }\n";
    out += "add chain " + t +
           " forward { type filter hook forward priority filter; policy accept; }\n";
    out += "add chain " + t +
           " postrouting { type nat hook postrouting priority srcnat; policy accept; }\n";
    out += "flush chain " + t + " prerouting\n";
    out += "flush chain " + t + " forward\n";
    out += "flush chain " + t + " postrouting\n";
    const std::string ifaces = "@" + std::string(kIfaceSet);
    out += "add rule " + t +
           " prerouting fib daddr type local dnat ip to meta l4proto . th dport map @" +
           std::string(kPortMap) + "\n";
    out += "add rule " + t + " forward oifname " + ifaces + " ct status dnat accept\n";
    out += "add rule " + t + " forward iifname " + ifaces + " ct status dnat accept\n";
    out += "add rule " + t + " forward oifname " + ifaces + " drop\n";
    out += "add rule " + t + " forward iifname " + ifaces + " drop\n";
    out += "add rule " + t + " postrouting oifname " + ifaces + " ct status dnat masquerade\n";
    return out;
}

std::string RenderDiff(std::string_view table, std::string_view interface,
                       const MappingDiff& diff) {
    const std::string t = "inet " + std::string(table);
    std::string out;
    if (!diff.remove.empty()) {
        out += "delete element " + t + " " + std::string(kPortMap) + " { ";
        for (std::size_t i = 0; i < diff.remove.size(); ++i) {
            if (i != 0) out += ", ";
            out += Element(diff.remove[i]);
        }
        out += " }\n";
    }
    if (diff.remove_interface)
        out += "delete element " + t + " " + std::string(kIfaceSet) + " { " + Quoted(interface) +
               " }\n";
    if (diff.add_interface)
        out +=
            "add element " + t + " " + std::string(kIfaceSet) + " { " + Quoted(interface) + " }\n";
    if (!diff.add.empty()) {
        out += "add element " + t + " " + std::string(kPortMap) + " { ";
        for (std::size_t i = 0; i < diff.add.size(); ++i) {
            const auto& m = diff.add[i];
            if (i != 0) out += ", ";
            out += Element(m) + " comment " + Quoted(interface) + " : " + m.tunnel_address + " . " +
                   std::to_string(m.vm_port);
        }
        out += " }\n";
    }
    return out;
}

std::string RenderDeleteTable(std::string_view table) {
    return "delete table inet " + std::string(table) + "\n";
}

Result<NftTableState> ParseNftTableJson(std::string_view json) {
    const Json doc = Json::parse(json, nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded() || !doc.is_object() || !doc.contains("nftables") ||
        !doc.at("nftables").is_array())
        return Error::Internal("libnftables answered with unexpected JSON");
    NftTableState state;
    for (const Json& item : doc.at("nftables")) {
        if (!item.is_object()) continue;
        if (item.contains("table")) state.exists = true;
        if (item.contains("chain") && item.at("chain").is_object())
            state.rules_per_chain.try_emplace(item.at("chain").value("name", ""), 0);
        if (item.contains("rule") && item.at("rule").is_object())
            ++state.rules_per_chain[item.at("rule").value("chain", "")];
        if (item.contains("set")) {
            const Json& set = item.at("set");
            if (set.value("name", "") != kIfaceSet) continue;
            state.has_interface_set = true;
            if (!set.contains("elem")) continue;
            for (const Json& element : set.at("elem")) {
                const auto [value, comment] = Unwrap(element);
                if (!value->is_string())
                    return Error::Internal("unexpected element in nft set: " + element.dump());
                state.interfaces.push_back(value->get<std::string>());
            }
        }
        if (item.contains("map")) {
            const Json& map = item.at("map");
            if (map.value("name", "") != kPortMap) continue;
            state.has_port_map = true;
            if (!map.contains("elem")) continue;
            for (const Json& pair : map.at("elem")) {
                auto m = ParseMapElement(pair);
                if (!m) return m.error();
                const auto [key, comment] = Unwrap(pair.at(0));
                state.mappings[comment].push_back(*m);
            }
        }
    }
    std::sort(state.interfaces.begin(), state.interfaces.end());
    for (auto& [owner, mappings] : state.mappings) std::sort(mappings.begin(), mappings.end());
    return state;
}

}  // namespace decloud::agent::domain::relay
