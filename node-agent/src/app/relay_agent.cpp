#include "agent/app/relay_agent.hpp"

#include <chrono>
#include <set>

#include <spdlog/spdlog.h>

#include "agent/domain/relay/wireguard.hpp"

namespace decloud::agent::app {

using common::Error;
using common::Status;
namespace relay = domain::relay;

namespace {

common::Result<relay::WireGuardConfig> ToConfig(const proto::RelayInterfaceSpec& spec,
                                                const relay::WireGuardKey& private_key) {
    relay::WireGuardConfig config;
    config.interface = spec.interface;
    config.private_key = private_key;
    config.listen_port = spec.listen_port;
    config.addresses = spec.addresses;
    for (const auto& p : spec.peers) {
        auto key = relay::WireGuardKey::FromBase64(p.public_key);
        if (!key) return Error::InvalidArgument("peer key: " + key.error().message);
        config.peers.push_back(relay::WireGuardPeer{*key, p.endpoint, p.allowed_ips,
                                                    std::chrono::seconds{p.keepalive_seconds}});
    }
    if (auto valid = relay::ValidateConfig(config); !valid) return valid.error();
    return config;
}

relay::PortMapping ToMapping(const proto::RelayForward& f) {
    return relay::PortMapping{f.public_port,
                              f.protocol == "udp" ? relay::Protocol::kUdp : relay::Protocol::kTcp,
                              f.target_address, f.target_port};
}

}  // namespace

RelayAgent::RelayAgent(ports::WireGuardControl& wireguard, ports::PortForwarder& relay_forwards,
                       ports::PortForwarder& cgnat_forwards, relay::WireGuardKey private_key)
    : wireguard_(wireguard),
      relay_forwards_(relay_forwards),
      cgnat_forwards_(cgnat_forwards),
      private_key_(std::move(private_key)),
      public_key_(private_key_.PublicKey().ToBase64()) {}

ports::PortForwarder* RelayAgent::ForwarderFor(const std::string& interface) {
    const auto role = relay::RelayInterfaceRole(interface);
    if (!role) return nullptr;
    return *role == relay::RelayRole::kRelay ? &relay_forwards_ : &cgnat_forwards_;
}

Status RelayAgent::ApplyInterface(const proto::RelayInterfaceSpec& spec,
                                  const std::vector<proto::RelayForward>& forwards) {
    auto* forwarder = ForwarderFor(spec.interface);
    if (!forwarder)
        return Error::InvalidArgument("'" + spec.interface + "' is not a relay interface name");
    auto config = ToConfig(spec, private_key_);
    if (!config) return config.error();
    if (auto st = wireguard_.Ensure(*config); !st) return st;
    std::vector<relay::PortMapping> mappings;
    mappings.reserve(forwards.size());
    for (const auto& f : forwards) mappings.push_back(ToMapping(f));
    return forwarder->Apply(spec.interface, mappings);
}

Status RelayAgent::Apply(const proto::RelayDesiredState& desired) {
    std::lock_guard lock(mu_);
    std::map<std::string, std::vector<proto::RelayForward>> forwards;
    for (const auto& f : desired.forwards) forwards[f.interface].push_back(f);

    Status first = common::Ok();
    std::set<std::string> wanted;
    for (const auto& spec : desired.interfaces) {
        wanted.insert(spec.interface);
        auto st = ApplyInterface(spec, forwards[spec.interface]);
        if (st) {
            errors_.erase(spec.interface);
            continue;
        }
        spdlog::warn("relay interface {}: {}", spec.interface, st.error().message);
        errors_[spec.interface] = st.error().message;
        if (first) first = st;
    }
    for (const auto& [interface, list] : forwards) {
        if (!wanted.contains(interface) && first)
            first = Error::InvalidArgument("forwards for '" + interface +
                                           "', an interface that is not in the desired state");
    }

    auto existing = wireguard_.List();
    if (!existing) return existing.error();
    for (const auto& interface : *existing) {
        if (wanted.contains(interface)) continue;
        // Forwards first, so nothing is forwarded into an interface that is going away.
        Status st = common::Ok();
        if (auto* forwarder = ForwarderFor(interface)) st = forwarder->Remove(interface);
        if (st) st = wireguard_.Remove(interface);
        if (st) {
            spdlog::info("relay interface {} removed", interface);
            errors_.erase(interface);
        } else {
            errors_[interface] = st.error().message;
            if (first) first = st;
        }
    }
    return first;
}

proto::RelayReport RelayAgent::Report() {
    std::lock_guard lock(mu_);
    proto::RelayReport report;
    report.public_key = public_key_;
    auto names = wireguard_.List();
    if (!names) return report;
    for (const auto& name : *names) {
        proto::RelayInterfaceReport out;
        out.interface = name;
        if (auto it = errors_.find(name); it != errors_.end()) out.error = it->second;
        if (auto state = wireguard_.Read(name)) {
            out.up = state->up;
            out.listen_port = state->listen_port;
            for (const auto& p : state->peers) {
                proto::RelayPeerReport peer;
                peer.public_key = p.public_key.ToBase64();
                peer.endpoint = p.endpoint;
                if (p.latest_handshake)
                    peer.latest_handshake_unix =
                        static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                                       p.latest_handshake->time_since_epoch())
                                                       .count());
                peer.rx_bytes = p.rx_bytes;
                peer.tx_bytes = p.tx_bytes;
                out.peers.push_back(std::move(peer));
            }
        } else if (out.error.empty()) {
            out.error = state.error().message;
        }
        if (auto* forwarder = ForwarderFor(name)) {
            if (auto installed = forwarder->Read(name))
                out.forwards = static_cast<std::uint32_t>(installed->size());
        }
        report.interfaces.push_back(std::move(out));
    }
    // Interfaces that failed to come up at all are reported too, with their error.
    for (const auto& [name, error] : errors_) {
        bool listed = false;
        for (const auto& i : report.interfaces) listed = listed || i.interface == name;
        if (!listed)
            report.interfaces.push_back(proto::RelayInterfaceReport{name, false, 0, {}, 0, error});
    }
    return report;
}

}  // namespace decloud::agent::app
