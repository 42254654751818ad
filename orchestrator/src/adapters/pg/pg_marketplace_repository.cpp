#include "orchestrator/adapters/pg/pg_marketplace_repository.hpp"

#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include <algorithm>
#include <cctype>
#include <type_traits>

#include "decloud/common/ids.hpp"
#include "pg_support.hpp"

namespace decloud::orchestrator::adapters::pg {

using common::Error;
using common::Result;
using nlohmann::json;

namespace {

constexpr long long kMarketRefreshLockId = 0x6465636c6f7507;

// Rebuilds search rows from the source tables. $1 uptime window start, $2 now, $3 memory kept
// for the host (MiB), $4 a node id or NULL for every node. States that hold capacity are those
// of domain::HoldsCapacity, spelt as the partial index vms_node_active spells them.
constexpr const char* kRefreshRows = R"sql(
WITH reserved AS (
    SELECT node_id, sum(points)::bigint AS points, sum(memory_mib)::bigint AS memory_mib,
           sum(disk_gib)::bigint AS disk_gib, sum(gpu_count)::bigint AS gpus
    FROM vms WHERE node_id IS NOT NULL AND state NOT IN ('deleted', 'failed', 'pending')
      AND (NULLIF($4, '')::uuid IS NULL OR node_id = NULLIF($4, '')::uuid)
    GROUP BY node_id),
hosted AS (
    SELECT node_id, count(*)::bigint AS hosted,
           (count(*) FILTER (WHERE state = 'deleted'))::bigint AS completed
    FROM vms WHERE node_id IS NOT NULL AND (NULLIF($4, '')::uuid IS NULL OR node_id = NULLIF($4, '')::uuid)
    GROUP BY node_id),
up AS (
    SELECT node_id,
           sum(extract(epoch FROM least(coalesce(ended_at, $2::timestamptz), $2::timestamptz)
                                  - greatest(started_at, $1::timestamptz)))::double precision AS secs
    FROM node_availability
    WHERE coalesce(ended_at, $2::timestamptz) > $1::timestamptz
      AND (NULLIF($4, '')::uuid IS NULL OR node_id = NULLIF($4, '')::uuid)
    GROUP BY node_id),
src AS (
    SELECT n.id, n.region,
           ARRAY(SELECT DISTINCT t FROM unnest(n.tags || coalesce(p.tags, '{}')) AS t ORDER BY t)
               AS tags,
           n.price_per_point_micro_usdc AS price, n.compute_points::bigint AS points,
           coalesce((n.resources->>'cpuCores')::int, 0) AS cores,
           greatest(coalesce((n.resources->>'memoryBytes')::bigint, 0) / 1048576 - $3::bigint, 0)
               AS memory_mib,
           coalesce((n.resources->>'storageFreeBytes')::bigint, 0) / 1073741824 AS disk_gib,
           jsonb_array_length(coalesce(n.resources->'gpus', '[]'::jsonb)) AS gpus,
           ARRAY(SELECT DISTINCT lower(g->>'vendor')
                 FROM jsonb_array_elements(coalesce(n.resources->'gpus', '[]'::jsonb)) AS g
                 WHERE coalesce(g->>'vendor', '') <> '') AS vendors,
           coalesce((SELECT string_agg(lower(coalesce(g->>'model', '')), ' | ')
                     FROM jsonb_array_elements(coalesce(n.resources->'gpus', '[]'::jsonb)) AS g),
                    '') AS models,
           n.behind_cgnat,
           coalesce(r.points, 0) AS r_points, coalesce(r.memory_mib, 0) AS r_memory,
           coalesce(r.disk_gib, 0) AS r_disk, coalesce(r.gpus, 0) AS r_gpus,
           coalesce(h.hosted, 0) AS hosted, coalesce(h.completed, 0) AS completed,
           coalesce(up.secs, 0) / greatest(extract(epoch FROM $2::timestamptz
                                     - greatest(n.registered_at, $1::timestamptz)), 1) AS ratio
    FROM nodes n
    LEFT JOIN node_profiles p ON p.node_id = n.id
    LEFT JOIN reserved r ON r.node_id = n.id
    LEFT JOIN hosted h ON h.node_id = n.id
    LEFT JOIN up ON up.node_id = n.id
    WHERE NULLIF($4, '')::uuid IS NULL OR n.id = NULLIF($4, '')::uuid)
INSERT INTO node_market (node_id, region, tags, price_per_point, compute_points, cpu_cores,
                         memory_mib, disk_gib, gpu_count, gpu_vendors, gpu_models, behind_cgnat,
                         free_points, free_memory_mib, free_disk_gib, free_gpus, uptime_bp,
                         vms_hosted, vms_completed, refreshed_at)
SELECT id, region, tags, price, points, cores, memory_mib, disk_gib, gpus, vendors, models,
       behind_cgnat, greatest(points - r_points, 0), greatest(memory_mib - r_memory, 0),
       greatest(disk_gib - r_disk, 0), greatest(gpus - r_gpus, 0),
       least(10000, greatest(0, floor(ratio * 10000 + 1e-9)))::int, hosted, completed,
       $2::timestamptz
FROM src
ON CONFLICT (node_id) DO UPDATE SET
    region = EXCLUDED.region, tags = EXCLUDED.tags, price_per_point = EXCLUDED.price_per_point,
    compute_points = EXCLUDED.compute_points, cpu_cores = EXCLUDED.cpu_cores,
    memory_mib = EXCLUDED.memory_mib, disk_gib = EXCLUDED.disk_gib,
    gpu_count = EXCLUDED.gpu_count, gpu_vendors = EXCLUDED.gpu_vendors,
    gpu_models = EXCLUDED.gpu_models, behind_cgnat = EXCLUDED.behind_cgnat,
    free_points = EXCLUDED.free_points, free_memory_mib = EXCLUDED.free_memory_mib,
    free_disk_gib = EXCLUDED.free_disk_gib, free_gpus = EXCLUDED.free_gpus,
    uptime_bp = EXCLUDED.uptime_bp, vms_hosted = EXCLUDED.vms_hosted,
    vms_completed = EXCLUDED.vms_completed, refreshed_at = EXCLUDED.refreshed_at)sql";

// Re-marks the featured nodes: $1 minimum uptime (basis points), $2 how many.
constexpr const char* kMarkFeatured = R"sql(
WITH top AS (
    SELECT node_id FROM node_market WHERE uptime_bp >= $1
    ORDER BY uptime_bp DESC, vms_completed DESC, node_id LIMIT $2)
UPDATE node_market m SET featured = (m.node_id IN (SELECT node_id FROM top))
WHERE m.featured IS DISTINCT FROM (m.node_id IN (SELECT node_id FROM top)))sql";

constexpr const char* kCountFeatured = "SELECT count(*) FROM node_market WHERE featured";

// What every read returns for a page of search rows `pg` (already limited): the live status
// and the capacity held right now, from the node row and its active VMs, and the reviews.
constexpr const char* kPageColumns = R"sql(
SELECT pg.node_id::text, coalesce(p.display_name, ''), coalesce(p.description, ''), pg.region,
       array_to_json(pg.tags)::text, pg.price_per_point, pg.compute_points, pg.cpu_cores,
       pg.memory_mib, pg.disk_gib, pg.gpu_count, coalesce(n.resources->'gpus', '[]'::jsonb)::text,
       pg.behind_cgnat, pg.uptime_bp, pg.vms_hosted, pg.vms_completed, pg.featured,
       n.status = 'online', (extract(epoch FROM n.last_heartbeat_at) * 1000000)::bigint,
       greatest(pg.compute_points - coalesce(r.points, 0), 0),
       greatest(pg.memory_mib - coalesce(r.memory_mib, 0), 0),
       greatest(pg.disk_gib - coalesce(r.disk_gib, 0), 0),
       greatest(pg.gpu_count - coalesce(r.gpus, 0), 0),
       coalesce(rv.n, 0), coalesce(rv.avg, 0),
       (extract(epoch FROM pg.refreshed_at) * 1000000)::bigint, pg.sort_key
FROM page pg
JOIN nodes n ON n.id = pg.node_id
LEFT JOIN node_profiles p ON p.node_id = pg.node_id
LEFT JOIN LATERAL (
    SELECT sum(v.points)::bigint AS points, sum(v.memory_mib)::bigint AS memory_mib,
           sum(v.disk_gib)::bigint AS disk_gib, sum(v.gpu_count)::bigint AS gpus
    FROM vms v WHERE v.node_id = pg.node_id AND v.state NOT IN ('deleted', 'failed', 'pending')) r
    ON true
LEFT JOIN LATERAL (
    SELECT count(*)::bigint AS n, avg(rating)::double precision AS avg
    FROM node_reviews WHERE node_id = pg.node_id) rv ON true
ORDER BY pg.ord)sql";

// The search. Parameters ('' or '{}' = no filter): $1 tags all (text[]), $2 tags any, $3 region,
// $4 min price, $5 max price, $6 has GPU, $7 GPU vendor (lowercase), $8 GPU model LIKE pattern,
// $9 min GPU count, $10 min uptime bp, $11 min free raw points, $12 min free memory, $13 min free
// disk, $14 behind CGNAT, $15 featured only, $16 cursor key, $17 cursor id, $18 limit.
// Unnamed statements are planned with their values, so the unused conditions fold away.
constexpr const char* kSearchWhere = R"sql(
WHERE ($1::text[] = '{}' OR m.tags @> $1::text[])
  AND ($2::text[] = '{}' OR m.tags && $2::text[])
  AND ($3 = '' OR m.region = $3)
  AND ($4 = '' OR m.price_per_point >= NULLIF($4, '')::bigint)
  AND ($5 = '' OR m.price_per_point <= NULLIF($5, '')::bigint)
  AND ($6 = '' OR (m.gpu_count > 0) = NULLIF($6, '')::boolean)
  AND ($7 = '' OR (m.gpu_count > 0 AND m.gpu_vendors @> ARRAY[$7]::text[]))
  AND ($8 = '' OR (m.gpu_count > 0 AND m.gpu_models LIKE $8))
  AND ($9 = '' OR m.gpu_count >= NULLIF($9, '')::int)
  AND ($10 = '' OR m.uptime_bp >= NULLIF($10, '')::int)
  AND ($11 = '' OR m.free_points >= NULLIF($11, '')::bigint)
  AND ($12 = '' OR m.free_memory_mib >= NULLIF($12, '')::bigint)
  AND ($13 = '' OR m.free_disk_gib >= NULLIF($13, '')::bigint)
  AND ($14 = '' OR m.behind_cgnat = NULLIF($14, '')::boolean)
  AND (NOT $15::boolean OR m.featured)
)sql";

const char* SortColumn(domain::MarketSort sort) {
    switch (sort) {
        case domain::MarketSort::kPrice:
            return "price_per_point";
        case domain::MarketSort::kUptime:
            return "uptime_bp";
        case domain::MarketSort::kFreeCapacity:
            return "free_points";
        case domain::MarketSort::kComputePoints:
            return "compute_points";
    }
    return "price_per_point";
}

std::string TextArray(const std::vector<std::string>& items) {
    // Tags are validated to [A-Za-z0-9-_.:], which need no quoting inside an array literal,
    // but quote anyway so the literal stays right if that syntax ever widens.
    std::string out = "{";
    for (std::size_t i = 0; i < items.size(); ++i) {
        if (i) out += ',';
        out += '"';
        for (const char c : items[i]) {
            if (c == '"' || c == '\\') out += '\\';
            out += c;
        }
        out += '"';
    }
    return out + "}";
}

std::string LikePattern(std::string_view needle) {
    std::string out = "%";
    for (const char c : needle) {
        if (c == '%' || c == '_' || c == '\\') out += '\\';
        out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return out + "%";
}

template <class T>
std::string OptText(const std::optional<T>& v) {
    if (!v) return {};
    if constexpr (std::is_same_v<T, bool>) return *v ? "true" : "false";
    return std::to_string(*v);
}

ports::MarketNode MarketNodeFromRow(const pqxx::row& row) {
    ports::MarketNode m;
    m.node_id = row[0].as<std::string>();
    m.display_name = row[1].as<std::string>();
    m.description = row[2].as<std::string>();
    m.region = row[3].as<std::string>();
    for (const auto& t : json::parse(row[4].as<std::string>()))
        m.tags.push_back(t.get<std::string>());
    m.price_per_point = row[5].as<std::uint64_t>();
    m.compute_points = row[6].as<std::uint64_t>();
    m.cpu_cores = row[7].as<std::uint32_t>();
    m.memory_mib = row[8].as<std::uint64_t>();
    m.disk_gib = row[9].as<std::uint64_t>();
    m.gpu_count = row[10].as<std::uint32_t>();
    for (const auto& g : json::parse(row[11].as<std::string>())) {
        if (!g.is_object()) continue;
        m.gpu_vendors.push_back(g.value("vendor", ""));
        m.gpu_models.push_back(g.value("model", ""));
    }
    m.behind_cgnat = row[12].as<bool>();
    m.uptime_bp = row[13].as<std::uint32_t>();
    m.vms_hosted = row[14].as<std::uint64_t>();
    m.vms_completed = row[15].as<std::uint64_t>();
    m.featured = row[16].as<bool>();
    m.online = row[17].as<bool>();
    if (!row[18].is_null()) m.last_heartbeat_at = FromMicros(row[18].as<long long>());
    m.free_points = row[19].as<std::uint64_t>();
    m.free_memory_mib = row[20].as<std::uint64_t>();
    m.free_disk_gib = row[21].as<std::uint64_t>();
    m.free_gpus = row[22].as<std::uint32_t>();
    m.review_count = row[23].as<std::uint64_t>();
    m.average_rating = row[24].as<double>();
    m.refreshed_at = FromMicros(row[25].as<long long>());
    return m;
}

std::vector<ports::MarketNode> NodesFrom(const pqxx::result& rows) {
    std::vector<ports::MarketNode> out;
    out.reserve(rows.size());
    for (const auto& row : rows) out.push_back(MarketNodeFromRow(row));
    return out;
}

Result<ports::Review> ReviewFromRow(const pqxx::row& row) {
    ports::Review r;
    r.vm_id = row[0].as<std::string>();
    r.node_id = row[1].as<std::string>();
    r.owner_wallet = row[2].as<std::string>();
    r.rating = row[3].as<int>();
    r.text = row[4].as<std::string>();
    r.created_at = FromMicros(row[5].as<long long>());
    return r;
}

constexpr const char* kReviewColumns = R"sql(
SELECT vm_id::text, node_id::text, owner_wallet, rating, body,
       (extract(epoch FROM created_at) * 1000000)::bigint
FROM node_reviews )sql";

}  // namespace

Result<ports::RefreshOutcome> PgMarketplaceRepository::Refresh(
    const std::optional<std::string>& node_id, common::TimePoint uptime_since,
    common::TimePoint now, const domain::FeaturedRule& rule) {
    if (node_id && !common::IsUuid(*node_id))
        return Error::NotFound("no node with id '" + *node_id + "'");
    return InTransaction<ports::RefreshOutcome>(
        pool_, [&](pqxx::work& tx) -> Result<ports::RefreshOutcome> {
            ports::RefreshOutcome out;
            if (!node_id) {
                // One replica refreshes at a time; the others have nothing to add.
                if (!tx.exec_params1("SELECT pg_try_advisory_xact_lock($1)",
                                     kMarketRefreshLockId)[0]
                         .as<bool>())
                    return out;
            }
            const auto rows =
                tx.exec_params(kRefreshRows, ToPgTime(uptime_since), ToPgTime(now),
                               static_cast<long long>(options_.host_reserved_memory_mib),
                               node_id.value_or(std::string()));
            out.nodes = static_cast<std::size_t>(rows.affected_rows());
            if (!node_id)
                tx.exec_params(kMarkFeatured, static_cast<int>(rule.min_uptime_bp),
                               static_cast<long long>(rule.count));
            out.featured = tx.exec1(kCountFeatured)[0].as<std::size_t>();
            return out;
        });
}

Result<ports::MarketPage> PgMarketplaceRepository::Search(
    const domain::MarketFilter& f, const std::optional<domain::MarketCursor>& after) {
    const std::string column = SortColumn(f.sort);
    const std::string cmp = f.descending ? "<" : ">";
    const std::string dir = f.descending ? " DESC" : " ASC";
    const std::string sql = "WITH page AS (SELECT m.*, m." + column +
                            "::bigint AS sort_key, row_number() OVER (ORDER BY m." + column + dir +
                            ", m.node_id" + dir +
                            ") AS ord"
                            " FROM (SELECT m.* FROM node_market m " +
                            kSearchWhere + "  AND ($16 = '' OR (m." + column + ", m.node_id) " +
                            cmp +
                            " (NULLIF($16, '')::bigint, $17::uuid))"
                            " ORDER BY m." +
                            column + dir + ", m.node_id" + dir + " LIMIT $18) m) " + kPageColumns;
    const std::int64_t min_raw_points =
        f.min_free_points
            ? static_cast<std::int64_t>(domain::RawPointsFor(*f.min_free_points, f.tier))
            : 0;
    std::string gpu_vendor = f.gpu_vendor;
    std::transform(gpu_vendor.begin(), gpu_vendor.end(), gpu_vendor.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return InTransaction<ports::MarketPage>(
        pool_, [&](pqxx::work& tx) -> Result<ports::MarketPage> {
            const auto rows = tx.exec_params(
                sql, TextArray(f.tags_all), TextArray(f.tags_any), f.region, OptText(f.min_price),
                OptText(f.max_price), OptText(f.has_gpu), gpu_vendor,
                f.gpu_model.empty() ? std::string() : LikePattern(f.gpu_model),
                OptText(f.min_gpu_count), OptText(f.min_uptime_bp),
                f.min_free_points ? std::to_string(min_raw_points) : std::string(),
                OptText(f.min_free_memory_mib), OptText(f.min_free_disk_gib),
                OptText(f.behind_cgnat), f.featured_only,
                after ? std::to_string(after->key) : std::string(),
                after ? after->node_id : std::string("00000000-0000-0000-0000-000000000000"),
                static_cast<long long>(f.limit + 1));
            ports::MarketPage page;
            page.nodes = NodesFrom(rows);
            if (page.nodes.size() > f.limit) {
                page.nodes.resize(f.limit);
                const auto& last = rows[static_cast<pqxx::result::size_type>(f.limit - 1)];
                page.next = domain::MarketCursor{f.sort, f.descending, last[26].as<std::int64_t>(),
                                                 last[0].as<std::string>(), domain::QueryHash(f)};
            }
            return page;
        });
}

Result<std::vector<ports::MarketNode>> PgMarketplaceRepository::Featured(std::size_t limit) {
    const std::string sql =
        "WITH page AS (SELECT m.*, m.uptime_bp::bigint AS sort_key, row_number() OVER (ORDER BY"
        " m.uptime_bp DESC, m.vms_completed DESC, m.node_id) AS ord"
        " FROM (SELECT * FROM node_market WHERE featured"
        " ORDER BY uptime_bp DESC, vms_completed DESC, node_id LIMIT $1) m) " +
        std::string(kPageColumns);
    return InTransaction<std::vector<ports::MarketNode>>(
        pool_, [&](pqxx::work& tx) -> Result<std::vector<ports::MarketNode>> {
            return NodesFrom(tx.exec_params(sql, static_cast<long long>(limit)));
        });
}

Result<ports::MarketNode> PgMarketplaceRepository::Get(const std::string& node_id) {
    if (!common::IsUuid(node_id)) return Error::NotFound("no node with id '" + node_id + "'");
    const std::string sql =
        "WITH page AS (SELECT m.*, 0::bigint AS sort_key, 1 AS ord FROM node_market m"
        " WHERE m.node_id = $1::uuid) " +
        std::string(kPageColumns);
    return InTransaction<ports::MarketNode>(
        pool_, [&](pqxx::work& tx) -> Result<ports::MarketNode> {
            const auto rows = tx.exec_params(sql, node_id);
            if (rows.empty()) return Error::NotFound("no node with id '" + node_id + "'");
            return MarketNodeFromRow(rows[0]);
        });
}

Result<std::string> PgMarketplaceRepository::OperatorOf(const std::string& node_id) {
    if (!common::IsUuid(node_id)) return Error::NotFound("no node with id '" + node_id + "'");
    return InTransaction<std::string>(pool_, [&](pqxx::work& tx) -> Result<std::string> {
        const auto rows =
            tx.exec_params("SELECT operator_wallet FROM nodes WHERE id = $1::uuid", node_id);
        if (rows.empty()) return Error::NotFound("no node with id '" + node_id + "'");
        return rows[0][0].as<std::string>();
    });
}

common::Status PgMarketplaceRepository::SaveProfile(const std::string& node_id,
                                                    const domain::NodeProfile& profile,
                                                    common::TimePoint uptime_since,
                                                    common::TimePoint now) {
    if (!common::IsUuid(node_id)) return Error::NotFound("no node with id '" + node_id + "'");
    auto r = InTransaction<bool>(pool_, [&](pqxx::work& tx) -> Result<bool> {
        const auto locked =
            tx.exec_params("SELECT 1 FROM nodes WHERE id = $1::uuid FOR NO KEY UPDATE", node_id);
        if (locked.empty()) return Error::NotFound("no node with id '" + node_id + "'");
        tx.exec_params(R"sql(
INSERT INTO node_profiles (node_id, display_name, description, tags, updated_at,
                           price_per_point_micro_usdc)
VALUES ($1::uuid, $2, $3, $4::text[], $5::timestamptz, $6)
ON CONFLICT (node_id) DO UPDATE SET display_name = EXCLUDED.display_name,
    description = EXCLUDED.description, tags = EXCLUDED.tags, updated_at = EXCLUDED.updated_at,
    price_per_point_micro_usdc = coalesce(EXCLUDED.price_per_point_micro_usdc,
                                          node_profiles.price_per_point_micro_usdc))sql",
                       node_id, profile.display_name, profile.description, TextArray(profile.tags),
                       ToPgTime(now),
                       profile.price_per_point_micro_usdc
                           ? std::optional<long long>(
                                 static_cast<long long>(*profile.price_per_point_micro_usdc))
                           : std::nullopt);
        if (profile.price_per_point_micro_usdc)
            tx.exec_params("UPDATE nodes SET price_per_point_micro_usdc = $2 WHERE id = $1::uuid",
                           node_id, static_cast<long long>(*profile.price_per_point_micro_usdc));
        tx.exec_params(kRefreshRows, ToPgTime(uptime_since), ToPgTime(now),
                       static_cast<long long>(options_.host_reserved_memory_mib), node_id);
        return true;
    });
    if (!r) return r.error();
    return common::Ok();
}

Result<ports::Review> PgMarketplaceRepository::AddReview(const std::string& owner,
                                                         const std::string& vm_id, int rating,
                                                         const std::string& text,
                                                         common::TimePoint now) {
    const auto not_found = [&] { return Error::NotFound("no VM with id '" + vm_id + "'"); };
    if (!common::IsUuid(vm_id)) return not_found();
    return InTransaction<ports::Review>(pool_, [&](pqxx::work& tx) -> Result<ports::Review> {
        // The row lock makes concurrent reviews of one VM queue up; the second sees the first.
        const auto vm = tx.exec_params(
            "SELECT owner_wallet, state, coalesce(node_id::text, '') FROM vms WHERE id = $1::uuid "
            "FOR UPDATE",
            vm_id);
        if (vm.empty() || vm[0][0].as<std::string>() != owner) return not_found();
        const auto state = vm[0][1].as<std::string>();
        if (state != "deleted" && state != "failed")
            return Error::Conflict("the VM is " + state +
                                   "; a review is possible once it has ended (deleted)");
        const auto node_id = vm[0][2].as<std::string>();
        if (node_id.empty()) return Error::Conflict("the VM never ran on a node");
        if (!tx.exec_params("SELECT 1 FROM node_reviews WHERE vm_id = $1::uuid FOR UPDATE", vm_id)
                 .empty())
            return Error::Conflict("this VM already has a review; there is one per VM");
        const auto rows = tx.exec_params(
            "INSERT INTO node_reviews (vm_id, node_id, owner_wallet, rating, body, created_at) "
            "VALUES ($1::uuid, $2::uuid, $3, $4, $5, $6::timestamptz) RETURNING vm_id::text, "
            "node_id::text, owner_wallet, rating, body, "
            "(extract(epoch FROM created_at) * 1000000)::bigint",
            vm_id, node_id, owner, rating, text, ToPgTime(now));
        return ReviewFromRow(rows[0]);
    });
}

Result<ports::ReviewSummary> PgMarketplaceRepository::Reviews(const std::string& node_id,
                                                              std::size_t limit) {
    if (!common::IsUuid(node_id)) return Error::NotFound("no node with id '" + node_id + "'");
    return InTransaction<ports::ReviewSummary>(
        pool_, [&](pqxx::work& tx) -> Result<ports::ReviewSummary> {
            if (tx.exec_params("SELECT 1 FROM nodes WHERE id = $1::uuid", node_id).empty())
                return Error::NotFound("no node with id '" + node_id + "'");
            ports::ReviewSummary out;
            const auto agg = tx.exec_params1(
                "SELECT count(*), coalesce(avg(rating), 0)::double precision FROM node_reviews "
                "WHERE node_id = $1::uuid",
                node_id);
            out.count = agg[0].as<std::uint64_t>();
            out.average = agg[1].as<double>();
            for (const auto& row :
                 tx.exec_params(std::string(kReviewColumns) +
                                    "WHERE node_id = $1::uuid ORDER BY created_at DESC, vm_id "
                                    "LIMIT $2",
                                node_id, static_cast<long long>(limit))) {
                auto r = ReviewFromRow(row);
                if (!r) return r.error();
                out.reviews.push_back(std::move(*r));
            }
            return out;
        });
}

}  // namespace decloud::orchestrator::adapters::pg
