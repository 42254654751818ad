#include "orchestrator/domain/relay_selection.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>

namespace decloud::orchestrator::domain {

namespace {

bool Contains(const std::vector<std::string>& list, const std::string& value) {
    return std::find(list.begin(), list.end(), value) != list.end();
}

// Bandwidth already promised: what was measured, or the reservation of the tunnels it carries,
// whichever is more.
std::uint64_t CommittedMbps(const RelayCandidate& c, const RelayPolicy& policy) {
    return std::max<std::uint64_t>(c.bandwidth_used_mbps,
                                   std::uint64_t{c.tunnels} * policy.tunnel_bandwidth_mbps);
}

std::uint64_t FreeMbps(const RelayCandidate& c, const RelayPolicy& policy) {
    const std::uint64_t committed = CommittedMbps(c, policy);
    return committed >= c.bandwidth_mbps ? 0 : c.bandwidth_mbps - committed;
}

RelayExclusion Evaluate(const RelayRequest& request, const RelayCandidate& c,
                        const RelayPolicy& policy) {
    if (c.node_id == request.cgnat_node_id) return RelayExclusion::kSelf;
    if (Contains(request.exclude_node_ids, c.node_id) ||
        (!c.public_address.empty() && Contains(request.exclude_addresses, c.public_address)))
        return RelayExclusion::kExcluded;
    if (!c.enabled) return RelayExclusion::kDisabled;
    if (!c.online) return RelayExclusion::kOffline;
    if (c.behind_cgnat) return RelayExclusion::kBehindCgnat;
    if (c.requires_relay || c.public_address.empty() || c.wireguard_port == 0)
        return RelayExclusion::kNotPublic;
    if (!c.healthy) return RelayExclusion::kUnhealthy;
    if (c.tunnels >= TunnelCapacity(c, policy)) return RelayExclusion::kFull;
    if (c.bandwidth_mbps == 0 || FreeMbps(c, policy) < policy.tunnel_bandwidth_mbps)
        return RelayExclusion::kBandwidth;
    return RelayExclusion::kNone;
}

std::string Detail(const RelayRequest& request, const RelayCandidate& c, const RelayPolicy& policy,
                   RelayExclusion reason) {
    switch (reason) {
        case RelayExclusion::kNone:
            return {};
        case RelayExclusion::kSelf:
            return "is the CGNAT node itself";
        case RelayExclusion::kExcluded:
            if (Contains(request.exclude_node_ids, c.node_id))
                return "ruled out (the relay being replaced, or the node's other relay)";
            return "shares public address " + c.public_address + " with the node's other relay";
        case RelayExclusion::kDisabled:
            return "does not offer to relay";
        case RelayExclusion::kOffline:
            return "node is offline";
        case RelayExclusion::kBehindCgnat:
            return "is behind CGNAT itself";
        case RelayExclusion::kNotPublic:
            if (c.requires_relay)
                return "is not reachable from the Internet (needs a relay itself)";
            if (c.public_address.empty()) return "has no known public address";
            return "has not reported its WireGuard port";
        case RelayExclusion::kUnhealthy:
            return "relay role is unhealthy" +
                   (c.health_reason.empty() ? std::string() : ": " + c.health_reason);
        case RelayExclusion::kFull:
            return "at capacity: " + std::to_string(c.tunnels) + " of " +
                   std::to_string(TunnelCapacity(c, policy)) + " tunnels";
        case RelayExclusion::kBandwidth:
            if (c.bandwidth_mbps == 0) return "offers no relay bandwidth (none reported)";
            return "needs " + std::to_string(policy.tunnel_bandwidth_mbps) + " Mbps spare, " +
                   std::to_string(FreeMbps(c, policy)) + " of " + std::to_string(c.bandwidth_mbps) +
                   " Mbps free";
    }
    return {};
}

double Uptime(const RelayCandidate& c) {
    // Written so that NaN counts as 0.
    return c.uptime_ratio > 0.0 ? std::min(c.uptime_ratio, 1.0) : 0.0;
}

bool SameRegion(const RelayCandidate& c, std::string_view region) {
    return !region.empty() && c.region == region;
}

// a's load below b's: tunnels_a / cap_a < tunnels_b / cap_b, exactly (caps are positive for
// qualified candidates; the products fit in 64 bits).
int CompareLoad(const RelayCandidate& a, const RelayCandidate& b, const RelayPolicy& policy) {
    const std::uint64_t lhs = std::uint64_t{a.tunnels} * TunnelCapacity(b, policy);
    const std::uint64_t rhs = std::uint64_t{b.tunnels} * TunnelCapacity(a, policy);
    return lhs < rhs ? -1 : (lhs > rhs ? 1 : 0);
}

struct Ranking {
    std::string_view region;        // the CGNAT node's
    std::string_view avoid_region;  // rank relays outside it first (standby); empty: no
    const RelayPolicy* policy = nullptr;
};

// Strict weak order, best first; ties end at node id, then position, so the result depends on
// the input alone.
bool Better(std::span<const RelayCandidate> all, std::size_t ia, std::size_t ib, const Ranking& r) {
    const RelayCandidate& a = all[ia];
    const RelayCandidate& b = all[ib];
    if (!r.avoid_region.empty()) {
        const bool a_other = a.region != r.avoid_region;
        const bool b_other = b.region != r.avoid_region;
        if (a_other != b_other) return a_other;
    }
    if (const int load = CompareLoad(a, b, *r.policy); load != 0) return load < 0;
    const bool a_local = SameRegion(a, r.region);
    const bool b_local = SameRegion(b, r.region);
    if (a_local != b_local) return a_local;
    if (Uptime(a) != Uptime(b)) return Uptime(a) > Uptime(b);
    if (const int by_id = a.node_id.compare(b.node_id); by_id != 0) return by_id < 0;
    return ia < ib;
}

std::string Percent(double ratio) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f%%", ratio * 100.0);
    return buf;
}

std::string Plural(std::size_t n, std::string_view one, std::string_view many) {
    return std::to_string(n) + " " + std::string(n == 1 ? one : many);
}

std::string Describe(const RelayCandidate& c, const RelayRequest& request,
                     const RelayPolicy& policy, std::size_t qualified, std::string_view role) {
    std::string text = role == "standby" ? "standby relay " : "relay ";
    text += c.node_id + " at " + c.public_address + ": ";
    text += "load " + std::to_string(c.tunnels) + "/" + std::to_string(TunnelCapacity(c, policy)) +
            " tunnels";
    text += qualified == 1 ? ", the only qualified relay"
                           : ", best of " + std::to_string(qualified) + " qualified relays";
    if (SameRegion(c, request.region)) {
        text += ", same region " + c.region;
    } else {
        text += ", region " + (c.region.empty() ? std::string("(none)") : c.region);
        if (!request.region.empty()) text += " (node is in " + request.region + ")";
    }
    text += ", uptime " + Percent(Uptime(c));
    return text;
}

// Qualified candidates and the exclusions, filled into `out`.
std::vector<std::size_t> Filter(const RelayRequest& request,
                                std::span<const RelayCandidate> candidates,
                                const RelayPolicy& policy, RelaySelection& out) {
    std::vector<std::size_t> qualified;
    out.candidates_considered = candidates.size();
    for (std::size_t i = 0; i < candidates.size(); ++i) {
        const RelayExclusion reason = Evaluate(request, candidates[i], policy);
        if (reason == RelayExclusion::kNone) {
            qualified.push_back(i);
            continue;
        }
        ++out.excluded[static_cast<std::size_t>(reason)];
        out.exclusions.push_back(
            {candidates[i].node_id, reason, Detail(request, candidates[i], policy, reason)});
    }
    std::sort(out.exclusions.begin(), out.exclusions.end(),
              [](const RelayExclusionEntry& a, const RelayExclusionEntry& b) {
                  if (a.reason != b.reason) return a.reason > b.reason;
                  return a.node_id < b.node_id;
              });
    out.qualified = qualified.size();
    return qualified;
}

std::optional<std::size_t> Best(std::span<const RelayCandidate> candidates,
                                const std::vector<std::size_t>& among, const Ranking& ranking,
                                const std::function<bool(const RelayCandidate&)>& allowed) {
    std::optional<std::size_t> best;
    for (const std::size_t i : among) {
        if (!allowed(candidates[i])) continue;
        if (!best || Better(candidates, i, *best, ranking)) best = i;
    }
    return best;
}

// The standby among `qualified`, apart from the primary's node and address.
void ChooseStandby(const RelayRequest& request, std::span<const RelayCandidate> candidates,
                   const RelayPolicy& policy, const std::vector<std::size_t>& qualified,
                   const std::string& primary_id, const std::string& primary_address,
                   std::string_view primary_region, RelaySelection& out) {
    const Ranking ranking{request.region,
                          policy.standby_prefers_other_region ? primary_region : std::string_view{},
                          &policy};
    const auto pick = Best(candidates, qualified, ranking, [&](const RelayCandidate& c) {
        return c.node_id != primary_id && c.public_address != primary_address;
    });
    if (!pick) {
        out.standby_reason = "no second relay qualifies (" +
                             Plural(out.qualified, "qualified relay", "qualified relays") +
                             " in all, on the primary's machine or none)";
        return;
    }
    std::size_t others = 0;
    for (const std::size_t i : qualified)
        others +=
            candidates[i].node_id != primary_id && candidates[i].public_address != primary_address;
    out.standby = RelayChoice{candidates[*pick],
                              Describe(candidates[*pick], request, policy, others, "standby")};
}

}  // namespace

std::string_view ToString(RelayExclusion reason) {
    switch (reason) {
        case RelayExclusion::kNone:
            return "none";
        case RelayExclusion::kSelf:
            return "self";
        case RelayExclusion::kExcluded:
            return "excluded";
        case RelayExclusion::kDisabled:
            return "disabled";
        case RelayExclusion::kOffline:
            return "offline";
        case RelayExclusion::kBehindCgnat:
            return "behind_cgnat";
        case RelayExclusion::kNotPublic:
            return "not_public";
        case RelayExclusion::kUnhealthy:
            return "unhealthy";
        case RelayExclusion::kFull:
            return "full";
        case RelayExclusion::kBandwidth:
            return "bandwidth";
    }
    return "unknown";
}

std::uint32_t TunnelCapacity(const RelayCandidate& candidate, const RelayPolicy& policy) {
    return candidate.max_tunnels != 0 ? candidate.max_tunnels : policy.max_tunnels_per_relay;
}

RelayCheck CheckRelayCandidate(const RelayRequest& request, const RelayCandidate& candidate,
                               const RelayPolicy& policy) {
    RelayCheck check;
    check.reason = Evaluate(request, candidate, policy);
    check.detail = Detail(request, candidate, policy, check.reason);
    return check;
}

RelaySelection SelectRelays(const RelayRequest& request, std::span<const RelayCandidate> candidates,
                            const RelayPolicy& policy, bool want_standby) {
    RelaySelection out;
    const auto qualified = Filter(request, candidates, policy, out);
    const Ranking ranking{request.region, {}, &policy};
    const auto primary =
        Best(candidates, qualified, ranking, [](const RelayCandidate&) { return true; });
    if (!primary) {
        if (want_standby) out.standby_reason = "no relay qualifies";
        return out;
    }
    const RelayCandidate& p = candidates[*primary];
    out.primary = RelayChoice{p, Describe(p, request, policy, qualified.size(), "primary")};
    if (want_standby)
        ChooseStandby(request, candidates, policy, qualified, p.node_id, p.public_address, p.region,
                      out);
    return out;
}

RelaySelection SelectStandby(const RelayRequest& request,
                             std::span<const RelayCandidate> candidates, const RelayPolicy& policy,
                             std::string_view primary_region) {
    RelaySelection out;
    const auto qualified = Filter(request, candidates, policy, out);
    ChooseStandby(request, candidates, policy, qualified, std::string(), std::string(),
                  primary_region, out);
    return out;
}

std::string ExplainNoRelay(const RelayRequest& request, const RelaySelection& selection) {
    std::string text = "no relay for node " + request.cgnat_node_id;
    if (selection.candidates_considered == 0) return text + ": no node offers to relay";
    text += ": ";
    bool first = true;
    // Most relevant reason first, as in the exclusion list.
    for (std::size_t r = kRelayExclusionCount; r-- > 1;) {
        const std::size_t n = selection.excluded[r];
        if (n == 0) continue;
        if (!first) text += ", ";
        first = false;
        text += Plural(n, "relay", "relays") + " ";
        switch (static_cast<RelayExclusion>(r)) {
            case RelayExclusion::kSelf:
                text += n == 1 ? "is the node itself" : "are the node itself";
                break;
            case RelayExclusion::kExcluded:
                text += n == 1 ? "is ruled out" : "are ruled out";
                break;
            case RelayExclusion::kDisabled:
                text += n == 1 ? "does not offer to relay" : "do not offer to relay";
                break;
            case RelayExclusion::kOffline:
                text += n == 1 ? "is offline" : "are offline";
                break;
            case RelayExclusion::kBehindCgnat:
                text += n == 1 ? "is behind CGNAT" : "are behind CGNAT";
                break;
            case RelayExclusion::kNotPublic:
                text += n == 1 ? "is not publicly reachable" : "are not publicly reachable";
                break;
            case RelayExclusion::kUnhealthy:
                text += n == 1 ? "is unhealthy" : "are unhealthy";
                break;
            case RelayExclusion::kFull:
                text += n == 1 ? "is at capacity" : "are at capacity";
                break;
            case RelayExclusion::kBandwidth:
                text += n == 1 ? "lacks spare bandwidth" : "lack spare bandwidth";
                break;
            case RelayExclusion::kNone:
                break;
        }
    }
    if (first) text += "none qualifies";
    return text;
}

}  // namespace decloud::orchestrator::domain
