// In-process: the orchestrator's heartbeat buffer (sharded locks) against the obvious peer, one
// map behind one mutex, with 1 and 2 threads recording heartbeats for 20,000 nodes. The last
// line is RESULT sharded_records_per_s=... single_lock_records_per_s=... ratio=...

#include <benchmark/benchmark.h>

#include <cstdio>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "orchestrator/app/heartbeat_buffer.hpp"

namespace {

using decloud::orchestrator::app::HeartbeatBuffer;
using decloud::orchestrator::domain::BufferedHeartbeat;

constexpr int kNodes = 20000;

const std::vector<std::string>& NodeIds() {
    static const std::vector<std::string> ids = [] {
        std::vector<std::string> v;
        for (int i = 0; i < kNodes; ++i)
            v.push_back("00000000-0000-4000-8000-" + std::to_string(100000000000 + i));
        return v;
    }();
    return ids;
}

// The peer: what one would write first.
class SingleLockBuffer {
  public:
    void Record(const std::string& id, const decloud::proto::NodeUsage& usage,
                decloud::common::TimePoint at) {
        std::lock_guard lock(mutex_);
        auto& hb = pending_[id];
        if (hb.count == 0) hb.first_at = at;
        hb.node_id = id;
        hb.last_at = at;
        hb.usage = usage;
        ++hb.count;
    }

  private:
    std::mutex mutex_;
    std::unordered_map<std::string, BufferedHeartbeat> pending_;
};

HeartbeatBuffer sharded;
SingleLockBuffer single;
double sharded_rate[3] = {}, single_rate[3] = {};

void BM_ShardedBuffer(benchmark::State& state) {
    const auto& ids = NodeIds();
    std::size_t i = static_cast<std::size_t>(state.thread_index()) * 7919;
    const decloud::proto::NodeUsage usage{12.5, 1 << 30, 1ull << 31, 2};
    const decloud::common::TimePoint now{};
    for (auto _ : state) {
        sharded.Record(ids[i % ids.size()], usage, "0.1.0", now);
        ++i;
    }
    state.counters["records_per_s"] =
        benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

void BM_SingleLockMap(benchmark::State& state) {
    const auto& ids = NodeIds();
    std::size_t i = static_cast<std::size_t>(state.thread_index()) * 7919;
    const decloud::proto::NodeUsage usage{12.5, 1 << 30, 1ull << 31, 2};
    const decloud::common::TimePoint now{};
    for (auto _ : state) {
        single.Record(ids[i % ids.size()], usage, now);
        ++i;
    }
    state.counters["records_per_s"] =
        benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

BENCHMARK(BM_ShardedBuffer)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_SingleLockMap)->Threads(1)->Threads(2)->UseRealTime();

// Keeps the records/s of each run to print the RESULT line.
class Collector : public benchmark::ConsoleReporter {
  public:
    void ReportRuns(const std::vector<Run>& runs) override {
        for (const auto& run : runs) {
            const auto it = run.counters.find("records_per_s");
            if (it == run.counters.end() || run.threads > 2) continue;
            const auto name = run.benchmark_name();
            if (name.find("Sharded") != std::string::npos)
                sharded_rate[run.threads] = it->second.value;
            if (name.find("SingleLock") != std::string::npos)
                single_rate[run.threads] = it->second.value;
        }
        ConsoleReporter::ReportRuns(runs);
    }
};

}  // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    Collector reporter;
    benchmark::RunSpecifiedBenchmarks(&reporter);
    benchmark::Shutdown();
    const double ratio = single_rate[2] > 0 ? sharded_rate[2] / single_rate[2] : 0;
    std::printf(
        "RESULT sharded_records_per_s=%.0f single_lock_records_per_s=%.0f ratio=%.2f threads=2\n",
        sharded_rate[2], single_rate[2], ratio);
    return 0;
}
