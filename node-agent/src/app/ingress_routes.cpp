#include "agent/app/ingress_routes.hpp"

#include <boost/asio/ip/address.hpp>

#include <algorithm>
#include <unordered_map>

namespace decloud::agent::app {

namespace ingress = domain::ingress;

namespace {

std::string PickAddress(const std::vector<std::string>& addresses) {
    std::string v6;
    for (const auto& text : addresses) {
        boost::system::error_code ec;
        const auto address = boost::asio::ip::make_address(text, ec);
        if (ec || address.is_unspecified() || address.is_multicast()) continue;
        if (address.is_v4()) return address.to_string();
        if (v6.empty() && !address.to_v6().is_link_local()) v6 = address.to_string();
    }
    return v6;
}

std::string Lowercase(std::string text) {
    std::transform(text.begin(), text.end(), text.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return text;
}

}  // namespace

ingress::RoutingTable RoutesFromDomains(const std::vector<ports::DomainInfo>& domains) {
    std::vector<ingress::VmRoute> routes;
    std::unordered_map<std::string, std::size_t> name_uses;
    for (const auto& domain : domains) {
        if (domain.state != ports::DomainState::kRunning) continue;
        auto address = PickAddress(domain.addresses);
        if (address.empty()) continue;
        ingress::VmRoute route;
        route.vm_id = domain.vm_id;
        route.name = Lowercase(domain.name);
        if (!ingress::IsDnsLabel(route.name)) route.name.clear();
        route.address = std::move(address);
        // The VM's own web ports (from its template) are open on it; the first is its default.
        if (!domain.ingress_ports.empty()) route.default_port = domain.ingress_ports.front();
        route.extra_ports = domain.ingress_ports;
        if (!route.name.empty()) ++name_uses[route.name];
        routes.push_back(std::move(route));
    }
    // A name two VMs share would route one user's traffic to the other: neither gets it.
    for (auto& route : routes) {
        if (!route.name.empty() && name_uses[route.name] > 1) route.name.clear();
    }
    // A route the table refuses (cannot happen with our own metadata) is left out, not all.
    std::vector<ingress::VmRoute> valid;
    for (auto& route : routes) {
        if (ingress::RoutingTable::Build({route})) valid.push_back(std::move(route));
    }
    auto table = ingress::RoutingTable::Build(std::move(valid));
    return table ? std::move(*table) : ingress::RoutingTable{};
}

}  // namespace decloud::agent::app
