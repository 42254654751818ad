#include "agent/config.hpp"

#include "agent/domain/ingress/routing.hpp"

#include "decloud/common/money.hpp"
#include "decloud/crypto/crypto.hpp"

namespace decloud::agent {

using common::Error;
using common::Result;

std::vector<common::SettingSpec> AgentSettingSpecs() {
    return {
        {"orchestrator.url", "http://127.0.0.1:8080", "where the orchestrator's API is"},
        {"orchestrator.ca_file", "",
         "PEM certificates to trust for an https URL instead of the system's"},
        {"node.operator_wallet", "", "operator's Ethereum address (earnings go there); required"},
        {"node.public_ip", "",
         "this node's public address, if known; empty: let the orchestrator see it"},
        {"node.region", "", "region name, lowercase letters, digits and '-'"},
        {"node.tags", "", "tags for the marketplace"},
        {"node.behind_cgnat", "auto", "auto, true or false: force the relay decision"},
        {"node.state_dir", "/var/lib/decloud-agent", "node key, benchmark cache"},
        {"node.vm_storage_path", "/var/lib/decloud-agent/vms",
         "where VM disks live (measured for capacity)"},
        {"node.price_per_point", "0",
         "USDC per compute point per hour this node charges; 0: the platform's default"},
        {"vms.enabled", "true", "manage VMs with libvirt (false: heartbeat only)"},
        {"vms.libvirt_uri", "qemu:///system", "libvirt connection"},
        {"vms.domain_type", "auto", "auto (kvm where KVM works, else qemu), kvm or qemu"},
        {"vms.images_dir", "/var/lib/decloud-agent/images",
         "base images, one folder per image (disk.qcow2, optional vmlinuz/initrd.img/cmdline, "
         "SHA256SUMS)"},
        {"vms.image_base_url", "",
         "fetch missing images from <url>/<name>/ (SHA256SUMS required); empty: local only"},
        {"vms.network", "default", "libvirt network VMs join"},
        {"vms.memory_reserved_mib", "1024", "memory kept for the host, never given to VMs"},
        {"vms.vcpu_overcommit", "4", "vCPUs VMs may have per hardware thread, together"},
        {"vms.report_every_heartbeats", "4", "report the VMs to the orchestrator this often"},
        {"ingress.enabled", "true", "serve HTTP and WebSocket to this node's VMs"},
        {"ingress.address", "0.0.0.0", "address the ingress proxy listens on"},
        {"ingress.port", "8088", "port the ingress proxy listens on"},
        {"ingress.vm_domain", "",
         "host-form suffix: {name}.{vm_domain} and {port}-{name}.{vm_domain}; empty: path form "
         "only"},
        {"ingress.allowed_ports", "22,80,443,3000,5000,8000,8080,8443,9000",
         "VM ports anyone may reach (besides each VM's own exposed ports)"},
        {"ingress.rewrite_host", "false",
         "send Host as the VM's address:port instead of as received"},
        {"ingress.trusted_proxies", "",
         "client addresses (a TLS proxy in front, e.g. 127.0.0.1 for Caddy) whose "
         "X-Forwarded-Proto/-Host are passed on instead of replaced"},
        {"ingress.connect_timeout", "5s", "time allowed to connect to a VM port"},
        {"ingress.idle_timeout", "60s",
         "an HTTP exchange or keep-alive connection with no bytes moving ends"},
        {"ingress.header_timeout", "30s",
         "a request head must arrive whole within this time of its first byte (408 after)"},
        {"ingress.total_timeout", "100s", "longest HTTP exchange, request to last response byte"},
        {"ingress.websocket_idle_timeout", "10m", "a WebSocket with no bytes moving is closed"},
        {"ingress.tls_cert", "", "PEM certificate chain: the listener speaks TLS (SIGHUP reloads)"},
        {"ingress.tls_key", "", "PEM private key for ingress.tls_cert"},
        {"ingress.refresh_interval", "5s", "how often the VM routes are re-read from libvirt"},
        {"ingress.max_connections", "20000",
         "client connections open at once; past it a connection gets a 503 and is closed"},
        {"ingress.max_connections_per_client", "512",
         "client connections open at once from one address (trusted proxies excepted); 429 past "
         "it"},
        {"ingress.access_log", "false",
         "log one line per request through the proxy: client, request, VM, status, bytes, time"},
        {"ingress.busy_poll_us", "0",
         "microseconds the proxy keeps polling after traffic before it sleeps: lower latency for "
         "CPU while traffic flows (0: off; for nodes with a core to spare)"},
        {"relay.enabled", "true",
         "take part in relaying (as a relay or behind CGNAT) when the orchestrator says so"},
        {"relay.wireguard", "auto", "auto (kernel module when it works), kernel or userspace"},
        {"relay.wireguard_go", "wireguard-go", "wireguard-go executable (userspace WireGuard)"},
        {"relay.nft_table", "decloud_relay", "nftables table of the public ports of a relay"},
        {"relay.cgnat_nft_table", "decloud_cgnat",
         "nftables table forwarding tunnel ports to VMs behind CGNAT"},
        {"relay.probe_port", "51819",
         "UDP port of the tunnel latency probes, echoed on relay interfaces (0: off); keep it "
         "out of the relays' public port range"},
        {"relay.probe_interval", "10s", "how often the round trip to each tunnel peer is measured"},
        {"benchmark.sysbench", "sysbench", "sysbench executable"},
        {"benchmark.threads", "0", "benchmark threads; 0: all hardware threads"},
        {"benchmark.seconds", "10", "benchmark duration"},
        {"benchmark.baseline_events_per_second", "4000",
         "sysbench cpu events/s of one reference core"},
        {"benchmark.points_per_baseline_core", "100", "compute points one reference core is worth"},
        {"benchmark.max_age", "7d", "re-run the benchmark after this long"},
        {"heartbeat.jitter", "0.1", "random spread of the heartbeat interval, as a fraction"},
        {"heartbeat.initial_backoff", "1s",
         "first retry delay when the orchestrator is unreachable"},
        {"heartbeat.max_backoff", "60s", "longest retry delay"},
        {"heartbeat.request_timeout", "10s", "time allowed for one call to the orchestrator"},
        {"server.address", "127.0.0.1", "address of the agent's health and metrics endpoint"},
        {"server.port", "9090", "port of the agent's health and metrics endpoint"},
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

Result<AgentConfig> BuildAgentConfig(const common::Settings& s) {
    AgentConfig c;
    DECLOUD_ASSIGN(c.orchestrator_url, s.String("orchestrator.url"));
    DECLOUD_ASSIGN(c.orchestrator_ca_file, s.String("orchestrator.ca_file"));
    std::string wallet;
    DECLOUD_ASSIGN(wallet, s.String("node.operator_wallet"));
    if (wallet.empty())
        return Error::InvalidArgument(
            "node.operator_wallet: required (the Ethereum address that receives this node's "
            "earnings)");
    auto normalized = crypto::NormalizeEthereumAddress(wallet);
    if (!normalized)
        return Error::InvalidArgument("node.operator_wallet: " + normalized.error().message);
    c.profile.operator_wallet = *normalized;
    DECLOUD_ASSIGN(c.profile.public_ip, s.String("node.public_ip"));
    DECLOUD_ASSIGN(c.profile.region, s.String("node.region"));
    DECLOUD_ASSIGN(c.profile.tags, s.StringList("node.tags"));
    std::string cgnat;
    DECLOUD_ASSIGN(cgnat, s.String("node.behind_cgnat"));
    if (cgnat == "true")
        c.profile.behind_cgnat = true;
    else if (cgnat == "false")
        c.profile.behind_cgnat = false;
    else if (cgnat != "auto")
        return Error::InvalidArgument("node.behind_cgnat: auto, true or false");
    DECLOUD_ASSIGN(c.state_dir, s.String("node.state_dir"));
    DECLOUD_ASSIGN(c.vm_storage_path, s.String("node.vm_storage_path"));
    if (c.state_dir.empty()) return Error::InvalidArgument("node.state_dir: required");
    std::string price;
    DECLOUD_ASSIGN(price, s.String("node.price_per_point"));
    auto micro = common::ParseUsdc(price);
    if (!micro) return Error::InvalidArgument("node.price_per_point: " + micro.error().message);
    c.profile.price_per_point_micro_usdc = *micro;
    DECLOUD_ASSIGN(c.vms.enabled, s.Bool("vms.enabled"));
    DECLOUD_ASSIGN(c.vms.libvirt_uri, s.String("vms.libvirt_uri"));
    DECLOUD_ASSIGN(c.vms.domain_type, s.String("vms.domain_type"));
    if (c.vms.domain_type != "auto" && c.vms.domain_type != "kvm" && c.vms.domain_type != "qemu")
        return Error::InvalidArgument("vms.domain_type: auto, kvm or qemu");
    DECLOUD_ASSIGN(c.vms.images_dir, s.String("vms.images_dir"));
    DECLOUD_ASSIGN(c.vms.image_base_url, s.String("vms.image_base_url"));
    if (!c.vms.image_base_url.empty() && !c.vms.image_base_url.starts_with("https://") &&
        !c.vms.image_base_url.starts_with("http://"))
        return Error::InvalidArgument("vms.image_base_url: an http:// or https:// URL");
    while (c.vms.image_base_url.ends_with("/")) c.vms.image_base_url.pop_back();
    DECLOUD_ASSIGN(c.vms.network, s.String("vms.network"));
    DECLOUD_ASSIGN(c.vms.memory_reserved_mib, s.Int("vms.memory_reserved_mib", 0, 1 << 24));
    DECLOUD_ASSIGN(c.vms.vcpu_overcommit, s.Int("vms.vcpu_overcommit", 1, 64));
    DECLOUD_ASSIGN(c.vms.report_every_heartbeats, s.Int("vms.report_every_heartbeats", 1, 1000));
    DECLOUD_ASSIGN(c.ingress.enabled, s.Bool("ingress.enabled"));
    DECLOUD_ASSIGN(c.ingress.address, s.String("ingress.address"));
    DECLOUD_ASSIGN(c.ingress.port, s.Int("ingress.port", 0, 65535));
    DECLOUD_ASSIGN(c.ingress.vm_domain, s.String("ingress.vm_domain"));
    std::vector<std::string> ports;
    DECLOUD_ASSIGN(ports, s.StringList("ingress.allowed_ports"));
    c.ingress.allowed_ports.clear();
    for (const auto& text : ports) {
        const auto port = domain::ingress::ParsePort(text);
        if (!port)
            return Error::InvalidArgument("ingress.allowed_ports: '" + text + "' is not a port");
        c.ingress.allowed_ports.push_back(*port);
    }
    DECLOUD_ASSIGN(c.ingress.rewrite_host, s.Bool("ingress.rewrite_host"));
    DECLOUD_ASSIGN(c.ingress.trusted_proxies, s.StringList("ingress.trusted_proxies"));
    DECLOUD_ASSIGN(c.ingress.connect_timeout, s.Duration("ingress.connect_timeout"));
    DECLOUD_ASSIGN(c.ingress.idle_timeout, s.Duration("ingress.idle_timeout"));
    DECLOUD_ASSIGN(c.ingress.header_timeout, s.Duration("ingress.header_timeout"));
    DECLOUD_ASSIGN(c.ingress.total_timeout, s.Duration("ingress.total_timeout"));
    DECLOUD_ASSIGN(c.ingress.websocket_idle_timeout, s.Duration("ingress.websocket_idle_timeout"));
    DECLOUD_ASSIGN(c.ingress.tls_cert, s.String("ingress.tls_cert"));
    DECLOUD_ASSIGN(c.ingress.tls_key, s.String("ingress.tls_key"));
    if (c.ingress.tls_cert.empty() != c.ingress.tls_key.empty())
        return Error::InvalidArgument("ingress.tls_cert and ingress.tls_key go together");
    DECLOUD_ASSIGN(c.ingress.refresh_interval, s.Duration("ingress.refresh_interval"));
    DECLOUD_ASSIGN(c.ingress.access_log, s.Bool("ingress.access_log"));
    std::int64_t max_connections = 0, max_connections_per_client = 0;
    DECLOUD_ASSIGN(max_connections, s.Int("ingress.max_connections", 1, 10'000'000));
    DECLOUD_ASSIGN(max_connections_per_client,
                   s.Int("ingress.max_connections_per_client", 1, 10'000'000));
    c.ingress.max_connections = static_cast<std::size_t>(max_connections);
    c.ingress.max_connections_per_client = static_cast<std::size_t>(max_connections_per_client);
    std::int64_t busy_poll_us = 0;
    DECLOUD_ASSIGN(busy_poll_us, s.Int("ingress.busy_poll_us", 0, 1'000'000));
    c.ingress.busy_poll = std::chrono::microseconds{busy_poll_us};
    for (const auto& [key, value] :
         {std::pair{"ingress.connect_timeout", c.ingress.connect_timeout},
          {"ingress.idle_timeout", c.ingress.idle_timeout},
          {"ingress.header_timeout", c.ingress.header_timeout},
          {"ingress.total_timeout", c.ingress.total_timeout},
          {"ingress.websocket_idle_timeout", c.ingress.websocket_idle_timeout},
          {"ingress.refresh_interval", c.ingress.refresh_interval}}) {
        if (value.count() <= 0)
            return Error::InvalidArgument(std::string(key) + ": must be positive");
    }
    DECLOUD_ASSIGN(c.relay.enabled, s.Bool("relay.enabled"));
    DECLOUD_ASSIGN(c.relay.wireguard, s.String("relay.wireguard"));
    if (c.relay.wireguard != "auto" && c.relay.wireguard != "kernel" &&
        c.relay.wireguard != "userspace")
        return Error::InvalidArgument("relay.wireguard: auto, kernel or userspace");
    DECLOUD_ASSIGN(c.relay.wireguard_go, s.String("relay.wireguard_go"));
    DECLOUD_ASSIGN(c.relay.nft_table, s.String("relay.nft_table"));
    DECLOUD_ASSIGN(c.relay.cgnat_nft_table, s.String("relay.cgnat_nft_table"));
    DECLOUD_ASSIGN(c.relay.probe_port, s.Int("relay.probe_port", 0, 65535));
    DECLOUD_ASSIGN(c.relay.probe_interval, s.Duration("relay.probe_interval"));
    if (c.relay.probe_interval < std::chrono::seconds{1})
        return Error::InvalidArgument("relay.probe_interval: at least 1s");
    if (c.relay.nft_table == c.relay.cgnat_nft_table)
        return Error::InvalidArgument("relay.nft_table and relay.cgnat_nft_table must differ");
    DECLOUD_ASSIGN(c.sysbench, s.String("benchmark.sysbench"));
    DECLOUD_ASSIGN(c.benchmark_threads, s.Int("benchmark.threads", 0, 4096));
    DECLOUD_ASSIGN(c.benchmark_seconds, s.Int("benchmark.seconds", 1, 600));
    DECLOUD_ASSIGN(c.baseline_events_per_second_per_core,
                   s.Double("benchmark.baseline_events_per_second", 1e-3, 1e9));
    DECLOUD_ASSIGN(c.points_per_baseline_core,
                   s.Double("benchmark.points_per_baseline_core", 1, 1e6));
    DECLOUD_ASSIGN(c.benchmark_max_age, s.Duration("benchmark.max_age"));
    DECLOUD_ASSIGN(c.heartbeat_jitter, s.Double("heartbeat.jitter", 0, 0.5));
    DECLOUD_ASSIGN(c.initial_backoff, s.Duration("heartbeat.initial_backoff"));
    DECLOUD_ASSIGN(c.max_backoff, s.Duration("heartbeat.max_backoff"));
    DECLOUD_ASSIGN(c.request_timeout, s.Duration("heartbeat.request_timeout"));
    if (c.initial_backoff.count() <= 0 || c.max_backoff < c.initial_backoff)
        return Error::InvalidArgument(
            "heartbeat.max_backoff: must be at least heartbeat.initial_backoff");
    DECLOUD_ASSIGN(c.server.address, s.String("server.address"));
    DECLOUD_ASSIGN(c.server.port, s.Int("server.port", 0, 65535));
    DECLOUD_ASSIGN(c.log_level, s.String("log.level"));
    DECLOUD_ASSIGN(c.log_format, s.String("log.format"));
    return c;
}

#undef DECLOUD_ASSIGN

}  // namespace decloud::agent
