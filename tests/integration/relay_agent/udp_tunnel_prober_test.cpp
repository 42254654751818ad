// The tunnel latency prober against its own echo server over loopback: real UDP sockets, the
// interface filter of the echo server, rounds with and without echoes.
#include "agent/adapters/wireguard/udp_tunnel_prober.hpp"

#include <gtest/gtest.h>

#include <atomic>

namespace decloud::agent::adapters {
namespace {

using namespace std::chrono_literals;

TEST(UdpTunnelProberTest, MeasuresTheRoundTripAndCountsRoundsWithoutEchoes) {
    std::atomic<bool> answer{true};
    UdpTunnelProberOptions options;
    options.port = 0;       // any free port, for the echo server and the probes alike
    options.interval = 1h;  // rounds run only when the test asks
    options.timeout = 500ms;
    options.answer_on = [&](std::string_view interface) { return answer && interface == "lo"; };
    UdpTunnelProber prober(options);
    ASSERT_TRUE(prober.Echoing());
    ASSERT_NE(prober.port(), 0);

    EXPECT_FALSE(prober.Latency("127.0.0.1"));
    prober.Watch({"127.0.0.1"});
    prober.ProbeOnce();
    // The first answered round only shows the path works (see LatencyBook::RecordRound).
    ASSERT_TRUE(prober.Latency("127.0.0.1"));
    EXPECT_FALSE(prober.Latency("127.0.0.1")->rtt);
    prober.ProbeOnce();
    auto latency = prober.Latency("127.0.0.1");
    ASSERT_TRUE(latency);
    ASSERT_TRUE(latency->rtt) << "no echo over loopback";
    EXPECT_GT(latency->rtt->count(), 0);
    EXPECT_LT(latency->rtt->count(), 500000);
    EXPECT_EQ(latency->unanswered_rounds, 0u);

    // The echo server stops answering (as a peer whose tunnel broke): rounds count up.
    answer = false;
    prober.ProbeOnce();
    prober.ProbeOnce();
    latency = prober.Latency("127.0.0.1");
    ASSERT_TRUE(latency);
    EXPECT_EQ(latency->unanswered_rounds, 2u);
    answer = true;
    prober.ProbeOnce();
    EXPECT_EQ(prober.Latency("127.0.0.1")->unanswered_rounds, 0u);

    // A second prober cannot echo on the same port, and says so, but still probes.
    options.port = prober.port();
    UdpTunnelProber second(options);
    EXPECT_FALSE(second.Echoing());
    second.Watch({"127.0.0.1"});
    second.ProbeOnce();
    second.ProbeOnce();
    EXPECT_TRUE(second.Latency("127.0.0.1")->rtt);
}

}  // namespace
}  // namespace decloud::agent::adapters
