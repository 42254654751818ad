#include "orchestrator/domain/relay.hpp"

#include <algorithm>
#include <array>
#include <utility>

namespace decloud::orchestrator::domain {

namespace {

using S = RelayState;

constexpr std::array<RelayState, 5> kAllStates = {S::kProvisioning, S::kActive, S::kDegraded,
                                                  S::kRepairing, S::kRemoved};

// The whole state machine, as a list of edges to check against the diagram in relay.hpp.
constexpr std::pair<RelayState, RelayState> kTransitions[] = {
    // Up.
    {S::kProvisioning, S::kActive},
    {S::kDegraded, S::kActive},
    {S::kRepairing, S::kActive},
    // Recorded without a change: a promotion or a key rotation; the next repair attempt.
    {S::kActive, S::kActive},
    {S::kRepairing, S::kRepairing},
    // Trouble.
    {S::kActive, S::kDegraded},
    {S::kProvisioning, S::kRepairing},
    {S::kActive, S::kRepairing},
    {S::kDegraded, S::kRepairing},
    // Released, failed over or replaced, from any live state.
    {S::kProvisioning, S::kRemoved},
    {S::kActive, S::kRemoved},
    {S::kDegraded, S::kRemoved},
    {S::kRepairing, S::kRemoved},
};

bool Allowed(RelayState from, RelayState to) {
    return std::any_of(std::begin(kTransitions), std::end(kTransitions),
                       [&](const auto& edge) { return edge.first == from && edge.second == to; });
}

__extension__ typedef unsigned __int128 Uint128;

constexpr std::uint32_t kBasisPoints = 10'000;

Uint128 RelayPart(Uint128 amount, std::uint32_t bps) {
    return amount * std::min(bps, kBasisPoints) / kBasisPoints;
}

}  // namespace

std::string_view ToString(RelayState state) {
    switch (state) {
        case RelayState::kProvisioning:
            return "provisioning";
        case RelayState::kActive:
            return "active";
        case RelayState::kDegraded:
            return "degraded";
        case RelayState::kRepairing:
            return "repairing";
        case RelayState::kRemoved:
            return "removed";
    }
    return "unknown";
}

std::optional<RelayState> ParseRelayState(std::string_view text) {
    for (const RelayState s : kAllStates) {
        if (ToString(s) == text) return s;
    }
    return std::nullopt;
}

bool IsLive(RelayState state) { return state != RelayState::kRemoved; }

common::Status CheckTransition(RelayState from, RelayState to) {
    if (Allowed(from, to)) return common::Ok();
    return common::Error::Conflict("a relay assignment cannot go from " +
                                   std::string(ToString(from)) + " to " +
                                   std::string(ToString(to)));
}

std::uint32_t RepairAttemptsAfter(RelayState from, RelayState to, std::uint32_t attempts) {
    if (to == RelayState::kRepairing) return from == RelayState::kRepairing ? attempts + 1 : 1;
    if (to == RelayState::kActive) return 0;
    return attempts;
}

std::string_view ToString(RelayRole role) {
    return role == RelayRole::kPrimary ? "primary" : "standby";
}

std::optional<RelayRole> ParseRelayRole(std::string_view text) {
    if (text == "primary") return RelayRole::kPrimary;
    if (text == "standby") return RelayRole::kStandby;
    return std::nullopt;
}

std::string_view ToString(PortProtocol protocol) {
    return protocol == PortProtocol::kTcp ? "tcp" : "udp";
}

std::optional<PortProtocol> ParsePortProtocol(std::string_view text) {
    if (text == "tcp") return PortProtocol::kTcp;
    if (text == "udp") return PortProtocol::kUdp;
    return std::nullopt;
}

common::Result<RelayEvent> ApplyTransition(RelayAssignment& assignment, RelayState to,
                                           std::string reason, common::TimePoint now) {
    const RelayState from = assignment.state;
    if (auto st = CheckTransition(from, to); !st) return st.error();
    assignment.repair_attempts = RepairAttemptsAfter(from, to, assignment.repair_attempts);
    assignment.state = to;
    assignment.state_reason = reason;
    assignment.state_changed_at = now;
    assignment.updated_at = now;
    return RelayEvent{
        .at = now, .from = from, .to = to, .role = assignment.role, .reason = std::move(reason)};
}

std::string PublicUrl(std::string_view relay_address, std::uint16_t port) {
    std::string url;
    // An IPv6 literal has colons and needs brackets to be told apart from the port.
    const bool v6 =
        relay_address.find(':') != std::string_view::npos && relay_address.front() != '[';
    if (v6) url += '[';
    url += relay_address;
    if (v6) url += ']';
    url += ':';
    url += std::to_string(port);
    return url;
}

RevenueSplit SplitRelayRevenue(std::uint64_t amount, std::uint32_t relay_share_bps) {
    const auto relay = static_cast<std::uint64_t>(RelayPart(amount, relay_share_bps));
    return {.node_micro_usdc = amount - relay, .relay_micro_usdc = relay};
}

RevenueSplit SplitRelayRevenueIncrement(std::uint64_t earlier_total, std::uint64_t amount,
                                        std::uint32_t relay_share_bps) {
    const Uint128 before = RelayPart(earlier_total, relay_share_bps);
    const Uint128 after = RelayPart(Uint128{earlier_total} + amount, relay_share_bps);
    // floor((a + b) s) - floor(a s) <= b for s <= 1, so this fits and never exceeds `amount`.
    const auto relay = static_cast<std::uint64_t>(after - before);
    return {.node_micro_usdc = amount - relay, .relay_micro_usdc = relay};
}

}  // namespace decloud::orchestrator::domain
