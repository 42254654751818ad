#include "orchestrator/app/heartbeat_buffer.hpp"

#include <gtest/gtest.h>

#include <thread>

namespace decloud::orchestrator::app {
namespace {

using namespace std::chrono;
const common::TimePoint kT0{seconds{1'800'000'000}};

TEST(HeartbeatBuffer, FoldsHeartbeatsPerNode) {
    HeartbeatBuffer buffer;
    buffer.Record("a", {10, 1, 1, 0}, "v1", kT0);
    buffer.Record("a", {20, 2, 2, 1}, "v2", kT0 + seconds{15});
    buffer.Record("b", {30, 3, 3, 0}, "v1", kT0 + seconds{5});
    EXPECT_EQ(buffer.Size(), 2u);
    auto batch = buffer.Drain();
    EXPECT_EQ(buffer.Size(), 0u);
    ASSERT_EQ(batch.size(), 2u);
    const auto& a = batch[0].node_id == "a" ? batch[0] : batch[1];
    EXPECT_EQ(a.count, 2u);
    EXPECT_EQ(a.first_at, kT0);
    EXPECT_EQ(a.last_at, kT0 + seconds{15});
    EXPECT_EQ(a.usage.cpu_percent, 20);
    EXPECT_EQ(a.agent_version, "v2");
}

TEST(HeartbeatBuffer, RestoreKeepsNewerUsageAndWidensTheSpan) {
    HeartbeatBuffer buffer;
    buffer.Record("a", {10, 1, 1, 0}, "v1", kT0);
    auto failed = buffer.Drain();
    buffer.Record("a", {50, 5, 5, 2}, "v1", kT0 + seconds{15});
    buffer.Restore(std::move(failed));
    auto batch = buffer.Drain();
    ASSERT_EQ(batch.size(), 1u);
    EXPECT_EQ(batch[0].count, 2u);
    EXPECT_EQ(batch[0].first_at, kT0);
    EXPECT_EQ(batch[0].last_at, kT0 + seconds{15});
    EXPECT_EQ(batch[0].usage.cpu_percent, 50);
}

TEST(HeartbeatBuffer, ConcurrentRecordersLoseNothing) {
    HeartbeatBuffer buffer;
    constexpr int kThreads = 4, kPerThread = 5000;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&buffer, t] {
            for (int i = 0; i < kPerThread; ++i)
                buffer.Record("node-" + std::to_string(i % 100), {1, 1, 1, 0}, "v",
                              kT0 + seconds{t * kPerThread + i});
        });
    }
    std::uint64_t drained = 0;
    for (int round = 0; round < 50; ++round) {
        for (const auto& hb : buffer.Drain()) drained += hb.count;
    }
    for (auto& th : threads) th.join();
    for (const auto& hb : buffer.Drain()) drained += hb.count;
    EXPECT_EQ(drained, static_cast<std::uint64_t>(kThreads * kPerThread));
}

}  // namespace
}  // namespace decloud::orchestrator::app
