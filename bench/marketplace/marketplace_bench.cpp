// bench/marketplace: typical marketplace searches through the real service and PostgreSQL
// adapter against a database loaded by load.sql (100,000 nodes). Modes:
//   --migrate            apply the orchestrator's migrations and exit
//   (default)            rebuild the search rows (timed), then run --queries searches, one at a
//                        time, and print p50/p99 per query kind and overall; last line RESULT
//   --explain            run each query kind once (for auto_explain to log its plans)

#include <CLI/CLI.hpp>
#include <pqxx/pqxx>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <random>

#include "orchestrator/adapters/pg/migrations.hpp"
#include "orchestrator/adapters/pg/pg_marketplace_repository.hpp"
#include "orchestrator/adapters/pg/pg_pool.hpp"
#include "orchestrator/adapters/pg/pg_user_repository.hpp"
#include "orchestrator/adapters/pg/pg_vm_repository.hpp"
#include "orchestrator/app/marketplace_service.hpp"

using namespace decloud;
using namespace decloud::orchestrator;
using Clock = std::chrono::steady_clock;
using domain::MarketFilter;
using domain::MarketSort;

namespace {

const std::vector<std::string> kRegions = {"eu-west", "eu-central", "eu-north",  "us-east",
                                           "us-west", "us-central", "asia-east", "asia-south",
                                           "sa-east", "af-south"};
const std::vector<std::string> kTags = {
    "ssd",    "nvme",   "hdd",     "10g",     "1g",         "ipv6", "ecc",    "epyc",
    "xeon",   "ryzen",  "arm64",   "solar",   "datacenter", "home", "fibre",  "ups",
    "raid1",  "raid10", "gdpr",    "eu",      "us",         "asia", "backup", "lowlatency",
    "gaming", "ml",     "storage", "compute", "edge",       "green"};

struct Kind {
    std::string name;
    std::function<MarketFilter(std::mt19937&)> make;
    int pages = 1;  // follow the cursor this many pages (each page timed on its own)
};

std::vector<Kind> Kinds() {
    auto pick = [](std::mt19937& rng, const std::vector<std::string>& from) {
        return from[std::uniform_int_distribution<std::size_t>(0, from.size() - 1)(rng)];
    };
    auto num = [](std::mt19937& rng, int lo, int hi) {
        return std::uniform_int_distribution<int>(lo, hi)(rng);
    };
    return {
        {"cheapest", [](std::mt19937&) { return MarketFilter{}; }},
        {"region_price",
         [=](std::mt19937& rng) {
             MarketFilter f;
             f.region = pick(rng, kRegions);
             f.max_price = static_cast<std::uint64_t>(num(rng, 20, 200));
             return f;
         }},
        {"tags_all_uptime_sort",
         [=](std::mt19937& rng) {
             MarketFilter f;
             f.tags_all = {pick(rng, kTags), pick(rng, kTags)};
             f.sort = MarketSort::kUptime;
             f.descending = true;
             return f;
         }},
        {"tags_any_min_uptime",
         [=](std::mt19937& rng) {
             MarketFilter f;
             f.tags_any = {pick(rng, kTags), pick(rng, kTags), pick(rng, kTags)};
             f.min_uptime_bp = 9500;
             return f;
         }},
        {"gpu_vendor_count",
         [=](std::mt19937& rng) {
             MarketFilter f;
             f.gpu_vendor = num(rng, 0, 2) == 0 ? "amd" : "nvidia";
             f.min_gpu_count = static_cast<std::uint32_t>(num(rng, 1, 3));
             return f;
         }},
        {"gpu_model",
         [=](std::mt19937& rng) {
             MarketFilter f;
             f.gpu_model = num(rng, 0, 1) == 0 ? "4090" : "a100";
             f.sort = MarketSort::kComputePoints;
             f.descending = true;
             return f;
         }},
        {"free_capacity_sort",
         [=](std::mt19937& rng) {
             MarketFilter f;
             f.min_free_points = static_cast<std::uint64_t>(num(rng, 200, 3000));
             f.min_free_memory_mib = static_cast<std::uint64_t>(num(rng, 4, 64)) * 1024;
             f.min_free_disk_gib = static_cast<std::uint64_t>(num(rng, 50, 500));
             f.sort = MarketSort::kFreeCapacity;
             f.descending = true;
             return f;
         }},
        {"public_reliable",
         [=](std::mt19937& rng) {
             MarketFilter f;
             f.behind_cgnat = false;
             f.min_uptime_bp = static_cast<std::uint32_t>(num(rng, 9000, 9900));
             f.sort = MarketSort::kUptime;
             f.descending = true;
             return f;
         }},
        {"featured",
         [](std::mt19937&) {
             MarketFilter f;
             f.featured_only = true;
             return f;
         }},
        {"combined",
         [=](std::mt19937& rng) {
             MarketFilter f;
             f.region = pick(rng, kRegions);
             f.tags_any = {pick(rng, kTags), pick(rng, kTags)};
             f.min_price = static_cast<std::uint64_t>(num(rng, 1, 50));
             f.max_price = *f.min_price + static_cast<std::uint64_t>(num(rng, 20, 150));
             f.min_free_memory_mib = 8 * 1024;
             f.min_uptime_bp = 8000;
             return f;
         }},
        {"deep_pages",
         [=](std::mt19937& rng) {
             MarketFilter f;
             f.sort = num(rng, 0, 1) == 0 ? MarketSort::kPrice : MarketSort::kUptime;
             f.descending = f.sort == MarketSort::kUptime;
             f.limit = 50;
             return f;
         },
         5},
    };
}

double Percentile(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const auto idx = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
    return v[std::min(idx, v.size() - 1)];
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App cli{"marketplace search latency against a loaded PostgreSQL"};
    std::string db;
    bool migrate = false, explain = false;
    long long now_epoch = 1'800'000'000;
    int queries = 3000;
    int nodes = 100000;
    cli.add_option("--db", db, "libpq connection string")->required();
    cli.add_flag("--migrate", migrate, "apply migrations and exit");
    cli.add_flag("--explain", explain, "run each query kind once and exit");
    cli.add_option("--now", now_epoch, "the clock (epoch seconds) the data was generated at");
    cli.add_option("--queries", queries, "searches to time");
    cli.add_option("--nodes", nodes, "nodes loaded (for the RESULT line)");
    CLI11_PARSE(cli, argc, argv);

    adapters::pg::PgPool pool(db, 2);
    if (migrate) {
        auto st = adapters::pg::RunMigrations(pool);
        if (!st) {
            std::cerr << "migrations: " << st.error().message << "\n";
            return 1;
        }
        return 0;
    }
    common::ManualClock clock{common::TimePoint{std::chrono::seconds{now_epoch}}};
    adapters::pg::PgVmRepository vm_repository(pool);
    adapters::pg::PgUserRepository user_repository(pool);
    app::VmService vms(vm_repository, user_repository, clock, {});
    adapters::pg::PgMarketplaceRepository market_repository(pool);
    app::MarketplaceService market(market_repository, vms, nullptr, clock, {});

    const auto kinds = Kinds();
    std::mt19937 rng(42);
    auto run = [&](const Kind& kind, std::vector<double>* times) -> bool {
        const auto filter = kind.make(rng);
        std::string cursor;
        for (int page = 0; page < kind.pages; ++page) {
            const auto start = Clock::now();
            auto result = market.Search(filter, cursor);
            const auto ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
            if (!result) {
                std::cerr << kind.name << ": " << result.error().message << "\n";
                return false;
            }
            if (times) times->push_back(ms);
            if (result->next_cursor.empty()) break;
            cursor = result->next_cursor;
        }
        return true;
    };

    if (explain) {
        for (const auto& kind : kinds) {
            std::cout << "-- " << kind.name << std::endl;
            if (!run(kind, nullptr)) return 1;
        }
        return 0;
    }

    const auto refresh_start = Clock::now();
    auto refreshed = market.Refresh();
    const auto refresh_ms =
        std::chrono::duration<double, std::milli>(Clock::now() - refresh_start).count();
    if (!refreshed) {
        std::cerr << "refresh: " << refreshed.error().message << "\n";
        return 1;
    }
    std::printf("refresh: %zu nodes rebuilt, %zu featured, %.0f ms\n", refreshed->nodes,
                refreshed->featured, refresh_ms);
    // What autovacuum does after a table is rewritten; without it the first plans after the
    // initial load are made on an empty table's statistics.
    {
        auto lease = pool.Acquire();
        if (!lease) {
            std::cerr << "analyze: " << lease.error().message << "\n";
            return 1;
        }
        pqxx::nontransaction(lease->conn()).exec("ANALYZE node_market");
    }

    // Warm-up: one pass over every kind (plans and buffers), not timed.
    for (const auto& kind : kinds)
        if (!run(kind, nullptr)) return 1;

    std::map<std::string, std::vector<double>> per_kind;
    std::vector<double> all;
    for (int i = 0; i < queries; ++i) {
        const auto& kind = kinds[static_cast<std::size_t>(i) % kinds.size()];
        std::vector<double> times;
        if (!run(kind, &times)) return 1;
        auto& bucket = per_kind[kind.name];
        bucket.insert(bucket.end(), times.begin(), times.end());
        all.insert(all.end(), times.begin(), times.end());
    }
    std::printf("%-22s %8s %8s %8s %8s\n", "query", "count", "p50_ms", "p99_ms", "max_ms");
    for (const auto& kind : kinds) {
        const auto& t = per_kind[kind.name];
        std::printf("%-22s %8zu %8.2f %8.2f %8.2f\n", kind.name.c_str(), t.size(),
                    Percentile(t, 0.5), Percentile(t, 0.99), Percentile(t, 1.0));
    }
    std::printf("RESULT nodes=%d p50_ms=%.2f p99_ms=%.2f\n", nodes, Percentile(all, 0.5),
                Percentile(all, 0.99));
    return 0;
}
