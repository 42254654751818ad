#include "agent/domain/ingress/routing.hpp"

#include <algorithm>
#include <array>
#include <boost/asio/ip/address.hpp>

#include "decloud/common/ids.hpp"
#include "text.hpp"

namespace decloud::agent::domain::ingress {

namespace {

using common::Error;
using common::Result;

constexpr std::string_view kPathPrefix = "/api/vms/";
constexpr std::string_view kProxySegment = "/proxy/http/";

Refusal Refuse(unsigned status, std::string title, std::string detail) {
    Refusal r;
    r.status = status;
    r.title = std::move(title);
    r.detail = std::move(detail);
    return r;
}

Refusal BadRequest(std::string detail) { return Refuse(400, "Bad Request", std::move(detail)); }

Refusal UnknownVm() { return Refuse(404, "Not Found", "no such VM on this node"); }

bool PortAllowed(const VmRoute& vm, std::uint16_t port, const RoutingConfig& config) {
    if (port == vm.default_port) return true;
    const auto has = [port](const std::vector<std::uint16_t>& ports) {
        return std::find(ports.begin(), ports.end(), port) != ports.end();
    };
    return has(config.allowed_ports) || has(vm.extra_ports);
}

// `path` and `query` (with its "?") make the origin-form target for the VM.
RouteDecision Forward(const VmRoute& vm, std::uint16_t port, std::string_view path,
                      std::string_view query, const RoutingConfig& config) {
    if (!PortAllowed(vm, port, config)) {
        return Refuse(403, "Forbidden", "port " + std::to_string(port) + " is not exposed");
    }
    Upstream up;
    up.vm_id = vm.vm_id;
    up.address = vm.address;
    up.port = port;
    up.path = path;
    up.query = query;
    return up;
}

// A request target as received, split at its "?".
std::pair<std::string_view, std::string_view> SplitQuery(std::string_view target) {
    const auto question = target.find('?');
    if (question == std::string_view::npos) return {target, {}};
    return {target.substr(0, question), target.substr(question)};
}

const VmRoute* FindByLabel(const RoutingTable& table, std::string_view label) {
    if (common::IsUuid(label)) return table.FindById(label);
    if (IsDnsLabel(label)) return table.FindByName(label);
    return nullptr;
}

RouteDecision RouteHostForm(std::string_view label, std::string_view target,
                            const RoutingTable& table, const RoutingConfig& config) {
    if (label.find('.') != std::string_view::npos) return UnknownVm();
    if (const VmRoute* vm = FindByLabel(table, label)) {
        const auto [path, query] = SplitQuery(target);
        return Forward(*vm, vm->default_port, path, query, config);
    }
    // A UUID whose first group is all digits would otherwise read as "{port}-...".
    if (common::IsUuid(label)) return UnknownVm();
    // "{port}-{name|id}": only when the whole label is not itself a VM name or id.
    const auto dash = label.find('-');
    if (dash != std::string_view::npos && dash > 0 &&
        std::all_of(label.begin(), label.begin() + static_cast<std::ptrdiff_t>(dash),
                    text::IsDigit)) {
        auto port = ParsePort(label.substr(0, dash));
        if (!port) return BadRequest("invalid port in host: " + port.error().message);
        const std::string_view rest = label.substr(dash + 1);
        if (!common::IsUuid(rest) && !IsDnsLabel(rest)) {
            return BadRequest("malformed VM name in host");
        }
        const VmRoute* vm = FindByLabel(table, rest);
        if (vm == nullptr) return UnknownVm();
        const auto [path, query] = SplitQuery(target);
        return Forward(*vm, *port, path, query, config);
    }
    if (!IsDnsLabel(label)) return BadRequest("malformed VM name in host");
    return UnknownVm();
}

RouteDecision RoutePathForm(std::string_view target, const RoutingTable& table,
                            const RoutingConfig& config) {
    const auto [path, query] = SplitQuery(target);
    const auto no_route = [] { return Refuse(404, "Not Found", "no proxy route for this path"); };
    if (!path.starts_with(kPathPrefix)) return no_route();
    std::string_view after = path.substr(kPathPrefix.size());
    const auto slash = after.find('/');
    if (slash == std::string_view::npos) return no_route();
    const std::string_view id = after.substr(0, slash);
    after.remove_prefix(slash);
    if (!after.starts_with(kProxySegment)) return no_route();
    after.remove_prefix(kProxySegment.size());
    const auto port_end = after.find('/');
    const std::string_view port_text = after.substr(0, port_end);
    const std::string_view rest =
        port_end == std::string_view::npos ? std::string_view{} : after.substr(port_end);

    if (!common::IsUuid(id)) return BadRequest("VM id in path is not a UUID");
    auto port = ParsePort(port_text);
    if (!port) return BadRequest("invalid port in path: " + port.error().message);
    const VmRoute* vm = table.FindById(id);
    if (vm == nullptr) return UnknownVm();
    return Forward(*vm, *port, rest, query, config);
}

}  // namespace

Result<RoutingTable> RoutingTable::Build(std::vector<VmRoute> routes) {
    RoutingTable table;
    table.routes_ = std::move(routes);
    for (std::size_t i = 0; i < table.routes_.size(); ++i) {
        const VmRoute& r = table.routes_[i];
        if (!common::IsUuid(r.vm_id)) return Error::InvalidArgument("VM id is not a UUID");
        if (!r.name.empty() && !IsDnsLabel(r.name)) {
            return Error::InvalidArgument("VM name is not a DNS label: " + r.name);
        }
        boost::system::error_code ec;
        boost::asio::ip::make_address(r.address, ec);
        if (ec) return Error::InvalidArgument("VM address is not an IP literal: " + r.address);
        if (r.default_port == 0) return Error::InvalidArgument("VM default port is 0");
        if (std::find(r.extra_ports.begin(), r.extra_ports.end(), 0) != r.extra_ports.end()) {
            return Error::InvalidArgument("VM extra port is 0");
        }
        if (!table.by_id_.emplace(text::Lower(r.vm_id), i).second) {
            return Error::InvalidArgument("duplicate VM id " + r.vm_id);
        }
        if (!r.name.empty() && !table.by_name_.emplace(r.name, i).second) {
            return Error::InvalidArgument("duplicate VM name " + r.name);
        }
    }
    return table;
}

const VmRoute* RoutingTable::FindById(std::string_view id) const {
    // Keys are lowercased UUIDs: anything longer than one is not among them.
    std::array<char, 36> lower{};
    if (id.size() > lower.size()) return nullptr;
    std::transform(id.begin(), id.end(), lower.begin(), text::ToLower);
    const auto it = by_id_.find(std::string_view(lower.data(), id.size()));
    return it == by_id_.end() ? nullptr : &routes_[it->second];
}

const VmRoute* RoutingTable::FindByName(std::string_view name) const {
    const auto it = by_name_.find(name);
    return it == by_name_.end() ? nullptr : &routes_[it->second];
}

Result<std::uint16_t> ParsePort(std::string_view text) {
    if (text.empty()) return Error::InvalidArgument("empty port");
    if (text.size() > 5) return Error::InvalidArgument("port out of range");
    if (!std::all_of(text.begin(), text.end(), text::IsDigit)) {
        return Error::InvalidArgument("port is not a decimal number");
    }
    if (text.front() == '0') return Error::InvalidArgument("port has a leading zero or is 0");
    std::uint32_t value = 0;
    for (char c : text) value = value * 10 + static_cast<std::uint32_t>(c - '0');
    if (value > 65535) return Error::InvalidArgument("port out of range");
    return static_cast<std::uint16_t>(value);
}

bool IsDnsLabel(std::string_view label) {
    if (label.empty() || label.size() > 63) return false;
    if (label.front() == '-' || label.back() == '-') return false;
    return std::all_of(label.begin(), label.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || text::IsDigit(c) || c == '-';
    });
}

Result<std::string> NormalizeHost(std::string_view host) {
    if (host.empty()) return Error::InvalidArgument("empty Host");
    if (host.front() == '[') {
        // IPv6 literal (the node's own address, path form only): "[addr]" or "[addr]:port".
        const auto close = host.find(']');
        if (close == std::string_view::npos)
            return Error::InvalidArgument("unterminated IPv6 Host");
        boost::system::error_code ec;
        boost::asio::ip::make_address_v6(host.substr(1, close - 1), ec);
        if (ec) return Error::InvalidArgument("invalid IPv6 literal in Host");
        const std::string_view tail = host.substr(close + 1);
        if (!tail.empty()) {
            if (tail.front() != ':' || !ParsePort(tail.substr(1))) {
                return Error::InvalidArgument("invalid port in Host");
            }
        }
        return text::Lower(host.substr(0, close + 1));
    }
    const auto colon = host.find(':');
    std::string_view name = host.substr(0, colon);
    if (colon != std::string_view::npos) {
        auto port = ParsePort(host.substr(colon + 1));
        if (!port) return Error::InvalidArgument("invalid port in Host: " + port.error().message);
    }
    if (name.empty()) return Error::InvalidArgument("empty host name");
    // A trailing dot names the same host in DNS; accept it once.
    if (name.back() == '.') name.remove_suffix(1);
    if (name.empty() || name.front() == '.') return Error::InvalidArgument("malformed host name");
    for (std::size_t i = 0; i < name.size(); ++i) {
        const char c = name[i];
        if (c == '.') {
            if (name[i - 1] == '.') return Error::InvalidArgument("empty label in Host");
            continue;
        }
        if (!text::IsDigit(c) && !text::IsAlpha(c) && c != '-') {
            return Error::InvalidArgument("invalid character in Host");
        }
    }
    return text::Lower(name);
}

RouteDecision Route(const IngressRequest& request, const RoutingTable& table,
                    const RoutingConfig& config) {
    if (text::EqualsIgnoreCase(request.method, "CONNECT")) {
        return BadRequest("CONNECT is not supported");
    }
    const std::string_view target = request.target;
    if (target.empty() || target.front() != '/') {
        return BadRequest("request target must be in origin-form");
    }
    for (char c : target) {
        const auto u = static_cast<unsigned char>(c);
        if (u <= 0x20 || u == 0x7F || c == '#') {
            return BadRequest("invalid character in request target");
        }
    }
    auto host = NormalizeHost(request.host);
    if (!host) return BadRequest(host.error().message);

    const std::string domain = text::Lower(config.vm_domain);
    if (!domain.empty() && host->size() > domain.size() + 1 && host->ends_with(domain) &&
        (*host)[host->size() - domain.size() - 1] == '.') {
        const std::string_view label =
            std::string_view(*host).substr(0, host->size() - domain.size() - 1);
        return RouteHostForm(label, target, table, config);
    }
    return RoutePathForm(target, table, config);
}

}  // namespace decloud::agent::domain::ingress
