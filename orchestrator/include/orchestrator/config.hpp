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
#include "orchestrator/app/relay_service.hpp"
#include "orchestrator/app/vm_service.hpp"
#include "orchestrator/domain/address_pool.hpp"
#include "orchestrator/domain/port_pool.hpp"
#include "orchestrator/domain/rate_limiter.hpp"

namespace decloud::orchestrator {

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
    std::string templates_directory = "/usr/share/decloud/templates";
    std::string log_level = "info";
    std::string log_format = "human";
};

// Every key the orchestrator understands, with defaults; deploy/orchestrator.toml documents them.
std::vector<common::SettingSpec> OrchestratorSettingSpecs();
inline constexpr const char* kOrchestratorEnvPrefix = "DECLOUD_ORCHESTRATOR";

common::Result<OrchestratorConfig> BuildOrchestratorConfig(const common::Settings& settings);

}  // namespace decloud::orchestrator
