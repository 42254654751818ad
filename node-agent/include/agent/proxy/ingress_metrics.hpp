#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <array>
#include <cstdint>

#include "agent/proxy/ingress_proxy.hpp"

namespace decloud::agent::proxy {

// The ingress proxy's counters in a Prometheus registry, brought up to date from
// IngressProxy::stats() at each scrape (the proxy keeps totals; Prometheus counters only go up
// by increments).
class IngressMetrics {
  public:
    explicit IngressMetrics(prometheus::Registry& registry);

    void Update(const IngressProxy::Stats& now);

  private:
    prometheus::Counter& requests_;
    prometheus::Counter& upstream_connects_;
    prometheus::Counter& gateway_errors_;
    prometheus::Counter& connections_refused_;
    prometheus::Gauge& websockets_;
    prometheus::Gauge& connections_;
    std::array<prometheus::Counter*, 5> responses_{};
    IngressProxy::Stats last_;
};

}  // namespace decloud::agent::proxy
