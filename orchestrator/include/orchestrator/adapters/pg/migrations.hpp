#pragma once

#include <string>
#include <vector>

#include "decloud/common/result.hpp"
#include "orchestrator/adapters/pg/pg_pool.hpp"

namespace decloud::orchestrator::adapters::pg {

struct Migration {
    int version;
    std::string name;
    std::string sql;
};

// The numbered SQL files of orchestrator/migrations, embedded at build time, in order.
const std::vector<Migration>& EmbeddedMigrations();

// Applies every migration not yet applied, each in its own transaction, under a session
// advisory lock so replicas starting together take turns. Refuses to go on if an applied
// migration's text changed (checksum mismatch). Idempotent.
common::Status RunMigrations(PgPool& pool);

}  // namespace decloud::orchestrator::adapters::pg
