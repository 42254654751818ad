#include "orchestrator/adapters/pg/pg_relay_repository.hpp"

#include <pqxx/pqxx>

#include <algorithm>
#include <limits>

#include "decloud/common/ids.hpp"
#include "orchestrator/domain/vm.hpp"
#include "pg_support.hpp"

namespace decloud::orchestrator::adapters::pg {

using common::Error;
using common::Result;
using domain::RelayAssignment;
using domain::RelayRole;
using domain::RelayState;

namespace {

// Serialises tunnel block allocation across every replica: the pool is one for the platform.
constexpr long long kTunnelPoolLockId = 0x6465636c6f7502;
constexpr long long kRelayMonitorLockId = 0x6465636c6f7508;

// The relay's public address: what its offer names, else what the node reported, else what the
// orchestrator saw. Needs `r` (relay_nodes, may be NULL) and `n` (nodes) in scope.
constexpr const char* kRelayAddress =
    "coalesce(nullif(r.endpoint_host, ''), nullif(n.reported_ip, ''), n.observed_ip)";

const std::string kAssignmentColumns = std::string(R"sql(
SELECT a.id::text, a.cgnat_node_id::text, a.relay_node_id::text, a.role, a.interface_name,
       a.tunnel_block, a.tunnel_network::text, host(a.relay_address), host(a.cgnat_address),
       a.relay_public_key, a.cgnat_public_key, )sql") +
                                       kRelayAddress + R"sql(,
       a.relay_listen_port, a.state, a.state_reason, a.selection_reason, a.repair_attempts,
       (extract(epoch FROM a.created_at) * 1000000)::bigint,
       (extract(epoch FROM a.state_changed_at) * 1000000)::bigint,
       (extract(epoch FROM a.updated_at) * 1000000)::bigint, a.tunnel_rtt_us,
       (extract(epoch FROM a.tunnel_rtt_at) * 1000000)::bigint
FROM relay_assignments a
JOIN nodes n ON n.id = a.relay_node_id
LEFT JOIN relay_nodes r ON r.node_id = a.relay_node_id )sql";

constexpr const char* kLockLiveOfCgnat = R"sql(
SELECT id::text FROM relay_assignments
WHERE cgnat_node_id = $1::uuid AND state <> 'removed' ORDER BY id FOR UPDATE)sql";

constexpr const char* kLockLiveOfRelay = R"sql(
SELECT id::text FROM relay_assignments
WHERE relay_node_id = $1::uuid AND state <> 'removed' ORDER BY id FOR UPDATE)sql";

constexpr const char* kLockAssignment =
    "SELECT 1 FROM relay_assignments WHERE id = $1::uuid FOR UPDATE";

// The live primary of a node, share-locked so that no failover moves it while a port is
// allocated on its relay.
constexpr const char* kSharePrimary = R"sql(
SELECT id::text, relay_node_id::text FROM relay_assignments
WHERE cgnat_node_id = $1::uuid AND role = 'primary' AND state <> 'removed' FOR SHARE)sql";

const std::string kLockOffer = std::string(R"sql(
SELECT r.enabled, r.max_tunnels, r.wireguard_public_key, r.wireguard_port, r.port_cursor,
       )sql") + kRelayAddress + R"sql(
FROM relay_nodes r JOIN nodes n ON n.id = r.node_id
WHERE r.node_id = $1::uuid FOR UPDATE OF r)sql";

constexpr const char* kCountLiveOnRelay = R"sql(
SELECT count(*) FROM relay_assignments WHERE relay_node_id = $1::uuid AND state <> 'removed')sql";

constexpr const char* kLiveTunnels =
    "SELECT tunnel_network::text FROM relay_assignments WHERE state <> 'removed'";

constexpr const char* kInsertAssignment = R"sql(
INSERT INTO relay_assignments (id, cgnat_node_id, relay_node_id, role, interface_name,
                               tunnel_block, tunnel_network, relay_address, cgnat_address,
                               relay_public_key, cgnat_public_key, relay_listen_port, state,
                               state_reason, selection_reason, repair_attempts, created_at,
                               state_changed_at, updated_at)
VALUES ($1::uuid, $2::uuid, $3::uuid, $4, $5, $6, $7::cidr, $8::inet, $9::inet, $10, $11, $12,
        'provisioning', $13, $14, 0, $15::timestamptz, $15::timestamptz, $15::timestamptz))sql";

constexpr const char* kUpdateAssignment = R"sql(
UPDATE relay_assignments SET role = $2, state = $3, state_reason = $4, repair_attempts = $5,
                             state_changed_at = $6::timestamptz, updated_at = $7::timestamptz
WHERE id = $1::uuid)sql";

constexpr const char* kInsertEvent = R"sql(
INSERT INTO relay_assignment_events (assignment_id, at, from_state, to_state, role, reason)
VALUES ($1::uuid, $2::timestamptz, NULLIF($3, ''), $4, $5, $6))sql";

constexpr const char* kSelectEvents = R"sql(
SELECT (extract(epoch FROM at) * 1000000)::bigint, coalesce(from_state, ''), to_state, role, reason
FROM relay_assignment_events WHERE assignment_id = $1::uuid ORDER BY seq)sql";

constexpr const char* kSelectOffer = R"sql(
SELECT enabled, wireguard_public_key, wireguard_port, endpoint_host, max_tunnels, bandwidth_mbps
FROM relay_nodes WHERE node_id = $1::uuid)sql";

constexpr const char* kUpsertOffer = R"sql(
INSERT INTO relay_nodes (node_id, enabled, wireguard_public_key, wireguard_port, endpoint_host,
                         max_tunnels, bandwidth_mbps, created_at, updated_at)
VALUES ($1::uuid, $2, $3, $4, $5, $6, $7, $8::timestamptz, $8::timestamptz)
ON CONFLICT (node_id) DO UPDATE SET
    enabled = EXCLUDED.enabled,
    wireguard_public_key = EXCLUDED.wireguard_public_key,
    wireguard_port = EXCLUDED.wireguard_port,
    endpoint_host = EXCLUDED.endpoint_host,
    max_tunnels = EXCLUDED.max_tunnels,
    bandwidth_mbps = EXCLUDED.bandwidth_mbps,
    updated_at = EXCLUDED.updated_at)sql";

constexpr const char* kCopyOfferToAssignments = R"sql(
UPDATE relay_assignments SET relay_public_key = $2, relay_listen_port = $3,
                             updated_at = $4::timestamptz
WHERE relay_node_id = $1::uuid AND state <> 'removed'
  AND (relay_public_key <> $2 OR relay_listen_port <> $3)
RETURNING id::text, state, role, relay_public_key)sql";

constexpr const char* kSetHealth = R"sql(
UPDATE relay_nodes SET healthy = $2, health_reason = $3, bandwidth_used_mbps = $4,
                       updated_at = $5::timestamptz
WHERE node_id = $1::uuid)sql";

// Relay offers with what selection needs; $1 uptime window start, $2 now.
const std::string kSelectCandidates = std::string(R"sql(
WITH live AS (
    SELECT relay_node_id, count(*)::bigint AS tunnels FROM relay_assignments
    WHERE state <> 'removed' GROUP BY relay_node_id),
up AS (
    SELECT a.node_id,
           sum(extract(epoch FROM least(coalesce(a.ended_at, $2::timestamptz), $2::timestamptz)
                                  - greatest(a.started_at, $1::timestamptz)))::double precision
               AS secs
    FROM node_availability a JOIN relay_nodes rn ON rn.node_id = a.node_id
    WHERE coalesce(a.ended_at, $2::timestamptz) > $1::timestamptz
    GROUP BY a.node_id)
SELECT r.node_id::text, r.enabled, n.status = 'online', r.healthy, r.health_reason,
       n.behind_cgnat, n.requires_relay, )sql") +
                                      kRelayAddress + R"sql(, r.wireguard_port,
       r.wireguard_public_key, n.region,
       coalesce(up.secs, 0) / greatest(extract(epoch FROM $2::timestamptz
                                         - greatest(n.registered_at, $1::timestamptz)), 1),
       coalesce(live.tunnels, 0), r.max_tunnels, r.bandwidth_mbps, r.bandwidth_used_mbps
FROM relay_nodes r
JOIN nodes n ON n.id = r.node_id
LEFT JOIN live ON live.relay_node_id = r.node_id
LEFT JOIN up ON up.node_id = r.node_id
ORDER BY r.node_id)sql";

constexpr const char* kNodeExists = "SELECT 1 FROM nodes WHERE id = $1::uuid";

constexpr const char* kEndWait = "DELETE FROM relay_waits WHERE cgnat_node_id = $1::uuid";

constexpr const char* kUpsertWait = R"sql(
INSERT INTO relay_waits (cgnat_node_id, since, last_attempt_at, attempts, reason)
VALUES ($1::uuid, $2::timestamptz, $2::timestamptz, 1, $3)
ON CONFLICT (cgnat_node_id) DO UPDATE SET
    last_attempt_at = EXCLUDED.last_attempt_at,
    attempts = relay_waits.attempts + 1,
    reason = EXCLUDED.reason)sql";

constexpr const char* kSelectWaits = R"sql(
SELECT cgnat_node_id::text, (extract(epoch FROM since) * 1000000)::bigint,
       (extract(epoch FROM last_attempt_at) * 1000000)::bigint, attempts, reason
FROM relay_waits ORDER BY since, cgnat_node_id)sql";

// The VMs of a CGNAT node count on its relay (or on none, $2 NULL) for revenue.
constexpr const char* kAttributeNodeVms = R"sql(
UPDATE vms SET relay_node_id = $2::uuid
WHERE node_id = $1::uuid AND state <> 'deleted' AND relay_node_id IS DISTINCT FROM $2::uuid)sql";

constexpr const char* kAttributeVm = R"sql(
UPDATE vms v SET relay_node_id = (
    SELECT a.relay_node_id FROM relay_assignments a
    WHERE a.cgnat_node_id = v.node_id AND a.role = 'primary' AND a.state <> 'removed')
WHERE v.id = $1::uuid
RETURNING coalesce(v.relay_node_id::text, ''))sql";

constexpr const char* kSelectVm =
    "SELECT coalesce(node_id::text, ''), state FROM vms WHERE id = $1::uuid";
constexpr const char* kLockVm =
    "SELECT coalesce(node_id::text, ''), state FROM vms WHERE id = $1::uuid FOR UPDATE";
constexpr const char* kSetVmRelay = "UPDATE vms SET relay_node_id = $2::uuid WHERE id = $1::uuid";
constexpr const char* kRequiresRelay = "SELECT requires_relay FROM nodes WHERE id = $1::uuid";

const std::string kMappingColumns = std::string(R"sql(
SELECT m.id::text, m.relay_node_id::text, m.assignment_id::text, m.public_port, m.protocol,
       m.vm_id::text, m.vm_port, )sql") +
                                    kRelayAddress + R"sql(,
       (extract(epoch FROM m.created_at) * 1000000)::bigint,
       coalesce((SELECT split_part(a, '/', 1) FROM vms v, unnest(v.addresses) a
                 WHERE v.id = m.vm_id AND a ~ '^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+(/[0-9]+)?$'
                 LIMIT 1), '')
FROM relay_port_mappings m
JOIN nodes n ON n.id = m.relay_node_id
LEFT JOIN relay_nodes r ON r.node_id = m.relay_node_id )sql";

// An event without a change of state on the VM (from = to = its current state).
constexpr const char* kInsertVmUrlEvent = R"sql(
INSERT INTO vm_events (vm_id, at, from_state, to_state, reason)
SELECT id, $2::timestamptz, state, state, $3 FROM vms WHERE id = $1::uuid)sql";

constexpr const char* kTakenPorts =
    "SELECT public_port FROM relay_port_mappings WHERE relay_node_id = $1::uuid";

constexpr const char* kInsertMapping = R"sql(
INSERT INTO relay_port_mappings (id, relay_node_id, assignment_id, public_port, protocol, vm_id,
                                 vm_port, created_at)
VALUES ($1::uuid, $2::uuid, $3::uuid, $4, $5, $6::uuid, $7, $8::timestamptz))sql";

constexpr const char* kSetCursor =
    "UPDATE relay_nodes SET port_cursor = $2 WHERE node_id = $1::uuid";

constexpr const char* kDeleteMappingsOfAssignment =
    "DELETE FROM relay_port_mappings WHERE assignment_id = $1::uuid";
constexpr const char* kDeleteMappingsOfVm =
    "DELETE FROM relay_port_mappings WHERE vm_id = $1::uuid";

// Mappings whose VM is gone (deleted, failed) or runs elsewhere than the tunnel's CGNAT node.
constexpr const char* kStaleMappings = R"sql(
WHERE m.id IN (
    SELECT sm.id FROM relay_port_mappings sm
    JOIN vms v ON v.id = sm.vm_id
    JOIN relay_assignments a ON a.id = sm.assignment_id
    WHERE v.state IN ('deleted', 'failed') OR v.node_id IS DISTINCT FROM a.cgnat_node_id)
ORDER BY m.id FOR UPDATE OF m)sql";

// Every VM that is not gone counts on its node's live primary relay (or none).
constexpr const char* kAttributeAllVms = R"sql(
UPDATE vms v SET relay_node_id = p.relay_node_id
FROM (SELECT v2.id AS vm_id, a.relay_node_id
      FROM vms v2
      LEFT JOIN relay_assignments a ON a.cgnat_node_id = v2.node_id AND a.role = 'primary'
                                   AND a.state <> 'removed'
      WHERE v2.state NOT IN ('deleted', 'failed')) p
WHERE v.id = p.vm_id AND v.relay_node_id IS DISTINCT FROM p.relay_node_id)sql";

// The delta since the last counters (all of it after a reset), the rate over that interval.
constexpr const char* kRecordTraffic = R"sql(
WITH cur AS (
    SELECT id, counter_rx, counter_tx, traffic_at FROM relay_assignments
    WHERE id = $1::uuid FOR UPDATE),
d AS (
    SELECT id, traffic_at,
           (CASE WHEN $2::bigint >= counter_rx THEN $2::bigint - counter_rx ELSE $2::bigint END) +
           (CASE WHEN $3::bigint >= counter_tx THEN $3::bigint - counter_tx ELSE $3::bigint END)
               AS delta
    FROM cur)
UPDATE relay_assignments a SET
    bytes_relayed = a.bytes_relayed + d.delta,
    counter_rx = $2::bigint, counter_tx = $3::bigint, traffic_at = $4::timestamptz,
    rate_bps = CASE WHEN d.traffic_at IS NULL OR $4::timestamptz <= d.traffic_at THEN a.rate_bps
               ELSE (d.delta * 8 / extract(epoch FROM $4::timestamptz - d.traffic_at))::bigint END
FROM d WHERE a.id = d.id
RETURNING a.relay_node_id::text)sql";

constexpr const char* kRelayBandwidth = R"sql(
UPDATE relay_nodes SET bandwidth_used_mbps = (
    SELECT least(coalesce(sum(rate_bps), 0) / 1000000, 2147483647)::integer
    FROM relay_assignments WHERE relay_node_id = $1::uuid AND state <> 'removed')
WHERE node_id = $1::uuid)sql";

constexpr const char* kTrafficTotals = R"sql(
SELECT coalesce(sum(bytes_relayed), 0)::bigint, count(*) FILTER (WHERE ended_by_failover)
FROM relay_assignments)sql";

constexpr const char* kRotationColumns = R"sql(
SELECT node_id::text, state, next_public_key, array_to_string(staged_on, ','), reason,
       (extract(epoch FROM requested_at) * 1000000)::bigint,
       (extract(epoch FROM updated_at) * 1000000)::bigint
FROM relay_key_rotations )sql";

constexpr const char* kInsertRotation = R"sql(
INSERT INTO relay_key_rotations (node_id, state, reason, requested_at, updated_at)
VALUES ($1::uuid, 'staging', $2, $3::timestamptz, $3::timestamptz)
ON CONFLICT (node_id) DO NOTHING)sql";

constexpr const char* kSaveRotation = R"sql(
UPDATE relay_key_rotations SET state = $2, next_public_key = $3,
    staged_on = coalesce(string_to_array(nullif($4, ''), ','), '{}')::uuid[],
    updated_at = $5::timestamptz
WHERE node_id = $1::uuid)sql";

constexpr const char* kSetCgnatKey = R"sql(
UPDATE relay_assignments SET cgnat_public_key = $2, updated_at = $3::timestamptz
WHERE id = $1::uuid)sql";

// Ids arrive from URLs and messages; a malformed one is simply not found (and never reaches
// PostgreSQL as a uuid cast error).
bool ValidId(const std::string& id) { return common::IsUuid(id); }

RelayState StateFrom(const pqxx::field& f) {
    const auto s = domain::ParseRelayState(f.as<std::string>());
    if (!s) throw std::runtime_error("unknown relay state in the database: " + f.as<std::string>());
    return *s;
}

RelayRole RoleFrom(const pqxx::field& f) {
    const auto r = domain::ParseRelayRole(f.as<std::string>());
    if (!r) throw std::runtime_error("unknown relay role in the database: " + f.as<std::string>());
    return *r;
}

RelayAssignment AssignmentFromRow(const pqxx::row& r) {
    RelayAssignment a;
    a.id = r[0].as<std::string>();
    a.cgnat_node_id = r[1].as<std::string>();
    a.relay_node_id = r[2].as<std::string>();
    a.role = RoleFrom(r[3]);
    a.interface_name = r[4].as<std::string>();
    a.tunnel.block = r[5].as<std::uint32_t>();
    a.tunnel.network = r[6].as<std::string>();
    a.tunnel.relay_address = r[7].as<std::string>();
    a.tunnel.cgnat_address = r[8].as<std::string>();
    a.relay_public_key = r[9].as<std::string>();
    a.cgnat_public_key = r[10].as<std::string>();
    a.relay_listen_port = static_cast<std::uint16_t>(r[12].as<int>());
    a.relay_endpoint = domain::PublicUrl(r[11].as<std::string>(), a.relay_listen_port);
    a.state = StateFrom(r[13]);
    a.state_reason = r[14].as<std::string>();
    a.selection_reason = r[15].as<std::string>();
    a.repair_attempts = r[16].as<std::uint32_t>();
    a.created_at = FromMicros(r[17].as<long long>());
    a.state_changed_at = FromMicros(r[18].as<long long>());
    a.updated_at = FromMicros(r[19].as<long long>());
    if (!r[20].is_null()) a.tunnel_rtt_us = static_cast<std::uint32_t>(r[20].as<long long>());
    if (!r[21].is_null()) a.tunnel_rtt_at = FromMicros(r[21].as<long long>());
    return a;
}

domain::PortMapping MappingFromRow(const pqxx::row& r) {
    domain::PortMapping m;
    m.id = r[0].as<std::string>();
    m.relay_node_id = r[1].as<std::string>();
    m.assignment_id = r[2].as<std::string>();
    m.public_port = static_cast<std::uint16_t>(r[3].as<int>());
    const auto protocol = domain::ParsePortProtocol(r[4].as<std::string>());
    if (!protocol) throw std::runtime_error("unknown protocol in the database");
    m.protocol = *protocol;
    m.vm_id = r[5].as<std::string>();
    m.vm_port = static_cast<std::uint16_t>(r[6].as<int>());
    m.public_url = domain::PublicUrl(r[7].as<std::string>(), m.public_port);
    m.created_at = FromMicros(r[8].as<long long>());
    m.vm_address = r[9].as<std::string>();
    return m;
}

std::optional<RelayAssignment> SelectAssignment(pqxx::work& tx, const std::string& id) {
    const auto rows = tx.exec_params(kAssignmentColumns + "WHERE a.id = $1::uuid", id);
    if (rows.empty()) return std::nullopt;
    return AssignmentFromRow(rows[0]);
}

std::vector<RelayAssignment> SelectAssignments(pqxx::work& tx, const std::string& where,
                                               const std::string& param) {
    std::vector<RelayAssignment> out;
    const auto rows = param.empty() ? tx.exec(kAssignmentColumns + where)
                                    : tx.exec_params(kAssignmentColumns + where, param);
    out.reserve(rows.size());
    for (const auto& r : rows) out.push_back(AssignmentFromRow(r));
    return out;
}

std::vector<domain::PortMapping> SelectMappings(pqxx::work& tx, const std::string& where,
                                                const std::string& param) {
    std::vector<domain::PortMapping> out;
    for (const auto& r : tx.exec_params(kMappingColumns + where, param))
        out.push_back(MappingFromRow(r));
    return out;
}

void InsertEvent(pqxx::work& tx, const std::string& assignment_id, const domain::RelayEvent& e) {
    tx.exec_params0(kInsertEvent, assignment_id, ToPgTime(e.at),
                    e.from ? std::string(domain::ToString(*e.from)) : std::string(),
                    std::string(domain::ToString(e.to)), std::string(domain::ToString(e.role)),
                    e.reason);
}

void StoreAssignment(pqxx::work& tx, const RelayAssignment& a) {
    tx.exec_params0(kUpdateAssignment, a.id, std::string(domain::ToString(a.role)),
                    std::string(domain::ToString(a.state)), a.state_reason,
                    static_cast<long long>(a.repair_attempts), ToPgTime(a.state_changed_at),
                    ToPgTime(a.updated_at));
}

// ApplyTransition, stored with its event; kConflict when the state machine refuses.
common::Status MoveAssignment(pqxx::work& tx, RelayAssignment& a, RelayState to,
                              const std::string& reason, common::TimePoint now) {
    auto event = domain::ApplyTransition(a, to, reason, now);
    if (!event) return event.error();
    StoreAssignment(tx, a);
    InsertEvent(tx, a.id, *event);
    return common::Ok();
}

// What happens to the things hanging off an assignment that was just removed.
void AfterRemoval(pqxx::work& tx, const RelayAssignment& a) {
    tx.exec_params0(kDeleteMappingsOfAssignment, a.id);
    if (a.role == RelayRole::kPrimary) tx.exec_params0(kAttributeNodeVms, a.cgnat_node_id, nullptr);
}

struct OfferRow {
    bool enabled = false;
    std::uint32_t max_tunnels = 0;
    std::string public_key;
    std::uint16_t wireguard_port = 0;
    std::uint32_t port_cursor = 0;
    std::string address;
};

std::optional<OfferRow> LockOffer(pqxx::work& tx, const std::string& relay_node_id) {
    const auto rows = tx.exec_params(kLockOffer, relay_node_id);
    if (rows.empty()) return std::nullopt;
    const auto& r = rows[0];
    return OfferRow{r[0].as<bool>(),          r[1].as<std::uint32_t>(),
                    r[2].as<std::string>(),   static_cast<std::uint16_t>(r[3].as<int>()),
                    r[4].as<std::uint32_t>(), r[5].as<std::string>()};
}

// Ports of a relay that a new mapping must not take: those mapped, and the relay's WireGuard
// port should the range include it.
std::vector<std::uint16_t> TakenPorts(pqxx::work& tx, const std::string& relay_node_id,
                                      const OfferRow& offer) {
    std::vector<std::uint16_t> taken;
    for (const auto& r : tx.exec_params(kTakenPorts, relay_node_id))
        taken.push_back(static_cast<std::uint16_t>(r[0].as<int>()));
    taken.push_back(offer.wireguard_port);
    return taken;
}

void InsertMapping(pqxx::work& tx, const domain::PortMapping& m, common::TimePoint now) {
    tx.exec_params0(kInsertMapping, m.id, m.relay_node_id, m.assignment_id,
                    static_cast<int>(m.public_port), std::string(domain::ToString(m.protocol)),
                    m.vm_id, static_cast<int>(m.vm_port), ToPgTime(now));
}

// The body of Assign, shared with Failover's replacement: the caller's transaction, the caller's
// locks on the CGNAT node's assignments (if any). `avoid_block` (a failed-over tunnel's) is not
// handed out again at once, so the CGNAT node never has two interfaces of one name and address.
Result<RelayAssignment> InsertAssignment(pqxx::work& tx, const ports::NewAssignment& n,
                                         const PgRelayRepositoryOptions& options,
                                         common::TimePoint now,
                                         std::optional<std::uint32_t> avoid_block = std::nullopt) {
    if (!ValidId(n.cgnat_node_id) || tx.exec_params(kNodeExists, n.cgnat_node_id).empty())
        return Error::NotFound("no node with id '" + n.cgnat_node_id + "'");
    if (!ValidId(n.relay_node_id))
        return Error::NotFound("no node with id '" + n.relay_node_id + "'");
    if (n.cgnat_node_id == n.relay_node_id)
        return Error::InvalidArgument("a node cannot relay for itself");
    const auto live = SelectAssignments(
        tx, "WHERE a.cgnat_node_id = $1::uuid AND a.state <> 'removed'", n.cgnat_node_id);
    for (const auto& a : live) {
        if (a.role == n.role)
            return Error::Conflict("node " + n.cgnat_node_id + " already has a live " +
                                   std::string(domain::ToString(n.role)) + " relay assignment " +
                                   a.id);
    }
    for (const auto& a : live) {
        if (a.relay_node_id == n.relay_node_id)
            return Error::Conflict("node " + n.cgnat_node_id + " already has a tunnel to relay " +
                                   n.relay_node_id);
    }
    // The offer row lock serialises every assignment on this relay, so the count is exact.
    const auto offer = LockOffer(tx, n.relay_node_id);
    if (!offer) return Error::NotFound("node " + n.relay_node_id + " does not offer to relay");
    if (!offer->enabled)
        return Error::Conflict("relay " + n.relay_node_id + " no longer offers to relay");
    const auto tunnels = tx.exec_params1(kCountLiveOnRelay, n.relay_node_id)[0].as<std::uint32_t>();
    const std::uint32_t capacity =
        offer->max_tunnels != 0 ? offer->max_tunnels : options.max_tunnels_per_relay;
    if (tunnels >= capacity)
        return Error::Conflict("relay " + n.relay_node_id + " is full: " + std::to_string(tunnels) +
                               " of " + std::to_string(capacity) + " tunnels");

    tx.exec_params("SELECT pg_advisory_xact_lock($1)", kTunnelPoolLockId);
    std::vector<std::uint32_t> used;
    if (avoid_block) used.push_back(*avoid_block);
    for (const auto& r : tx.exec(kLiveTunnels)) {
        if (const auto block = options.tunnel_pool.BlockOf(r[0].as<std::string>()))
            used.push_back(*block);
    }
    auto tunnel = options.tunnel_pool.AllocateLowest(used);
    if (!tunnel) return tunnel.error();

    const std::string id = common::NewUuid();
    const std::string reason =
        "assigned as " + std::string(domain::ToString(n.role)) + ": " + n.selection_reason;
    tx.exec_params0(
        kInsertAssignment, id, n.cgnat_node_id, n.relay_node_id,
        std::string(domain::ToString(n.role)), domain::TunnelInterfaceName(tunnel->block),
        static_cast<long long>(tunnel->block), tunnel->network, tunnel->relay_address,
        tunnel->cgnat_address, offer->public_key, n.cgnat_public_key,
        static_cast<int>(offer->wireguard_port), reason, n.selection_reason, ToPgTime(now));
    InsertEvent(tx, id, {now, std::nullopt, RelayState::kProvisioning, n.role, reason});
    if (n.role == RelayRole::kPrimary) {
        tx.exec_params0(kEndWait, n.cgnat_node_id);
        tx.exec_params0(kAttributeNodeVms, n.cgnat_node_id, n.relay_node_id);
    }
    auto stored = SelectAssignment(tx, id);
    if (!stored) return Error::Internal("the relay assignment just inserted is missing");
    return *stored;
}

template <class T>
common::Status ToStatus(const Result<T>& r) {
    if (!r) return r.error();
    return common::Ok();
}

}  // namespace

Result<bool> PgRelayRepository::WithMonitorLock(const std::function<void()>& body) {
    return HoldingAdvisoryLock(pool_, kRelayMonitorLockId, body);
}

Result<ports::RelayOffer> PgRelayRepository::Offer(const std::string& node_id) {
    if (!ValidId(node_id)) return Error::NotFound("no relay offer for node '" + node_id + "'");
    return InTransaction<ports::RelayOffer>(
        pool_, [&](pqxx::work& tx) -> Result<ports::RelayOffer> {
            const auto rows = tx.exec_params(kSelectOffer, node_id);
            if (rows.empty()) return Error::NotFound("node " + node_id + " offers no relay");
            const auto& r = rows[0];
            ports::RelayOffer offer;
            offer.node_id = node_id;
            offer.enabled = r[0].as<bool>();
            offer.wireguard_public_key = r[1].as<std::string>();
            offer.wireguard_port = static_cast<std::uint16_t>(r[2].as<int>());
            offer.endpoint_host = r[3].as<std::string>();
            offer.max_tunnels = static_cast<std::uint32_t>(r[4].as<long long>());
            offer.bandwidth_mbps = static_cast<std::uint32_t>(r[5].as<long long>());
            return offer;
        });
}

common::Status PgRelayRepository::UpsertOffer(const ports::RelayOffer& offer,
                                              common::TimePoint now) {
    if (offer.wireguard_port == 0) return Error::InvalidArgument("the WireGuard port must be set");
    return ToStatus(InTransaction<bool>(pool_, [&](pqxx::work& tx) -> Result<bool> {
        if (!ValidId(offer.node_id) || tx.exec_params(kNodeExists, offer.node_id).empty())
            return Error::NotFound("no node with id '" + offer.node_id + "'");
        // Assignments before the offer row: the lock order of Failover and AllocatePortForVm.
        tx.exec_params(kLockLiveOfRelay, offer.node_id);
        tx.exec_params0(kUpsertOffer, offer.node_id, offer.enabled, offer.wireguard_public_key,
                        static_cast<int>(offer.wireguard_port), offer.endpoint_host,
                        static_cast<long long>(offer.max_tunnels),
                        static_cast<long long>(offer.bandwidth_mbps), ToPgTime(now));
        for (const auto& r :
             tx.exec_params(kCopyOfferToAssignments, offer.node_id, offer.wireguard_public_key,
                            static_cast<int>(offer.wireguard_port), ToPgTime(now))) {
            const RelayState state = StateFrom(r[1]);
            InsertEvent(
                tx, r[0].as<std::string>(),
                {now, state, state, RoleFrom(r[2]),
                 "the relay's WireGuard key or port changed (key " + r[3].as<std::string>() +
                     ", port " + std::to_string(offer.wireguard_port) + ")"});
        }
        return true;
    }));
}

common::Status PgRelayRepository::SetRelayHealth(const std::string& node_id,
                                                 const ports::RelayHealth& health,
                                                 common::TimePoint now) {
    return ToStatus(InTransaction<bool>(pool_, [&](pqxx::work& tx) -> Result<bool> {
        if (!ValidId(node_id)) return Error::NotFound("node " + node_id + " has no relay offer");
        const auto r =
            tx.exec_params(kSetHealth, node_id, health.healthy, health.reason,
                           static_cast<long long>(health.bandwidth_used_mbps), ToPgTime(now));
        if (r.affected_rows() == 0)
            return Error::NotFound("node " + node_id + " has no relay offer");
        return true;
    }));
}

Result<std::vector<domain::RelayCandidate>> PgRelayRepository::Candidates(
    common::TimePoint uptime_since, common::TimePoint now) {
    using Out = std::vector<domain::RelayCandidate>;
    return InTransaction<Out>(pool_, [&](pqxx::work& tx) -> Result<Out> {
        Out out;
        for (const auto& r :
             tx.exec_params(kSelectCandidates, ToPgTime(uptime_since), ToPgTime(now))) {
            domain::RelayCandidate c;
            c.node_id = r[0].as<std::string>();
            c.enabled = r[1].as<bool>();
            c.online = r[2].as<bool>();
            c.healthy = r[3].as<bool>();
            c.health_reason = r[4].as<std::string>();
            c.behind_cgnat = r[5].as<bool>();
            c.requires_relay = r[6].as<bool>();
            c.public_address = r[7].as<std::string>();
            c.wireguard_port = static_cast<std::uint16_t>(r[8].as<int>());
            c.wireguard_public_key = r[9].as<std::string>();
            c.region = r[10].as<std::string>();
            c.uptime_ratio = std::clamp(r[11].as<double>(), 0.0, 1.0);
            c.tunnels = r[12].as<std::uint32_t>();
            c.max_tunnels = r[13].as<std::uint32_t>();
            c.bandwidth_mbps = r[14].as<std::uint32_t>();
            c.bandwidth_used_mbps = r[15].as<std::uint32_t>();
            out.push_back(std::move(c));
        }
        return out;
    });
}

Result<RelayAssignment> PgRelayRepository::Assign(const ports::NewAssignment& assignment,
                                                  common::TimePoint now) {
    return InTransaction<RelayAssignment>(pool_, [&](pqxx::work& tx) -> Result<RelayAssignment> {
        if (ValidId(assignment.cgnat_node_id))
            tx.exec_params(kLockLiveOfCgnat, assignment.cgnat_node_id);
        return InsertAssignment(tx, assignment, options_, now);
    });
}

Result<RelayAssignment> PgRelayRepository::Get(const std::string& assignment_id) {
    return InTransaction<RelayAssignment>(pool_, [&](pqxx::work& tx) -> Result<RelayAssignment> {
        auto a = ValidId(assignment_id) ? SelectAssignment(tx, assignment_id) : std::nullopt;
        if (!a) return Error::NotFound("no relay assignment with id '" + assignment_id + "'");
        return *a;
    });
}

Result<std::vector<RelayAssignment>> PgRelayRepository::ForCgnatNode(
    const std::string& cgnat_node_id) {
    using Out = std::vector<RelayAssignment>;
    return InTransaction<Out>(pool_, [&](pqxx::work& tx) -> Result<Out> {
        if (!ValidId(cgnat_node_id)) return Out{};
        return SelectAssignments(tx,
                                 "WHERE a.cgnat_node_id = $1::uuid AND a.state <> 'removed' "
                                 "ORDER BY a.role = 'standby', a.id",
                                 cgnat_node_id);
    });
}

Result<std::vector<RelayAssignment>> PgRelayRepository::ForRelayNode(
    const std::string& relay_node_id) {
    using Out = std::vector<RelayAssignment>;
    return InTransaction<Out>(pool_, [&](pqxx::work& tx) -> Result<Out> {
        if (!ValidId(relay_node_id)) return Out{};
        return SelectAssignments(
            tx, "WHERE a.relay_node_id = $1::uuid AND a.state <> 'removed' ORDER BY a.id",
            relay_node_id);
    });
}

Result<std::vector<RelayAssignment>> PgRelayRepository::Live() {
    using Out = std::vector<RelayAssignment>;
    return InTransaction<Out>(pool_, [&](pqxx::work& tx) -> Result<Out> {
        return SelectAssignments(tx, "WHERE a.state <> 'removed' ORDER BY a.id", std::string());
    });
}

Result<std::vector<domain::RelayEvent>> PgRelayRepository::Events(
    const std::string& assignment_id) {
    using Out = std::vector<domain::RelayEvent>;
    return InTransaction<Out>(pool_, [&](pqxx::work& tx) -> Result<Out> {
        Out out;
        if (!ValidId(assignment_id)) return out;
        for (const auto& r : tx.exec_params(kSelectEvents, assignment_id)) {
            domain::RelayEvent e;
            e.at = FromMicros(r[0].as<long long>());
            if (const auto from = r[1].as<std::string>(); !from.empty())
                e.from = domain::ParseRelayState(from);
            e.to = StateFrom(r[2]);
            e.role = RoleFrom(r[3]);
            e.reason = r[4].as<std::string>();
            out.push_back(std::move(e));
        }
        return out;
    });
}

Result<RelayAssignment> PgRelayRepository::Transition(const std::string& assignment_id,
                                                      const std::vector<RelayState>& expected_from,
                                                      RelayState to, const std::string& reason,
                                                      common::TimePoint now) {
    return InTransaction<RelayAssignment>(pool_, [&](pqxx::work& tx) -> Result<RelayAssignment> {
        if (!ValidId(assignment_id) || tx.exec_params(kLockAssignment, assignment_id).empty())
            return Error::NotFound("no relay assignment with id '" + assignment_id + "'");
        auto a = SelectAssignment(tx, assignment_id);
        if (!a) return Error::NotFound("no relay assignment with id '" + assignment_id + "'");
        if (!expected_from.empty() &&
            std::find(expected_from.begin(), expected_from.end(), a->state) == expected_from.end())
            return Error::Conflict("the relay assignment is " +
                                   std::string(domain::ToString(a->state)) +
                                   " now; reload and try again");
        if (auto st = MoveAssignment(tx, *a, to, reason, now); !st) return st.error();
        if (to == RelayState::kRemoved) AfterRemoval(tx, *a);
        auto stored = SelectAssignment(tx, assignment_id);
        if (!stored) return Error::Internal("the relay assignment just updated is missing");
        return *stored;
    });
}

common::Status PgRelayRepository::RecordEvent(const std::string& assignment_id,
                                              const std::string& reason, common::TimePoint now) {
    return ToStatus(InTransaction<bool>(pool_, [&](pqxx::work& tx) -> Result<bool> {
        if (!ValidId(assignment_id) || tx.exec_params(kLockAssignment, assignment_id).empty())
            return Error::NotFound("no relay assignment with id '" + assignment_id + "'");
        auto a = SelectAssignment(tx, assignment_id);
        if (!a) return Error::NotFound("no relay assignment with id '" + assignment_id + "'");
        InsertEvent(tx, assignment_id, {now, a->state, a->state, a->role, reason});
        return true;
    }));
}

Result<RelayAssignment> PgRelayRepository::SetCgnatKey(const std::string& assignment_id,
                                                       const std::string& public_key,
                                                       common::TimePoint now) {
    return InTransaction<RelayAssignment>(pool_, [&](pqxx::work& tx) -> Result<RelayAssignment> {
        if (!ValidId(assignment_id) || tx.exec_params(kLockAssignment, assignment_id).empty())
            return Error::NotFound("no relay assignment with id '" + assignment_id + "'");
        auto a = SelectAssignment(tx, assignment_id);
        if (!a) return Error::NotFound("no relay assignment with id '" + assignment_id + "'");
        if (!domain::IsLive(a->state))
            return Error::Conflict("relay assignment " + assignment_id + " was removed");
        if (a->cgnat_public_key == public_key) return *a;
        tx.exec_params0(kSetCgnatKey, assignment_id, public_key, ToPgTime(now));
        InsertEvent(tx, assignment_id,
                    {now, a->state, a->state, a->role,
                     a->cgnat_public_key.empty()
                         ? "the CGNAT node reported its WireGuard key " + public_key
                         : "the CGNAT node rotated its WireGuard key to " + public_key});
        auto stored = SelectAssignment(tx, assignment_id);
        if (!stored) return Error::Internal("the relay assignment just updated is missing");
        return *stored;
    });
}

Result<ports::FailoverOutcome> PgRelayRepository::Failover(const ports::FailoverRequest& req,
                                                           common::TimePoint now) {
    if (req.promote_assignment_id.empty() == !req.replacement.has_value())
        return Error::InvalidArgument(
            "a failover either promotes the standby or names a replacement, exactly one");
    return InTransaction<ports::FailoverOutcome>(
        pool_, [&](pqxx::work& tx) -> Result<ports::FailoverOutcome> {
            if (!ValidId(req.cgnat_node_id) || !ValidId(req.failed_assignment_id))
                return Error::NotFound("no such node or relay assignment");
            tx.exec_params(kLockLiveOfCgnat, req.cgnat_node_id);
            auto failed = SelectAssignment(tx, req.failed_assignment_id);
            if (!failed || failed->cgnat_node_id != req.cgnat_node_id ||
                failed->role != RelayRole::kPrimary || !domain::IsLive(failed->state))
                return Error::Conflict("relay assignment " + req.failed_assignment_id +
                                       " is not the live primary of node " + req.cgnat_node_id);
            const auto mappings =
                SelectMappings(tx, "WHERE m.assignment_id = $1::uuid ORDER BY m.id", failed->id);
            if (auto st = MoveAssignment(tx, *failed, RelayState::kRemoved, req.reason, now); !st)
                return st.error();
            tx.exec_params0(
                "UPDATE relay_assignments SET ended_by_failover = true WHERE id = $1::uuid",
                failed->id);
            tx.exec_params0(kDeleteMappingsOfAssignment, failed->id);

            RelayAssignment primary;
            if (!req.promote_assignment_id.empty()) {
                auto standby = ValidId(req.promote_assignment_id)
                                   ? SelectAssignment(tx, req.promote_assignment_id)
                                   : std::nullopt;
                if (!standby || standby->cgnat_node_id != req.cgnat_node_id ||
                    standby->role != RelayRole::kStandby || standby->state != RelayState::kActive)
                    return Error::Conflict("relay assignment " + req.promote_assignment_id +
                                           " is not an active standby of node " +
                                           req.cgnat_node_id);
                standby->role = RelayRole::kPrimary;
                if (auto st = MoveAssignment(tx, *standby, RelayState::kActive,
                                             "promoted to primary: " + req.reason, now);
                    !st)
                    return st.error();
                primary = *standby;
            } else {
                auto replacement = *req.replacement;
                replacement.role = RelayRole::kPrimary;
                replacement.cgnat_node_id = req.cgnat_node_id;
                auto inserted =
                    InsertAssignment(tx, replacement, options_, now, failed->tunnel.block);
                if (!inserted) return inserted.error();
                primary = std::move(*inserted);
            }

            ports::FailoverOutcome out;
            if (!mappings.empty()) {
                const auto offer = LockOffer(tx, primary.relay_node_id);
                if (!offer)
                    return Error::Conflict("node " + primary.relay_node_id +
                                           " no longer offers to relay");
                const auto taken = TakenPorts(tx, primary.relay_node_id, *offer);
                auto moves = domain::PlanMappingMoves(mappings, primary.relay_node_id, primary.id,
                                                      offer->address, options_.public_ports, taken,
                                                      offer->port_cursor);
                if (!moves) return moves.error();
                std::optional<std::uint32_t> cursor;
                for (auto& move : *moves) {
                    move.to.id = common::NewUuid();
                    move.to.created_at = now;
                    InsertMapping(tx, move.to, now);
                    // The owner learns on the VM itself that its address changed.
                    tx.exec_params0(kInsertVmUrlEvent, move.to.vm_id, ToPgTime(now),
                                    "public URL of port " + std::to_string(move.to.vm_port) +
                                        " moved from " + move.from.public_url + " to " +
                                        move.to.public_url + " (relay failover: " + req.reason +
                                        ")");
                    if (move.to.public_port != move.from.public_port)
                        cursor = std::uint32_t{move.to.public_port} + 1;
                }
                if (cursor)
                    tx.exec_params0(kSetCursor, primary.relay_node_id,
                                    static_cast<long long>(*cursor));
                out.moves = std::move(*moves);
            }
            tx.exec_params0(kAttributeNodeVms, req.cgnat_node_id, primary.relay_node_id);
            tx.exec_params0(kEndWait, req.cgnat_node_id);
            auto stored = SelectAssignment(tx, primary.id);
            if (!stored) return Error::Internal("the new primary is missing");
            out.primary = std::move(*stored);
            return out;
        });
}

Result<std::vector<RelayAssignment>> PgRelayRepository::Release(const std::string& cgnat_node_id,
                                                                const std::string& reason,
                                                                common::TimePoint now) {
    using Out = std::vector<RelayAssignment>;
    return InTransaction<Out>(pool_, [&](pqxx::work& tx) -> Result<Out> {
        Out out;
        if (!ValidId(cgnat_node_id)) return out;
        for (const auto& r : tx.exec_params(kLockLiveOfCgnat, cgnat_node_id)) {
            auto a = SelectAssignment(tx, r[0].as<std::string>());
            if (!a) continue;
            if (auto st = MoveAssignment(tx, *a, RelayState::kRemoved, reason, now); !st)
                return st.error();
            AfterRemoval(tx, *a);
            out.push_back(std::move(*a));
        }
        tx.exec_params0(kAttributeNodeVms, cgnat_node_id, nullptr);
        tx.exec_params0(kEndWait, cgnat_node_id);
        return out;
    });
}

common::Status PgRelayRepository::MarkAwaiting(const std::string& cgnat_node_id,
                                               const std::string& reason, common::TimePoint now) {
    return ToStatus(InTransaction<bool>(pool_, [&](pqxx::work& tx) -> Result<bool> {
        if (!ValidId(cgnat_node_id) || tx.exec_params(kNodeExists, cgnat_node_id).empty())
            return Error::NotFound("no node with id '" + cgnat_node_id + "'");
        tx.exec_params0(kUpsertWait, cgnat_node_id, ToPgTime(now), reason);
        return true;
    }));
}

Result<std::vector<ports::AwaitingRelay>> PgRelayRepository::Awaiting() {
    using Out = std::vector<ports::AwaitingRelay>;
    return InTransaction<Out>(pool_, [&](pqxx::work& tx) -> Result<Out> {
        Out out;
        for (const auto& r : tx.exec(kSelectWaits)) {
            ports::AwaitingRelay w;
            w.cgnat_node_id = r[0].as<std::string>();
            w.since = FromMicros(r[1].as<long long>());
            w.last_attempt_at = FromMicros(r[2].as<long long>());
            w.attempts = r[3].as<std::uint32_t>();
            w.reason = r[4].as<std::string>();
            out.push_back(std::move(w));
        }
        return out;
    });
}

Result<domain::PortMapping> PgRelayRepository::AllocatePortForVm(const std::string& vm_id,
                                                                 std::uint16_t vm_port,
                                                                 domain::PortProtocol protocol,
                                                                 common::TimePoint now) {
    if (vm_port == 0) return Error::InvalidArgument("the VM port must be 1..65535");
    return InTransaction<domain::PortMapping>(
        pool_, [&](pqxx::work& tx) -> Result<domain::PortMapping> {
            if (!ValidId(vm_id)) return Error::NotFound("no VM with id '" + vm_id + "'");
            const auto vm = tx.exec_params(kSelectVm, vm_id);
            if (vm.empty()) return Error::NotFound("no VM with id '" + vm_id + "'");
            const auto node_id = vm[0][0].as<std::string>();
            if (node_id.empty())
                return Error::Conflict("VM " + vm_id + " is not placed on a node yet");

            // The primary, share-locked: a failover that holds it makes us wait, and then the row
            // we waited for is removed; the next statement sees the new primary.
            pqxx::result primary;
            for (int attempt = 0; attempt < 3 && primary.empty(); ++attempt)
                primary = tx.exec_params(kSharePrimary, node_id);
            if (primary.empty()) {
                const auto needs = tx.exec_params(kRequiresRelay, node_id);
                if (!needs.empty() && !needs[0][0].as<bool>())
                    return Error::Unprocessable(
                        "node " + node_id + " is publicly reachable; its VMs need no relay port");
                return Error::Unprocessable("node " + node_id +
                                            " has no relay yet (awaiting relay)");
            }
            const auto assignment_id = primary[0][0].as<std::string>();
            const auto relay_node_id = primary[0][1].as<std::string>();
            // Serialises every port allocation on this relay, so the taken list below is exact.
            const auto offer = LockOffer(tx, relay_node_id);
            if (!offer)
                return Error::Conflict("node " + relay_node_id + " no longer offers to relay");

            const auto locked_vm = tx.exec_params(kLockVm, vm_id);
            if (locked_vm.empty()) return Error::NotFound("no VM with id '" + vm_id + "'");
            const auto state = domain::ParseVmState(locked_vm[0][1].as<std::string>());
            if (state == domain::VmState::kDeleted || state == domain::VmState::kDeleting ||
                state == domain::VmState::kFailed)
                return Error::Conflict("VM " + vm_id + " is " + locked_vm[0][1].as<std::string>());
            if (locked_vm[0][0].as<std::string>() != node_id)
                return Error::Conflict("VM " + vm_id + " moved to another node; try again");

            const auto existing = tx.exec_params(
                kMappingColumns +
                    "WHERE m.vm_id = $1::uuid AND m.vm_port = $2 AND "
                    "m.protocol = $3",
                vm_id, static_cast<int>(vm_port), std::string(domain::ToString(protocol)));
            if (!existing.empty()) return MappingFromRow(existing[0]);

            const auto taken = TakenPorts(tx, relay_node_id, *offer);
            auto port = domain::AllocatePort(options_.public_ports, taken, offer->port_cursor);
            if (!port)
                return Error::Unprocessable("no public port free on relay " + relay_node_id + ": " +
                                            port.error().message);
            domain::PortMapping m;
            m.id = common::NewUuid();
            m.relay_node_id = relay_node_id;
            m.assignment_id = assignment_id;
            m.public_port = *port;
            m.protocol = protocol;
            m.vm_id = vm_id;
            m.vm_port = vm_port;
            InsertMapping(tx, m, now);
            tx.exec_params0(kSetCursor, relay_node_id, static_cast<long long>(*port) + 1);
            tx.exec_params0(kSetVmRelay, vm_id, relay_node_id);
            const auto stored = SelectMappings(tx, "WHERE m.id = $1::uuid", m.id);
            if (stored.empty()) return Error::Internal("the port mapping just inserted is missing");
            return stored.front();
        });
}

Result<std::vector<domain::PortMapping>> PgRelayRepository::MappingsForVm(
    const std::string& vm_id) {
    using Out = std::vector<domain::PortMapping>;
    return InTransaction<Out>(pool_, [&](pqxx::work& tx) -> Result<Out> {
        if (!ValidId(vm_id)) return Out{};
        return SelectMappings(tx, "WHERE m.vm_id = $1::uuid ORDER BY m.vm_port, m.protocol", vm_id);
    });
}

Result<std::vector<domain::PortMapping>> PgRelayRepository::MappingsForRelay(
    const std::string& relay_node_id) {
    using Out = std::vector<domain::PortMapping>;
    return InTransaction<Out>(pool_, [&](pqxx::work& tx) -> Result<Out> {
        if (!ValidId(relay_node_id)) return Out{};
        return SelectMappings(tx, "WHERE m.relay_node_id = $1::uuid ORDER BY m.public_port",
                              relay_node_id);
    });
}

Result<std::vector<domain::PortMapping>> PgRelayRepository::RemoveMappingsForVm(
    const std::string& vm_id) {
    using Out = std::vector<domain::PortMapping>;
    return InTransaction<Out>(pool_, [&](pqxx::work& tx) -> Result<Out> {
        if (!ValidId(vm_id)) return Out{};
        auto removed = SelectMappings(
            tx, "WHERE m.vm_id = $1::uuid ORDER BY m.vm_port, m.protocol FOR UPDATE OF m", vm_id);
        tx.exec_params0(kDeleteMappingsOfVm, vm_id);
        return removed;
    });
}

Result<domain::PortMapping> PgRelayRepository::RemoveMapping(const std::string& vm_id,
                                                             std::uint16_t vm_port,
                                                             domain::PortProtocol protocol) {
    return InTransaction<domain::PortMapping>(
        pool_, [&](pqxx::work& tx) -> Result<domain::PortMapping> {
            const auto missing = Error::NotFound("port " + std::to_string(vm_port) + "/" +
                                                 std::string(domain::ToString(protocol)) +
                                                 " of VM " + vm_id + " is not forwarded");
            if (!ValidId(vm_id)) return missing;
            const auto rows = tx.exec_params(
                kMappingColumns +
                    "WHERE m.vm_id = $1::uuid AND m.vm_port = $2 AND m.protocol = $3 "
                    "FOR UPDATE OF m",
                vm_id, static_cast<int>(vm_port), std::string(domain::ToString(protocol)));
            if (rows.empty()) return missing;
            auto removed = MappingFromRow(rows[0]);
            tx.exec_params0("DELETE FROM relay_port_mappings WHERE id = $1::uuid", removed.id);
            return removed;
        });
}

Result<std::vector<domain::PortMapping>> PgRelayRepository::PruneMappings() {
    using Out = std::vector<domain::PortMapping>;
    return InTransaction<Out>(pool_, [&](pqxx::work& tx) -> Result<Out> {
        Out removed;
        for (const auto& r : tx.exec(kMappingColumns + kStaleMappings))
            removed.push_back(MappingFromRow(r));
        for (const auto& m : removed)
            tx.exec_params0("DELETE FROM relay_port_mappings WHERE id = $1::uuid", m.id);
        tx.exec0(kAttributeAllVms);
        return removed;
    });
}

common::Status PgRelayRepository::RecordLatency(const std::string& assignment_id,
                                                std::uint32_t rtt_us, common::TimePoint now) {
    return ToStatus(InTransaction<bool>(pool_, [&](pqxx::work& tx) -> Result<bool> {
        const auto missing = Error::NotFound("no relay assignment '" + assignment_id + "'");
        if (!ValidId(assignment_id)) return missing;
        const auto rows = tx.exec_params(
            "UPDATE relay_assignments SET tunnel_rtt_us = $2, tunnel_rtt_at = $3::timestamptz "
            "WHERE id = $1::uuid RETURNING 1",
            assignment_id, static_cast<long long>(rtt_us), ToPgTime(now));
        if (rows.empty()) return missing;
        return true;
    }));
}

common::Status PgRelayRepository::RecordTraffic(const std::string& assignment_id,
                                                std::uint64_t rx_bytes, std::uint64_t tx_bytes,
                                                common::TimePoint now) {
    return ToStatus(InTransaction<bool>(pool_, [&](pqxx::work& tx) -> Result<bool> {
        const auto missing = Error::NotFound("no relay assignment '" + assignment_id + "'");
        if (!ValidId(assignment_id)) return missing;
        // PostgreSQL's bigint: counters beyond 2^63 (never reached in practice) are clamped.
        const auto clamp = [](std::uint64_t v) {
            return static_cast<long long>(
                std::min<std::uint64_t>(v, std::numeric_limits<std::int64_t>::max()));
        };
        const auto rows = tx.exec_params(kRecordTraffic, assignment_id, clamp(rx_bytes),
                                         clamp(tx_bytes), ToPgTime(now));
        if (rows.empty()) return missing;
        tx.exec_params0(kRelayBandwidth, rows[0][0].as<std::string>());
        return true;
    }));
}

Result<ports::RelayTrafficTotals> PgRelayRepository::TrafficTotals() {
    return InTransaction<ports::RelayTrafficTotals>(
        pool_, [&](pqxx::work& tx) -> Result<ports::RelayTrafficTotals> {
            const auto row = tx.exec1(kTrafficTotals);
            ports::RelayTrafficTotals totals;
            totals.bytes_relayed = static_cast<std::uint64_t>(row[0].as<long long>());
            totals.failovers = static_cast<std::uint64_t>(row[1].as<long long>());
            return totals;
        });
}

namespace {

ports::KeyRotation RotationFromRow(const pqxx::row& r) {
    ports::KeyRotation k;
    k.node_id = r[0].as<std::string>();
    k.committing = r[1].as<std::string>() == "committing";
    k.next_public_key = r[2].as<std::string>();
    const auto staged = r[3].as<std::string>();
    for (std::size_t start = 0; start < staged.size();) {
        const auto comma = staged.find(',', start);
        const auto end = comma == std::string::npos ? staged.size() : comma;
        k.staged_on.push_back(staged.substr(start, end - start));
        start = end + 1;
    }
    k.reason = r[4].as<std::string>();
    k.requested_at = FromMicros(r[5].as<long long>());
    k.updated_at = FromMicros(r[6].as<long long>());
    return k;
}

}  // namespace

Result<ports::KeyRotation> PgRelayRepository::RequestKeyRotation(const std::string& node_id,
                                                                 const std::string& reason,
                                                                 common::TimePoint now) {
    return InTransaction<ports::KeyRotation>(
        pool_, [&](pqxx::work& tx) -> Result<ports::KeyRotation> {
            if (!ValidId(node_id) || tx.exec_params(kNodeExists, node_id).empty())
                return Error::NotFound("no node with id '" + node_id + "'");
            tx.exec_params0(kInsertRotation, node_id, reason, ToPgTime(now));
            return RotationFromRow(tx.exec_params1(
                std::string(kRotationColumns) + "WHERE node_id = $1::uuid", node_id));
        });
}

Result<std::vector<ports::KeyRotation>> PgRelayRepository::KeyRotations() {
    using Out = std::vector<ports::KeyRotation>;
    return InTransaction<Out>(pool_, [&](pqxx::work& tx) -> Result<Out> {
        Out out;
        for (const auto& r : tx.exec(std::string(kRotationColumns) + "ORDER BY node_id"))
            out.push_back(RotationFromRow(r));
        return out;
    });
}

Result<std::vector<std::string>> PgRelayRepository::OffersWithoutKey() {
    using Out = std::vector<std::string>;
    return InTransaction<Out>(pool_, [&](pqxx::work& tx) -> Result<Out> {
        Out out;
        for (const auto& r : tx.exec("SELECT node_id::text FROM relay_nodes "
                                     "WHERE wireguard_public_key = '' ORDER BY node_id"))
            out.push_back(r[0].as<std::string>());
        return out;
    });
}

common::Status PgRelayRepository::SaveKeyRotation(const ports::KeyRotation& rotation,
                                                  common::TimePoint now) {
    std::string staged;
    for (const auto& id : rotation.staged_on) {
        if (!ValidId(id)) return Error::InvalidArgument("staged_on: not an id: '" + id + "'");
        staged += (staged.empty() ? "" : ",") + id;
    }
    return ToStatus(InTransaction<bool>(pool_, [&](pqxx::work& tx) -> Result<bool> {
        const auto missing =
            Error::NotFound("no key rotation in progress for node " + rotation.node_id);
        if (!ValidId(rotation.node_id)) return missing;
        const auto r = tx.exec_params0(kSaveRotation, rotation.node_id,
                                       std::string(rotation.committing ? "committing" : "staging"),
                                       rotation.next_public_key, staged, ToPgTime(now));
        if (r.affected_rows() == 0) return missing;
        return true;
    }));
}

common::Status PgRelayRepository::FinishKeyRotation(const std::string& node_id) {
    return ToStatus(InTransaction<bool>(pool_, [&](pqxx::work& tx) -> Result<bool> {
        if (!ValidId(node_id)) return true;
        tx.exec_params0("DELETE FROM relay_key_rotations WHERE node_id = $1::uuid", node_id);
        return true;
    }));
}

Result<std::string> PgRelayRepository::AttributeVm(const std::string& vm_id) {
    return InTransaction<std::string>(pool_, [&](pqxx::work& tx) -> Result<std::string> {
        if (!ValidId(vm_id)) return Error::NotFound("no VM with id '" + vm_id + "'");
        const auto rows = tx.exec_params(kAttributeVm, vm_id);
        if (rows.empty()) return Error::NotFound("no VM with id '" + vm_id + "'");
        return rows[0][0].as<std::string>();
    });
}

}  // namespace decloud::orchestrator::adapters::pg
