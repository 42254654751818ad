// In-process: the orchestrator's Schedule() over 10,000 and 100,000 random nodes, against the
// obvious peer in the same run: filter into a vector of copies (with the detail text of every
// rejection), then sort all candidates and all rejections. Both make the same decision; that
// is checked before timing. The last line is
// RESULT placements_per_s_10000=... placements_per_s=... nodes=100000 naive_placements_per_s=...
//        ratio_vs_naive=...

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "orchestrator/domain/scheduling.hpp"

namespace {

namespace domain = decloud::orchestrator::domain;
using domain::NodeCapacity;
using domain::ScheduleOptions;
using domain::ScheduleResult;
using domain::VmRequirements;

constexpr std::size_t kMaxNodes = 100000;
constexpr std::size_t kVmMix = 256;

class Random {
  public:
    explicit Random(std::uint64_t seed) : rng_(seed) {}
    std::uint64_t Between(std::uint64_t lo, std::uint64_t hi) {
        return std::uniform_int_distribution<std::uint64_t>(lo, hi)(rng_);
    }
    bool Chance(double p) { return std::bernoulli_distribution(p)(rng_); }
    double Real(double lo, double hi) {
        return std::uniform_real_distribution<double>(lo, hi)(rng_);
    }
    template <class T>
    const T& Of(const std::vector<T>& items) {
        return items[Between(0, items.size() - 1)];
    }

  private:
    std::mt19937_64 rng_;
};

const std::vector<std::string> kRegions = {"us-east",    "us-east", "us-west",  "eu-central",
                                           "eu-central", "eu-west", "ap-south", "ap-east"};
const std::vector<std::string> kTags = {"ssd",   "nvme",        "ipv6",
                                        "10gbe", "residential", "datacenter"};
struct GpuModel {
    std::string vendor;
    std::string model;
};
const std::vector<GpuModel> kGpuModels = {{"NVIDIA", "GeForce RTX 4090"},
                                          {"NVIDIA", "A100 80GB PCIe"},
                                          {"NVIDIA", "GeForce RTX 3080"},
                                          {"AMD", "Instinct MI250"}};

std::string Uuid(Random& random) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string id = "xxxxxxxx-xxxx-4xxx-8xxx-xxxxxxxxxxxx";
    for (char& c : id) {
        if (c == 'x') c = kHex[random.Between(0, 15)];
    }
    return id;
}

// A realistic mix: 70% online, six regions, a few tags each, 8% with GPUs, nodes from 4 to 128
// cores and 0 to 95% already reserved.
const std::vector<NodeCapacity>& Nodes() {
    static const std::vector<NodeCapacity> nodes = [] {
        Random random(20240601);
        std::vector<NodeCapacity> v;
        v.reserve(kMaxNodes);
        const std::vector<std::uint32_t> core_counts = {4, 8, 8, 16, 16, 32, 64, 128};
        for (std::size_t i = 0; i < kMaxNodes; ++i) {
            NodeCapacity n;
            n.node_id = Uuid(random);
            n.online = random.Chance(0.7);
            n.cpu_cores = random.Of(core_counts);
            n.compute_points = n.cpu_cores * random.Between(150, 350);
            n.memory_mib = std::uint64_t{n.cpu_cores} * 1024 * random.Between(2, 8);
            n.disk_gib = random.Between(1, 16) * 250;
            const double used = random.Real(0, 0.95);
            n.reserved_points =
                static_cast<std::uint64_t>(used * static_cast<double>(n.compute_points));
            n.reserved_memory_mib = static_cast<std::uint64_t>(random.Real(0, 0.95) *
                                                               static_cast<double>(n.memory_mib));
            n.reserved_disk_gib =
                static_cast<std::uint64_t>(random.Real(0, 0.9) * static_cast<double>(n.disk_gib));
            if (random.Chance(0.08)) {
                const GpuModel& model = random.Of(kGpuModels);
                for (std::uint64_t g = random.Between(1, 8); g > 0; --g) {
                    n.gpus.push_back({model.vendor, model.model, random.Chance(0.4)});
                }
            }
            n.region = random.Of(kRegions);
            for (const std::string& tag : kTags) {
                if (random.Chance(0.4)) n.tags.push_back(tag);
            }
            n.kvm_available = random.Chance(0.95);
            n.price_per_point_micro_usdc = random.Between(5, 50);
            n.uptime_ratio = random.Real(0.8, 1.0);
            v.push_back(std::move(n));
        }
        return v;
    }();
    return nodes;
}

// What users ask for: mostly small VMs, some pinned to a region or tag, a few GPU VMs and a few
// aimed at one node.
const std::vector<VmRequirements>& Vms() {
    static const std::vector<VmRequirements> vms = [] {
        Random random(7);
        std::vector<VmRequirements> v;
        const std::vector<std::uint32_t> cores = {1, 1, 2, 2, 4, 4, 8, 16};
        for (std::size_t i = 0; i < kVmMix; ++i) {
            VmRequirements vm;
            vm.cores = random.Of(cores);
            vm.memory_mib = vm.cores * 1024 * random.Between(1, 4);
            vm.disk_gib = random.Between(2, 20) * 10;
            vm.tier = static_cast<domain::QualityTier>(random.Between(0, 3));
            if (random.Chance(0.05)) {
                const GpuModel& model = random.Of(kGpuModels);
                vm.gpu = domain::GpuRequirement{static_cast<std::uint32_t>(random.Between(1, 2)),
                                                random.Chance(0.5) ? model.vendor : "",
                                                random.Chance(0.5) ? "RTX" : ""};
            }
            if (random.Chance(0.25)) vm.region = random.Of(kRegions);
            if (random.Chance(0.2)) vm.tags.push_back(random.Of(kTags));
            vm.require_kvm = random.Chance(0.3);
            if (random.Chance(0.01)) vm.target_node_id = Nodes()[random.Between(0, 9999)].node_id;
            v.push_back(std::move(vm));
        }
        return v;
    }();
    return vms;
}

// The peer: what one would write first.
ScheduleResult NaiveSchedule(const VmRequirements& vm, std::span<const NodeCapacity> nodes,
                             const ScheduleOptions& options) {
    struct Candidate {
        NodeCapacity node;
        std::uint64_t points = 0;
        double score = 0;
    };
    std::vector<Candidate> fits;
    ScheduleResult result;
    result.nodes_considered = nodes.size();
    std::vector<domain::Rejection> rejections;
    for (const NodeCapacity& node : nodes) {
        domain::FitCheck fit = domain::CheckFit(vm, node);
        if (fit.ok()) {
            fits.push_back({node, fit.points, 0});
        } else {
            ++result.rejected[static_cast<std::size_t>(fit.reason)];
            rejections.push_back({node.node_id, fit.reason, std::move(fit.detail)});
        }
    }
    std::uint64_t min_rate = std::numeric_limits<std::uint64_t>::max();
    std::uint64_t max_rate = 0;
    for (const Candidate& c : fits) {
        min_rate = std::min(min_rate, domain::HourlyRate(c.points, c.node));
        max_rate = std::max(max_rate, domain::HourlyRate(c.points, c.node));
    }
    for (Candidate& c : fits) {
        c.score = domain::ScoreNode(vm, c.node, c.points, min_rate, max_rate, options.weights);
    }
    std::sort(fits.begin(), fits.end(), [](const Candidate& a, const Candidate& b) {
        return a.score != b.score ? a.score > b.score : a.node.node_id < b.node.node_id;
    });
    std::sort(rejections.begin(), rejections.end(),
              [](const domain::Rejection& a, const domain::Rejection& b) {
                  return a.reason != b.reason ? a.reason > b.reason : a.node_id < b.node_id;
              });
    for (std::size_t i = 0; i < std::min(fits.size(), options.max_candidates); ++i) {
        const Candidate& c = fits[i];
        result.candidates.push_back(
            {c.node.node_id, c.points, domain::HourlyRate(c.points, c.node), c.score});
    }
    rejections.resize(std::min(rejections.size(), options.max_rejections));
    result.rejections = std::move(rejections);
    return result;
}

bool SameDecision(const ScheduleResult& a, const ScheduleResult& b) {
    if (a.candidates.size() != b.candidates.size() || a.rejections.size() != b.rejections.size() ||
        a.rejected != b.rejected) {
        return false;
    }
    for (std::size_t i = 0; i < a.candidates.size(); ++i) {
        const auto& x = a.candidates[i];
        const auto& y = b.candidates[i];
        if (x.node_id != y.node_id || x.points != y.points || x.score != y.score) return false;
    }
    for (std::size_t i = 0; i < a.rejections.size(); ++i) {
        const auto& x = a.rejections[i];
        const auto& y = b.rejections[i];
        if (x.node_id != y.node_id || x.reason != y.reason || x.detail != y.detail) return false;
    }
    return true;
}

void BM_Schedule(benchmark::State& state) {
    const std::span<const NodeCapacity> nodes(Nodes().data(),
                                              static_cast<std::size_t>(state.range(0)));
    const auto& vms = Vms();
    std::size_t i = 0;
    std::size_t placed = 0;
    for (auto _ : state) {
        ScheduleResult result = domain::Schedule(vms[i++ % vms.size()], nodes);
        placed += result.candidates.empty() ? 0 : 1;
        benchmark::DoNotOptimize(result);
    }
    state.counters["placements_per_s"] =
        benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
    state.counters["placed_fraction"] =
        static_cast<double>(placed) /
        static_cast<double>(std::max<std::int64_t>(state.iterations(), 1));
}

void BM_NaiveSchedule(benchmark::State& state) {
    const std::span<const NodeCapacity> nodes(Nodes().data(),
                                              static_cast<std::size_t>(state.range(0)));
    const auto& vms = Vms();
    std::size_t i = 0;
    for (auto _ : state) {
        ScheduleResult result = NaiveSchedule(vms[i++ % vms.size()], nodes, {});
        benchmark::DoNotOptimize(result);
    }
    state.counters["placements_per_s"] =
        benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

BENCHMARK(BM_Schedule)->Arg(10000)->Arg(100000)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_NaiveSchedule)->Arg(100000)->Unit(benchmark::kMillisecond)->UseRealTime();

double rate_10000 = 0;
double rate_100000 = 0;
double naive_rate_100000 = 0;

// Keeps placements/s of each run to print the RESULT line.
class Collector : public benchmark::ConsoleReporter {
  public:
    // Plain text: a reporter passed in does not follow --benchmark_color, and colour codes would
    // end up in front of the RESULT line.
    Collector() : ConsoleReporter(OO_Tabular) {}

    void ReportRuns(const std::vector<Run>& runs) override {
        for (const auto& run : runs) {
            const auto it = run.counters.find("placements_per_s");
            if (it == run.counters.end() || run.run_type != Run::RT_Iteration) continue;
            const std::string name = run.benchmark_name();
            if (name == "BM_Schedule/10000/real_time") rate_10000 = it->second.value;
            if (name == "BM_Schedule/100000/real_time") rate_100000 = it->second.value;
            if (name == "BM_NaiveSchedule/100000/real_time") naive_rate_100000 = it->second.value;
        }
        ConsoleReporter::ReportRuns(runs);
    }
};

// Both schedulers must agree before their speeds are worth comparing.
bool CheckAgreement() {
    const std::span<const NodeCapacity> nodes(Nodes().data(), kMaxNodes);
    int placed = 0;
    for (std::size_t i = 0; i < 32; ++i) {
        const VmRequirements& vm = Vms()[i];
        const ScheduleResult fast = domain::Schedule(vm, nodes);
        if (!SameDecision(fast, NaiveSchedule(vm, nodes, {}))) {
            std::fprintf(stderr, "Schedule and the naive scheduler disagree on VM %zu\n", i);
            return false;
        }
        placed += fast.candidates.empty() ? 0 : 1;
    }
    std::printf("Schedule and the naive scheduler agree on 32 of 32 requests (%d placed)\n",
                placed);
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    if (!CheckAgreement()) return 1;
    Collector reporter;
    benchmark::RunSpecifiedBenchmarks(&reporter);
    benchmark::Shutdown();
    const double ratio = naive_rate_100000 > 0 ? rate_100000 / naive_rate_100000 : 0;
    std::fflush(stdout);
    std::printf(
        "RESULT placements_per_s_10000=%.0f placements_per_s=%.0f nodes=%zu "
        "naive_placements_per_s=%.1f ratio_vs_naive=%.1f\n",
        rate_10000, rate_100000, kMaxNodes, naive_rate_100000, ratio);
    return 0;
}
