// decloud-ingress: the node agent's ingress proxy on its own, with VM routes from a JSON file
// instead of the agent's VM state. For testing and benchmarking the proxy in isolation and for
// debugging a route by hand; production runs the proxy inside decloud-agent.
//
//   decloud-ingress --listen 127.0.0.1:8080 --routes routes.json
//   routes.json: {"routes":[{"vmId":"<uuid>","name":"app","address":"127.0.0.1",
//                            "defaultPort":8080,"extraPorts":[18080]}]}
// --busy-poll-us trades CPU for latency (see RunEventLoop). SIGHUP re-reads the routes file and
// the TLS files; SIGUSR1 prints the proxy's counters as one JSON line on standard output
// ({"stats": {...}}, the figures the agent exports on /metrics); SIGTERM/SIGINT stop it (exit 0).

#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <fstream>
#include <iostream>
#include <thread>

#include "agent/proxy/ingress_proxy.hpp"

namespace asio = boost::asio;
namespace ingress = decloud::agent::domain::ingress;
using decloud::agent::proxy::IngressProxy;
using decloud::agent::proxy::IngressSettings;

namespace {

decloud::common::Result<ingress::RoutingTable> LoadRoutes(const std::string& path) {
    std::ifstream in(path);
    if (!in) return decloud::common::Error::InvalidArgument("cannot read routes file " + path);
    const auto doc = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (!doc.is_object() || !doc.contains("routes") || !doc["routes"].is_array())
        return decloud::common::Error::InvalidArgument(path + ": expected {\"routes\": [...]}");
    std::vector<ingress::VmRoute> routes;
    try {
        for (const auto& r : doc["routes"]) {
            ingress::VmRoute route;
            route.vm_id = r.at("vmId").get<std::string>();
            route.name = r.value("name", std::string{});
            route.address = r.at("address").get<std::string>();
            route.default_port = r.value("defaultPort", std::uint16_t{80});
            route.extra_ports = r.value("extraPorts", std::vector<std::uint16_t>{});
            routes.push_back(std::move(route));
        }
    } catch (const nlohmann::json::exception& e) {
        return decloud::common::Error::InvalidArgument(path + ": " + e.what());
    }
    return ingress::RoutingTable::Build(std::move(routes));
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App cli{"DeCloud ingress proxy with routes from a file"};
    std::string listen = "127.0.0.1:8080";
    std::string routes_file;
    std::string vm_domain = "vms.localhost";
    std::vector<std::uint16_t> allowed_ports = ingress::kDefaultAllowedPorts;
    bool rewrite_host = false;
    bool access_log = false;
    long connect_ms = 5'000, idle_ms = 60'000, total_ms = 100'000, ws_idle_ms = 600'000;
    long header_ms = 30'000;
    std::size_t max_connections = 20'000, max_connections_per_client = 512;
    long busy_poll_us = 0;
    std::string tls_cert, tls_key;
    cli.add_option("--listen", listen, "address:port to listen on (port 0: any)");
    cli.add_option("--routes", routes_file, "JSON file with the VM routes")->required();
    cli.add_option("--vm-domain", vm_domain, "domain of the host form {name}.{domain}");
    cli.add_option("--allowed-ports", allowed_ports, "ports any VM may be reached on")
        ->delimiter(',');
    cli.add_flag("--rewrite-host", rewrite_host, "send Host as the VM's address:port");
    cli.add_flag("--access-log", access_log, "log one line per request");
    std::vector<std::string> trusted_proxies;
    cli.add_option("--trusted-proxies", trusted_proxies,
                   "client addresses whose X-Forwarded-Proto/-Host are kept")
        ->delimiter(',');
    cli.add_option("--connect-timeout-ms", connect_ms);
    cli.add_option("--idle-timeout-ms", idle_ms);
    cli.add_option("--header-timeout-ms", header_ms);
    cli.add_option("--max-connections", max_connections)->check(CLI::PositiveNumber);
    cli.add_option("--max-connections-per-client", max_connections_per_client)
        ->check(CLI::PositiveNumber);
    cli.add_option("--total-timeout-ms", total_ms);
    cli.add_option("--ws-idle-timeout-ms", ws_idle_ms);
    cli.add_option("--busy-poll-us", busy_poll_us,
                   "keep polling this long after the last event before sleeping (0: off)");
    cli.add_option("--tls-cert", tls_cert, "PEM certificate chain: the listener speaks TLS");
    cli.add_option("--tls-key", tls_key, "PEM private key for --tls-cert");
    CLI11_PARSE(cli, argc, argv);

    const auto colon = listen.rfind(':');
    if (colon == std::string::npos) {
        std::cerr << "--listen wants address:port\n";
        return 2;
    }
    IngressSettings settings;
    settings.listen_address = listen.substr(0, colon);
    if (settings.listen_address.size() > 1 && settings.listen_address.front() == '[')
        settings.listen_address =
            settings.listen_address.substr(1, settings.listen_address.size() - 2);
    try {
        settings.listen_port = static_cast<std::uint16_t>(std::stoul(listen.substr(colon + 1)));
    } catch (const std::exception&) {
        std::cerr << "--listen: bad port in " << listen << "\n";
        return 2;
    }
    settings.routing.vm_domain = vm_domain;
    settings.routing.allowed_ports = allowed_ports;
    settings.preserve_host = !rewrite_host;
    settings.access_log = access_log;
    settings.trusted_proxies = trusted_proxies;
    settings.connect_timeout = std::chrono::milliseconds{connect_ms};
    settings.idle_timeout = std::chrono::milliseconds{idle_ms};
    settings.header_timeout = std::chrono::milliseconds{header_ms};
    settings.max_connections = max_connections;
    settings.max_connections_per_client = max_connections_per_client;
    settings.total_timeout = std::chrono::milliseconds{total_ms};
    settings.websocket_idle_timeout = std::chrono::milliseconds{ws_idle_ms};
    if (!tls_cert.empty() || !tls_key.empty()) {
        if (tls_cert.empty() || tls_key.empty()) {
            std::cerr << "--tls-cert and --tls-key go together\n";
            return 2;
        }
        settings.tls = decloud::agent::proxy::TlsFiles{tls_cert, tls_key};
    }

    auto routes = LoadRoutes(routes_file);
    if (!routes) {
        std::cerr << routes.error().message << "\n";
        return 2;
    }
    decloud::agent::proxy::RaiseOpenFileLimit();

    asio::io_context io{1};
    IngressProxy proxy(io, settings);
    proxy.UpdateRoutes(std::move(*routes));
    if (auto started = proxy.Start(); !started) {
        std::cerr << started.error().message << "\n";
        return 1;
    }
    std::cout << "decloud-ingress listening on " << settings.listen_address << ":" << proxy.port()
              << std::endl;

    asio::signal_set stop_signals(io, SIGTERM, SIGINT);
    asio::signal_set reload_signal(io, SIGHUP);
    asio::signal_set stats_signal(io, SIGUSR1);
    asio::steady_timer stop_deadline(io);
    stop_signals.async_wait([&](const boost::system::error_code& ec, int) {
        if (ec) return;
        // Connections are closed now; a moment later the loop stops with them unwound.
        proxy.Stop();
        reload_signal.cancel();
        stats_signal.cancel();
        stop_deadline.expires_after(std::chrono::milliseconds{200});
        stop_deadline.async_wait([&](const boost::system::error_code& wait_ec) {
            if (!wait_ec) io.stop();
        });
    });
    std::function<void()> wait_reload = [&] {
        reload_signal.async_wait([&](const boost::system::error_code& ec, int) {
            if (ec) return;
            if (auto reloaded = LoadRoutes(routes_file))
                proxy.UpdateRoutes(std::move(*reloaded));
            else
                spdlog::error("routes not reloaded: {}", reloaded.error().message);
            if (settings.tls)
                if (auto tls = proxy.ReloadTls(); !tls)
                    spdlog::error("TLS not reloaded: {}", tls.error().message);
            wait_reload();
        });
    };
    wait_reload();
    std::function<void()> wait_stats = [&] {
        stats_signal.async_wait([&](const boost::system::error_code& ec, int) {
            if (ec) return;
            const auto stats = proxy.stats();
            std::cout << nlohmann::json{{"stats",
                                         {{"requests", stats.requests},
                                          {"websocketsActive", stats.websockets_active},
                                          {"upstreamConnects", stats.upstream_connects},
                                          {"responsesByClass", stats.responses_by_class},
                                          {"gatewayErrors", stats.gateway_errors},
                                          {"connectionsOpen", stats.connections_open},
                                          {"connectionsRefused", stats.connections_refused}}}}
                             .dump()
                      << std::endl;
            wait_stats();
        });
    };
    wait_stats();
    decloud::agent::proxy::RunEventLoop(io, std::chrono::microseconds{busy_poll_us});
    return 0;
}
