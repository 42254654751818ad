#include "agent/app/relay_agent.hpp"

#include <algorithm>
#include <chrono>
#include <set>
#include <tuple>

#include <spdlog/spdlog.h>

#include "agent/domain/relay/tunnel_probe.hpp"
#include "agent/domain/relay/wireguard.hpp"

namespace decloud::agent::app {

using common::Error;
using common::Status;
namespace relay = domain::relay;

namespace {

// The interface's config. Successor peers (key rotation) get their allowed IPs only once they
// completed a handshake (per `current`, the interface as it is), and then the peer they replace
// loses them; `pending` says whether a successor still waits.
common::Result<relay::WireGuardConfig> ToConfig(const proto::RelayInterfaceSpec& spec,
                                                const relay::WireGuardKey& private_key,
                                                const relay::WireGuardState* current,
                                                bool& pending) {
    relay::WireGuardConfig config;
    config.interface = spec.interface;
    config.private_key = private_key;
    config.listen_port = spec.listen_port;
    config.addresses = spec.addresses;
    pending = false;
    std::set<std::string> replaced;
    auto shook_hands = [&](const std::string& key) {
        if (!current) return false;
        for (const auto& p : current->peers)
            if (p.public_key.ToBase64() == key) return p.latest_handshake.has_value();
        return false;
    };
    for (const auto& p : spec.peers) {
        if (p.replaces.empty()) continue;
        if (shook_hands(p.public_key))
            replaced.insert(p.replaces);
        else
            pending = true;
    }
    for (const auto& p : spec.peers) {
        auto key = relay::WireGuardKey::FromBase64(p.public_key);
        if (!key) return Error::InvalidArgument("peer key: " + key.error().message);
        std::vector<std::string> allowed = p.allowed_ips;
        const bool waiting_successor = !p.replaces.empty() && !replaced.contains(p.replaces);
        if (waiting_successor || replaced.contains(p.public_key)) allowed.clear();
        config.peers.push_back(relay::WireGuardPeer{*key, p.endpoint, std::move(allowed),
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
                       ports::PortForwarder& cgnat_forwards, ports::WireGuardKeyStore& keys,
                       relay::WireGuardKey private_key, ports::TunnelLatency* latency,
                       ports::ForwardException* forward_exception)
    : wireguard_(wireguard),
      relay_forwards_(relay_forwards),
      cgnat_forwards_(cgnat_forwards),
      keys_(keys),
      latency_(latency),
      forward_exception_(forward_exception),
      private_key_(std::move(private_key)),
      public_key_(private_key_.PublicKey().ToBase64()) {
    // A rotation interrupted by a restart goes on with the key already handed out.
    if (auto staged = keys_.Staged(); staged && *staged) staged_key_ = std::move(**staged);
}

std::string RelayAgent::PublicKey() const {
    std::lock_guard lock(mu_);
    return public_key_;
}

void RelayAgent::RotateKey(const proto::RelayDesiredState& desired) {
    if (desired.key_rotation == "stage" && !staged_key_) {
        auto next = keys_.StageNext();
        if (!next) {
            spdlog::warn("WireGuard key rotation: cannot stage a next key: {}",
                         next.error().message);
            return;
        }
        staged_key_ = std::move(*next);
        spdlog::info("WireGuard key rotation: next key {} staged",
                     staged_key_->PublicKey().ToBase64());
    } else if (desired.key_rotation == "commit") {
        if (!staged_key_ || staged_key_->PublicKey().ToBase64() != desired.next_public_key) {
            // Not the key this agent staged: the orchestrator learns ours from the next report.
            spdlog::warn("WireGuard key rotation: asked to commit {}, which is not the staged key",
                         desired.next_public_key);
            return;
        }
        if (auto st = keys_.CommitNext(); !st) {
            spdlog::warn("WireGuard key rotation: cannot commit: {}", st.error().message);
            return;
        }
        private_key_ = std::move(*staged_key_);
        staged_key_.reset();
        public_key_ = private_key_.PublicKey().ToBase64();
        spdlog::info("WireGuard key rotation: now using key {}", public_key_);
    }
}

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
    bool has_successor = false;
    for (const auto& p : spec.peers) has_successor = has_successor || !p.replaces.empty();
    std::optional<relay::WireGuardState> current;
    if (has_successor) {
        if (auto state = wireguard_.Read(spec.interface)) current = std::move(*state);
    }
    bool pending = false;
    auto config = ToConfig(spec, private_key_, current ? &*current : nullptr, pending);
    if (!config) return config.error();
    if (pending) {
        pending_successors_.insert(spec.interface);
    } else {
        pending_successors_.erase(spec.interface);
    }
    if (auto st = wireguard_.Ensure(*config); !st) return st;
    std::vector<relay::PortMapping> mappings;
    mappings.reserve(forwards.size());
    for (const auto& f : forwards) mappings.push_back(ToMapping(f));
    // The desired state is authoritative across interfaces: at a failover the VMs' ports move
    // from the old primary's interface to the new one's in one atomic change.
    return forwarder->Claim(spec.interface, mappings);
}

namespace {

// Claiming lets an interface take a port from another, so a desired state that gives one port
// to two interfaces of the same role would move it back and forth: refused as a whole.
Status PortsMappedOnce(const proto::RelayDesiredState& desired) {
    std::set<std::tuple<bool, std::string, std::uint32_t>> seen;
    for (const auto& f : desired.forwards) {
        const auto role = relay::RelayInterfaceRole(f.interface);
        const bool relay_side = role && *role == relay::RelayRole::kRelay;
        if (!seen.emplace(relay_side, f.protocol, f.public_port).second)
            return Error::InvalidArgument("public port " + f.protocol + "/" +
                                          std::to_string(f.public_port) +
                                          " is forwarded on two interfaces");
    }
    return common::Ok();
}

}  // namespace

Status RelayAgent::Apply(const proto::RelayDesiredState& desired) {
    std::lock_guard lock(mu_);
    RotateKey(desired);
    last_desired_ = desired;
    if (latency_) {
        std::vector<std::string> peers;
        for (const auto& spec : desired.interfaces)
            for (const auto& p : spec.peers)
                if (auto address = relay::ProbeAddressOf(p.allowed_ips); !address.empty())
                    peers.push_back(std::move(address));
        latency_->Watch(peers);
    }
    pending_successors_.clear();
    std::map<std::string, std::vector<proto::RelayForward>> forwards;
    for (const auto& f : desired.forwards) forwards[f.interface].push_back(f);

    Status first = common::Ok();
    if (auto unique = PortsMappedOnce(desired); !unique) return unique;
    // Interfaces that carry ports first: one that gains a port takes it from the interface that
    // loses it in the same change; the other order would leave the port unmapped in between.
    std::vector<const proto::RelayInterfaceSpec*> order;
    for (const auto& spec : desired.interfaces) order.push_back(&spec);
    std::stable_partition(order.begin(), order.end(),
                          [&](const auto* spec) { return forwards.contains(spec->interface); });
    std::set<std::string> wanted;
    for (const auto* spec_ptr : order) {
        const auto& spec = *spec_ptr;
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

    if (forward_exception_) {
        bool behind_cgnat = false;
        for (const auto& spec : desired.interfaces)
            behind_cgnat = behind_cgnat ||
                           relay::RelayInterfaceRole(spec.interface) == relay::RelayRole::kCgnat;
        // Asked to remove only what it once added: a host without iptables and without CGNAT
        // tunnels never runs it.
        if (behind_cgnat || exception_wanted_) {
            if (auto st = forward_exception_->Ensure(behind_cgnat); st) {
                exception_wanted_ = behind_cgnat;
            } else {
                spdlog::warn("forward exception for CGNAT tunnels: {}", st.error().message);
                if (first) first = st;
            }
        }
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

bool RelayAgent::HasPendingSuccessors() const {
    std::lock_guard lock(mu_);
    return !pending_successors_.empty();
}

Status RelayAgent::PromoteSuccessors() {
    std::lock_guard lock(mu_);
    if (pending_successors_.empty()) return common::Ok();
    std::map<std::string, std::vector<proto::RelayForward>> forwards;
    for (const auto& f : last_desired_.forwards) forwards[f.interface].push_back(f);
    Status first = common::Ok();
    for (const auto& spec : last_desired_.interfaces) {
        if (!pending_successors_.contains(spec.interface)) continue;
        if (auto st = ApplyInterface(spec, forwards[spec.interface]); !st && first) first = st;
        if (!pending_successors_.contains(spec.interface))
            spdlog::info("relay interface {}: successor peer took over after its handshake",
                         spec.interface);
    }
    return first;
}

proto::RelayReport RelayAgent::Report() {
    std::lock_guard lock(mu_);
    proto::RelayReport report;
    report.public_key = public_key_;
    if (staged_key_) report.next_public_key = staged_key_->PublicKey().ToBase64();
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
                if (latency_) {
                    const auto address = relay::ProbeAddressOf(p.allowed_ips);
                    if (auto measured = address.empty() ? std::nullopt : latency_->Latency(address);
                        measured) {
                        if (measured->rtt)
                            peer.rtt_us = static_cast<std::uint32_t>(
                                std::min<std::int64_t>(measured->rtt->count(), UINT32_MAX));
                        peer.unanswered_probe_rounds = measured->unanswered_rounds;
                    }
                }
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
