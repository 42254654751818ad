#include "orchestrator/adapters/pg/pg_vm_repository.hpp"

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "decloud/common/ids.hpp"
#include "pg_support.hpp"

namespace decloud::orchestrator::adapters::pg {

using common::Error;
using common::Result;
using domain::VmState;
using nlohmann::json;

namespace {

// States in which a VM holds capacity on its node (domain::HoldsCapacity, as SQL).
constexpr const char* kHoldingStates =
    "('scheduling', 'provisioning', 'running', 'stopping', 'stopped', 'deleting')";

// Capacity of nodes and what their VMs hold, for the scheduler; $1 uptime window start, $2 now,
// $3 memory kept for the host (MiB), $4 a node id or NULL for every online node.
const std::string kSelectCapacity = std::string(R"sql(
WITH reserved AS (
    SELECT node_id, sum(points)::bigint AS points, sum(memory_mib)::bigint AS memory_mib,
           sum(disk_gib)::bigint AS disk_gib, sum(gpu_count)::bigint AS gpus
    FROM vms WHERE node_id IS NOT NULL AND state IN )sql") +
                                    kHoldingStates + R"sql(
      AND ($4::uuid IS NULL OR node_id = $4::uuid)
    GROUP BY node_id),
up AS (
    SELECT node_id,
           sum(extract(epoch FROM least(coalesce(ended_at, $2::timestamptz), $2::timestamptz)
                                  - greatest(started_at, $1::timestamptz)))::double precision AS secs
    FROM node_availability
    WHERE coalesce(ended_at, $2::timestamptz) > $1::timestamptz
      AND ($4::uuid IS NULL OR node_id = $4::uuid)
    GROUP BY node_id)
SELECT n.id::text, n.status = 'online', n.compute_points,
       coalesce((n.resources->>'cpuCores')::bigint, 0),
       greatest(coalesce((n.resources->>'memoryBytes')::bigint, 0) / 1048576 - $3::bigint, 0),
       coalesce((n.resources->>'storageFreeBytes')::bigint, 0) / 1073741824,
       coalesce(r.points, 0), coalesce(r.memory_mib, 0), coalesce(r.disk_gib, 0),
       coalesce(r.gpus, 0), coalesce(n.resources->'gpus', '[]'::jsonb)::text, n.region,
       array_to_json(n.tags)::text, coalesce((n.resources->>'kvmAvailable')::boolean, false),
       n.price_per_point_micro_usdc,
       coalesce(up.secs, 0) / greatest(extract(epoch FROM $2::timestamptz
                                         - greatest(n.registered_at, $1::timestamptz)), 1)
FROM nodes n
LEFT JOIN reserved r ON r.node_id = n.id
LEFT JOIN up ON up.node_id = n.id
WHERE ($4::uuid IS NULL AND n.status = 'online'
       AND coalesce((n.resources->>'vmsEnabled')::boolean, true))
   OR n.id = $4::uuid)sql";

constexpr const char* kLockNode = "SELECT 1 FROM nodes WHERE id = $1::uuid FOR UPDATE";
constexpr const char* kLockOwner = "SELECT 1 FROM users WHERE wallet_address = $1 FOR UPDATE";
constexpr const char* kCountOwned =
    "SELECT count(*) FROM vms WHERE owner_wallet = $1 AND state <> 'deleted'";

constexpr const char* kVmColumns = R"sql(
SELECT id::text, owner_wallet, name, coalesce(node_id::text, ''), state, state_reason, cores,
       memory_mib, disk_gib, tier, coalesce(gpu::text, ''), region, array_to_json(tags)::text,
       coalesce(target_node_id::text, ''), require_kvm, image, array_to_json(ssh_key_ids)::text,
       encrypted_password, user_data, points, gpu_count, hourly_rate_micro_usdc,
       coalesce(idempotency_key, ''), array_to_json(addresses)::text, node_offline,
       (extract(epoch FROM created_at) * 1000000)::bigint,
       (extract(epoch FROM updated_at) * 1000000)::bigint, coalesce(template_id, ''),
       template_params::text, EXISTS (SELECT 1 FROM vm_boot_logs b WHERE b.vm_id = vms.id)
FROM vms )sql";

constexpr const char* kInsertVm = R"sql(
INSERT INTO vms (id, owner_wallet, name, node_id, state, state_reason, cores, memory_mib, disk_gib,
                 tier, gpu, region, tags, target_node_id, require_kvm, image, ssh_key_ids,
                 encrypted_password, user_data, points, gpu_count, hourly_rate_micro_usdc,
                 idempotency_key, created_at, updated_at, template_id, template_params)
VALUES ($1::uuid, $2, $3, $4::uuid, $5, $6, $7, $8, $9, $10, NULLIF($11, '')::jsonb, $12,
        ARRAY(SELECT jsonb_array_elements_text($13::jsonb)), NULLIF($14, '')::uuid, $15, $16,
        ARRAY(SELECT jsonb_array_elements_text($17::jsonb))::uuid[], NULLIF($18, ''), $19, $20,
        $21, $22, NULLIF($23, ''), $24::timestamptz, $24::timestamptz, NULLIF($25, ''),
        $26::jsonb))sql";

constexpr const char* kInsertEvent = R"sql(
INSERT INTO vm_events (vm_id, at, from_state, to_state, reason)
VALUES ($1::uuid, $2::timestamptz, NULLIF($3, ''), $4, $5))sql";

constexpr const char* kInsertCommand = R"sql(
INSERT INTO node_commands (id, node_id, vm_id, type, payload, state, created_at)
VALUES ($1::uuid, $2::uuid, NULLIF($3, '')::uuid, $4, $5::jsonb, 'pending', $6::timestamptz))sql";

constexpr const char* kSupersedeCommands = R"sql(
UPDATE node_commands SET state = 'superseded', completed_at = $2::timestamptz,
                         payload = payload - 'userData'
WHERE vm_id = $1::uuid AND state IN ('pending', 'delivered'))sql";

constexpr const char* kLockVm =
    "SELECT state, coalesce(node_id::text, '') FROM vms WHERE id = $1::uuid FOR UPDATE";

constexpr const char* kUpdateState = R"sql(
UPDATE vms SET state = $2, state_reason = $3, updated_at = $4::timestamptz WHERE id = $1::uuid)sql";

constexpr const char* kSelectEvents = R"sql(
SELECT (extract(epoch FROM at) * 1000000)::bigint, coalesce(from_state, ''), to_state, reason
FROM vm_events WHERE vm_id = $1::uuid ORDER BY seq)sql";

constexpr const char* kTakeCommands = R"sql(
UPDATE node_commands SET state = 'delivered', delivered_at = $3::timestamptz,
                         attempts = attempts + 1
WHERE id IN (SELECT id FROM node_commands
             WHERE node_id = $1::uuid
               AND (state = 'pending' OR (state = 'delivered' AND delivered_at < $4::timestamptz))
             ORDER BY seq LIMIT $2 FOR UPDATE SKIP LOCKED)
RETURNING id::text, node_id::text, coalesce(vm_id::text, ''), type, payload::text,
          (extract(epoch FROM created_at) * 1000000)::bigint, attempts, seq)sql";

constexpr const char* kNodesWithCommands = R"sql(
SELECT DISTINCT node_id::text FROM node_commands
WHERE state = 'pending' OR (state = 'delivered' AND delivered_at < $1::timestamptz))sql";

constexpr const char* kLockCommand = R"sql(
SELECT coalesce(vm_id::text, ''), type, state FROM node_commands
WHERE id = $1::uuid AND node_id = $2::uuid FOR UPDATE)sql";

// The create payload's user-data may hold secrets (a template's password): once the node has
// answered, it is needed no more and is not kept.
constexpr const char* kFinishCommand = R"sql(
UPDATE node_commands SET state = $2, completed_at = $3::timestamptz, result = $4,
                         payload = payload - 'userData'
WHERE id = $1::uuid)sql";

constexpr const char* kSetAddresses = R"sql(
UPDATE vms SET addresses = ARRAY(SELECT jsonb_array_elements_text($2::jsonb))
WHERE id = $1::uuid)sql";

constexpr const char* kVmsOnNode = R"sql(
SELECT id::text, state, array_to_json(addresses)::text,
       (extract(epoch FROM updated_at) * 1000000)::bigint
FROM vms WHERE node_id = $1::uuid AND state <> 'deleted' FOR UPDATE)sql";

constexpr const char* kUpsertBootLog = R"sql(
INSERT INTO vm_boot_logs (vm_id, stop_id, captured_at, ran_for_s, log)
VALUES ($1::uuid, $2::uuid, $3::timestamptz, $4, $5)
ON CONFLICT (vm_id) DO UPDATE
SET stop_id = excluded.stop_id, captured_at = excluded.captured_at,
    ran_for_s = excluded.ran_for_s, log = excluded.log
WHERE vm_boot_logs.stop_id <> excluded.stop_id
RETURNING 1)sql";

constexpr const char* kSelectBootLog = R"sql(
SELECT (extract(epoch FROM captured_at) * 1000000)::bigint, ran_for_s, log
FROM vm_boot_logs WHERE vm_id = $1::uuid)sql";

constexpr const char* kOrphans = R"sql(
SELECT vm_id, (extract(epoch FROM first_seen_at) * 1000000)::bigint, destroy_sent
FROM node_orphan_domains WHERE node_id = $1::uuid)sql";
constexpr const char* kInsertOrphan = R"sql(
INSERT INTO node_orphan_domains (node_id, vm_id, first_seen_at)
VALUES ($1::uuid, $2, $3::timestamptz) ON CONFLICT DO NOTHING)sql";
constexpr const char* kOrphanSent = R"sql(
UPDATE node_orphan_domains SET destroy_sent = true WHERE node_id = $1::uuid AND vm_id = $2)sql";
constexpr const char* kForgetOrphans = R"sql(
DELETE FROM node_orphan_domains
WHERE node_id = $1::uuid AND NOT (vm_id = ANY (ARRAY(SELECT jsonb_array_elements_text($2::jsonb)))))sql";

constexpr const char* kSetNodeOffline = R"sql(
UPDATE vms SET node_offline = $2, updated_at = $3::timestamptz
WHERE node_id = ANY (ARRAY(SELECT jsonb_array_elements_text($1::jsonb))::uuid[])
  AND state <> 'deleted' AND node_offline <> $2
RETURNING id::text, state)sql";

std::vector<std::string> JsonStrings(const std::string& text) {
    std::vector<std::string> out;
    for (const auto& v : json::parse(text))
        if (v.is_string()) out.push_back(v.get<std::string>());
    return out;
}

VmState StateFrom(const pqxx::field& f) {
    const auto s = domain::ParseVmState(f.as<std::string>());
    if (!s) throw std::runtime_error("unknown VM state in the database: " + f.as<std::string>());
    return *s;
}

ports::VmRecord VmFromRow(const pqxx::row& r) {
    ports::VmRecord v;
    v.id = r[0].as<std::string>();
    v.owner_wallet = r[1].as<std::string>();
    v.name = r[2].as<std::string>();
    v.node_id = r[3].as<std::string>();
    v.state = StateFrom(r[4]);
    v.state_reason = r[5].as<std::string>();
    auto& q = v.requirements;
    q.cores = r[6].as<std::uint32_t>();
    q.memory_mib = r[7].as<std::uint64_t>();
    q.disk_gib = r[8].as<std::uint64_t>();
    q.tier =
        domain::ParseQualityTier(r[9].as<std::string>()).value_or(domain::QualityTier::kStandard);
    if (const auto gpu = r[10].as<std::string>(); !gpu.empty()) {
        const auto j = json::parse(gpu);
        domain::GpuRequirement g;
        g.count = j.value("count", 1U);
        g.vendor = j.value("vendor", std::string());
        g.model = j.value("model", std::string());
        q.gpu = g;
    }
    q.region = r[11].as<std::string>();
    q.tags = JsonStrings(r[12].as<std::string>());
    q.target_node_id = r[13].as<std::string>();
    q.require_kvm = r[14].as<bool>();
    v.image = r[15].as<std::string>();
    v.ssh_key_ids = JsonStrings(r[16].as<std::string>());
    if (!r[17].is_null()) v.encrypted_password = r[17].as<std::string>();
    v.user_data = r[18].as<std::string>();
    v.points = r[19].as<std::uint64_t>();
    v.gpu_count = r[20].as<std::uint32_t>();
    v.hourly_rate_micro_usdc = r[21].as<std::uint64_t>();
    v.idempotency_key = r[22].as<std::string>();
    v.addresses = JsonStrings(r[23].as<std::string>());
    v.node_offline = r[24].as<bool>();
    v.created_at = FromMicros(r[25].as<long long>());
    v.updated_at = FromMicros(r[26].as<long long>());
    v.template_id = r[27].as<std::string>();
    v.template_params = json::parse(r[28].as<std::string>());
    v.boot_log_kept = r[29].as<bool>();
    return v;
}

domain::NodeCapacity CapacityFromRow(const pqxx::row& r) {
    domain::NodeCapacity n;
    n.node_id = r[0].as<std::string>();
    n.online = r[1].as<bool>();
    n.compute_points = r[2].as<std::uint64_t>();
    n.cpu_cores = r[3].as<std::uint32_t>();
    n.memory_mib = r[4].as<std::uint64_t>();
    n.disk_gib = r[5].as<std::uint64_t>();
    n.reserved_points = r[6].as<std::uint64_t>();
    n.reserved_memory_mib = r[7].as<std::uint64_t>();
    n.reserved_disk_gib = r[8].as<std::uint64_t>();
    auto gpus_in_use = r[9].as<std::uint64_t>();
    for (const auto& g : json::parse(r[10].as<std::string>())) {
        domain::NodeGpu gpu;
        gpu.vendor = g.value("vendor", std::string());
        gpu.model = g.value("model", std::string());
        gpu.allocated = gpus_in_use > 0;
        if (gpus_in_use > 0) --gpus_in_use;
        n.gpus.push_back(std::move(gpu));
    }
    n.region = r[11].as<std::string>();
    n.tags = JsonStrings(r[12].as<std::string>());
    n.kvm_available = r[13].as<bool>();
    n.price_per_point_micro_usdc = r[14].as<std::uint64_t>();
    n.uptime_ratio = std::clamp(r[15].as<double>(), 0.0, 1.0);
    return n;
}

std::optional<ports::VmRecord> SelectVm(pqxx::work& tx, const std::string& where,
                                        const std::string& a) {
    const auto rows = tx.exec_params(std::string(kVmColumns) + where, a);
    if (rows.empty()) return std::nullopt;
    return VmFromRow(rows[0]);
}

void InsertEvent(pqxx::work& tx, const std::string& vm_id, common::TimePoint at,
                 std::optional<VmState> from, VmState to, const std::string& reason) {
    tx.exec_params0(kInsertEvent, vm_id, ToPgTime(at),
                    from ? std::string(domain::ToString(*from)) : std::string(),
                    std::string(domain::ToString(to)), reason);
}

void InsertCommand(pqxx::work& tx, const ports::NodeCommand& c) {
    tx.exec_params0(kInsertCommand, c.id, c.node_id, c.vm_id, c.type, c.payload.dump(),
                    ToPgTime(c.created_at));
}

void MoveVm(pqxx::work& tx, const std::string& vm_id, VmState from, VmState to,
            const std::string& reason, common::TimePoint now) {
    // The table in domain/vm.cpp is the law; a move it refuses is a bug (the transaction fails).
    if (auto st = domain::CheckTransition(from, to); !st && from != to)
        throw std::logic_error(st.error().message);
    tx.exec_params0(kUpdateState, vm_id, std::string(domain::ToString(to)), reason, ToPgTime(now));
    InsertEvent(tx, vm_id, now, from, to, reason);
}

json GpuJson(const domain::VmRequirements& q) {
    if (!q.gpu) return json();
    return json{{"count", q.gpu->count}, {"vendor", q.gpu->vendor}, {"model", q.gpu->model}};
}

// The state a successful command leaves its VM in, and the state the VM must be in for the
// result to apply (a result for a VM that moved on since is stale).
struct CommandEffect {
    VmState expected;
    std::optional<VmState> on_success;
};
std::optional<CommandEffect> EffectOf(const std::string& type) {
    if (type == "create_vm" || type == "start_vm")
        return CommandEffect{VmState::kProvisioning, VmState::kRunning};
    if (type == "stop_vm") return CommandEffect{VmState::kStopping, VmState::kStopped};
    if (type == "reboot_vm") return CommandEffect{VmState::kRunning, std::nullopt};
    if (type == "delete_vm") return CommandEffect{VmState::kDeleting, VmState::kDeleted};
    return std::nullopt;
}

common::Status ToStatus(const Result<bool>& r) {
    if (!r) return r.error();
    return common::Ok();
}

}  // namespace

Result<std::vector<domain::NodeCapacity>> PgVmRepository::SchedulableNodes(
    common::TimePoint uptime_since, common::TimePoint now) {
    using Out = std::vector<domain::NodeCapacity>;
    return InTransaction<Out>(pool_, [&](pqxx::work& tx) -> Result<Out> {
        Out out;
        const auto rows =
            tx.exec_params(kSelectCapacity, ToPgTime(uptime_since), ToPgTime(now),
                           static_cast<long long>(options_.host_reserved_memory_mib), nullptr);
        out.reserve(rows.size());
        for (const auto& r : rows) out.push_back(CapacityFromRow(r));
        return out;
    });
}

Result<ports::VmRecord> PgVmRepository::InsertPlaced(const ports::VmRecord& vm,
                                                     const ports::NodeCommand& create,
                                                     std::size_t max_per_owner,
                                                     common::TimePoint now) {
    return InTransaction<ports::VmRecord>(pool_, [&](pqxx::work& tx) -> Result<ports::VmRecord> {
        // The node row lock serialises every placement on this node, so the sums below
        // cannot change before we commit.
        if (tx.exec_params(kLockNode, vm.node_id).empty())
            return Error::Conflict("node " + vm.node_id + " no longer exists");
        if (!vm.idempotency_key.empty()) {
            const auto rows = tx.exec_params(
                std::string(kVmColumns) + "WHERE owner_wallet = $1 AND idempotency_key = $2",
                vm.owner_wallet, vm.idempotency_key);
            if (!rows.empty()) return VmFromRow(rows[0]);
        }
        // The owner's row lock makes the count and the insert one step per owner.
        if (tx.exec_params(kLockOwner, vm.owner_wallet).empty())
            return Error::NotFound("no user " + vm.owner_wallet);
        const auto owned = tx.exec_params1(kCountOwned, vm.owner_wallet)[0].as<long long>();
        if (owned >= static_cast<long long>(max_per_owner))
            return Error::Unprocessable("you already have " + std::to_string(owned) +
                                        " VMs, the most allowed; delete one first");
        const auto cap =
            tx.exec_params(kSelectCapacity, ToPgTime(now - std::chrono::days{30}), ToPgTime(now),
                           static_cast<long long>(options_.host_reserved_memory_mib), vm.node_id);
        if (cap.empty()) return Error::Conflict("node " + vm.node_id + " no longer exists");
        const auto fit = domain::CheckFit(vm.requirements, CapacityFromRow(cap[0]));
        if (!fit.ok())
            return Error::Conflict("node " + vm.node_id +
                                   " cannot take it any more: " + fit.detail);
        const auto& q = vm.requirements;
        tx.exec_params0(kInsertVm, vm.id, vm.owner_wallet, vm.name, vm.node_id,
                        std::string(domain::ToString(vm.state)), vm.state_reason, q.cores,
                        static_cast<long long>(q.memory_mib), static_cast<long long>(q.disk_gib),
                        std::string(domain::ToString(q.tier)),
                        q.gpu ? GpuJson(q).dump() : std::string(), q.region, json(q.tags).dump(),
                        q.target_node_id, q.require_kvm, vm.image, json(vm.ssh_key_ids).dump(),
                        vm.encrypted_password.value_or(""), vm.user_data,
                        static_cast<long long>(fit.points), vm.gpu_count,
                        static_cast<long long>(vm.hourly_rate_micro_usdc), vm.idempotency_key,
                        ToPgTime(now), vm.template_id, vm.template_params.dump());
        InsertEvent(tx, vm.id, now, std::nullopt, VmState::kScheduling, "requested by its owner");
        InsertEvent(tx, vm.id, now, VmState::kScheduling, VmState::kProvisioning,
                    "placed on node " + vm.node_id + " (" + std::to_string(fit.points) +
                        " compute points); create command queued");
        InsertCommand(tx, create);
        auto stored = SelectVm(tx, "WHERE id = $1::uuid", vm.id);
        if (!stored) return Error::Internal("the VM just inserted is missing");
        return *stored;
    });
}

Result<ports::VmRecord> PgVmRepository::FindByIdempotencyKey(const std::string& owner,
                                                             const std::string& key) {
    return InTransaction<ports::VmRecord>(pool_, [&](pqxx::work& tx) -> Result<ports::VmRecord> {
        const auto rows = tx.exec_params(
            std::string(kVmColumns) + "WHERE owner_wallet = $1 AND idempotency_key = $2", owner,
            key);
        if (rows.empty()) return Error::NotFound("no VM with this idempotency key");
        return VmFromRow(rows[0]);
    });
}

Result<ports::VmRecord> PgVmRepository::Get(const std::string& owner, const std::string& vm_id) {
    return InTransaction<ports::VmRecord>(pool_, [&](pqxx::work& tx) -> Result<ports::VmRecord> {
        const auto rows = tx.exec_params(
            std::string(kVmColumns) + "WHERE id = $1::uuid AND owner_wallet = $2", vm_id, owner);
        if (rows.empty()) return Error::NotFound("no VM with id '" + vm_id + "'");
        return VmFromRow(rows[0]);
    });
}

Result<ports::VmRecord> PgVmRepository::GetAny(const std::string& vm_id) {
    return InTransaction<ports::VmRecord>(pool_, [&](pqxx::work& tx) -> Result<ports::VmRecord> {
        auto vm = SelectVm(tx, "WHERE id = $1::uuid", vm_id);
        if (!vm) return Error::NotFound("no VM with id '" + vm_id + "'");
        return *vm;
    });
}

Result<std::vector<ports::VmRecord>> PgVmRepository::List(const ports::VmListQuery& query) {
    using Out = std::vector<ports::VmRecord>;
    return InTransaction<Out>(pool_, [&](pqxx::work& tx) -> Result<Out> {
        Out out;
        const std::string where =
            std::string("WHERE owner_wallet = $1 AND ($2 = '' OR id > NULLIF($2, '')::uuid)") +
            (query.include_deleted ? "" : " AND state <> 'deleted'") + " ORDER BY id LIMIT $3";
        for (const auto& r : tx.exec_params(std::string(kVmColumns) + where, query.owner_wallet,
                                            query.after_id, static_cast<long long>(query.limit)))
            out.push_back(VmFromRow(r));
        return out;
    });
}

Result<std::vector<ports::VmEvent>> PgVmRepository::Events(const std::string& vm_id) {
    using Out = std::vector<ports::VmEvent>;
    return InTransaction<Out>(pool_, [&](pqxx::work& tx) -> Result<Out> {
        Out out;
        for (const auto& r : tx.exec_params(kSelectEvents, vm_id)) {
            ports::VmEvent e;
            e.at = FromMicros(r[0].as<long long>());
            if (const auto from = r[1].as<std::string>(); !from.empty())
                e.from = domain::ParseVmState(from);
            e.to = StateFrom(r[2]);
            e.reason = r[3].as<std::string>();
            out.push_back(std::move(e));
        }
        return out;
    });
}

Result<ports::VmRecord> PgVmRepository::Transition(const std::string& vm_id,
                                                   const ports::VmTransition& t,
                                                   common::TimePoint now) {
    return InTransaction<ports::VmRecord>(pool_, [&](pqxx::work& tx) -> Result<ports::VmRecord> {
        const auto locked = tx.exec_params(kLockVm, vm_id);
        if (locked.empty()) return Error::NotFound("no VM with id '" + vm_id + "'");
        const auto current = StateFrom(locked[0][0]);
        if (std::find(t.expected_from.begin(), t.expected_from.end(), current) ==
            t.expected_from.end())
            return Error::Conflict("the VM is " + std::string(domain::ToString(current)) +
                                   " now; reload and try again");
        if (current != t.to) {
            if (auto st = domain::CheckTransition(current, t.to); !st) return st.error();
            MoveVm(tx, vm_id, current, t.to, t.reason, now);
        } else {
            tx.exec_params0(kUpdateState, vm_id, std::string(domain::ToString(current)), t.reason,
                            ToPgTime(now));
            InsertEvent(tx, vm_id, now, current, current, t.reason);
        }
        if (t.command) {
            tx.exec_params0(kSupersedeCommands, vm_id, ToPgTime(now));
            InsertCommand(tx, *t.command);
        }
        auto stored = SelectVm(tx, "WHERE id = $1::uuid", vm_id);
        if (!stored) return Error::Internal("the VM just updated is missing");
        return *stored;
    });
}

Result<std::vector<ports::NodeCommand>> PgVmRepository::TakeCommands(
    const std::string& node_id, std::size_t limit, common::Duration redeliver_after,
    common::TimePoint now) {
    using Out = std::vector<ports::NodeCommand>;
    return InTransaction<Out>(pool_, [&](pqxx::work& tx) -> Result<Out> {
        std::vector<std::pair<long long, ports::NodeCommand>> taken;
        for (const auto& r : tx.exec_params(kTakeCommands, node_id, static_cast<long long>(limit),
                                            ToPgTime(now), ToPgTime(now - redeliver_after))) {
            ports::NodeCommand c;
            c.id = r[0].as<std::string>();
            c.node_id = r[1].as<std::string>();
            c.vm_id = r[2].as<std::string>();
            c.type = r[3].as<std::string>();
            c.payload = json::parse(r[4].as<std::string>());
            c.created_at = FromMicros(r[5].as<long long>());
            c.attempts = r[6].as<int>();
            taken.emplace_back(r[7].as<long long>(), std::move(c));
        }
        // RETURNING has no order; the agent applies them in the order they were issued.
        std::sort(taken.begin(), taken.end(),
                  [](const auto& a, const auto& b) { return a.first < b.first; });
        Out out;
        out.reserve(taken.size());
        for (auto& [seq, c] : taken) out.push_back(std::move(c));
        return out;
    });
}

Result<std::vector<std::string>> PgVmRepository::NodesWithCommands(common::Duration redeliver_after,
                                                                   common::TimePoint now) {
    using Out = std::vector<std::string>;
    return InTransaction<Out>(pool_, [&](pqxx::work& tx) -> Result<Out> {
        Out out;
        for (const auto& r : tx.exec_params(kNodesWithCommands, ToPgTime(now - redeliver_after)))
            out.push_back(r[0].as<std::string>());
        return out;
    });
}

common::Status PgVmRepository::CompleteCommand(const std::string& node_id,
                                               const std::string& command_id, bool success,
                                               const std::string& message,
                                               const std::vector<std::string>& addresses,
                                               common::TimePoint now) {
    return ToStatus(InTransaction<bool>(pool_, [&](pqxx::work& tx) -> Result<bool> {
        const auto rows = tx.exec_params(kLockCommand, command_id, node_id);
        if (rows.empty()) return Error::NotFound("no command " + command_id + " for this node");
        const auto vm_id = rows[0][0].as<std::string>();
        const auto type = rows[0][1].as<std::string>();
        const auto state = rows[0][2].as<std::string>();
        if (state != "pending" && state != "delivered") return true;  // a repeated result
        tx.exec_params0(kFinishCommand, command_id, success ? "succeeded" : "failed", ToPgTime(now),
                        message);
        const auto effect = EffectOf(type);
        if (vm_id.empty() || !effect) return true;
        const auto locked = tx.exec_params(kLockVm, vm_id);
        if (locked.empty()) return true;
        const auto current = StateFrom(locked[0][0]);
        if (current != effect->expected) return true;  // the VM moved on; this result is stale
        if (!success) {
            MoveVm(tx, vm_id, current, VmState::kFailed,
                   "the node could not " + type.substr(0, type.find('_')) + " it: " + message, now);
            return true;
        }
        if (!addresses.empty()) tx.exec_params0(kSetAddresses, vm_id, json(addresses).dump());
        if (effect->on_success)
            MoveVm(tx, vm_id, current, *effect->on_success,
                   message.empty() ? "confirmed by the node" : message, now);
        else
            InsertEvent(tx, vm_id, now, current, current, "rebooted by the node");
        return true;
    }));
}

Result<ports::ReconcileOutcome> PgVmRepository::Reconcile(
    const std::string& node_id, const std::vector<ports::ReportedDomain>& domains,
    common::Duration settle_time, common::Duration orphan_grace, common::TimePoint now) {
    return InTransaction<
        ports::ReconcileOutcome>(pool_, [&](pqxx::work& tx) -> Result<ports::ReconcileOutcome> {
        ports::ReconcileOutcome out;
        std::unordered_map<std::string, const ports::ReportedDomain*> reported;
        for (const auto& d : domains) reported[d.vm_id] = &d;
        std::unordered_set<std::string> owned;  // domains a live VM of ours accounts for
        const auto settled_before = now - settle_time;
        for (const auto& r : tx.exec_params(kVmsOnNode, node_id)) {
            const auto vm_id = r[0].as<std::string>();
            const auto state = StateFrom(r[1]);
            const auto updated = FromMicros(r[3].as<long long>());
            const auto it = reported.find(vm_id);
            if (state != VmState::kFailed) owned.insert(vm_id);
            if (state == VmState::kFailed || state == VmState::kDeleting) continue;
            const bool settled = updated < settled_before;
            if (it == reported.end()) {
                if (settled && state != VmState::kProvisioning) {
                    MoveVm(tx, vm_id, state, VmState::kFailed,
                           "the node no longer has this VM's domain", now);
                    out.lost.push_back(vm_id);
                }
                continue;
            }
            const auto& d = *it->second;
            if (json(d.addresses).dump() != r[2].as<std::string>() && !d.addresses.empty())
                tx.exec_params0(kSetAddresses, vm_id, json(d.addresses).dump());
            if (d.stopped_by_itself) {
                // Kept whatever the VM's state: its owner wants to know why it went down. The
                // same stop sent again (our answer to the agent was lost) changes nothing.
                const auto& stop = *d.stopped_by_itself;
                const auto kept = tx.exec_params(
                    kUpsertBootLog, vm_id, stop.id, ToPgTime(now),
                    stop.ran_for_s
                        ? std::optional<long long>(static_cast<long long>(*stop.ran_for_s))
                        : std::nullopt,
                    stop.boot_log);
                if (kept.empty()) continue;
                const auto reason = domain::GuestStopReason(stop.ran_for_s);
                if (state == VmState::kRunning) {
                    MoveVm(tx, vm_id, state, VmState::kStopped, reason, now);
                    out.state_fixed.push_back(vm_id);
                } else {
                    InsertEvent(tx, vm_id, now, state, state, reason);
                }
                continue;
            }
            if (!settled) continue;
            if (state == VmState::kRunning && d.state == "stopped") {
                MoveVm(tx, vm_id, state, VmState::kStopped, "the VM stopped on its node", now);
                out.state_fixed.push_back(vm_id);
            } else if (state == VmState::kStopped && d.state == "running") {
                // Only the owner starts a VM; the node is told to stop it again.
                ports::NodeCommand c;
                c.id = common::NewUuid();
                c.node_id = node_id;
                c.vm_id = vm_id;
                c.type = "stop_vm";
                c.payload = json{{"vmId", vm_id}, {"graceSeconds", 30}};
                c.created_at = now;
                InsertEvent(tx, vm_id, now, state, state,
                            "running on its node although stopped; stopping it again");
                tx.exec_params0(kSupersedeCommands, vm_id, ToPgTime(now));
                InsertCommand(tx, c);
                out.state_fixed.push_back(vm_id);
            }
        }
        json reported_ids = json::array();
        std::unordered_map<std::string, std::pair<common::TimePoint, bool>> orphans;
        for (const auto& r : tx.exec_params(kOrphans, node_id))
            orphans[r[0].as<std::string>()] = {FromMicros(r[1].as<long long>()), r[2].as<bool>()};
        for (const auto& d : domains) {
            reported_ids.push_back(d.vm_id);
            if (owned.contains(d.vm_id)) continue;
            out.unknown.push_back(d.vm_id);
            const auto o = orphans.find(d.vm_id);
            if (o == orphans.end()) {
                tx.exec_params0(kInsertOrphan, node_id, d.vm_id, ToPgTime(now));
                continue;
            }
            if (o->second.second || o->second.first > now - orphan_grace) continue;
            ports::NodeCommand c;
            c.id = common::NewUuid();
            c.node_id = node_id;
            c.type = "delete_vm";
            c.payload = json{{"vmId", d.vm_id}, {"reason", "no VM of this platform owns it"}};
            c.created_at = now;
            InsertCommand(tx, c);
            tx.exec_params0(kOrphanSent, node_id, d.vm_id);
            out.destroying.push_back(d.vm_id);
        }
        tx.exec_params0(kForgetOrphans, node_id, reported_ids.dump());
        return out;
    });
}

Result<ports::BootLogRecord> PgVmRepository::BootLog(const std::string& vm_id) {
    return InTransaction<ports::BootLogRecord>(
        pool_, [&](pqxx::work& tx) -> Result<ports::BootLogRecord> {
            const auto rows = tx.exec_params(kSelectBootLog, vm_id);
            if (rows.empty())
                return Error::NotFound("no boot log is kept for VM " + vm_id +
                                       ": its guest has not stopped by itself");
            ports::BootLogRecord record;
            record.vm_id = vm_id;
            record.captured_at = FromMicros(rows[0][0].as<long long>());
            if (!rows[0][1].is_null())
                record.ran_for_s = static_cast<std::uint64_t>(rows[0][1].as<long long>());
            record.text = rows[0][2].as<std::string>();
            return record;
        });
}

common::Status PgVmRepository::SetNodeOffline(const std::vector<std::string>& node_ids,
                                              bool offline, common::TimePoint now) {
    return ToStatus(InTransaction<bool>(pool_, [&](pqxx::work& tx) -> Result<bool> {
        const auto rows =
            tx.exec_params(kSetNodeOffline, json(node_ids).dump(), offline, ToPgTime(now));
        for (const auto& r : rows) {
            const auto state = StateFrom(r[1]);
            InsertEvent(tx, r[0].as<std::string>(), now, state, state,
                        offline ? "its node went offline" : "its node is back online");
        }
        return true;
    }));
}

}  // namespace decloud::orchestrator::adapters::pg
