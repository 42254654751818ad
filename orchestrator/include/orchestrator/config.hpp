#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "decloud/common/settings.hpp"
#include "decloud/net/http_server.hpp"
#include "orchestrator/app/auth_service.hpp"
#include "orchestrator/app/billing_service.hpp"
#include "orchestrator/app/marketplace_service.hpp"
#include "orchestrator/app/node_service.hpp"
#include "orchestrator/app/payout_service.hpp"
#include "orchestrator/app/relay_service.hpp"
#include "orchestrator/app/vm_service.hpp"
#include "orchestrator/domain/address_pool.hpp"
#include "orchestrator/domain/port_pool.hpp"
#include "orchestrator/domain/rate_limiter.hpp"

namespace decloud::orchestrator {

// [chain]: the EVM node the deposit watcher (and the payouts) talk to. Which chain, token, deposit
// address and confirmations are billing.deposit_*: what users are told is what is watched.
struct ChainConfig {
    bool enabled = false;
    std::string rpc_url;
    std::chrono::milliseconds poll_interval{15'000};
    std::chrono::milliseconds request_timeout{10'000};
    std::uint64_t start_block = 0;  // 0: the chain head when the watcher first runs
    std::uint64_t max_block_range = 500;
};

// [payouts]: the weekly batch paying operators' earnings from the treasury key.
struct PayoutConfig {
    bool enabled = false;
    std::string treasury_key_file = "/etc/decloud/treasury.key";
    app::PayoutOptions options;
};

struct OrchestratorConfig {
    net::ServerOptions server;
    std::size_t io_threads = 2;
    std::string database_url;
    std::size_t database_pool_size = 8;
    std::size_t blocking_threads = 8;
    std::chrono::milliseconds database_connect_timeout{30'000};
    app::NodeServiceOptions nodes;
    app::AuthOptions auth;
    domain::RateLimitPolicy auth_rate_limit;
    std::string auth_key_file = "/var/lib/decloud/orchestrator/jwt.keys";
    std::chrono::milliseconds heartbeat_flush_interval{500};
    std::chrono::milliseconds offline_sweep_interval{10'000};
    app::VmServiceOptions vms;
    std::uint64_t host_reserved_memory_mib = 1024;
    std::chrono::milliseconds command_poll_interval{1'000};
    app::RelayServiceOptions relays;
    domain::TunnelAddressPool relay_tunnel_pool = domain::TunnelAddressPool::Default();
    domain::PortRange relay_public_ports{30000, 39999};
    std::chrono::milliseconds relay_reconcile_interval{10'000};
    app::MarketplaceServiceOptions marketplace;
    std::chrono::milliseconds marketplace_refresh_interval{30'000};
    app::BillingOptions billing;
    std::chrono::milliseconds billing_metering_interval{60'000};
    ChainConfig chain;
    PayoutConfig payouts;
    std::string templates_directory = "/usr/share/decloud/templates";
    std::string web_root;  // the web console's files; empty: not served
    std::string log_level = "info";
    std::string log_format = "human";
};

// Every key the orchestrator understands, with defaults; deploy/orchestrator.toml documents them.
std::vector<common::SettingSpec> OrchestratorSettingSpecs();
inline constexpr const char* kOrchestratorEnvPrefix = "DECLOUD_ORCHESTRATOR";

common::Result<OrchestratorConfig> BuildOrchestratorConfig(const common::Settings& settings);

}  // namespace decloud::orchestrator
