#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "decloud/common/result.hpp"

namespace decloud::agent::domain::ingress {

// One VM reachable through this node's ingress proxy.
struct VmRoute {
    std::string vm_id;                       // UUID (either case; matched case-insensitively)
    std::string name;                        // DNS label: lowercase letters, digits, '-'
    std::string address;                     // IPv4 or IPv6 literal of the VM on this node
    std::uint16_t default_port = 80;         // used by the host form without a port prefix
    std::vector<std::uint16_t> extra_ports;  // ports the owner exposed beyond the allow-list
};

// Immutable snapshot of the VMs on this node; O(1) lookup by id or name. Safe to share between
// threads once built (no mutation after Build).
class RoutingTable {
  public:
    RoutingTable() = default;

    // Fails (kInvalidArgument) on a malformed id, name, address or port 0, and on duplicate ids or
    // names. An empty name is allowed: that VM is then reachable by id only.
    static common::Result<RoutingTable> Build(std::vector<VmRoute> routes);

    // nullptr when absent. `id` is matched case-insensitively, `name` exactly (names are
    // lowercase).
    const VmRoute* FindById(std::string_view id) const;
    const VmRoute* FindByName(std::string_view name) const;
    std::size_t size() const { return routes_.size(); }

  private:
    // Lets a lookup take a string_view: no copy of the key per request.
    struct KeyHash {
        using is_transparent = void;
        std::size_t operator()(std::string_view key) const {
            return std::hash<std::string_view>{}(key);
        }
    };
    using Index = std::unordered_map<std::string, std::size_t, KeyHash, std::equal_to<>>;

    std::vector<VmRoute> routes_;
    Index by_id_;
    Index by_name_;
};

// Ports any VM may be reached on unless configured otherwise.
inline const std::vector<std::uint16_t> kDefaultAllowedPorts = {22,   80,   443,  3000, 5000,
                                                                8000, 8080, 8443, 9000};

struct RoutingConfig {
    // Host-form suffix, e.g. "vm.node1.decloud.example" (matched case-insensitively).
    std::string vm_domain;
    std::vector<std::uint16_t> allowed_ports = kDefaultAllowedPorts;
};

// The request line and Host header as received (method as sent, target as sent, Host raw).
struct IngressRequest {
    std::string_view method;
    std::string_view target;
    std::string_view host;
};

// Where to forward: never derived from the request, always from the routing table. Views, so
// that routing a request allocates nothing: `vm_id` and `address` into the routing table,
// `path` and `query` into the request target; valid while both are.
struct Upstream {
    std::string_view vm_id;
    std::string_view address;
    std::uint16_t port = 0;
    std::string_view path;   // empty: "/"
    std::string_view query;  // with its "?", or empty

    // The origin-form request target for the VM.
    void AppendTarget(std::string& out) const {
        out.append(path.empty() ? std::string_view("/") : path).append(query);
    }
    std::string Target() const {
        std::string out;
        AppendTarget(out);
        return out;
    }
};

// A request the proxy answers itself, as problem+json.
struct Refusal {
    unsigned status = 400;  // 400 malformed, 403 port not allowed, 404 unknown VM / no route
    std::string title;
    std::string detail;
};

using RouteDecision = std::variant<Upstream, Refusal>;

// Decides where a request goes.
// Host form ("{name|id}.{vm_domain}" or "{port}-{name|id}.{vm_domain}") takes precedence and
// forwards the target unchanged; otherwise the path form
// "/api/vms/{uuid}/proxy/http/{port}[/{rest}][?{query}]" forwards "/{rest}[?{query}]" verbatim
// (no decoding or normalisation: the VM is the only thing it can reach). A label that exactly
// matches a VM name or id wins over reading it as "{port}-{name}". The default port of a VM is
// always allowed; other ports must be in the allow-list or the VM's extra ports.
// Refuses CONNECT, absolute-form, authority-form and asterisk-form targets (no SSRF).
RouteDecision Route(const IngressRequest& request, const RoutingTable& table,
                    const RoutingConfig& config);

// Decimal 1..65535 without sign, leading zero or trailing garbage.
common::Result<std::uint16_t> ParsePort(std::string_view text);

// Lowercase letters, digits and '-', 1..63 characters, not starting or ending with '-'.
bool IsDnsLabel(std::string_view label);

// The Host header without an optional ":port" suffix, lowercased ("[v6]" literals keep brackets).
// Rejects empty hosts, userinfo, several ports and any character outside [A-Za-z0-9.-].
common::Result<std::string> NormalizeHost(std::string_view host);

}  // namespace decloud::agent::domain::ingress
