// decloud-orchestrator: wires configuration, PostgreSQL, the node service, the HTTP API and the
// background jobs together. Logic lives in the libraries; this file only assembles them.

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/thread_pool.hpp>

#include <filesystem>
#include <iostream>
#include <optional>
#include <thread>

#include "decloud/chain/key_file.hpp"
#include "decloud/common/log.hpp"
#include "orchestrator/adapters/pg/migrations.hpp"
#include "orchestrator/adapters/pg/pg_auth_repository.hpp"
#include "orchestrator/adapters/pg/pg_chain_repository.hpp"
#include "orchestrator/adapters/pg/pg_community_template_repository.hpp"
#include "orchestrator/adapters/pg/pg_ledger_repository.hpp"
#include "orchestrator/adapters/pg/pg_marketplace_repository.hpp"
#include "orchestrator/adapters/pg/pg_node_repository.hpp"
#include "orchestrator/adapters/pg/pg_pool.hpp"
#include "orchestrator/adapters/pg/pg_relay_repository.hpp"
#include "orchestrator/adapters/pg/pg_user_repository.hpp"
#include "orchestrator/adapters/pg/pg_vm_repository.hpp"
#include "orchestrator/adapters/templates/cloud_init_validator.hpp"
#include "orchestrator/adapters/templates/template_catalog.hpp"
#include "orchestrator/api/command_channels.hpp"
#include "orchestrator/api/console_routes.hpp"
#include "orchestrator/api/routes.hpp"
#include "orchestrator/api/static_files.hpp"
#include "orchestrator/app/deposit_watcher.hpp"
#include "orchestrator/app/payout_service.hpp"
#include "orchestrator/config.hpp"
#include "orchestrator/jobs/periodic_job.hpp"

#ifndef DECLOUD_VERSION
#define DECLOUD_VERSION "0.0.0"
#endif

namespace asio = boost::asio;
using namespace decloud;

namespace {

// Start-up waits for the database (systemd may start us before PostgreSQL is up).
void MigrateWhenReachable(orchestrator::adapters::pg::PgPool& pool,
                          std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        auto st = orchestrator::adapters::pg::RunMigrations(pool);
        if (st) return;
        if (st.error().code != common::ErrorCode::kUnavailable ||
            std::chrono::steady_clock::now() >= deadline)
            throw std::runtime_error("database migrations failed: " + st.error().message);
        spdlog::warn("database not reachable yet ({}); retrying", st.error().message);
        std::this_thread::sleep_for(std::chrono::milliseconds{500});
    }
}

int Run(const orchestrator::OrchestratorConfig& config) {
    // Before anything else: a treasury key readable by others refuses the start.
    std::optional<chain::PrivateKey> treasury;
    if (config.payouts.enabled) {
        auto key = chain::LoadPrivateKeyFile(config.payouts.treasury_key_file);
        if (!key) throw std::runtime_error("payouts.treasury_key_file: " + key.error().message);
        treasury.emplace(std::move(*key));
        spdlog::info("payouts: treasury {}", chain::ToString(treasury->address()));
    }
    auto registry = std::make_shared<prometheus::Registry>();
    auto& flushed = prometheus::BuildCounter()
                        .Name("decloud_heartbeats_flushed_total")
                        .Help("Node heartbeat rows written to PostgreSQL")
                        .Register(*registry)
                        .Add({});
    auto& flush_failures = prometheus::BuildCounter()
                               .Name("decloud_heartbeat_flush_failures_total")
                               .Help("Heartbeat flushes that failed and were retried")
                               .Register(*registry)
                               .Add({});
    auto& went_offline = prometheus::BuildCounter()
                             .Name("decloud_nodes_marked_offline_total")
                             .Help("Nodes the sweeper marked offline")
                             .Register(*registry)
                             .Add({});
    auto& flush_seconds = prometheus::BuildHistogram()
                              .Name("decloud_heartbeat_flush_duration_seconds")
                              .Help("Time to write one batch of buffered heartbeats")
                              .Register(*registry)
                              .Add({}, prometheus::Histogram::BucketBoundaries{
                                           0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5});
    auto& buffered = prometheus::BuildGauge()
                         .Name("decloud_heartbeats_buffered")
                         .Help("Nodes with heartbeats waiting to be flushed")
                         .Register(*registry)
                         .Add({});

    orchestrator::adapters::pg::PgPool pool(config.database_url, config.database_pool_size);
    MigrateWhenReachable(pool, config.database_connect_timeout);
    orchestrator::adapters::pg::PgNodeRepository repository(pool);
    common::SystemClock clock;
    orchestrator::app::NodeService nodes(repository, clock, config.nodes);
    std::error_code dir_error;
    std::filesystem::create_directories(std::filesystem::path(config.auth_key_file).parent_path(),
                                        dir_error);
    auto keys = crypto::JwtKeyRing::LoadOrCreate(config.auth_key_file);
    if (!keys) throw std::runtime_error("auth.key_file: " + keys.error().message);
    orchestrator::adapters::pg::PgAuthRepository auth_repository(pool);
    orchestrator::app::AuthService auth(auth_repository, clock, *keys, config.auth);
    orchestrator::adapters::pg::PgUserRepository user_repository(pool);
    orchestrator::app::UserService users(user_repository, clock);
    orchestrator::domain::RateLimiter auth_limiter(config.auth_rate_limit);
    orchestrator::adapters::pg::PgVmRepositoryOptions vm_repository_options;
    vm_repository_options.host_reserved_memory_mib = config.host_reserved_memory_mib;
    orchestrator::adapters::pg::PgVmRepository vm_repository(pool, vm_repository_options);
    orchestrator::app::VmService vms(vm_repository, user_repository, clock, config.vms);
    // A broken template refuses the start; a missing folder means no templates.
    if (auto catalog =
            orchestrator::adapters::templates::TemplateCatalog::Load(config.templates_directory)) {
        vms.SetTemplates(catalog->All());
        spdlog::info("{} VM templates from {}", catalog->All().size(), config.templates_directory);
    } else if (catalog.error().code == common::ErrorCode::kNotFound) {
        spdlog::warn("no VM templates: {}", catalog.error().message);
    } else {
        throw std::runtime_error("templates.directory: " + catalog.error().message);
    }

    orchestrator::adapters::pg::PgRelayRepositoryOptions relay_repository_options;
    relay_repository_options.tunnel_pool = config.relay_tunnel_pool;
    relay_repository_options.public_ports = config.relay_public_ports;
    relay_repository_options.max_tunnels_per_relay = config.relays.policy.max_tunnels_per_relay;
    orchestrator::adapters::pg::PgRelayRepository relay_repository(pool, relay_repository_options);
    orchestrator::app::RelayService relays(relay_repository, repository, clock, config.relays);
    orchestrator::adapters::pg::PgLedgerRepository ledger_repository(pool);
    orchestrator::app::BillingService billing(ledger_repository, vms, clock, config.billing);
    if (config.billing.require_balance_to_start) vms.SetFundsCheck(&billing);
    orchestrator::adapters::pg::PgChainRepository chain_repository(pool);
    orchestrator::app::ChainAccountService chain_accounts(chain_repository);
    // Deposits and payouts each get their own chain connection: their jobs may run at once.
    std::unique_ptr<orchestrator::app::ChainSession> deposit_session;
    std::unique_ptr<orchestrator::app::DepositWatcher> deposit_watcher;
    std::unique_ptr<orchestrator::app::ChainSession> payout_session;
    orchestrator::adapters::pg::PgPayoutJournal payout_journal(pool);
    std::unique_ptr<orchestrator::app::PayoutService> payouts;
    if (config.chain.enabled) {
        auto open = [&] {
            auto s = orchestrator::app::ChainSession::Open(config.chain.rpc_url,
                                                           config.chain.request_timeout);
            if (!s) throw std::runtime_error("chain.rpc_url: " + s.error().message);
            return std::move(*s);
        };
        auto token = chain::ParseAddress(config.billing.deposit.token_address);
        auto deposit_address = chain::ParseAddress(config.billing.deposit.deposit_address);
        if (!token || !deposit_address)
            throw std::runtime_error("billing.deposit_token_address / deposit_address: invalid");
        orchestrator::app::DepositWatcherOptions watch;
        watch.chain_id = config.billing.deposit.chain_id;
        watch.token = *token;
        watch.deposit_address = *deposit_address;
        watch.confirmations = config.billing.deposit.confirmations;
        watch.start_block = config.chain.start_block;
        watch.max_range = config.chain.max_block_range;
        deposit_session = open();
        deposit_watcher = std::make_unique<orchestrator::app::DepositWatcher>(
            *deposit_session, chain_repository, billing, watch);
        if (treasury) {
            auto options = config.payouts.options;
            options.sender.token = *token;
            payout_session = open();
            payouts = std::make_unique<orchestrator::app::PayoutService>(
                *payout_session, chain_repository, payout_journal, billing, *treasury, clock,
                options);
        }
    }
    orchestrator::adapters::pg::PgMarketplaceRepositoryOptions market_repository_options;
    market_repository_options.host_reserved_memory_mib = config.host_reserved_memory_mib;
    orchestrator::adapters::pg::PgMarketplaceRepository market_repository(
        pool, market_repository_options);
    orchestrator::app::MarketplaceService market(market_repository, vms, &relay_repository, clock,
                                                 config.marketplace);
    orchestrator::adapters::pg::PgCommunityTemplateRepository community_templates(pool);
    orchestrator::adapters::templates::CloudInitValidator cloud_init_validator;
    vms.SetCommunityTemplates(&community_templates);
    orchestrator::app::TemplateService templates(vms.Templates(), community_templates,
                                                 cloud_init_validator, clock);

    asio::io_context ioc(static_cast<int>(config.io_threads));
    asio::thread_pool blocking(config.blocking_threads);

    auto api = std::make_shared<orchestrator::api::ApiContext>();
    api->nodes = &nodes;
    api->auth = &auth;
    api->users = &users;
    api->vms = &vms;
    api->relays = &relays;
    api->billing = &billing;
    api->chain_accounts = &chain_accounts;
    api->market = &market;
    api->templates = &templates;
    api->auth_limiter = &auth_limiter;
    api->clock = &clock;
    api->blocking = &blocking;
    api->registry = registry;
    api->readiness = [&pool] { return pool.Check(); };
    auto channels = std::make_shared<orchestrator::api::CommandChannels>(ioc.get_executor(), api);
    api->channels = channels.get();
    vms.SetCommandListener([channels](const std::string& node_id) { channels->Notify(node_id); });
    auto consoles =
        std::make_shared<orchestrator::api::ConsoleBridge>(ioc.get_executor(), *channels);
    api->consoles = consoles.get();
    auto router = std::make_shared<net::Router>();
    orchestrator::api::AddNodeRoutes(*router, api);
    orchestrator::api::AddAuthRoutes(*router, api);
    orchestrator::api::AddUserRoutes(*router, api);
    orchestrator::api::AddVmRoutes(*router, api);
    orchestrator::api::AddConsoleRoutes(*router, api);
    orchestrator::api::AddRelayRoutes(*router, api);
    orchestrator::api::AddBillingRoutes(*router, api);
    orchestrator::api::AddMarketplaceRoutes(*router, api);
    orchestrator::api::AddTemplateRoutes(*router, api);
    orchestrator::api::AddOperationalRoutes(*router, api);
    // The web console takes what no API route does, so it is added last.
    if (!config.web_root.empty()) {
        // Like templates: a missing folder means no console, a broken one refuses the start.
        auto web = orchestrator::api::StaticFiles::Load(config.web_root);
        if (web) {
            spdlog::info("web console: {} files from {}", web->size(), config.web_root);
            orchestrator::api::AddStaticRoutes(
                *router, std::make_shared<const orchestrator::api::StaticFiles>(std::move(*web)));
        } else if (web.error().code == common::ErrorCode::kNotFound) {
            spdlog::warn("no web console: {}", web.error().message);
        } else {
            throw std::runtime_error("web.root: " + web.error().message);
        }
    }

    net::HttpServer server(ioc, config.server, router, registry);
    const auto port = server.Start();
    spdlog::info("orchestrator {} listening on http://{}:{}", DECLOUD_VERSION,
                 config.server.address, port);

    auto flush = [&] {
        const auto started = std::chrono::steady_clock::now();
        auto r = nodes.FlushHeartbeats();
        flush_seconds.Observe(
            std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
        buffered.Set(static_cast<double>(nodes.BufferedHeartbeats()));
        if (!r) {
            flush_failures.Increment();
            spdlog::warn("heartbeat flush failed, will retry: {}", r.error().message);
            return;
        }
        flushed.Increment(static_cast<double>(r->nodes_updated));
        for (const auto& id : r->came_online) spdlog::info("node {} is online", id);
        if (auto st = vms.NodesCameOnline(r->came_online); !st)
            spdlog::warn("marking VMs of nodes back online failed: {}", st.error().message);
    };
    auto flush_job = std::make_shared<orchestrator::jobs::PeriodicJob>(
        ioc.get_executor(), blocking, "heartbeat-flush", config.heartbeat_flush_interval, flush);
    auto sweep_job = std::make_shared<orchestrator::jobs::PeriodicJob>(
        ioc.get_executor(), blocking, "offline-sweeper", config.offline_sweep_interval, [&] {
            auto r = nodes.SweepOffline();
            if (!r) {
                spdlog::warn("offline sweep failed: {}", r.error().message);
                return;
            }
            went_offline.Increment(static_cast<double>(r->size()));
            for (const auto& id : *r) spdlog::info("node {} is offline (no heartbeat)", id);
            if (auto st = vms.NodesWentOffline(*r); !st)
                spdlog::warn("marking VMs of offline nodes failed: {}", st.error().message);
        });
    // Commands queued through another replica reach agents heartbeating here within a second.
    auto command_poll_job = std::make_shared<orchestrator::jobs::PeriodicJob>(
        ioc.get_executor(), blocking, "command-poll", config.command_poll_interval, [&] {
            if (auto st = vms.RefreshCommandHints(); !st)
                spdlog::warn("looking for node commands failed: {}", st.error().message);
        });
    // New CGNAT nodes get their relays here (within one interval of registering), waiting ones
    // are retried, public nodes are offered as relays and departed CGNAT nodes released.
    auto relay_job = std::make_shared<orchestrator::jobs::PeriodicJob>(
        ioc.get_executor(), blocking, "relay-reconcile", config.relay_reconcile_interval, [&] {
            auto r = relays.Reconcile();
            if (!r) {
                spdlog::warn("relay reconcile failed: {}", r.error().message);
                return;
            }
            if (r->offered + r->assigned + r->released > 0)
                spdlog::info("relays: {} offered, {} assigned, {} awaiting, {} released",
                             r->offered, r->assigned, r->awaiting, r->released);
        });
    // The node search's prepared rows: uptime, reserved capacity, featured marks.
    auto market_job = std::make_shared<orchestrator::jobs::PeriodicJob>(
        ioc.get_executor(), blocking, "marketplace-refresh", config.marketplace_refresh_interval,
        [&] {
            if (auto r = market.Refresh(); !r)
                spdlog::warn("marketplace refresh failed: {}", r.error().message);
        });
    // Bills the whole hours since the last run and checks balances; the repository's advisory
    // lock lets one replica at a time do it, the others skip the tick.
    auto billing_job = std::make_shared<orchestrator::jobs::PeriodicJob>(
        ioc.get_executor(), blocking, "billing-metering", config.billing_metering_interval, [&] {
            if (auto st = billing.Tick(); !st)
                spdlog::warn("billing metering failed, will retry: {}", st.error().message);
        });
    // Deposits and payouts: one replica at a time each (advisory locks in the repository).
    auto& credited = prometheus::BuildCounter()
                         .Name("decloud_chain_deposits_credited_total")
                         .Help("On-chain deposits credited to users")
                         .Register(*registry)
                         .Add({});
    auto& reorgs = prometheus::BuildCounter()
                       .Name("decloud_chain_reorgs_total")
                       .Help("Chain reorganisations within the confirmations the watcher handled")
                       .Register(*registry)
                       .Add({});
    auto& deep_reorgs = prometheus::BuildCounter()
                            .Name("decloud_chain_deep_reorgs_total")
                            .Help(
                                "Deposit scans refused: a reorganisation deeper than the "
                                "confirmations (needs an operator; nothing moved)")
                            .Register(*registry)
                            .Add({});
    auto& scanned_block = prometheus::BuildGauge()
                              .Name("decloud_chain_scanned_block")
                              .Help("Highest block the deposit watcher processed")
                              .Register(*registry)
                              .Add({});
    auto& payouts_settled = prometheus::BuildCounter()
                                .Name("decloud_payouts_settled_total")
                                .Help("Payouts confirmed on chain and settled in the ledger")
                                .Register(*registry)
                                .Add({});
    auto& payouts_in_flight = prometheus::BuildGauge()
                                  .Name("decloud_payouts_in_flight")
                                  .Help("Payouts reserved and not yet settled or cancelled")
                                  .Register(*registry)
                                  .Add({});
    auto& payout_errors = prometheus::BuildCounter()
                              .Name("decloud_payout_errors_total")
                              .Help("Payout steps that failed and will be retried")
                              .Register(*registry)
                              .Add({});
    std::shared_ptr<orchestrator::jobs::PeriodicJob> deposit_job;
    std::shared_ptr<orchestrator::jobs::PeriodicJob> payout_job;
    if (deposit_watcher) {
        deposit_job = std::make_shared<orchestrator::jobs::PeriodicJob>(
            ioc.get_executor(), blocking, "chain-deposits", config.chain.poll_interval, [&] {
                auto r = deposit_watcher->Tick();
                if (!r) {
                    spdlog::warn("deposit watcher failed, will retry: {}", r.error().message);
                    return;
                }
                credited.Increment(static_cast<double>(r->credited));
                if (r->reorg) reorgs.Increment();
                if (r->deep_reorg) deep_reorgs.Increment();
                if (r->tip) scanned_block.Set(static_cast<double>(*r->tip));
            });
        deposit_job->Start();
    }
    if (payouts) {
        payout_job = std::make_shared<orchestrator::jobs::PeriodicJob>(
            ioc.get_executor(), blocking, "chain-payouts", config.chain.poll_interval, [&] {
                auto r = payouts->Tick();
                if (!r) {
                    payout_errors.Increment();
                    spdlog::warn("payouts failed, will retry: {}", r.error().message);
                    return;
                }
                if (!r->ran) return;
                payouts_settled.Increment(static_cast<double>(r->settled));
                payout_errors.Increment(static_cast<double>(r->errors));
                payouts_in_flight.Set(static_cast<double>(r->in_flight));
            });
        payout_job->Start();
    }
    flush_job->Start();
    sweep_job->Start();
    command_poll_job->Start();
    relay_job->Start();
    billing_job->Start();
    market_job->Start();

    asio::signal_set signals(ioc, SIGINT, SIGTERM);
    signals.async_wait([&](const boost::system::error_code& ec, int signo) {
        if (ec) return;
        spdlog::info("signal {}: shutting down gracefully", signo);
        flush_job->Stop();
        sweep_job->Stop();
        command_poll_job->Stop();
        relay_job->Stop();
        billing_job->Stop();
        if (deposit_job) deposit_job->Stop();
        if (payout_job) payout_job->Stop();
        market_job->Stop();
        server.Shutdown([&] {
            // In-flight heartbeats are answered; write what they buffered before leaving.
            asio::post(blocking, [&] {
                flush();
                ioc.stop();
            });
        });
    });

    std::vector<std::thread> threads;
    for (std::size_t i = 1; i < config.io_threads; ++i) threads.emplace_back([&] { ioc.run(); });
    ioc.run();
    for (auto& t : threads) t.join();
    blocking.join();
    spdlog::info("orchestrator stopped");
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App cli{"DeCloud orchestrator: scheduling, billing and relays for the DeCloud network"};
    std::string config_path;
    std::vector<std::string> overrides;
    bool print_config = false;
    bool rotate_auth_key = false;
    cli.add_option("-c,--config", config_path, "TOML configuration file")->check(CLI::ExistingFile);
    cli.add_option("--set", overrides, "override one setting, key=value (repeatable)");
    cli.add_flag("--print-config", print_config, "print the effective configuration and exit");
    cli.add_flag(
        "--rotate-auth-key", rotate_auth_key,
        "put a new token signing key in front of auth.key_file and exit (restart replicas after)");
    cli.set_version_flag("--version", DECLOUD_VERSION);
    CLI11_PARSE(cli, argc, argv);

    auto settings = common::Settings::Load(orchestrator::OrchestratorSettingSpecs(), config_path,
                                           orchestrator::kOrchestratorEnvPrefix, overrides);
    if (!settings) {
        std::cerr << "configuration error: " << settings.error().message << "\n";
        return 2;
    }
    if (print_config) {
        std::cout << settings->Describe();
        return 0;
    }
    auto config = orchestrator::BuildOrchestratorConfig(*settings);
    if (!config) {
        std::cerr << "configuration error: " << config.error().message << "\n";
        return 2;
    }
    if (auto st = common::SetupLogging(config->log_level, config->log_format, "orchestrator");
        !st) {
        std::cerr << "configuration error: " << st.error().message << "\n";
        return 2;
    }
    try {
        return Run(*config);
    } catch (const std::exception& e) {
        spdlog::critical("orchestrator failed to start: {}", e.what());
        return 1;
    }
}
