#include "agent/adapters/benchmark.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "decloud/testing/process.hpp"

namespace decloud::agent::adapters {
namespace {

using namespace std::chrono_literals;

class BenchmarkTest : public ::testing::Test {
  protected:
    void SetUp() override {
        // A stand-in for sysbench that prints canned output and counts its runs.
        fake_ = dir_.path() + "/fake-sysbench";
        std::ofstream(fake_) << "#!/bin/sh\necho run >> " << dir_.path() << "/runs\n"
                             << "echo 'CPU speed:'\necho '    events per second:  8000.00'\n";
        ::chmod(fake_.c_str(), 0755);
        resources_.cpu_model = "Test CPU";
        resources_.cpu_cores = 2;
        resources_.cpu_threads = 2;
        options_.sysbench = fake_;
        options_.seconds = 1;
        options_.cache_file = dir_.path() + "/state/benchmark.json";
    }

    int Runs() {
        std::ifstream in(dir_.path() + "/runs");
        int n = 0;
        std::string line;
        while (std::getline(in, line)) ++n;
        return n;
    }

    testing::TempDir dir_{"decloud-bench"};
    std::string fake_;
    proto::NodeResources resources_;
    BenchmarkOptions options_;
    common::TimePoint now_{std::chrono::seconds{1'800'000'000}};
};

TEST_F(BenchmarkTest, RunsOnceThenUsesTheCache) {
    auto first = RunOrLoadBenchmark(options_, resources_, 4000, 100, now_);
    ASSERT_TRUE(first) << first.error().message;
    EXPECT_EQ(first->points, 200u);
    EXPECT_EQ(first->benchmark_threads, 2u);
    EXPECT_DOUBLE_EQ(first->events_per_second, 8000);
    auto second = RunOrLoadBenchmark(options_, resources_, 4000, 100, now_ + 1h);
    ASSERT_TRUE(second);
    EXPECT_EQ(*second, *first);
    EXPECT_EQ(Runs(), 1);
    // A new baseline applies to the cached measurement without re-running.
    EXPECT_EQ(RunOrLoadBenchmark(options_, resources_, 2000, 100, now_ + 2h)->points, 400u);
    EXPECT_EQ(Runs(), 1);
}

TEST_F(BenchmarkTest, ReRunsWhenStaleOrTheCpuChanged) {
    ASSERT_TRUE(RunOrLoadBenchmark(options_, resources_, 4000, 100, now_));
    ASSERT_TRUE(
        RunOrLoadBenchmark(options_, resources_, 4000, 100, now_ + std::chrono::hours{24 * 8}));
    EXPECT_EQ(Runs(), 2) << "older than max_age";
    auto other = resources_;
    other.cpu_model = "Another CPU";
    ASSERT_TRUE(RunOrLoadBenchmark(options_, other, 4000, 100, now_ + std::chrono::hours{24 * 8}));
    EXPECT_EQ(Runs(), 3) << "different CPU";
    std::ofstream(options_.cache_file) << "{ not json";
    ASSERT_TRUE(RunOrLoadBenchmark(options_, other, 4000, 100, now_ + std::chrono::hours{24 * 8}));
    EXPECT_EQ(Runs(), 4) << "corrupt cache";
}

TEST_F(BenchmarkTest, MissingOrFailingSysbenchIsAClearError) {
    options_.sysbench = dir_.path() + "/no-such-sysbench";
    auto r = RunOrLoadBenchmark(options_, resources_, 4000, 100, now_);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("install sysbench"), std::string::npos) << r.error().message;
    std::ofstream(fake_) << "#!/bin/sh\necho 'FATAL: broken'\nexit 1\n";
    options_.sysbench = fake_;
    auto failing = RunOrLoadBenchmark(options_, resources_, 4000, 100, now_);
    ASSERT_FALSE(failing);
    EXPECT_NE(failing.error().message.find("FATAL: broken"), std::string::npos);
}

TEST_F(BenchmarkTest, RealSysbench) {
    BenchmarkOptions real;
    real.seconds = 1;
    auto r = RunOrLoadBenchmark(real, resources_, 4000, 100, now_);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_GT(r->events_per_second, 0);
    EXPECT_GT(r->points, 0u);
}

}  // namespace
}  // namespace decloud::agent::adapters
