#include "orchestrator/adapters/pg/pg_node_repository.hpp"

#include <pqxx/pqxx>

#include <algorithm>
#include <unordered_map>

#include "decloud/common/ids.hpp"
#include "orchestrator/domain/node_health.hpp"
#include "pg_support.hpp"

namespace decloud::orchestrator::adapters::pg {

using common::Error;
using common::Result;
using nlohmann::json;

namespace {

constexpr long long kOfflineSweepLockId = 0x6465636c6f7501;

constexpr const char* kNodeColumns = R"sql(
    id::text, public_key, operator_wallet, reported_ip, observed_ip, region,
    array_to_json(tags)::text AS tags, resources::text AS resources, compute_points,
    benchmark_events_per_second, benchmark_threads, agent_version, cgnat_override, behind_cgnat,
    requires_relay, cgnat_reason, price_per_point_micro_usdc, status,
    (extract(epoch FROM registered_at) * 1000000)::bigint AS registered_us,
    (extract(epoch FROM updated_at) * 1000000)::bigint AS updated_us,
    (extract(epoch FROM last_heartbeat_at) * 1000000)::bigint AS last_heartbeat_us,
    usage::text AS usage)sql";

constexpr const char* kUpsertNode = R"sql(
INSERT INTO nodes (id, public_key, operator_wallet, credential_hash, reported_ip, observed_ip, region,
                   tags, resources, compute_points, benchmark_events_per_second, benchmark_threads,
                   agent_version, cgnat_override, behind_cgnat, requires_relay, cgnat_reason, status,
                   registered_at, updated_at, price_per_point_micro_usdc)
VALUES ($1::uuid, $2, $3, $4, $5, $6, $7, ARRAY(SELECT jsonb_array_elements_text($8::jsonb)), $9::jsonb,
        $10, $11, $12, $13, NULLIF($14, '')::boolean, $15, $16, $17, 'offline', $18::timestamptz,
        $18::timestamptz, $19)
ON CONFLICT (public_key) DO UPDATE SET
    operator_wallet = EXCLUDED.operator_wallet,
    credential_hash = EXCLUDED.credential_hash,
    reported_ip = EXCLUDED.reported_ip,
    observed_ip = EXCLUDED.observed_ip,
    region = EXCLUDED.region,
    tags = EXCLUDED.tags,
    resources = EXCLUDED.resources,
    compute_points = EXCLUDED.compute_points,
    benchmark_events_per_second = EXCLUDED.benchmark_events_per_second,
    benchmark_threads = EXCLUDED.benchmark_threads,
    agent_version = EXCLUDED.agent_version,
    cgnat_override = EXCLUDED.cgnat_override,
    behind_cgnat = EXCLUDED.behind_cgnat,
    requires_relay = EXCLUDED.requires_relay,
    cgnat_reason = EXCLUDED.cgnat_reason,
    -- A price the operator set through the node's profile outlives re-registration.
    price_per_point_micro_usdc = coalesce(
        (SELECT p.price_per_point_micro_usdc FROM node_profiles p WHERE p.node_id = nodes.id),
        EXCLUDED.price_per_point_micro_usdc),
    updated_at = EXCLUDED.updated_at
RETURNING id::text, (xmax = 0) AS created)sql";

constexpr const char* kSelectCredential = "SELECT credential_hash FROM nodes WHERE id = $1::uuid";

// Locks the batch's nodes in id order, so two replicas flushing overlapping batches queue up
// instead of deadlocking.
constexpr const char* kLockBatch = R"sql(
SELECT id::text, status, (extract(epoch FROM last_heartbeat_at) * 1000000)::bigint
FROM nodes WHERE id = ANY (ARRAY(SELECT jsonb_array_elements_text($1::jsonb))::uuid[])
ORDER BY id FOR UPDATE)sql";

constexpr const char* kApplyLastSeen = R"sql(
UPDATE nodes n SET
    last_heartbeat_at = GREATEST(n.last_heartbeat_at, b.last_at),
    usage = b.usage,
    agent_version = CASE WHEN b.agent_version <> '' THEN b.agent_version ELSE n.agent_version END,
    status = 'online'
FROM jsonb_to_recordset($1::jsonb) AS b(id uuid, last_at timestamptz, usage jsonb, agent_version text)
WHERE n.id = b.id)sql";

constexpr const char* kOpenAvailability = R"sql(
INSERT INTO node_availability (node_id, started_at)
SELECT b.id, b.first_at FROM jsonb_to_recordset($1::jsonb) AS b(id uuid, first_at timestamptz)
ON CONFLICT DO NOTHING)sql";

constexpr const char* kAddDailyStats = R"sql(
INSERT INTO node_daily_stats (node_id, day, heartbeats, missed)
SELECT b.id, b.day, b.beats, b.missed
FROM jsonb_to_recordset($1::jsonb) AS b(id uuid, day date, beats bigint, missed bigint)
ON CONFLICT (node_id, day) DO UPDATE SET
    heartbeats = node_daily_stats.heartbeats + EXCLUDED.heartbeats,
    missed = node_daily_stats.missed + EXCLUDED.missed)sql";

constexpr const char* kMarkStaleOffline = R"sql(
UPDATE nodes SET status = 'offline'
WHERE status = 'online' AND (last_heartbeat_at IS NULL OR last_heartbeat_at < $1::timestamptz)
RETURNING id::text)sql";

constexpr const char* kCloseAvailability = R"sql(
UPDATE node_availability a
SET ended_at = GREATEST(a.started_at, COALESCE(n.last_heartbeat_at, a.started_at))
FROM nodes n
WHERE a.node_id = n.id AND a.ended_at IS NULL AND n.status = 'offline'
  AND n.id = ANY (ARRAY(SELECT jsonb_array_elements_text($1::jsonb))::uuid[]))sql";

constexpr const char* kSelectAvailability = R"sql(
SELECT node_id::text, (extract(epoch FROM started_at) * 1000000)::bigint,
       (extract(epoch FROM ended_at) * 1000000)::bigint
FROM node_availability
WHERE node_id = ANY (ARRAY(SELECT jsonb_array_elements_text($1::jsonb))::uuid[])
  AND (ended_at IS NULL OR ended_at > $2::timestamptz)
ORDER BY node_id, started_at)sql";

constexpr const char* kSelectDailyStats = R"sql(
SELECT node_id::text, day::text, heartbeats, missed FROM node_daily_stats
WHERE node_id = ANY (ARRAY(SELECT jsonb_array_elements_text($1::jsonb))::uuid[]) AND day >= $2::date
ORDER BY node_id, day)sql";

constexpr const char* kPurgeTokens = "DELETE FROM used_tokens WHERE expires_at <= $1::timestamptz";
constexpr const char* kInsertToken =
    "INSERT INTO used_tokens (token_hash, expires_at) VALUES ($1, $2::timestamptz)";

Result<domain::Node> NodeFromRow(const pqxx::row& row) {
    domain::Node n;
    n.id = row["id"].as<std::string>();
    n.public_key = row["public_key"].as<std::string>();
    n.operator_wallet = row["operator_wallet"].as<std::string>();
    n.reported_ip = row["reported_ip"].as<std::string>();
    n.observed_ip = row["observed_ip"].as<std::string>();
    n.region = row["region"].as<std::string>();
    for (const auto& t : json::parse(row["tags"].as<std::string>()))
        n.tags.push_back(t.get<std::string>());
    auto resources = proto::DecodeNodeResources(json::parse(row["resources"].as<std::string>()));
    if (!resources)
        return Error::Internal("stored resources of node " + n.id + ": " +
                               resources.error().message);
    n.resources = std::move(*resources);
    n.compute.points = row["compute_points"].as<std::uint32_t>();
    n.compute.events_per_second = row["benchmark_events_per_second"].as<double>();
    n.compute.benchmark_threads = row["benchmark_threads"].as<std::uint32_t>();
    n.agent_version = row["agent_version"].as<std::string>();
    if (!row["cgnat_override"].is_null()) n.cgnat_override = row["cgnat_override"].as<bool>();
    n.cgnat.behind_cgnat = row["behind_cgnat"].as<bool>();
    n.cgnat.requires_relay = row["requires_relay"].as<bool>();
    n.cgnat.reason = row["cgnat_reason"].as<std::string>();
    n.price_per_point_micro_usdc = row["price_per_point_micro_usdc"].as<std::uint64_t>();
    n.status = domain::ParseNodeStatus(row["status"].as<std::string>())
                   .value_or(domain::NodeStatus::kOffline);
    n.registered_at = FromMicros(row["registered_us"].as<long long>());
    n.updated_at = FromMicros(row["updated_us"].as<long long>());
    if (!row["last_heartbeat_us"].is_null())
        n.last_heartbeat_at = FromMicros(row["last_heartbeat_us"].as<long long>());
    const auto usage_json = json::parse(row["usage"].as<std::string>());
    if (!usage_json.empty()) {
        auto usage = proto::DecodeNodeUsage(usage_json);
        if (usage) n.usage = *usage;
    }
    return n;
}

Result<domain::Node> SelectNode(pqxx::work& tx, const std::string& id) {
    const auto rows = tx.exec_params(
        std::string("SELECT ") + kNodeColumns + " FROM nodes WHERE id = $1::uuid", id);
    if (rows.empty()) return Error::NotFound("no node with id '" + id + "'");
    return NodeFromRow(rows[0]);
}

}  // namespace

Result<ports::RegisterOutcome> PgNodeRepository::Register(const domain::NodeRegistration& reg,
                                                          common::TimePoint now) {
    return InTransaction<ports::RegisterOutcome>(
        pool_, [&](pqxx::work& tx) -> Result<ports::RegisterOutcome> {
            const std::string cgnat_override =
                reg.cgnat_override ? (*reg.cgnat_override ? "true" : "false") : "";
            const auto row = tx.exec_params1(
                kUpsertNode, common::NewUuid(), reg.public_key, reg.operator_wallet,
                reg.credential_hash, reg.reported_ip, reg.observed_ip, reg.region,
                json(reg.tags).dump(), proto::ToJson(reg.resources).dump(),
                static_cast<long long>(reg.compute.points), reg.compute.events_per_second,
                static_cast<long long>(reg.compute.benchmark_threads), reg.agent_version,
                cgnat_override, reg.cgnat.behind_cgnat, reg.cgnat.requires_relay, reg.cgnat.reason,
                ToPgTime(now), static_cast<long long>(reg.price_per_point_micro_usdc));
            auto node = SelectNode(tx, row[0].as<std::string>());
            if (!node) return node.error();
            return ports::RegisterOutcome{std::move(*node), row[1].as<bool>()};
        });
}

Result<domain::Node> PgNodeRepository::Get(const std::string& node_id) {
    if (!common::IsUuid(node_id)) return Error::NotFound("no node with id '" + node_id + "'");
    return InTransaction<domain::Node>(pool_,
                                       [&](pqxx::work& tx) { return SelectNode(tx, node_id); });
}

Result<std::vector<domain::Node>> PgNodeRepository::List(const ports::NodeListQuery& query) {
    if (!query.after_id.empty() && !common::IsUuid(query.after_id))
        return Error::InvalidArgument("cursor: not a node id");
    return InTransaction<std::vector<domain::Node>>(
        pool_, [&](pqxx::work& tx) -> Result<std::vector<domain::Node>> {
            const auto rows = tx.exec_params(
                std::string("SELECT ") + kNodeColumns +
                    " FROM nodes WHERE id > COALESCE(NULLIF($1, ''), "
                    "'00000000-0000-0000-0000-000000000000')::uuid"
                    " AND ($2 = '' OR status = $2) AND ($3 = '' OR operator_wallet = $3) ORDER BY "
                    "id LIMIT $4",
                query.after_id,
                query.status ? std::string(domain::ToString(*query.status)) : std::string(),
                query.operator_wallet, static_cast<long long>(query.limit));
            std::vector<domain::Node> out;
            out.reserve(rows.size());
            for (const auto& row : rows) {
                auto n = NodeFromRow(row);
                if (!n) return n.error();
                out.push_back(std::move(*n));
            }
            return out;
        });
}

Result<ports::NodeCredential> PgNodeRepository::GetCredential(const std::string& node_id) {
    if (!common::IsUuid(node_id)) return Error::NotFound("no node with id '" + node_id + "'");
    return InTransaction<ports::NodeCredential>(
        pool_, [&](pqxx::work& tx) -> Result<ports::NodeCredential> {
            const auto rows = tx.exec_params(kSelectCredential, node_id);
            if (rows.empty()) return Error::NotFound("no node with id '" + node_id + "'");
            return ports::NodeCredential{node_id, rows[0][0].as<std::string>()};
        });
}

Result<ports::HeartbeatFlushResult> PgNodeRepository::ApplyHeartbeats(
    std::span<const domain::BufferedHeartbeat> batch, common::Duration heartbeat_interval,
    common::TimePoint) {
    return InTransaction<ports::HeartbeatFlushResult>(
        pool_, [&](pqxx::work& tx) -> Result<ports::HeartbeatFlushResult> {
            ports::HeartbeatFlushResult result;
            json ids = json::array();
            for (const auto& hb : batch) {
                if (common::IsUuid(hb.node_id)) ids.push_back(hb.node_id);
            }
            struct Previous {
                bool online;
                std::optional<common::TimePoint> last;
            };
            std::unordered_map<std::string, Previous> previous;
            previous.reserve(batch.size());
            for (const auto& row : tx.exec_params(kLockBatch, ids.dump())) {
                Previous p{row[1].as<std::string>() == "online", std::nullopt};
                if (!row[2].is_null()) p.last = FromMicros(row[2].as<long long>());
                previous.emplace(row[0].as<std::string>(), p);
            }
            json last_seen = json::array(), opened = json::array(), daily = json::array();
            for (const auto& hb : batch) {
                const auto it = previous.find(hb.node_id);
                if (it == previous.end()) {
                    ++result.unknown_nodes;
                    continue;
                }
                const auto missed =
                    domain::MissedHeartbeats(it->second.last, hb.first_at, heartbeat_interval);
                last_seen.push_back({{"id", hb.node_id},
                                     {"last_at", ToPgTime(hb.last_at)},
                                     {"usage", proto::ToJson(hb.usage)},
                                     {"agent_version", hb.agent_version}});
                daily.push_back({{"id", hb.node_id},
                                 {"day", domain::UtcDay(hb.last_at)},
                                 {"beats", hb.count},
                                 {"missed", missed}});
                if (!it->second.online) {
                    opened.push_back({{"id", hb.node_id}, {"first_at", ToPgTime(hb.first_at)}});
                    result.came_online.push_back(hb.node_id);
                }
                ++result.nodes_updated;
            }
            if (!last_seen.empty()) {
                tx.exec_params0(kApplyLastSeen, last_seen.dump());
                tx.exec_params0(kAddDailyStats, daily.dump());
            }
            if (!opened.empty()) tx.exec_params0(kOpenAvailability, opened.dump());
            return result;
        });
}

Result<std::vector<std::string>> PgNodeRepository::MarkStaleOffline(common::TimePoint cutoff,
                                                                    common::TimePoint) {
    return InTransaction<std::vector<std::string>>(
        pool_, [&](pqxx::work& tx) -> Result<std::vector<std::string>> {
            std::vector<std::string> ids;
            // Another replica is sweeping right now: nothing to do here.
            if (!tx.exec_params1("SELECT pg_try_advisory_xact_lock($1)", kOfflineSweepLockId)[0]
                     .as<bool>())
                return ids;
            json ids_json = json::array();
            for (const auto& row : tx.exec_params(kMarkStaleOffline, ToPgTime(cutoff))) {
                ids.push_back(row[0].as<std::string>());
                ids_json.push_back(ids.back());
            }
            if (!ids.empty()) tx.exec_params0(kCloseAvailability, ids_json.dump());
            return ids;
        });
}

Result<std::unordered_map<std::string, ports::NodeHistory>> PgNodeRepository::History(
    std::span<const std::string> node_ids, common::TimePoint since) {
    using Map = std::unordered_map<std::string, ports::NodeHistory>;
    json ids = json::array();
    for (const auto& id : node_ids) {
        if (common::IsUuid(id)) ids.push_back(id);
    }
    if (ids.empty()) return Map{};
    return InTransaction<Map>(pool_, [&](pqxx::work& tx) -> Result<Map> {
        Map out;
        const auto ids_text = ids.dump();
        for (const auto& row : tx.exec_params(kSelectAvailability, ids_text, ToPgTime(since))) {
            domain::AvailabilityInterval iv{FromMicros(row[1].as<long long>()), std::nullopt};
            if (!row[2].is_null()) iv.end = FromMicros(row[2].as<long long>());
            out[row[0].as<std::string>()].availability.push_back(iv);
        }
        for (const auto& row : tx.exec_params(kSelectDailyStats, ids_text, domain::UtcDay(since)))
            out[row[0].as<std::string>()].daily.push_back(
                {row[1].as<std::string>(), row[2].as<std::uint64_t>(), row[3].as<std::uint64_t>()});
        return out;
    });
}

common::Status PgNodeRepository::ConsumeOnce(const std::string& token_hash,
                                             common::TimePoint expires_at, common::TimePoint now) {
    auto r = InTransaction<bool>(pool_, [&](pqxx::work& tx) -> Result<bool> {
        tx.exec_params0(kPurgeTokens, ToPgTime(now));
        tx.exec_params0(kInsertToken, token_hash, ToPgTime(expires_at));
        return true;
    });
    if (!r) {
        if (r.error().code == common::ErrorCode::kConflict)
            return Error::Conflict("token already used");
        return r.error();
    }
    return common::Ok();
}

}  // namespace decloud::orchestrator::adapters::pg
