#include "orchestrator/config.hpp"

#include <algorithm>
#include <cstdlib>

#include "decloud/common/money.hpp"
#include "decloud/crypto/crypto.hpp"
#include "orchestrator/domain/cgnat.hpp"
#include "orchestrator/domain/money.hpp"

namespace decloud::orchestrator {

using common::Error;
using common::Result;

std::vector<common::SettingSpec> OrchestratorSettingSpecs() {
    return {
        {"server.address", "127.0.0.1", "address the HTTP API listens on"},
        {"server.port", "8080", "TCP port of the HTTP API"},
        {"server.io_threads", "2", "threads serving HTTP"},
        {"server.body_limit_bytes", "1048576", "largest accepted request body"},
        {"server.read_timeout", "30s", "time allowed to receive a whole request"},
        {"server.idle_timeout", "75s", "keep-alive connections idle longer are closed"},
        {"server.shutdown_grace", "10s", "time in-flight requests get to finish on SIGTERM"},
        {"database.url", "postgresql://decloud@127.0.0.1:5432/decloud", "libpq connection string"},
        {"database.pool_size", "8", "PostgreSQL connections"},
        {"database.blocking_threads", "8", "threads that run database work"},
        {"database.connect_timeout", "30s", "how long start-up waits for the database"},
        {"nodes.heartbeat_interval", "15s", "interval agents are told to heartbeat at"},
        {"nodes.public_ranges", "",
         "reserved prefixes treated as public (lab networks numbered from documentation space)"},
        {"nodes.offline_after", "2m", "a node without a heartbeat for this long is offline"},
        {"nodes.offline_sweep_interval", "10s", "how often the offline sweeper runs"},
        {"nodes.heartbeat_flush_interval", "500ms", "how often buffered heartbeats are written"},
        {"nodes.registration_max_skew", "5m", "accepted clock difference of signed registrations"},
        {"auth.domain", "127.0.0.1:8080", "the domain (host[:port]) sign-in messages must name"},
        {"auth.uri", "http://127.0.0.1:8080", "sign-in messages' URI must start with this origin"},
        {"auth.chain_ids", "137,31337", "chain ids accepted in sign-in messages"},
        {"auth.key_file", "/var/lib/decloud/orchestrator/jwt.keys",
         "token signing keys (mode 0600)"},
        {"auth.nonce_ttl", "5m", "how long a sign-in nonce stays usable"},
        {"auth.access_token_ttl", "15m", "lifetime of an access token"},
        {"auth.refresh_token_ttl", "7d", "lifetime of a session and its refresh token"},
        {"auth.clock_skew", "60s", "tolerated clock difference for message and token times"},
        {"auth.admin_wallets", "", "wallet addresses allowed to run platform operations"},
        {"auth.rate_limit_per_minute", "30", "sign-in requests per minute per client address"},
        {"auth.rate_limit_burst", "10", "sign-in requests a client may send at once"},
        {"nodes.default_price_per_point", "0.00001",
         "USDC per compute point per hour for nodes whose operator set no price"},
        {"vms.images", "debian-12", "images VMs may be created from (the agents provide them)"},
        {"vms.host_reserved_memory_mib", "1024", "memory each node keeps for itself"},
        {"vms.max_per_user", "100", "VMs one user may have at a time"},
        {"vms.command_redelivery", "60s", "an unacknowledged command is delivered again after"},
        {"vms.stop_grace", "30s", "time a guest gets to shut down before it is powered off"},
        {"vms.report_settle_time", "2m", "VMs changed more recently are not judged by reports"},
        {"vms.orphan_grace", "10m", "a domain no VM owns is destroyed after being seen this long"},
        {"vms.command_poll_interval", "1s", "how often replicas look for commands to deliver"},
        {"relay.reconcile_interval", "10s",
         "how often relays are assigned to CGNAT nodes, retried and released"},
        {"relay.standby", "true", "give every CGNAT node a standby relay next to its primary"},
        {"relay.max_tunnels_per_relay", "50", "CGNAT tunnels one relay carries unless it says"},
        {"relay.tunnel_bandwidth_mbps", "10", "bandwidth reserved per tunnel when choosing"},
        {"relay.tunnel_pool", "10.200.0.0/16", "private IPv4 range carved into /30 tunnels"},
        {"relay.public_ports", "30000-39999", "public ports on relays forwarded to VMs"},
        {"relay.auto_offer", "true", "offer every publicly reachable node as a relay"},
        {"relay.offer_wireguard_port", "51820", "WireGuard port of automatic relay offers"},
        {"relay.offer_bandwidth_mbps", "100", "relay bandwidth of automatic relay offers"},
        {"relay.release_after_offline", "30m",
         "a CGNAT node offline this long has its relay assignments released"},
        {"relay.handshake_stale_after", "3m", "a tunnel without a handshake this long is degraded"},
        {"relay.port_audit_interval", "5m",
         "how often nodes' installed port forwards are compared with the desired ones"},
        {"relay.traffic_interval", "30s",
         "how often tunnels' transfer counters become traffic and bandwidth figures, and their "
         "measured round trip is recorded"},
        {"relay.unanswered_probes_before_degraded", "3",
         "latency probe rounds a tunnel's peer may leave unanswered, after answering before, "
         "before the tunnel is degraded although its handshakes are fresh (0: never)"},
        {"relay.degraded_grace", "1m", "a degraded tunnel gets this long to recover, then repair"},
        {"relay.provisioning_timeout", "3m", "a new tunnel not up after this long is repaired"},
        {"relay.repair_timeout", "2m", "time one repair attempt gets before the next"},
        {"relay.max_repair_attempts", "3", "repairs before failing over to another relay"},
        {"marketplace.refresh_interval", "30s",
         "how often uptime, capacity and featured marks of the node search are rebuilt"},
        {"marketplace.featured_min_uptime", "95", "30-day uptime percentage to be featured"},
        {"marketplace.featured_count", "20", "featured nodes at most (the best uptimes)"},
        {"billing.platform_fee_bps", "1000",
         "platform fee in basis points of every charge (1000 = 10%)"},
        {"billing.relay_share_bps", "2000",
         "a CGNAT node's relay gets this share of the node's revenue, in basis points"},
        {"billing.low_balance_horizon", "1h",
         "users are warned when their balance cannot pay this long of their running VMs"},
        {"billing.require_balance_to_start", "true",
         "VMs that cost something are created and started only for users with a balance above "
         "zero (402 otherwise)"},
        {"billing.metering_interval", "1m",
         "how often whole hours are metered and balances checked"},
        {"billing.deposit_chain_id", "137", "chain users deposit USDC on (137: Polygon PoS)"},
        {"billing.deposit_token_address", "0x3c499c542cEF5E3811e1192ce70d8cC03d5c3359",
         "the USDC token contract on that chain"},
        {"billing.deposit_address", "", "the platform's deposit address users send USDC to"},
        {"billing.deposit_confirmations", "64", "blocks after which a deposit is credited"},
        {"chain.enabled", "false",
         "watch the chain for deposits (chain id, token, address: billing.deposit_*)"},
        {"chain.rpc_url", "", "JSON-RPC endpoint of an EVM node of billing.deposit_chain_id"},
        {"chain.poll_interval", "15s", "how often new blocks are scanned for deposits"},
        {"chain.request_timeout", "10s", "timeout of one JSON-RPC request"},
        {"chain.start_block", "0", "first block of a fresh scan (0: the head at first start)"},
        {"chain.max_block_range", "500", "blocks per eth_getLogs request"},
        {"payouts.enabled", "false", "pay operators' earnings on chain (needs chain.enabled)"},
        {"payouts.interval", "7d", "time between payout batches"},
        {"payouts.minimum", "10", "USDC of earnings an operator needs to be paid in a batch"},
        {"payouts.treasury_key_file", "/etc/decloud/treasury.key",
         "treasury private key (hex), a file of mode 0600 owned by the orchestrator's user"},
        {"payouts.gas_limit_cap", "150000", "refuse a payout whose gas estimate (+20%) is higher"},
        {"payouts.max_fee_wei", "500000000000", "cap of the fee per gas, in wei"},
        {"payouts.max_priority_fee_wei", "50000000000", "cap of the priority fee per gas, in wei"},
        {"payouts.max_attempts", "3",
         "nonces per payout (each reverted or taken) before it needs a human"},
        {"payouts.replace_after_blocks", "20",
         "blocks a pending payout transaction waits before it is replaced with higher fees "
         "(0: never)"},
        {"templates.directory", "/usr/share/decloud/templates",
         "VM templates, one folder per template (template.json, user-data.yaml)"},
        {"web.root", "",
         "the web console's built files (web/dist) served under /; empty: no console"},
        {"log.level", "info", "trace, debug, info, warn, error"},
        {"log.format", "human", "human or json"},
    };
}

#define DECLOUD_ASSIGN(out, expr)                            \
    do {                                                     \
        auto _r = (expr);                                    \
        if (!_r) return _r.error();                          \
        out = static_cast<std::decay_t<decltype(out)>>(*_r); \
    } while (0)

Result<OrchestratorConfig> BuildOrchestratorConfig(const common::Settings& s) {
    OrchestratorConfig c;
    DECLOUD_ASSIGN(c.server.address, s.String("server.address"));
    DECLOUD_ASSIGN(c.server.port, s.Int("server.port", 0, 65535));
    DECLOUD_ASSIGN(c.io_threads, s.Int("server.io_threads", 1, 64));
    DECLOUD_ASSIGN(c.server.body_limit, s.Int("server.body_limit_bytes", 1024, 1LL << 30));
    DECLOUD_ASSIGN(c.server.read_timeout, s.Duration("server.read_timeout"));
    DECLOUD_ASSIGN(c.server.idle_timeout, s.Duration("server.idle_timeout"));
    DECLOUD_ASSIGN(c.server.shutdown_grace, s.Duration("server.shutdown_grace"));
    DECLOUD_ASSIGN(c.database_url, s.String("database.url"));
    DECLOUD_ASSIGN(c.database_pool_size, s.Int("database.pool_size", 1, 256));
    DECLOUD_ASSIGN(c.blocking_threads, s.Int("database.blocking_threads", 1, 256));
    DECLOUD_ASSIGN(c.database_connect_timeout, s.Duration("database.connect_timeout"));
    std::chrono::milliseconds ms{};
    DECLOUD_ASSIGN(ms, s.Duration("nodes.heartbeat_interval"));
    if (ms < std::chrono::seconds{1})
        return Error::InvalidArgument("nodes.heartbeat_interval: at least 1s");
    c.nodes.heartbeat_interval = ms;
    DECLOUD_ASSIGN(ms, s.Duration("nodes.offline_after"));
    if (ms <= c.nodes.heartbeat_interval)
        return Error::InvalidArgument("nodes.offline_after: must exceed nodes.heartbeat_interval");
    c.nodes.offline_after = ms;
    DECLOUD_ASSIGN(c.nodes.public_ranges, s.StringList("nodes.public_ranges"));
    for (const auto& range : c.nodes.public_ranges)
        if (auto st = domain::ValidateCidr(range); !st)
            return Error::InvalidArgument("nodes.public_ranges: " + st.error().message);
    DECLOUD_ASSIGN(ms, s.Duration("nodes.registration_max_skew"));
    c.nodes.registration_max_skew = ms;
    DECLOUD_ASSIGN(c.offline_sweep_interval, s.Duration("nodes.offline_sweep_interval"));
    DECLOUD_ASSIGN(c.heartbeat_flush_interval, s.Duration("nodes.heartbeat_flush_interval"));
    if (c.heartbeat_flush_interval > std::chrono::seconds{1} ||
        c.heartbeat_flush_interval < std::chrono::milliseconds{10})
        return Error::InvalidArgument(
            "nodes.heartbeat_flush_interval: between 10ms and 1s (last-seen may lag at most 1s)");
    if (c.offline_sweep_interval < std::chrono::milliseconds{100})
        return Error::InvalidArgument("nodes.offline_sweep_interval: at least 100ms");
    DECLOUD_ASSIGN(c.auth.domain, s.String("auth.domain"));
    DECLOUD_ASSIGN(c.auth.uri, s.String("auth.uri"));
    if (c.auth.domain.empty() || c.auth.uri.empty())
        return Error::InvalidArgument("auth.domain and auth.uri: required");
    std::vector<std::string> chains;
    DECLOUD_ASSIGN(chains, s.StringList("auth.chain_ids"));
    c.auth.chain_ids.clear();
    for (const auto& id : chains) {
        char* end = nullptr;
        const auto v = std::strtoull(id.c_str(), &end, 10);
        if (id.empty() || *end != '\0' || v == 0)
            return Error::InvalidArgument("auth.chain_ids: '" + id + "' is not a chain id");
        c.auth.chain_ids.push_back(v);
    }
    if (c.auth.chain_ids.empty()) return Error::InvalidArgument("auth.chain_ids: at least one");
    DECLOUD_ASSIGN(c.auth_key_file, s.String("auth.key_file"));
    DECLOUD_ASSIGN(ms, s.Duration("auth.nonce_ttl"));
    c.auth.nonce_ttl = ms;
    DECLOUD_ASSIGN(ms, s.Duration("auth.access_token_ttl"));
    c.auth.access_token_ttl = ms;
    DECLOUD_ASSIGN(ms, s.Duration("auth.refresh_token_ttl"));
    c.auth.refresh_token_ttl = ms;
    DECLOUD_ASSIGN(ms, s.Duration("auth.clock_skew"));
    c.auth.clock_skew = ms;
    if (c.auth.access_token_ttl > c.auth.refresh_token_ttl)
        return Error::InvalidArgument(
            "auth.access_token_ttl: must not exceed auth.refresh_token_ttl");
    std::vector<std::string> admins;
    DECLOUD_ASSIGN(admins, s.StringList("auth.admin_wallets"));
    for (const auto& wallet : admins) {
        auto normalized = crypto::NormalizeEthereumAddress(wallet);
        if (!normalized)
            return Error::InvalidArgument("auth.admin_wallets: '" + wallet +
                                          "': " + normalized.error().message);
        c.auth.admin_wallets.push_back(*normalized);
    }
    DECLOUD_ASSIGN(c.auth_rate_limit.per_minute, s.Int("auth.rate_limit_per_minute", 1, 1'000'000));
    DECLOUD_ASSIGN(c.auth_rate_limit.burst, s.Int("auth.rate_limit_burst", 1, 1'000'000));
    std::string price;
    DECLOUD_ASSIGN(price, s.String("nodes.default_price_per_point"));
    auto micro = common::ParseUsdc(price);
    if (!micro)
        return Error::InvalidArgument("nodes.default_price_per_point: " + micro.error().message);
    c.nodes.default_price_per_point_micro_usdc = *micro;
    DECLOUD_ASSIGN(c.vms.images, s.StringList("vms.images"));
    if (c.vms.images.empty()) return Error::InvalidArgument("vms.images: at least one image");
    DECLOUD_ASSIGN(c.host_reserved_memory_mib, s.Int("vms.host_reserved_memory_mib", 0, 1 << 24));
    DECLOUD_ASSIGN(c.vms.max_vms_per_user, s.Int("vms.max_per_user", 1, 1'000'000));
    DECLOUD_ASSIGN(ms, s.Duration("vms.command_redelivery"));
    c.vms.command_redelivery = ms;
    DECLOUD_ASSIGN(ms, s.Duration("vms.stop_grace"));
    c.vms.stop_grace = ms;
    DECLOUD_ASSIGN(ms, s.Duration("vms.report_settle_time"));
    c.vms.report_settle_time = ms;
    DECLOUD_ASSIGN(ms, s.Duration("vms.orphan_grace"));
    c.vms.orphan_grace = ms;
    DECLOUD_ASSIGN(c.command_poll_interval, s.Duration("vms.command_poll_interval"));
    if (c.command_poll_interval < std::chrono::milliseconds{50})
        return Error::InvalidArgument("vms.command_poll_interval: at least 50ms");
    DECLOUD_ASSIGN(c.relay_reconcile_interval, s.Duration("relay.reconcile_interval"));
    if (c.relay_reconcile_interval < std::chrono::milliseconds{100})
        return Error::InvalidArgument("relay.reconcile_interval: at least 100ms");
    DECLOUD_ASSIGN(c.relays.want_standby, s.Bool("relay.standby"));
    DECLOUD_ASSIGN(c.relays.policy.max_tunnels_per_relay,
                   s.Int("relay.max_tunnels_per_relay", 1, 100'000));
    DECLOUD_ASSIGN(c.relays.policy.tunnel_bandwidth_mbps,
                   s.Int("relay.tunnel_bandwidth_mbps", 0, 1'000'000));
    {
        std::string text;
        DECLOUD_ASSIGN(text, s.String("relay.tunnel_pool"));
        auto pool = domain::TunnelAddressPool::Parse(text);
        if (!pool) return Error::InvalidArgument("relay.tunnel_pool: " + pool.error().message);
        c.relay_tunnel_pool = *pool;
        DECLOUD_ASSIGN(text, s.String("relay.public_ports"));
        auto ports = domain::PortRange::Parse(text);
        if (!ports) return Error::InvalidArgument("relay.public_ports: " + ports.error().message);
        c.relay_public_ports = *ports;
    }
    DECLOUD_ASSIGN(c.relays.auto_offer, s.Bool("relay.auto_offer"));
    DECLOUD_ASSIGN(c.relays.offer_wireguard_port, s.Int("relay.offer_wireguard_port", 1, 65535));
    DECLOUD_ASSIGN(c.relays.offer_bandwidth_mbps,
                   s.Int("relay.offer_bandwidth_mbps", 0, 1'000'000));
    DECLOUD_ASSIGN(ms, s.Duration("relay.release_after_offline"));
    c.relays.release_after_offline = ms;
    DECLOUD_ASSIGN(ms, s.Duration("relay.handshake_stale_after"));
    c.relays.handshake_stale_after = ms;
    DECLOUD_ASSIGN(ms, s.Duration("relay.port_audit_interval"));
    c.relays.port_audit_interval = ms;
    DECLOUD_ASSIGN(ms, s.Duration("relay.traffic_interval"));
    c.relays.traffic_interval = ms;
    DECLOUD_ASSIGN(c.relays.unanswered_probe_rounds_before_degraded,
                   s.Int("relay.unanswered_probes_before_degraded", 0, 1000));
    DECLOUD_ASSIGN(ms, s.Duration("relay.degraded_grace"));
    c.relays.policy.degraded_grace = ms;
    DECLOUD_ASSIGN(ms, s.Duration("relay.provisioning_timeout"));
    c.relays.policy.provisioning_timeout = ms;
    DECLOUD_ASSIGN(ms, s.Duration("relay.repair_timeout"));
    c.relays.policy.repair_timeout = ms;
    DECLOUD_ASSIGN(c.relays.policy.max_repair_attempts, s.Int("relay.max_repair_attempts", 1, 100));
    c.relays.uptime_window = c.nodes.uptime_window;
    DECLOUD_ASSIGN(c.marketplace_refresh_interval, s.Duration("marketplace.refresh_interval"));
    if (c.marketplace_refresh_interval < std::chrono::seconds{1})
        return Error::InvalidArgument("marketplace.refresh_interval: at least 1s");
    {
        double percent = 0;
        DECLOUD_ASSIGN(percent, s.Double("marketplace.featured_min_uptime", 0, 100));
        c.marketplace.featured.min_uptime_bp = static_cast<std::uint32_t>(percent * 100 + 1e-6);
    }
    DECLOUD_ASSIGN(c.marketplace.featured.count, s.Int("marketplace.featured_count", 0, 1000));
    c.marketplace.uptime_window = c.nodes.uptime_window;
    {
        std::int64_t bps = 0;
        DECLOUD_ASSIGN(bps, s.Int("billing.platform_fee_bps", 0, 10'000));
        c.billing.platform_fee_bps = static_cast<std::uint32_t>(bps);
        DECLOUD_ASSIGN(bps, s.Int("billing.relay_share_bps", 0, 10'000));
        c.billing.relay_share_bps = static_cast<std::uint32_t>(bps);
        DECLOUD_ASSIGN(ms, s.Duration("billing.low_balance_horizon"));
        c.billing.low_balance_horizon = ms;
        DECLOUD_ASSIGN(c.billing.require_balance_to_start,
                       s.Bool("billing.require_balance_to_start"));
        DECLOUD_ASSIGN(c.billing_metering_interval, s.Duration("billing.metering_interval"));
        if (c.billing_metering_interval < std::chrono::seconds{1})
            return Error::InvalidArgument("billing.metering_interval: at least 1s");
        std::int64_t chain_id = 0;
        DECLOUD_ASSIGN(chain_id, s.Int("billing.deposit_chain_id", 1, 1LL << 53));
        c.billing.deposit.chain_id = static_cast<std::uint64_t>(chain_id);
        DECLOUD_ASSIGN(c.billing.deposit.token_address, s.String("billing.deposit_token_address"));
        DECLOUD_ASSIGN(c.billing.deposit.deposit_address, s.String("billing.deposit_address"));
        for (std::string* address :
             {&c.billing.deposit.token_address, &c.billing.deposit.deposit_address}) {
            if (address->empty()) continue;
            auto normalized = crypto::NormalizeEthereumAddress(*address);
            if (!normalized)
                return Error::InvalidArgument("billing: '" + *address +
                                              "': " + normalized.error().message);
            *address = *normalized;
        }
        std::int64_t confirmations = 0;
        DECLOUD_ASSIGN(confirmations, s.Int("billing.deposit_confirmations", 0, 100'000));
        c.billing.deposit.confirmations = static_cast<std::uint32_t>(confirmations);
    }
    {
        DECLOUD_ASSIGN(c.chain.enabled, s.Bool("chain.enabled"));
        DECLOUD_ASSIGN(c.chain.rpc_url, s.String("chain.rpc_url"));
        DECLOUD_ASSIGN(c.chain.poll_interval, s.Duration("chain.poll_interval"));
        if (c.chain.poll_interval < std::chrono::milliseconds{100})
            return Error::InvalidArgument("chain.poll_interval: at least 100ms");
        DECLOUD_ASSIGN(c.chain.request_timeout, s.Duration("chain.request_timeout"));
        if (c.chain.request_timeout < std::chrono::milliseconds{100})
            return Error::InvalidArgument("chain.request_timeout: at least 100ms");
        std::int64_t n = 0;
        DECLOUD_ASSIGN(n, s.Int("chain.start_block", 0, 1LL << 53));
        c.chain.start_block = static_cast<std::uint64_t>(n);
        DECLOUD_ASSIGN(n, s.Int("chain.max_block_range", 1, 100'000));
        c.chain.max_block_range = static_cast<std::uint64_t>(n);
        if (c.chain.enabled) {
            if (c.chain.rpc_url.empty())
                return Error::InvalidArgument("chain.enabled needs chain.rpc_url");
            if (c.billing.deposit.deposit_address.empty())
                return Error::InvalidArgument("chain.enabled needs billing.deposit_address");
            if (c.billing.deposit.confirmations < 1)
                return Error::InvalidArgument(
                    "chain.enabled needs billing.deposit_confirmations of at least 1");
        }

        auto& p = c.payouts;
        DECLOUD_ASSIGN(p.enabled, s.Bool("payouts.enabled"));
        DECLOUD_ASSIGN(p.options.interval, s.Duration("payouts.interval"));
        if (p.options.interval < std::chrono::seconds{1})
            return Error::InvalidArgument("payouts.interval: at least 1s");
        std::string text;
        DECLOUD_ASSIGN(text, s.String("payouts.minimum"));
        auto minimum = domain::ParseAmount(text);
        if (!minimum || minimum->IsZero())
            return Error::InvalidArgument("payouts.minimum: '" + text +
                                          "': a positive USDC amount, at most 6 decimals");
        p.options.minimum = *minimum;
        DECLOUD_ASSIGN(p.treasury_key_file, s.String("payouts.treasury_key_file"));
        DECLOUD_ASSIGN(n, s.Int("payouts.gas_limit_cap", 21'000, 10'000'000));
        p.options.sender.gas_limit_cap = static_cast<std::uint64_t>(n);
        for (auto [key, out] :
             {std::pair{"payouts.max_fee_wei", &p.options.sender.max_fee},
              std::pair{"payouts.max_priority_fee_wei", &p.options.sender.max_priority_fee}}) {
            DECLOUD_ASSIGN(text, s.String(key));
            auto wei = chain::U256::ParseDecimal(text);
            if (!wei) return Error::InvalidArgument(std::string(key) + ": '" + text + "': wei");
            *out = *wei;
        }
        if (p.options.sender.max_priority_fee > p.options.sender.max_fee)
            return Error::InvalidArgument(
                "payouts.max_priority_fee_wei: must not exceed payouts.max_fee_wei");
        DECLOUD_ASSIGN(n, s.Int("payouts.max_attempts", 1, 100));
        p.options.sender.max_attempts = static_cast<int>(n);
        DECLOUD_ASSIGN(n, s.Int("payouts.replace_after_blocks", 0, 1'000'000));
        p.options.sender.replace_after_blocks = static_cast<std::uint64_t>(n);
        p.options.sender.chain_id = c.billing.deposit.chain_id;
        p.options.sender.confirmations =
            std::max<std::uint64_t>(1, c.billing.deposit.confirmations);
        if (p.enabled) {
            if (!c.chain.enabled)
                return Error::InvalidArgument("payouts.enabled needs chain.enabled");
            if (p.treasury_key_file.empty())
                return Error::InvalidArgument("payouts.enabled needs payouts.treasury_key_file");
        }
    }
    DECLOUD_ASSIGN(c.templates_directory, s.String("templates.directory"));
    DECLOUD_ASSIGN(c.web_root, s.String("web.root"));
    DECLOUD_ASSIGN(c.log_level, s.String("log.level"));
    DECLOUD_ASSIGN(c.log_format, s.String("log.format"));
    c.server.threads_hint = c.io_threads;
    return c;
}

#undef DECLOUD_ASSIGN

}  // namespace decloud::orchestrator
