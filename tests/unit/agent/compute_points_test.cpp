#include "agent/domain/compute_points.hpp"

#include <gtest/gtest.h>

namespace decloud::agent::domain {
namespace {

// Captured from `sysbench cpu --threads=2 --time=1 run` (sysbench 1.0.20) on a CI machine.
constexpr const char* kSysbenchOutput = R"(sysbench 1.0.20 (using system LuaJIT 2.1.0-beta3)

Running the test with following options:
Number of threads: 2
Initializing random number generator from current time


Prime numbers limit: 10000

Initializing worker threads...

Threads started!

CPU speed:
    events per second:  8942.21

General statistics:
    total time:                          1.0002s
    total number of events:              8949
)";

TEST(Sysbench, ParsesEventsPerSecond) {
    auto eps = ParseSysbenchEventsPerSecond(kSysbenchOutput);
    ASSERT_TRUE(eps) << eps.error().message;
    EXPECT_DOUBLE_EQ(*eps, 8942.21);
}

TEST(Sysbench, RejectsOutputWithoutAUsableFigure) {
    EXPECT_FALSE(ParseSysbenchEventsPerSecond(""));
    EXPECT_FALSE(ParseSysbenchEventsPerSecond("FATAL: invalid option"));
    EXPECT_FALSE(ParseSysbenchEventsPerSecond("events per second: fast"));
    EXPECT_FALSE(ParseSysbenchEventsPerSecond("events per second: -5"));
    EXPECT_FALSE(ParseSysbenchEventsPerSecond("events per second: 0"));
}

TEST(ComputePoints, FollowsTheFormula) {
    // 2 threads at 4000 events/s each on 2 cores, against a 4000 events/s reference core.
    EXPECT_EQ(ComputePoints(8000, 2, 2, 4000, 100), 200u);
    // A core twice as fast as the reference is worth twice the points.
    EXPECT_EQ(ComputePoints(16000, 2, 2, 4000, 100), 400u);
    // Hyperthreads: 16 threads on 8 cores; the per-thread rate times the physical cores.
    EXPECT_EQ(ComputePoints(32000, 16, 8, 4000, 100), 400u);
    EXPECT_EQ(ComputePoints(8942.21, 2, 2, 4000, 100), 224u);
}

TEST(ComputePoints, UnusableInputsGiveZero) {
    EXPECT_EQ(ComputePoints(0, 2, 2, 4000, 100), 0u);
    EXPECT_EQ(ComputePoints(8000, 0, 2, 4000, 100), 0u);
    EXPECT_EQ(ComputePoints(8000, 2, 0, 4000, 100), 0u);
    EXPECT_EQ(ComputePoints(8000, 2, 2, 0, 100), 0u);
    EXPECT_EQ(ComputePoints(8000, 2, 2, -1, 100), 0u);
    EXPECT_EQ(ComputePoints(std::numeric_limits<double>::quiet_NaN(), 2, 2, 4000, 100), 0u);
    EXPECT_EQ(ComputePoints(1e300, 1, 1, 1e-3, 1e6), 0u) << "overflow";
}

}  // namespace
}  // namespace decloud::agent::domain
