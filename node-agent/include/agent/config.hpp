#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "agent/app/orchestrator_link.hpp"
#include "decloud/common/settings.hpp"
#include "decloud/net/http_server.hpp"

namespace decloud::agent {

struct VmSettings {
    bool enabled = true;
    std::string libvirt_uri = "qemu:///system";
    std::string domain_type = "auto";  // auto, kvm, qemu
    std::string images_dir = "/var/lib/decloud-agent/images";
    std::string image_base_url;  // empty: local images only
    std::string network = "default";
    std::uint64_t memory_reserved_mib = 1024;
    std::uint32_t vcpu_overcommit = 4;
    std::uint32_t report_every_heartbeats = 4;
};

struct IngressSettings {
    bool enabled = true;
    std::string address = "0.0.0.0";
    std::uint16_t port = 8088;
    std::string vm_domain;
    std::vector<std::uint16_t> allowed_ports;
    bool rewrite_host = false;
    std::vector<std::string> trusted_proxies;
    std::chrono::milliseconds connect_timeout{5'000};
    std::chrono::milliseconds idle_timeout{60'000};
    std::chrono::milliseconds header_timeout{30'000};
    std::size_t max_connections = 20'000;
    std::size_t max_connections_per_client = 512;
    std::chrono::milliseconds total_timeout{100'000};
    std::chrono::milliseconds websocket_idle_timeout{600'000};
    std::string tls_cert;
    std::string tls_key;
    std::chrono::milliseconds refresh_interval{5'000};
    std::chrono::microseconds busy_poll{0};  // see proxy::RunEventLoop; 0: off
    bool access_log = false;
};

// Both relay roles; the orchestrator decides which this node plays (see app::RelayAgent).
struct RelaySettings {
    bool enabled = true;
    std::string wireguard = "auto";  // auto (kernel module if it works), kernel, userspace
    std::string wireguard_go = "wireguard-go";
    std::string nft_table = "decloud_relay";        // public ports forwarded into tunnels
    std::string cgnat_nft_table = "decloud_cgnat";  // tunnel ports forwarded to VMs
    // Tunnel latency: UDP probes to each peer's tunnel address on this port, which every agent
    // echoes on its relay interfaces (0: neither probe nor echo), one round per interval.
    std::uint16_t probe_port = 51819;
    std::chrono::milliseconds probe_interval{10'000};
};

struct AgentConfig {
    std::string orchestrator_url;
    std::string orchestrator_ca_file;  // empty: the system's trust store
    app::NodeProfile profile;
    std::string state_dir;
    std::string vm_storage_path;
    IngressSettings ingress;
    RelaySettings relay;
    std::string sysbench = "sysbench";
    std::uint32_t benchmark_threads = 0;
    std::uint32_t benchmark_seconds = 10;
    double baseline_events_per_second_per_core = 4000;
    double points_per_baseline_core = 100;
    std::chrono::milliseconds benchmark_max_age{std::chrono::hours{24 * 7}};
    double heartbeat_jitter = 0.1;
    std::chrono::milliseconds initial_backoff{1'000};
    std::chrono::milliseconds max_backoff{60'000};
    std::chrono::milliseconds request_timeout{10'000};
    VmSettings vms;
    net::ServerOptions server;  // the agent's own /healthz, /readyz, /metrics
    std::string log_level = "info";
    std::string log_format = "human";

    std::string NodeKeyPath() const { return state_dir + "/node.key"; }
    std::string BenchmarkCachePath() const { return state_dir + "/benchmark.json"; }
};

std::vector<common::SettingSpec> AgentSettingSpecs();
inline constexpr const char* kAgentEnvPrefix = "DECLOUD_AGENT";

// Validates as well: the wallet must be a valid address, region and tags well-formed.
common::Result<AgentConfig> BuildAgentConfig(const common::Settings& settings);

}  // namespace decloud::agent
