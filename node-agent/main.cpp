// decloud-agent: discovers this machine, benchmarks it, and keeps it registered with the
// orchestrator (dialling out, so it works behind CGNAT). Only wiring lives here.

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <CLI/CLI.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <filesystem>
#include <functional>
#include <iostream>
#include <thread>

#include "agent/adapters/benchmark.hpp"
#include "agent/adapters/identity.hpp"
#include "agent/adapters/image_catalog.hpp"
#include "agent/adapters/libvirt/libvirt_console.hpp"
#include "agent/adapters/libvirt/libvirt_hypervisor.hpp"
#include "agent/adapters/nftables/iptables_forward_exception.hpp"
#include "agent/adapters/nftables/nft_port_forwarder.hpp"
#include "agent/adapters/sysinfo.hpp"
#include "agent/adapters/wireguard/netlink_wireguard.hpp"
#include "agent/adapters/wireguard/uapi_wireguard.hpp"
#include "agent/adapters/wireguard/udp_tunnel_prober.hpp"
#include "agent/app/console_sessions.hpp"
#include "agent/app/ingress_routes.hpp"
#include "agent/app/orchestrator_link.hpp"
#include "agent/app/relay_agent.hpp"
#include "agent/app/vm_manager.hpp"
#include "agent/config.hpp"
#include "agent/proxy/ingress_metrics.hpp"
#include "agent/proxy/ingress_proxy.hpp"
#include "agent/setup/setup.hpp"
#include "decloud/common/log.hpp"
#include "decloud/common/metrics.hpp"

#ifndef DECLOUD_VERSION
#define DECLOUD_VERSION "0.0.0"
#endif

namespace asio = boost::asio;
namespace http = boost::beast::http;
using namespace decloud;

namespace {

template <class T>
T OrDie(common::Result<T> r, std::string_view what) {
    if (!r) throw std::runtime_error(std::string(what) + ": " + r.error().message);
    return std::move(*r);
}

agent::proxy::IngressSettings ToProxySettings(const agent::IngressSettings& in) {
    agent::proxy::IngressSettings out;
    out.listen_address = in.address;
    out.listen_port = in.port;
    out.routing.vm_domain = in.vm_domain;
    out.routing.allowed_ports = in.allowed_ports;
    out.preserve_host = !in.rewrite_host;
    out.trusted_proxies = in.trusted_proxies;
    out.connect_timeout = in.connect_timeout;
    out.idle_timeout = in.idle_timeout;
    out.header_timeout = in.header_timeout;
    out.total_timeout = in.total_timeout;
    out.websocket_idle_timeout = in.websocket_idle_timeout;
    if (!in.tls_cert.empty()) out.tls = agent::proxy::TlsFiles{in.tls_cert, in.tls_key};
    out.access_log = in.access_log;
    out.max_connections = in.max_connections;
    out.max_connections_per_client = in.max_connections_per_client;
    return out;
}

// Re-reads the routes every `interval` (VM commands trigger a refresh of their own as well).
asio::awaitable<void> RunPeriodically(asio::io_context* ioc, std::function<void()>* refresh,
                                      std::chrono::milliseconds interval) {
    asio::steady_timer timer(*ioc);
    while (true) {
        (*refresh)();
        timer.expires_after(interval);
        auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
        if (ec) co_return;
    }
}

int Run(const agent::AgentConfig& config) {
    agent::proxy::RaiseOpenFileLimit();
    std::error_code ec;
    std::filesystem::create_directories(config.state_dir, ec);
    if (ec)
        throw std::runtime_error("cannot create state directory " + config.state_dir + ": " +
                                 ec.message());
    ::chmod(config.state_dir.c_str(), 0700);

    auto key = OrDie(agent::adapters::LoadOrCreateNodeKey(config.NodeKeyPath()), "node key");
    spdlog::info("node key {} ({})", key.PublicKeyBase64(), config.NodeKeyPath());
    const agent::adapters::SysinfoPaths paths;
    auto resources = OrDie(agent::adapters::DiscoverResources(paths, config.vm_storage_path),
                           "resource discovery");
    resources.vms_enabled = config.vms.enabled;
    spdlog::info("{}: {} cores / {} threads, {} MiB memory, {} GiB free for VMs, {} GPU(s), KVM {}",
                 resources.cpu_model, resources.cpu_cores, resources.cpu_threads,
                 resources.memory_bytes >> 20, resources.storage_free_bytes >> 30,
                 resources.gpus.size(),
                 resources.kvm_available ? "usable" : "not usable (QEMU emulation)");

    agent::adapters::BenchmarkOptions bench;
    bench.sysbench = config.sysbench;
    bench.threads = config.benchmark_threads;
    bench.seconds = config.benchmark_seconds;
    bench.cache_file = config.BenchmarkCachePath();
    bench.max_age = std::chrono::duration_cast<std::chrono::hours>(config.benchmark_max_age);
    common::SystemClock clock;
    auto compute = OrDie(agent::adapters::RunOrLoadBenchmark(
                             bench, resources, config.baseline_events_per_second_per_core,
                             config.points_per_baseline_core, clock.Now()),
                         "CPU benchmark");
    spdlog::info("compute points {} ({:.1f} events/s on {} threads)", compute.points,
                 compute.events_per_second, compute.benchmark_threads);

    auto url = OrDie(net::ParseHttpUrl(config.orchestrator_url), "orchestrator.url");
    agent::app::LinkOptions link_options;
    link_options.orchestrator_host = url.host;
    link_options.orchestrator_port = url.port;
    link_options.base_path = url.base_path == "/" ? "" : url.base_path;
    link_options.agent_version = DECLOUD_VERSION;
    link_options.heartbeat_jitter = config.heartbeat_jitter;
    link_options.report_every_heartbeats = config.vms.report_every_heartbeats;
    link_options.initial_backoff = config.initial_backoff;
    link_options.max_backoff = config.max_backoff;
    link_options.http.request_timeout = config.request_timeout;
    link_options.http.tls = url.scheme == "https";
    link_options.http.ca_file = config.orchestrator_ca_file;
    link_options.http.connect_timeout =
        std::min(config.request_timeout, std::chrono::milliseconds{5000});

    asio::io_context ioc(1);
    auto sampler = std::make_shared<agent::adapters::UsageSampler>(paths, config.vm_storage_path);
    auto link = std::make_shared<agent::app::OrchestratorLink>(
        ioc.get_executor(), link_options, std::move(key), config.profile, resources, compute,
        [sampler] { return sampler->Sample(0); }, [&clock] { return clock.Now(); });

    // VMs: commands from the orchestrator run on the manager's worker; reports and results go
    // back through the link. Hypervisor calls block, so they never run on the I/O thread.
    asio::thread_pool blocking(1);
    // The ingress proxy has its own thread, so VM traffic never waits behind the agent's work.
    asio::io_context ingress_io(1);
    std::unique_ptr<agent::proxy::IngressProxy> ingress;
    std::thread ingress_thread;
    std::function<void()> refresh_routes = [] {};
    std::unique_ptr<agent::adapters::LibvirtHypervisor> hypervisor;
    std::unique_ptr<agent::adapters::ImageCatalog> images;
    std::unique_ptr<agent::app::VmManager> vms;
    std::unique_ptr<agent::adapters::LibvirtConsoles> consoles;
    std::shared_ptr<agent::app::ConsoleSessions> console_sessions;
    if (config.vms.enabled) {
        agent::adapters::LibvirtOptions lv;
        lv.uri = config.vms.libvirt_uri;
        lv.storage_dir = config.vm_storage_path;
        lv.domain_type = config.vms.domain_type == "auto"
                             ? (resources.kvm_available ? "kvm" : "qemu")
                             : config.vms.domain_type;
        std::filesystem::create_directories(config.vm_storage_path, ec);
        hypervisor = std::make_unique<agent::adapters::LibvirtHypervisor>(lv);
        agent::adapters::ImageFetchOptions fetch;
        fetch.base_url = config.vms.image_base_url;
        images = std::make_unique<agent::adapters::ImageCatalog>(config.vms.images_dir, fetch);
        agent::app::VmManagerOptions vm_options;
        const auto memory_mib = resources.memory_bytes >> 20;
        vm_options.max_memory_mib = memory_mib > config.vms.memory_reserved_mib
                                        ? memory_mib - config.vms.memory_reserved_mib
                                        : 0;
        vm_options.max_vcpus = resources.cpu_threads * config.vms.vcpu_overcommit;
        vm_options.network = config.vms.network;
        vms = std::make_unique<agent::app::VmManager>(
            *hypervisor, *images, vm_options, [link, &refresh_routes](proto::CommandResult r) {
                link->PostResult(std::move(r));
                refresh_routes();  // a VM that started or stopped changes the routes now
            });
        link->SetCommandHandler(
            [&vms](std::vector<proto::Command> commands) { vms->Submit(std::move(commands)); });
        link->SetReportSource([&vms] { return vms->Report(); }, blocking,
                              [&vms](const proto::VmReport& r) { vms->ReportDelivered(r); });
        // Serial consoles: the orchestrator opens them over the command channel for a VM's owner.
        consoles = std::make_unique<agent::adapters::LibvirtConsoles>(lv.uri);
        console_sessions =
            std::make_shared<agent::app::ConsoleSessions>(ioc.get_executor(), *consoles);
        link->SetConsoleHooks(
            [raw = console_sessions.get()](proto::ConsoleMessage message,
                                           agent::app::OrchestratorLink::ConsoleSend send) {
                raw->Handle(std::move(message), std::move(send));
            },
            [raw = console_sessions.get()] { raw->CloseAll(); });
        spdlog::info("VMs: libvirt {} (domain type {}), images in {}, disks in {}", lv.uri,
                     lv.domain_type, config.vms.images_dir, config.vm_storage_path);
    } else {
        spdlog::info("VMs disabled (vms.enabled = false): heartbeating only");
        // A command that reaches this node anyway fails at once with the reason, rather than
        // leaving its VM waiting.
        // A raw pointer: the link owns this handler, and outlives every call of it.
        link->SetCommandHandler([raw = link.get()](std::vector<proto::Command> commands) {
            for (const auto& c : commands) {
                proto::CommandResult refused;
                refused.command_id = c.id;
                refused.success = false;
                refused.message = "this node runs no VMs (vms.enabled = false)";
                raw->PostResult(std::move(refused));
            }
        });
    }

    // Relays: the orchestrator sends the relay state with heartbeat replies; interfaces and
    // forwards survive an agent restart (wireguard-go is not our process group's).
    std::unique_ptr<agent::ports::WireGuardControl> wireguard;
    std::unique_ptr<agent::adapters::NftPortForwarder> relay_forwards;
    std::unique_ptr<agent::adapters::NftPortForwarder> cgnat_forwards;
    std::unique_ptr<agent::adapters::UdpTunnelProber> tunnel_prober;  // outlives relay_agent
    agent::adapters::IptablesForwardException forward_exception;
    std::unique_ptr<agent::app::RelayAgent> relay_agent;
    agent::adapters::FileWireGuardKeyStore wireguard_keys(config.state_dir + "/wireguard.key");
    std::function<void()> promote_successors;
    if (config.relay.enabled) {
        auto wg_key =
            agent::adapters::LoadOrCreateWireGuardKey(config.state_dir + "/wireguard.key");
        if (!wg_key) throw std::runtime_error("relay: " + wg_key.error().message);
        const bool kernel =
            config.relay.wireguard == "kernel" ||
            (config.relay.wireguard == "auto" && agent::adapters::NetlinkWireGuard::Probe(""));
        if (kernel) {
            wireguard = std::make_unique<agent::adapters::NetlinkWireGuard>();
        } else {
            agent::adapters::UapiWireGuardOptions wg_options;
            wg_options.wireguard_go = config.relay.wireguard_go;
            wg_options.log_dir = config.state_dir;
            wireguard = std::make_unique<agent::adapters::UapiWireGuard>(wg_options);
        }
        agent::adapters::NftPortForwarderOptions relay_nft;
        relay_nft.table = config.relay.nft_table;
        relay_forwards = std::make_unique<agent::adapters::NftPortForwarder>(relay_nft);
        agent::adapters::NftPortForwarderOptions cgnat_nft;
        cgnat_nft.table = config.relay.cgnat_nft_table;
        cgnat_forwards = std::make_unique<agent::adapters::NftPortForwarder>(cgnat_nft);
        if (config.relay.probe_port != 0) {
            agent::adapters::UdpTunnelProberOptions probe;
            probe.port = config.relay.probe_port;
            probe.interval = config.relay.probe_interval;
            tunnel_prober = std::make_unique<agent::adapters::UdpTunnelProber>(probe);
        }
        relay_agent = std::make_unique<agent::app::RelayAgent>(
            *wireguard, *relay_forwards, *cgnat_forwards, wireguard_keys, *wg_key,
            tunnel_prober.get(), &forward_exception);
        link->SetRelayHooks([raw = relay_agent.get()] { return raw->Report(); },
                            [raw = relay_agent.get()](const proto::RelayDesiredState& desired) {
                                if (auto st = raw->Apply(desired); !st)
                                    spdlog::warn("relay state not fully applied: {}",
                                                 st.error().message);
                            },
                            blocking);
        spdlog::info("relays: {} WireGuard, key {}", kernel ? "kernel" : "userspace",
                     relay_agent->PublicKey());
        // During a peer's key rotation its successor takes over within a second of its first
        // handshake, not at the next heartbeat.
        promote_successors = [&blocking, raw = relay_agent.get()] {
            if (!raw->HasPendingSuccessors()) return;
            asio::post(blocking, [raw] {
                if (auto st = raw->PromoteSuccessors(); !st)
                    spdlog::warn("relay successor peers: {}", st.error().message);
            });
        };
        asio::co_spawn(ioc,
                       RunPeriodically(&ioc, &promote_successors, std::chrono::milliseconds{1000}),
                       asio::detached);
    }

    if (config.ingress.enabled) {
        ingress = std::make_unique<agent::proxy::IngressProxy>(ingress_io,
                                                               ToProxySettings(config.ingress));
        if (auto started = ingress->Start(); !started)
            throw std::runtime_error("ingress: " + started.error().message);
        ingress_thread = std::thread([&ingress_io, busy_poll = config.ingress.busy_poll] {
            agent::proxy::RunEventLoop(ingress_io, busy_poll);
        });
        spdlog::info(
            "ingress proxy on {}://{}:{}{}", config.ingress.tls_cert.empty() ? "http" : "https",
            config.ingress.address, ingress->port(),
            config.ingress.vm_domain.empty() ? "" : " (hosts *." + config.ingress.vm_domain + ")");
        if (hypervisor) {
            // Routes come from libvirt (running domains and their leases), never from requests.
            refresh_routes = [&blocking, raw_hypervisor = hypervisor.get(),
                              raw_ingress = ingress.get()] {
                asio::post(blocking, [raw_hypervisor, raw_ingress] {
                    auto domains = raw_hypervisor->List();
                    if (!domains) {
                        spdlog::warn("ingress routes not refreshed: {}", domains.error().message);
                        return;
                    }
                    raw_ingress->UpdateRoutes(agent::app::RoutesFromDomains(*domains));
                });
            };
            asio::co_spawn(ioc,
                           RunPeriodically(&ioc, &refresh_routes, config.ingress.refresh_interval),
                           asio::detached);
        }
    }

    auto registry = std::make_shared<prometheus::Registry>();
    auto& heartbeats = prometheus::BuildGauge()
                           .Name("decloud_agent_heartbeats_sent")
                           .Help("Heartbeats the orchestrator accepted since start")
                           .Register(*registry)
                           .Add({});
    auto& failures = prometheus::BuildGauge()
                         .Name("decloud_agent_orchestrator_failures")
                         .Help("Failed calls to the orchestrator since start")
                         .Register(*registry)
                         .Add({});
    auto& registered = prometheus::BuildGauge()
                           .Name("decloud_agent_registered")
                           .Help("1 while the orchestrator knows this node")
                           .Register(*registry)
                           .Add({});
    prometheus::BuildGauge()
        .Name("decloud_agent_compute_points")
        .Help("Compute points from the CPU benchmark")
        .Register(*registry)
        .Add({})
        .Set(compute.points);

    std::optional<agent::proxy::IngressMetrics> ingress_metrics;
    if (ingress) ingress_metrics.emplace(*registry);

    auto router = std::make_shared<net::Router>();
    router->Add(http::verb::get, "/healthz",
                [link](net::RequestContext& ctx) -> asio::awaitable<net::Response> {
                    const auto s = link->Status();
                    co_return net::MakeJson(ctx.request, http::status::ok,
                                            {{"status", "ok"},
                                             {"registered", s.registered},
                                             {"nodeId", s.node_id},
                                             {"behindCgnat", s.behind_cgnat},
                                             {"heartbeatsSent", s.heartbeats_sent},
                                             {"failures", s.failures},
                                             {"commandChannel", s.channel_open},
                                             {"lastError", s.last_error}});
                });
    router->Add(http::verb::get, "/readyz",
                [link](net::RequestContext& ctx) -> asio::awaitable<net::Response> {
                    const auto s = link->Status();
                    if (!s.registered || s.heartbeats_sent == 0)
                        co_return net::MakeProblem(
                            ctx.request, http::status::service_unavailable, "Not ready",
                            "not yet registered and heartbeating: " + s.last_error, ctx.request_id);
                    co_return net::MakeJson(ctx.request, http::status::ok,
                                            {{"status", "ready"}, {"nodeId", s.node_id}});
                });
    router->Add(http::verb::get, "/metrics",
                [&, link](net::RequestContext& ctx) -> asio::awaitable<net::Response> {
                    const auto s = link->Status();
                    heartbeats.Set(static_cast<double>(s.heartbeats_sent));
                    failures.Set(static_cast<double>(s.failures));
                    registered.Set(s.registered ? 1 : 0);
                    if (ingress_metrics) ingress_metrics->Update(ingress->stats());
                    net::Response resp{http::status::ok, ctx.request.version()};
                    resp.set(http::field::content_type, common::kMetricsContentType);
                    resp.body() = common::SerializeMetrics(*registry);
                    resp.keep_alive(ctx.request.keep_alive());
                    resp.prepare_payload();
                    co_return resp;
                });
    net::HttpServer server(ioc, config.server, router, registry);
    const auto port = server.Start();
    spdlog::info("agent {} health endpoint on http://{}:{}/healthz; orchestrator {}",
                 DECLOUD_VERSION, config.server.address, port, config.orchestrator_url);

    asio::co_spawn(ioc, link->Run(), asio::detached);
    asio::co_spawn(ioc, link->RunChannel(), asio::detached);
    asio::signal_set reload(ioc, SIGHUP);
    std::function<void()> wait_reload = [&] {
        reload.async_wait([&](const boost::system::error_code& error, int) {
            if (error) return;
            if (ingress && !config.ingress.tls_cert.empty()) {
                if (auto reloaded = ingress->ReloadTls(); reloaded)
                    spdlog::info("ingress: TLS certificate reloaded");
                else
                    spdlog::error("ingress: TLS certificate not reloaded: {}",
                                  reloaded.error().message);
            }
            wait_reload();
        });
    };
    wait_reload();
    asio::signal_set signals(ioc, SIGINT, SIGTERM);
    signals.async_wait([&](const boost::system::error_code& error, int signo) {
        if (error) return;
        spdlog::info("signal {}: stopping", signo);
        link->Stop();
        reload.cancel();
        server.Shutdown([&] { ioc.stop(); });
    });
    ioc.run();
    if (ingress) {
        ingress->Stop();
        // Runs after the connections were closed by Stop's handler.
        asio::post(ingress_io, [&ingress_io] { ingress_io.stop(); });
        ingress_thread.join();
    }
    if (console_sessions) {
        // Sessions end (their libvirt streams freed on the console thread) before the consoles
        // and the event loop go; the link forgets its hooks into them.
        link->SetConsoleHooks({}, {});
        console_sessions->Stop();
        console_sessions.reset();
        consoles.reset();
    }
    if (vms) vms->Shutdown();
    blocking.join();
    spdlog::info("agent stopped");
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App cli{"DeCloud node agent: offers this machine's capacity to the DeCloud network"};
    std::string config_path;
    std::vector<std::string> overrides;
    bool print_config = false;
    cli.add_option("-c,--config", config_path, "TOML configuration file")->check(CLI::ExistingFile);
    cli.add_option("--set", overrides, "override one setting, key=value (repeatable)");
    cli.add_flag("--print-config", print_config, "print the effective configuration and exit");
    cli.set_version_flag("--version", DECLOUD_VERSION);
    agent::setup::SetupOptions setup_options;
    auto* setup = agent::setup::AddSetupCommand(cli, setup_options);
    CLI11_PARSE(cli, argc, argv);
    if (setup->parsed())
        return agent::setup::RunSetup(setup_options, DECLOUD_VERSION, std::cin, std::cout,
                                      std::cerr);

    auto settings = common::Settings::Load(agent::AgentSettingSpecs(), config_path,
                                           agent::kAgentEnvPrefix, overrides);
    if (!settings) {
        std::cerr << "configuration error: " << settings.error().message << "\n";
        return 2;
    }
    if (print_config) {
        std::cout << settings->Describe();
        return 0;
    }
    auto config = agent::BuildAgentConfig(*settings);
    if (!config) {
        std::cerr << "configuration error: " << config.error().message << "\n";
        return 2;
    }
    if (auto st = common::SetupLogging(config->log_level, config->log_format, "agent"); !st) {
        std::cerr << "configuration error: " << st.error().message << "\n";
        return 2;
    }
    try {
        return Run(*config);
    } catch (const std::exception& e) {
        spdlog::critical("agent failed to start: {}", e.what());
        return 1;
    }
}
