#include "agent/proxy/ingress_metrics.hpp"

#include <string>

namespace decloud::agent::proxy {

namespace {

prometheus::Counter& CounterIn(prometheus::Registry& registry, const std::string& name,
                               const std::string& help) {
    return prometheus::BuildCounter().Name(name).Help(help).Register(registry).Add({});
}

prometheus::Gauge& GaugeIn(prometheus::Registry& registry, const std::string& name,
                           const std::string& help) {
    return prometheus::BuildGauge().Name(name).Help(help).Register(registry).Add({});
}

void Advance(prometheus::Counter& counter, std::uint64_t before, std::uint64_t now) {
    if (now > before) counter.Increment(static_cast<double>(now - before));
}

}  // namespace

IngressMetrics::IngressMetrics(prometheus::Registry& registry)
    : requests_(CounterIn(registry, "decloud_ingress_requests_total",
                          "HTTP requests the ingress proxy received (forwarded or refused)")),
      upstream_connects_(CounterIn(registry, "decloud_ingress_upstream_connections_total",
                                   "TCP connections the ingress proxy opened to VMs")),
      gateway_errors_(
          CounterIn(registry, "decloud_ingress_gateway_errors_total",
                    "502/504 answered by the proxy: a VM refused, reset or was too slow")),
      connections_refused_(
          CounterIn(registry, "decloud_ingress_connections_refused_total",
                    "Client connections turned away by ingress.max_connections(_per_client)")),
      websockets_(GaugeIn(registry, "decloud_ingress_websockets", "WebSockets bridged to VMs now")),
      connections_(
          GaugeIn(registry, "decloud_ingress_connections", "Client connections open now")) {
    auto& family = prometheus::BuildCounter()
                       .Name("decloud_ingress_responses_total")
                       .Help("Responses sent to clients by status class")
                       .Register(registry);
    for (std::size_t i = 0; i < responses_.size(); ++i) {
        responses_[i] = &family.Add({{"class", std::to_string(i + 1) + "xx"}});
    }
}

void IngressMetrics::Update(const IngressProxy::Stats& now) {
    Advance(requests_, last_.requests, now.requests);
    Advance(upstream_connects_, last_.upstream_connects, now.upstream_connects);
    Advance(gateway_errors_, last_.gateway_errors, now.gateway_errors);
    Advance(connections_refused_, last_.connections_refused, now.connections_refused);
    for (std::size_t i = 0; i < responses_.size(); ++i) {
        Advance(*responses_[i], last_.responses_by_class[i], now.responses_by_class[i]);
    }
    websockets_.Set(static_cast<double>(now.websockets_active));
    connections_.Set(static_cast<double>(now.connections_open));
    last_ = now;
}

}  // namespace decloud::agent::proxy
