#pragma once

#include <compare>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "decloud/common/result.hpp"

// Port forwarding on a relay as an nftables table owned by the agent:
//
//   table inet <table> {
//     set relay_ifaces { type ifname; }                      the relay interfaces
//     map ports { type inet_proto . inet_service : ipv4_addr . inet_service; }
//     chain prerouting   nat hook, dstnat:  fib daddr type local
//                                           dnat ip to meta l4proto . th dport map @ports
//     chain forward      filter hook:       oifname @relay_ifaces ct status dnat accept
//                                           iifname @relay_ifaces ct status dnat accept
//                                           oifname @relay_ifaces drop
//                                           iifname @relay_ifaces drop
//     chain postrouting  nat hook, srcnat:  oifname @relay_ifaces ct status dnat masquerade
//   }
//
// One map for all relay interfaces, keyed by (protocol, public port): a lookup is one hash
// probe whatever the number of mappings, and the public port space of the host is shared by
// all relays anyway. Each element carries its interface as comment: that is how mappings are
// owned per interface. Forwarding is limited to the tunnels: only DNATed connections (and their
// replies) cross a relay interface, so a CGNAT node cannot use the relay as a router. Replies
// come back through the tunnel because the masquerade makes the relay's tunnel address their
// source. Rendering, parsing and diffing only; libnftables is the adapter's. Pure.
namespace decloud::agent::domain::relay {

enum class Protocol { kTcp, kUdp };
std::string_view ToString(Protocol protocol);  // "tcp" / "udp"

// public_port on the relay's own addresses -> tunnel_address:vm_port through the tunnel.
struct PortMapping {
    std::uint16_t public_port = 0;
    Protocol protocol = Protocol::kTcp;
    std::string tunnel_address;  // dotted IPv4 of the CGNAT node's end of the tunnel
    std::uint16_t vm_port = 0;

    friend bool operator==(const PortMapping&, const PortMapping&) = default;
    friend auto operator<=>(const PortMapping&, const PortMapping&) = default;
};

// Ports non-zero, canonical dotted IPv4, no (protocol, public port) twice. kInvalidArgument.
common::Status ValidateMappings(const std::vector<PortMapping>& mappings);

// What the table holds (or, in the adapter, what it last applied).
struct NftTableState {
    bool exists = false;
    std::vector<std::string> interfaces;  // elements of relay_ifaces, sorted
    // interface (element comment, "" if none) -> its mappings; sorted as parsed, in no
    // particular order after ApplyDiff (keeping them sorted would cost a sort per change).
    std::map<std::string, std::vector<PortMapping>> mappings;
    // What the listing showed of the rest of the skeleton: set, map, chains and their rules.
    bool has_interface_set = false;
    bool has_port_map = false;
    std::map<std::string, int> rules_per_chain;

    friend bool operator==(const NftTableState&, const NftTableState&) = default;
};

// Element changes for one interface.
struct MappingDiff {
    std::vector<PortMapping> remove;  // by key; includes the old value of changed mappings
    std::vector<PortMapping> add;
    bool add_interface = false;     // relay_ifaces lacks the interface
    bool remove_interface = false;  // used by removal: the interface leaves relay_ifaces

    bool Empty() const {
        return remove.empty() && add.empty() && !add_interface && !remove_interface;
    }
};

// What to do with a desired key that another interface (or an element without owner) holds.
enum class HeldElsewhere {
    kConflict,  // refuse: the other holder may be right
    kTakeOver,  // the desired state is authoritative: delete it there and add it here, in one
                // transaction, so a connection arriving while a port moves is never refused
};

// The minimal element changes that make `interface`'s mappings in `actual` exactly `desired`
// (validated). A changed target is a delete and an add of the same key in one transaction.
// A desired key held by another interface is kConflict or taken over, as `held_elsewhere` says.
// Linear in the number of mappings, without sorting them (the diff itself comes out sorted).
common::Result<MappingDiff> DiffMappings(std::string_view interface,
                                         const std::vector<PortMapping>& desired,
                                         const NftTableState& actual,
                                         HeldElsewhere held_elsewhere = HeldElsewhere::kConflict);

// The changes that take every trace of `interface` out of `actual`.
MappingDiff RemovalDiff(std::string_view interface, const NftTableState& actual);

// `state` after `diff` was applied for `interface` (a removed key leaves whichever interface held
// it). Linear, no sorting.
void ApplyDiff(NftTableState& state, std::string_view interface, const MappingDiff& diff);

// True when `state` has the set, the map and exactly the skeleton's chains with their number of
// rules (a cheap check that nobody edited the table; contents of rules are not compared).
bool SkeletonIntact(const NftTableState& state);

// nft commands that create the table, its set, map and chains if missing and (re)write the
// chains' rules (flush + add: idempotent, elements untouched). `table` must be a valid name.
std::string RenderSkeleton(std::string_view table);

// nft commands for `diff` (one "delete element" and one "add element" command at most for the
// map, plus the interface set). Empty for an empty diff. Interface names must be valid.
std::string RenderDiff(std::string_view table, std::string_view interface, const MappingDiff& diff);

// The command that removes the whole table.
std::string RenderDeleteTable(std::string_view table);

// Parses libnftables' JSON answer to "list table inet <table>" into the state. kInternal for
// JSON that does not have the expected shape.
common::Result<NftTableState> ParseNftTableJson(std::string_view json);

// A table, set or chain name nft accepts unquoted: [A-Za-z][A-Za-z0-9_]*, at most 64 chars.
bool IsValidNftName(std::string_view name);

}  // namespace decloud::agent::domain::relay
