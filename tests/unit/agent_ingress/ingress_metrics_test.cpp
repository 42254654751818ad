#include "agent/proxy/ingress_metrics.hpp"

#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <string>

#include "decloud/common/metrics.hpp"

namespace decloud::agent::proxy {
namespace {

bool HasLine(const std::string& text, const std::string& line) {
    return text.find("\n" + line + "\n") != std::string::npos;
}

TEST(IngressMetrics, CountersFollowTheProxysTotalsAndGaugesItsPresent) {
    prometheus::Registry registry;
    IngressMetrics metrics(registry);
    IngressProxy::Stats stats;
    stats.requests = 7;
    stats.responses_by_class = {1, 3, 0, 2, 1};
    stats.gateway_errors = 1;
    stats.upstream_connects = 2;
    stats.websockets_active = 1;
    stats.connections_open = 4;
    metrics.Update(stats);
    auto text = common::SerializeMetrics(registry);
    EXPECT_TRUE(HasLine(text, "decloud_ingress_requests_total 7")) << text;
    EXPECT_TRUE(HasLine(text, "decloud_ingress_responses_total{class=\"1xx\"} 1")) << text;
    EXPECT_TRUE(HasLine(text, "decloud_ingress_responses_total{class=\"2xx\"} 3")) << text;
    EXPECT_TRUE(HasLine(text, "decloud_ingress_responses_total{class=\"4xx\"} 2")) << text;
    EXPECT_TRUE(HasLine(text, "decloud_ingress_gateway_errors_total 1")) << text;
    EXPECT_TRUE(HasLine(text, "decloud_ingress_upstream_connections_total 2")) << text;
    EXPECT_TRUE(HasLine(text, "decloud_ingress_websockets 1")) << text;
    EXPECT_TRUE(HasLine(text, "decloud_ingress_connections 4")) << text;

    // A second scrape: counters reach the new totals (not totals added twice), gauges follow.
    stats.requests = 10;
    stats.responses_by_class[1] = 6;
    stats.connections_refused = 5;
    stats.websockets_active = 0;
    stats.connections_open = 1;
    metrics.Update(stats);
    metrics.Update(stats);  // nothing new: nothing changes
    text = common::SerializeMetrics(registry);
    EXPECT_TRUE(HasLine(text, "decloud_ingress_requests_total 10")) << text;
    EXPECT_TRUE(HasLine(text, "decloud_ingress_responses_total{class=\"2xx\"} 6")) << text;
    EXPECT_TRUE(HasLine(text, "decloud_ingress_connections_refused_total 5")) << text;
    EXPECT_TRUE(HasLine(text, "decloud_ingress_websockets 0")) << text;
    EXPECT_TRUE(HasLine(text, "decloud_ingress_connections 1")) << text;
}

}  // namespace
}  // namespace decloud::agent::proxy
