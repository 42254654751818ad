#include "orchestrator/adapters/pg/pg_community_template_repository.hpp"

#include "pg_support.hpp"

namespace decloud::orchestrator::adapters::pg {

using common::Error;
using common::Result;
using nlohmann::json;

namespace {

constexpr const char* kColumns = R"sql(name, version, author_wallet, manifest::text, user_data,
    (extract(epoch FROM created_at) * 1000000)::bigint,
    (extract(epoch FROM deprecated_at) * 1000000)::bigint)sql";

constexpr const char* kClaimName = R"sql(
INSERT INTO community_template_names (name, author_wallet, created_at)
VALUES ($1, $2, $3::timestamptz) ON CONFLICT (name) DO NOTHING)sql";

// The row lock queues concurrent publishes of one name, so each gets its own version.
constexpr const char* kLockName =
    "SELECT author_wallet FROM community_template_names WHERE name = $1 FOR UPDATE";

constexpr const char* kNextVersion = R"sql(
UPDATE community_template_names SET latest_version = latest_version + 1 WHERE name = $1
RETURNING latest_version)sql";

constexpr const char* kInsertVersion = R"sql(
INSERT INTO community_templates (name, version, author_wallet, manifest, user_data, created_at)
VALUES ($1, $2, $3, $4::jsonb, $5, $6::timestamptz))sql";

constexpr const char* kDeprecate = R"sql(
UPDATE community_templates SET deprecated_at = coalesce(deprecated_at, $4::timestamptz)
WHERE name = $1 AND version = $2 AND author_wallet = $3)sql";

std::string Select(const char* where) {
    return std::string("SELECT ") + kColumns + " FROM community_templates " + where;
}

std::string NotFoundMessage(const std::string& name, std::int64_t version) {
    return "no community template '" + name + ".v" + std::to_string(version) + "'";
}

// A stored row back into a template; the stored manifest passed the same rules when published.
Result<ports::CommunityTemplate> FromRow(const pqxx::row& row) {
    ports::CommunityTemplate t;
    t.name = row[0].as<std::string>();
    t.version = row[1].as<std::int64_t>();
    t.author_wallet = row[2].as<std::string>();
    json manifest = json::parse(row[3].as<std::string>(), nullptr, false);
    if (!manifest.is_object())
        return Error::Internal("community template " + t.name + ": stored manifest unreadable");
    manifest["id"] = t.name;
    manifest["name"] = t.name;
    manifest["version"] = t.version;
    auto tmpl = domain::ParseTemplate(manifest, row[4].as<std::string>());
    if (!tmpl) return Error::Internal("community template " + t.name + ": " + tmpl.error().message);
    t.tmpl = std::move(*tmpl);
    t.tmpl.id = t.name + ".v" + std::to_string(t.version);
    t.created_at = FromMicros(row[5].as<long long>());
    if (!row[6].is_null()) {
        t.deprecated = true;
        t.deprecated_at = FromMicros(row[6].as<long long>());
    }
    return t;
}

Result<ports::CommunityTemplate> SelectOne(pqxx::work& tx, const std::string& name,
                                           std::int64_t version) {
    const auto rows = tx.exec_params(Select("WHERE name = $1 AND version = $2"), name, version);
    if (rows.empty()) return Error::NotFound(NotFoundMessage(name, version));
    return FromRow(rows[0]);
}

}  // namespace

Result<ports::CommunityTemplate> PgCommunityTemplateRepository::Publish(
    const ports::NewCommunityTemplate& v, common::TimePoint now) {
    return InTransaction<ports::CommunityTemplate>(
        pool_, [&](pqxx::work& tx) -> Result<ports::CommunityTemplate> {
            tx.exec_params0(kClaimName, v.name, v.author_wallet, ToPgTime(now));
            const auto owner = tx.exec_params1(kLockName, v.name)[0].as<std::string>();
            if (owner != v.author_wallet)
                return Error::Conflict("name: '" + v.name +
                                       "' belongs to another author; choose another name");
            const auto version = tx.exec_params1(kNextVersion, v.name)[0].as<std::int64_t>();
            tx.exec_params0(kInsertVersion, v.name, version, v.author_wallet, v.manifest.dump(),
                            v.user_data, ToPgTime(now));
            return SelectOne(tx, v.name, version);
        });
}

Result<ports::CommunityTemplate> PgCommunityTemplateRepository::Get(const std::string& name,
                                                                    std::int64_t version) {
    return InTransaction<ports::CommunityTemplate>(
        pool_, [&](pqxx::work& tx) { return SelectOne(tx, name, version); });
}

Result<std::vector<ports::CommunityTemplate>> PgCommunityTemplateRepository::List(
    const std::optional<std::pair<std::string, std::int64_t>>& after, std::size_t limit) {
    return InTransaction<std::vector<ports::CommunityTemplate>>(
        pool_, [&](pqxx::work& tx) -> Result<std::vector<ports::CommunityTemplate>> {
            std::vector<ports::CommunityTemplate> out;
            // Keyset order on the primary key: each page is one index range scan.
            const auto rows =
                after ? tx.exec_params(Select("WHERE (name, version) > ($1, $2) "
                                              "ORDER BY name, version LIMIT $3"),
                                       after->first, after->second, limit)
                      : tx.exec_params(Select("ORDER BY name, version LIMIT $1"), limit);
            for (const auto& row : rows) {
                auto t = FromRow(row);
                if (!t) return t.error();
                out.push_back(std::move(*t));
            }
            return out;
        });
}

Result<ports::CommunityTemplate> PgCommunityTemplateRepository::Deprecate(const std::string& author,
                                                                          const std::string& name,
                                                                          std::int64_t version,
                                                                          common::TimePoint now) {
    return InTransaction<ports::CommunityTemplate>(
        pool_, [&](pqxx::work& tx) -> Result<ports::CommunityTemplate> {
            // Another author's version answers like a missing one: nothing to learn here.
            if (tx.exec_params(kDeprecate, name, version, author, ToPgTime(now)).affected_rows() ==
                0)
                return Error::NotFound(NotFoundMessage(name, version));
            return SelectOne(tx, name, version);
        });
}

}  // namespace decloud::orchestrator::adapters::pg
