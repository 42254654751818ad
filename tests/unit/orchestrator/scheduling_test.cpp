#include "orchestrator/domain/scheduling.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace decloud::orchestrator::domain {
namespace {

// A node that takes the default VM comfortably: 8 cores of 250 points, 32 GiB, 500 GiB.
NodeCapacity MakeNode(std::string id) {
    NodeCapacity node;
    node.node_id = std::move(id);
    node.online = true;
    node.compute_points = 2000;
    node.cpu_cores = 8;
    node.memory_mib = 32768;
    node.disk_gib = 500;
    node.region = "eu-central";
    node.tags = {"ssd", "ipv6"};
    node.kvm_available = true;
    node.price_per_point_micro_usdc = 10;
    node.uptime_ratio = 0.99;
    return node;
}

VmRequirements MakeVm() {
    VmRequirements vm;
    vm.cores = 2;
    vm.memory_mib = 4096;
    vm.disk_gib = 40;
    vm.tier = QualityTier::kGuaranteed;
    return vm;
}

std::vector<std::string> Ids(const std::vector<Placement>& placements) {
    std::vector<std::string> ids;
    for (const auto& p : placements) ids.push_back(p.node_id);
    return ids;
}

TEST(QualityTierTest, NamesAndRatios) {
    EXPECT_EQ(ToString(QualityTier::kGuaranteed), "guaranteed");
    EXPECT_EQ(ToString(QualityTier::kStandard), "standard");
    EXPECT_EQ(ToString(QualityTier::kBalanced), "balanced");
    EXPECT_EQ(ToString(QualityTier::kBurstable), "burstable");
    for (const auto tier : {QualityTier::kGuaranteed, QualityTier::kStandard,
                            QualityTier::kBalanced, QualityTier::kBurstable}) {
        EXPECT_EQ(ParseQualityTier(ToString(tier)), tier);
    }
    EXPECT_EQ(ParseQualityTier("Burstable"), QualityTier::kBurstable);
    EXPECT_EQ(ParseQualityTier("premium"), std::nullopt);
    EXPECT_EQ(ParseQualityTier(""), std::nullopt);

    const auto ratio = [](QualityTier t) {
        const TierRatio r = RatioOf(t);
        return std::pair{r.numerator, r.denominator};
    };
    EXPECT_EQ(ratio(QualityTier::kGuaranteed), (std::pair{1u, 1u}));
    EXPECT_EQ(ratio(QualityTier::kStandard), (std::pair{3u, 2u}));
    EXPECT_EQ(ratio(QualityTier::kBalanced), (std::pair{2u, 1u}));
    EXPECT_EQ(ratio(QualityTier::kBurstable), (std::pair{4u, 1u}));
}

TEST(PointsConsumedTest, EachTierOnAnEvenNode) {
    // 4 cores, 1000 points: 250 points per core; 2 cores are 500 points at 1:1.
    EXPECT_EQ(PointsConsumed(2, 1000, 4, QualityTier::kGuaranteed), 500u);
    EXPECT_EQ(PointsConsumed(2, 1000, 4, QualityTier::kStandard), 334u);  // 333.3 up
    EXPECT_EQ(PointsConsumed(2, 1000, 4, QualityTier::kBalanced), 250u);
    EXPECT_EQ(PointsConsumed(2, 1000, 4, QualityTier::kBurstable), 125u);
    EXPECT_EQ(PointsConsumed(3, 1000, 4, QualityTier::kStandard), 500u);  // exact, no rounding
}

TEST(PointsConsumedTest, RoundsUpOnlyTheFinalResult) {
    // 3 cores, 1000 points: 333.3 points per core.
    EXPECT_EQ(PointsConsumed(1, 1000, 3, QualityTier::kGuaranteed), 334u);  // 333.3
    EXPECT_EQ(PointsConsumed(1, 1000, 3, QualityTier::kStandard), 223u);    // 222.2
    EXPECT_EQ(PointsConsumed(1, 1000, 3, QualityTier::kBalanced), 167u);    // 166.7
    EXPECT_EQ(PointsConsumed(1, 1000, 3, QualityTier::kBurstable), 84u);    // 83.3
    // A VM as big as the node consumes exactly the node: rounding the per-core figure first
    // (334 x 3 = 1002) would make it never fit.
    EXPECT_EQ(PointsConsumed(3, 1000, 3, QualityTier::kGuaranteed), 1000u);
    EXPECT_EQ(PointsConsumed(6, 1000, 3, QualityTier::kBalanced), 1000u);
    EXPECT_EQ(PointsConsumed(0, 1000, 3, QualityTier::kGuaranteed), 0u);
}

TEST(PointsConsumedTest, NodeWithoutCoresNeverFitsAndHugeValuesDoNotOverflow) {
    EXPECT_EQ(PointsConsumed(1, 1000, 0, QualityTier::kBurstable),
              std::numeric_limits<std::uint64_t>::max());
    const std::uint64_t big = std::numeric_limits<std::uint64_t>::max() / 2;
    EXPECT_EQ(PointsConsumed(2, big, 2, QualityTier::kGuaranteed), big);
    EXPECT_EQ(PointsConsumed(8, big, 2, QualityTier::kGuaranteed),
              std::numeric_limits<std::uint64_t>::max());
}

TEST(CheckFitTest, AFittingNodeReportsItsPoints) {
    const FitCheck fit = CheckFit(MakeVm(), MakeNode("n1"));
    EXPECT_TRUE(fit.ok());
    EXPECT_EQ(fit.reason, RejectReason::kNone);
    EXPECT_EQ(fit.detail, "");
    EXPECT_EQ(fit.points, 500u);
    EXPECT_EQ(HourlyRate(fit.points, MakeNode("n1")), 5000u);
}

struct FilterCase {
    const char* name;
    void (*change)(VmRequirements&, NodeCapacity&);
    RejectReason reason;
    const char* detail;
};

TEST(CheckFitTest, EachFilterRejectsWithItsDetail) {
    const FilterCase cases[] = {
        {"target", [](VmRequirements& vm, NodeCapacity&) { vm.target_node_id = "n2"; },
         RejectReason::kNotTarget, "not the requested node n2"},
        {"offline", [](VmRequirements&, NodeCapacity& n) { n.online = false; },
         RejectReason::kOffline, "node is offline"},
        {"kvm",
         [](VmRequirements& vm, NodeCapacity& n) {
             vm.require_kvm = true;
             n.kvm_available = false;
         },
         RejectReason::kNoKvm, "KVM is not available"},
        {"region", [](VmRequirements& vm, NodeCapacity&) { vm.region = "us-east"; },
         RejectReason::kRegion, "in region eu-central, needs us-east"},
        {"tags",
         [](VmRequirements& vm, NodeCapacity&) {
             vm.tags = {"ssd", "gpu", "nvme"};
         },
         RejectReason::kTags, "lacks tags gpu, nvme"},
        {"cpu", [](VmRequirements&, NodeCapacity& n) { n.reserved_points = 1600; },
         RejectReason::kCpu, "needs 500 points, 400 free"},
        {"memory", [](VmRequirements&, NodeCapacity& n) { n.reserved_memory_mib = 30720; },
         RejectReason::kMemory, "needs 4096 MiB memory, 2048 free"},
        {"disk", [](VmRequirements&, NodeCapacity& n) { n.reserved_disk_gib = 480; },
         RejectReason::kDisk, "needs 40 GiB disk, 20 free"},
        {"gpu",
         [](VmRequirements& vm, NodeCapacity& n) {
             vm.gpu = GpuRequirement{2, "nvidia", "A100"};
             n.gpus = {{"NVIDIA", "A100-SXM4-80GB", false},
                       {"NVIDIA", "A100-SXM4-80GB", true},
                       {"NVIDIA", "RTX 4090", false}};
         },
         RejectReason::kGpu, "needs 2 nvidia A100 GPUs, 1 free"},
        {"reserved beyond capacity",
         [](VmRequirements&, NodeCapacity& n) { n.reserved_points = 5000; }, RejectReason::kCpu,
         "needs 500 points, 0 free"},
        {"no cores", [](VmRequirements&, NodeCapacity& n) { n.cpu_cores = 0; }, RejectReason::kCpu,
         "node reports no CPU cores"},
    };
    for (const auto& c : cases) {
        VmRequirements vm = MakeVm();
        NodeCapacity node = MakeNode("n1");
        c.change(vm, node);
        const FitCheck fit = CheckFit(vm, node);
        EXPECT_FALSE(fit.ok()) << c.name;
        EXPECT_EQ(fit.reason, c.reason) << c.name << ": " << ToString(fit.reason);
        EXPECT_EQ(fit.detail, c.detail) << c.name;

        // Schedule reports the same reason and text for it.
        const ScheduleResult result = Schedule(vm, std::span(&node, 1));
        EXPECT_TRUE(result.candidates.empty()) << c.name;
        ASSERT_EQ(result.rejections.size(), 1u) << c.name;
        EXPECT_EQ(result.rejections[0].node_id, "n1");
        EXPECT_EQ(result.rejections[0].reason, c.reason) << c.name;
        EXPECT_EQ(result.rejections[0].detail, c.detail) << c.name;
        EXPECT_EQ(result.RejectedCount(c.reason), 1u) << c.name;
    }
}

TEST(CheckFitTest, ExactlyFullIsStillAFit) {
    VmRequirements vm = MakeVm();
    NodeCapacity node = MakeNode("n1");
    node.reserved_points = 1500;
    node.reserved_memory_mib = 32768 - 4096;
    node.reserved_disk_gib = 460;
    EXPECT_TRUE(CheckFit(vm, node).ok());
    node.reserved_disk_gib = 461;
    EXPECT_EQ(CheckFit(vm, node).reason, RejectReason::kDisk);
}

TEST(CheckFitTest, TierChangesWhetherCpuFits) {
    VmRequirements vm = MakeVm();
    vm.cores = 8;  // the whole node at 1:1 is 2000 points
    NodeCapacity node = MakeNode("n1");
    node.reserved_points = 1000;
    vm.tier = QualityTier::kGuaranteed;
    EXPECT_EQ(CheckFit(vm, node).reason, RejectReason::kCpu);
    vm.tier = QualityTier::kStandard;  // 1334
    EXPECT_EQ(CheckFit(vm, node).reason, RejectReason::kCpu);
    vm.tier = QualityTier::kBalanced;  // 1000
    EXPECT_EQ(CheckFit(vm, node).points, 1000u);
    EXPECT_TRUE(CheckFit(vm, node).ok());
    vm.tier = QualityTier::kBurstable;  // 500
    EXPECT_EQ(CheckFit(vm, node).points, 500u);
}

TEST(CheckFitTest, GpuMatching) {
    VmRequirements vm = MakeVm();
    NodeCapacity node = MakeNode("n1");
    node.gpus = {{"NVIDIA", "GeForce RTX 4090", false}, {"AMD", "Instinct MI250", false}};

    vm.gpu = GpuRequirement{1, "", ""};
    EXPECT_TRUE(CheckFit(vm, node).ok()) << "any GPU";
    vm.gpu = GpuRequirement{2, "", ""};
    EXPECT_TRUE(CheckFit(vm, node).ok()) << "any two GPUs";
    vm.gpu = GpuRequirement{3, "", ""};
    EXPECT_EQ(CheckFit(vm, node).detail, "needs 3 GPUs, 2 free");
    vm.gpu = GpuRequirement{1, "nvidia", "rtx 4090"};
    EXPECT_TRUE(CheckFit(vm, node).ok()) << "vendor and model ignore case, model is a substring";
    vm.gpu = GpuRequirement{1, "NVIDIA", "MI250"};
    EXPECT_EQ(CheckFit(vm, node).reason, RejectReason::kGpu);
    vm.gpu = GpuRequirement{1, "NVIDI", ""};
    EXPECT_EQ(CheckFit(vm, node).reason, RejectReason::kGpu) << "vendor is a whole match";
    vm.gpu = GpuRequirement{2, "AMD", ""};
    EXPECT_EQ(CheckFit(vm, node).detail, "needs 2 AMD GPUs, 1 free");

    node.gpus[1].allocated = true;
    vm.gpu = GpuRequirement{1, "amd", ""};
    EXPECT_EQ(CheckFit(vm, node).detail, "needs 1 amd GPU, 0 free") << "allocated GPUs are taken";
}

TEST(CheckFitTest, FiltersComeBeforeCapacity) {
    VmRequirements vm = MakeVm();
    vm.region = "us-east";
    NodeCapacity node = MakeNode("n1");
    node.online = false;
    node.reserved_memory_mib = node.memory_mib;
    EXPECT_EQ(CheckFit(vm, node).reason, RejectReason::kOffline);
    node.online = true;
    EXPECT_EQ(CheckFit(vm, node).reason, RejectReason::kRegion);
    vm.region = "eu-central";
    EXPECT_EQ(CheckFit(vm, node).reason, RejectReason::kMemory);
}

TEST(ScheduleTest, PlacementCarriesPointsAndHourlyRate) {
    std::vector<NodeCapacity> nodes = {MakeNode("n1")};
    nodes[0].price_per_point_micro_usdc = 7;
    VmRequirements vm = MakeVm();
    vm.tier = QualityTier::kStandard;  // 2 cores x 250 / 1.5 = 333.3 -> 334
    const ScheduleResult result = Schedule(vm, nodes);
    ASSERT_EQ(result.candidates.size(), 1u);
    EXPECT_EQ(result.candidates[0].node_id, "n1");
    EXPECT_EQ(result.candidates[0].points, 334u);
    EXPECT_EQ(result.candidates[0].hourly_rate_micro_usdc, 334u * 7u);
    EXPECT_EQ(result.nodes_considered, 1u);
    EXPECT_TRUE(result.rejections.empty());
}

TEST(ScheduleTest, CheaperWinsWhenAllElseIsEqual) {
    std::vector<NodeCapacity> nodes = {MakeNode("a"), MakeNode("b"), MakeNode("c")};
    nodes[0].price_per_point_micro_usdc = 30;
    nodes[1].price_per_point_micro_usdc = 10;
    nodes[2].price_per_point_micro_usdc = 20;
    const ScheduleResult result = Schedule(MakeVm(), nodes);
    EXPECT_EQ(Ids(result.candidates), (std::vector<std::string>{"b", "c", "a"}));
    EXPECT_GT(result.candidates[0].score, result.candidates[1].score);
    EXPECT_GT(result.candidates[1].score, result.candidates[2].score);
}

TEST(ScheduleTest, EmptierWinsWhenAllElseIsEqual) {
    std::vector<NodeCapacity> nodes = {MakeNode("a"), MakeNode("b"), MakeNode("c")};
    nodes[0].reserved_points = 1000;
    nodes[1].reserved_memory_mib = 8192;  // memory counts as well as CPU
    const ScheduleResult result = Schedule(MakeVm(), nodes);
    EXPECT_EQ(Ids(result.candidates), (std::vector<std::string>{"c", "b", "a"}));
}

TEST(ScheduleTest, HigherUptimeWinsWhenAllElseIsEqual) {
    std::vector<NodeCapacity> nodes = {MakeNode("a"), MakeNode("b"), MakeNode("c")};
    nodes[0].uptime_ratio = 0.90;
    nodes[1].uptime_ratio = 0.999;
    nodes[2].uptime_ratio = std::numeric_limits<double>::quiet_NaN();  // counts as 0
    const ScheduleResult result = Schedule(MakeVm(), nodes);
    EXPECT_EQ(Ids(result.candidates), (std::vector<std::string>{"b", "a", "c"}));
}

TEST(ScheduleTest, WeightsDecideBetweenPriceSpreadAndUptime) {
    // cheap: cheapest but half full and flaky; empty: dearest, empty; steady: in between,
    // half full, perfect uptime.
    std::vector<NodeCapacity> nodes = {MakeNode("cheap"), MakeNode("empty"), MakeNode("steady")};
    nodes[0].price_per_point_micro_usdc = 10;
    nodes[0].reserved_points = 1000;
    nodes[0].reserved_memory_mib = 16384;
    nodes[0].uptime_ratio = 0.5;
    nodes[1].price_per_point_micro_usdc = 30;
    nodes[1].uptime_ratio = 0.5;
    nodes[2].price_per_point_micro_usdc = 20;
    nodes[2].reserved_points = 1000;
    nodes[2].reserved_memory_mib = 16384;
    nodes[2].uptime_ratio = 1.0;
    const VmRequirements vm = MakeVm();

    // Default weights 0.4/0.4/0.2: price 1.0 vs 0.0 vs 0.5; spread (mean free CPU and memory
    // after placement) 0.3125 / 0.8125 / 0.3125; uptime 0.5 / 0.5 / 1.0.
    //   cheap 0.4 + 0.125 + 0.1 = 0.625, empty 0 + 0.325 + 0.1 = 0.425,
    //   steady 0.2 + 0.125 + 0.2 = 0.525.
    auto result = Schedule(vm, nodes);
    EXPECT_EQ(Ids(result.candidates), (std::vector<std::string>{"cheap", "steady", "empty"}));
    EXPECT_NEAR(result.candidates[0].score, 0.625, 1e-12);
    EXPECT_NEAR(result.candidates[1].score, 0.525, 1e-12);
    EXPECT_NEAR(result.candidates[2].score, 0.425, 1e-12);

    ScheduleOptions spread_only;
    spread_only.weights = {0, 1, 0};
    result = Schedule(vm, nodes, spread_only);
    EXPECT_EQ(result.candidates[0].node_id, "empty");

    ScheduleOptions uptime_only;
    uptime_only.weights = {0, 0, 1};
    result = Schedule(vm, nodes, uptime_only);
    EXPECT_EQ(result.candidates[0].node_id, "steady");

    // Spread heavy enough to outweigh the price difference:
    //   cheap 0.2 + 0.25 = 0.45, empty 0 + 0.65 = 0.65, steady 0.1 + 0.25 = 0.35.
    ScheduleOptions spread_heavy;
    spread_heavy.weights = {0.2, 0.8, 0.0};
    result = Schedule(vm, nodes, spread_heavy);
    EXPECT_EQ(Ids(result.candidates), (std::vector<std::string>{"empty", "cheap", "steady"}));
    EXPECT_NEAR(result.candidates[0].score, 0.65, 1e-12);
}

TEST(ScheduleTest, TiesAreBrokenByNodeIdWhateverTheInputOrder) {
    std::vector<NodeCapacity> nodes;
    for (const char* id : {"node-07", "node-02", "node-10", "node-01", "node-05"}) {
        nodes.push_back(MakeNode(id));
    }
    ScheduleOptions options;
    options.max_candidates = 3;
    std::mt19937 rng(7);
    for (int round = 0; round < 20; ++round) {
        std::shuffle(nodes.begin(), nodes.end(), rng);
        const ScheduleResult result = Schedule(MakeVm(), nodes, options);
        EXPECT_EQ(Ids(result.candidates),
                  (std::vector<std::string>{"node-01", "node-02", "node-05"}));
    }
}

TEST(ScheduleTest, LimitsOnCandidatesAndRejections) {
    std::vector<NodeCapacity> nodes;
    for (int i = 0; i < 10; ++i) {
        nodes.push_back(MakeNode("n" + std::to_string(i)));
        nodes.back().online = i % 2 == 0;
    }
    ScheduleOptions options;
    options.max_candidates = 0;
    options.max_rejections = 0;
    ScheduleResult result = Schedule(MakeVm(), nodes, options);
    EXPECT_TRUE(result.candidates.empty());
    EXPECT_TRUE(result.rejections.empty());
    EXPECT_EQ(result.RejectedCount(RejectReason::kOffline), 5u) << "counted even when not listed";

    options.max_candidates = std::numeric_limits<std::size_t>::max();
    options.max_rejections = std::numeric_limits<std::size_t>::max();
    result = Schedule(MakeVm(), nodes, options);
    EXPECT_EQ(result.candidates.size(), 5u);
    EXPECT_EQ(result.rejections.size(), 5u);

    result = Schedule(MakeVm(), std::span<const NodeCapacity>{});
    EXPECT_TRUE(result.candidates.empty());
    EXPECT_TRUE(result.rejections.empty());
    EXPECT_EQ(result.nodes_considered, 0u);
}

TEST(ScheduleTest, CapacityRejectionsAreListedBeforeFilterRejections) {
    std::vector<NodeCapacity> nodes;
    for (int i = 0; i < 6; ++i) nodes.push_back(MakeNode("f" + std::to_string(i)));
    for (auto& n : nodes) n.online = false;
    nodes.push_back(MakeNode("z-memory"));
    nodes.back().reserved_memory_mib = nodes.back().memory_mib;
    nodes.push_back(MakeNode("y-cpu"));
    nodes.back().reserved_points = nodes.back().compute_points;
    nodes.push_back(MakeNode("x-region"));
    nodes.back().region = "us-west";
    ScheduleOptions options;
    options.max_rejections = 4;
    VmRequirements vm = MakeVm();
    vm.region = "eu-central";
    const ScheduleResult result = Schedule(vm, nodes, options);
    ASSERT_EQ(result.rejections.size(), 4u);
    EXPECT_EQ(result.rejections[0].node_id, "z-memory");
    EXPECT_EQ(result.rejections[1].node_id, "y-cpu");
    EXPECT_EQ(result.rejections[2].node_id, "x-region");
    EXPECT_EQ(result.rejections[3].node_id, "f0");
    EXPECT_EQ(result.rejections[3].reason, RejectReason::kOffline);
    EXPECT_EQ(result.RejectedCount(RejectReason::kOffline), 6u);
}

TEST(ScheduleTest, TheTargetNodesOwnRejectionIsNotDrownedByTheOthers) {
    std::vector<NodeCapacity> nodes;
    for (int i = 0; i < 50; ++i) nodes.push_back(MakeNode("n" + std::to_string(100 + i)));
    nodes[37].online = false;
    VmRequirements vm = MakeVm();
    vm.target_node_id = "n137";
    const ScheduleResult result = Schedule(vm, nodes);
    EXPECT_TRUE(result.candidates.empty());
    ASSERT_FALSE(result.rejections.empty());
    EXPECT_EQ(result.rejections[0].node_id, "n137");
    EXPECT_EQ(result.rejections[0].reason, RejectReason::kOffline);
    EXPECT_EQ(result.RejectedCount(RejectReason::kNotTarget), 49u);

    nodes[37].online = true;
    EXPECT_EQ(Ids(Schedule(vm, nodes).candidates), (std::vector<std::string>{"n137"}));
}

TEST(ExplainNoPlacementTest, CountsEachReasonMostRelevantFirst) {
    std::vector<NodeCapacity> nodes;
    for (int i = 0; i < 12; ++i) {
        nodes.push_back(MakeNode("m" + std::to_string(i)));
        nodes.back().reserved_memory_mib = 30000;
    }
    for (int i = 0; i < 3; ++i) {
        nodes.push_back(MakeNode("o" + std::to_string(i)));
        nodes.back().online = false;
    }
    nodes.push_back(MakeNode("c0"));
    nodes.back().reserved_points = 1900;
    nodes.push_back(MakeNode("t0"));
    nodes.back().tags = {"ssd"};
    VmRequirements vm = MakeVm();
    vm.cores = 4;
    vm.memory_mib = 8192;
    vm.tier = QualityTier::kStandard;
    vm.tags = {"ssd", "ipv6"};
    const ScheduleResult result = Schedule(vm, nodes);
    ASSERT_TRUE(result.candidates.empty());
    EXPECT_EQ(ExplainNoPlacement(vm, result),
              "no node can take 4 cores, 8192 MiB memory, 40 GiB disk at standard: 12 nodes lack "
              "memory (needs 8192 MiB), 1 node lacks CPU points, 1 node lacks tags ssd, ipv6, "
              "3 nodes are offline");
}

TEST(ExplainNoPlacementTest, EveryReasonHasItsWords) {
    VmRequirements vm = MakeVm();
    vm.cores = 1;
    vm.gpu = GpuRequirement{1, "NVIDIA", ""};
    vm.region = "us-east";
    vm.tags = {"nvme"};
    vm.target_node_id = "n9";
    vm.tier = QualityTier::kBurstable;
    ScheduleResult result;
    for (std::size_t r = 1; r < kRejectReasonCount; ++r) result.rejected[r] = 2;
    EXPECT_EQ(ExplainNoPlacement(vm, result),
              "no node can take 1 core, 4096 MiB memory, 40 GiB disk, 1 NVIDIA GPU at burstable: "
              "2 nodes lack GPUs (needs 1 NVIDIA GPU free), 2 nodes lack disk (needs 40 GiB), "
              "2 nodes lack memory (needs 4096 MiB), 2 nodes lack CPU points, 2 nodes lack tag "
              "nvme, 2 nodes are outside region us-east, 2 nodes lack KVM, 2 nodes are offline, "
              "2 nodes are not the requested node n9");
}

TEST(ExplainNoPlacementTest, NoNodesAtAllAndRejectionsWithoutCounts) {
    const VmRequirements vm = MakeVm();
    EXPECT_EQ(ExplainNoPlacement(vm, Schedule(vm, {})),
              "no node can take 2 cores, 4096 MiB memory, 40 GiB disk at guaranteed: no nodes "
              "are available");
    ScheduleResult handmade;
    handmade.rejections = {{"a", RejectReason::kDisk, ""}, {"b", RejectReason::kDisk, ""}};
    EXPECT_EQ(ExplainNoPlacement(vm, handmade),
              "no node can take 2 cores, 4096 MiB memory, 40 GiB disk at guaranteed: 2 nodes lack "
              "disk (needs 40 GiB)");
}

// Random nodes and VMs for the property tests. Small value ranges on purpose, so that ties in
// price and score are common.
class RandomCluster {
  public:
    explicit RandomCluster(std::uint32_t seed) : rng_(seed) {}

    std::vector<NodeCapacity> Nodes(int count) {
        std::vector<NodeCapacity> nodes;
        for (int i = 0; i < count; ++i) {
            NodeCapacity n;
            char id[32];
            std::snprintf(id, sizeof id, "node-%05d", Pick(0, 99999));
            n.node_id = std::string(id) + "-" + std::to_string(i);
            n.online = Pick(0, 9) < 8;
            n.cpu_cores = static_cast<std::uint32_t>(Pick(0, 4) * 4);  // 0 cores now and then
            n.compute_points = static_cast<std::uint64_t>(n.cpu_cores) * Pick(1, 3) * 100 +
                               static_cast<std::uint64_t>(Pick(0, 2));
            n.memory_mib = static_cast<std::uint64_t>(Pick(1, 8)) * 4096;
            n.disk_gib = static_cast<std::uint64_t>(Pick(1, 5)) * 100;
            n.reserved_points = n.compute_points * static_cast<std::uint64_t>(Pick(0, 3)) / 4;
            n.reserved_memory_mib = n.memory_mib * static_cast<std::uint64_t>(Pick(0, 3)) / 4;
            n.reserved_disk_gib = n.disk_gib * static_cast<std::uint64_t>(Pick(0, 3)) / 4;
            for (int g = Pick(-2, 3); g > 0; --g) {
                n.gpus.push_back({Pick(0, 1) ? "NVIDIA" : "AMD", Pick(0, 1) ? "A100" : "MI250",
                                  Pick(0, 3) == 0});
            }
            n.region = Pick(0, 1) ? "eu" : "us";
            if (Pick(0, 1)) n.tags.push_back("ssd");
            if (Pick(0, 1)) n.tags.push_back("ipv6");
            n.kvm_available = Pick(0, 9) > 0;
            n.price_per_point_micro_usdc = static_cast<std::uint64_t>(Pick(1, 4)) * 5;
            n.uptime_ratio = Pick(0, 4) / 4.0;
            nodes.push_back(std::move(n));
        }
        return nodes;
    }

    VmRequirements Vm() {
        VmRequirements vm;
        vm.cores = static_cast<std::uint32_t>(Pick(1, 8));
        vm.memory_mib = static_cast<std::uint64_t>(Pick(1, 16)) * 512;
        vm.disk_gib = static_cast<std::uint64_t>(Pick(1, 10)) * 10;
        vm.tier = static_cast<QualityTier>(Pick(0, 3));
        if (Pick(0, 4) == 0)
            vm.gpu = GpuRequirement{static_cast<std::uint32_t>(Pick(1, 2)), "", ""};
        if (Pick(0, 5) == 0) vm.region = Pick(0, 1) ? "eu" : "us";
        if (Pick(0, 5) == 0) vm.tags = {"ssd"};
        vm.require_kvm = Pick(0, 3) == 0;
        return vm;
    }

    int Pick(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
    std::mt19937& rng() { return rng_; }

  private:
    std::mt19937 rng_;
};

TEST(SchedulePropertyTest, RepeatedPlacementNeverOversubscribes) {
    for (std::uint32_t seed = 1; seed <= 5; ++seed) {
        RandomCluster cluster(seed);
        std::vector<NodeCapacity> nodes = cluster.Nodes(40);
        for (auto& n : nodes) {
            n.reserved_points = n.reserved_memory_mib = n.reserved_disk_gib = 0;
            for (auto& g : n.gpus) g.allocated = false;
        }
        int placed = 0;
        int refused = 0;
        for (int round = 0; round < 1500; ++round) {
            VmRequirements vm = cluster.Vm();
            if (vm.gpu) vm.gpu->vendor = cluster.Pick(0, 1) ? "nvidia" : "";
            const ScheduleResult result = Schedule(vm, nodes);
            if (result.candidates.empty()) {
                ++refused;
                continue;
            }
            ++placed;
            const Placement& p = result.candidates.front();
            auto it = std::find_if(nodes.begin(), nodes.end(),
                                   [&](const NodeCapacity& n) { return n.node_id == p.node_id; });
            ASSERT_NE(it, nodes.end());
            it->reserved_points += p.points;
            it->reserved_memory_mib += vm.memory_mib;
            it->reserved_disk_gib += vm.disk_gib;
            if (vm.gpu) {
                std::uint32_t to_allocate = vm.gpu->count;
                for (auto& g : it->gpus) {
                    if (to_allocate == 0) break;
                    const bool vendor_ok =
                        vm.gpu->vendor.empty() || g.vendor == "NVIDIA";  // only "nvidia" is asked
                    if (!g.allocated && vendor_ok) {
                        g.allocated = true;
                        --to_allocate;
                    }
                }
                ASSERT_EQ(to_allocate, 0u) << "the node was chosen without enough GPUs";
            }
            ASSERT_LE(it->reserved_points, it->compute_points) << it->node_id;
            ASSERT_LE(it->reserved_memory_mib, it->memory_mib) << it->node_id;
            ASSERT_LE(it->reserved_disk_gib, it->disk_gib) << it->node_id;
        }
        // The cluster filled up: enough placements happened, and then requests were refused.
        EXPECT_GT(placed, 50) << "seed " << seed;
        EXPECT_GT(refused, 1000) << "seed " << seed;
        for (const auto& n : nodes) {
            EXPECT_LE(n.reserved_points, n.compute_points);
            EXPECT_LE(n.reserved_memory_mib, n.memory_mib);
            EXPECT_LE(n.reserved_disk_gib, n.disk_gib);
        }
    }
}

TEST(SchedulePropertyTest, TopKMatchesABruteForceFullSort) {
    RandomCluster cluster(42);
    for (int round = 0; round < 300; ++round) {
        const std::vector<NodeCapacity> nodes = cluster.Nodes(cluster.Pick(0, 300));
        const VmRequirements vm = cluster.Vm();
        ScheduleOptions options;
        options.max_candidates = static_cast<std::size_t>(cluster.Pick(0, 12));
        options.max_rejections = static_cast<std::size_t>(cluster.Pick(0, 12));
        if (round % 3 == 1) options.weights = {0.7, 0.1, 0.2};
        if (round % 3 == 2) options.weights = {0.0, 0.0, 1.0};  // many exact ties
        const ScheduleResult result = Schedule(vm, nodes, options);

        // Brute force: check every node, score every fit, sort everything.
        struct Fit {
            std::size_t index;
            std::uint64_t points;
        };
        std::vector<Fit> fits;
        std::vector<std::pair<RejectReason, std::size_t>> rejected;
        std::map<RejectReason, std::size_t> counts;
        std::uint64_t min_rate = std::numeric_limits<std::uint64_t>::max(), max_rate = 0;
        for (std::size_t i = 0; i < nodes.size(); ++i) {
            const FitCheck fit = CheckFit(vm, nodes[i]);
            if (!fit.ok()) {
                rejected.emplace_back(fit.reason, i);
                ++counts[fit.reason];
                continue;
            }
            fits.push_back({i, fit.points});
            min_rate = std::min(min_rate, HourlyRate(fit.points, nodes[i]));
            max_rate = std::max(max_rate, HourlyRate(fit.points, nodes[i]));
        }
        std::vector<Placement> all;
        for (const Fit& f : fits) {
            const NodeCapacity& n = nodes[f.index];
            all.push_back({n.node_id, f.points, HourlyRate(f.points, n),
                           ScoreNode(vm, n, f.points, min_rate, max_rate, options.weights)});
        }
        std::sort(all.begin(), all.end(), [](const Placement& a, const Placement& b) {
            return a.score != b.score ? a.score > b.score : a.node_id < b.node_id;
        });
        all.resize(std::min(all.size(), options.max_candidates));

        ASSERT_EQ(result.candidates.size(), all.size()) << "round " << round;
        for (std::size_t k = 0; k < all.size(); ++k) {
            EXPECT_EQ(result.candidates[k].node_id, all[k].node_id) << round << "/" << k;
            EXPECT_EQ(result.candidates[k].score, all[k].score) << round << "/" << k;
            EXPECT_EQ(result.candidates[k].points, all[k].points) << round << "/" << k;
            EXPECT_EQ(result.candidates[k].hourly_rate_micro_usdc, all[k].hourly_rate_micro_usdc);
        }

        std::sort(rejected.begin(), rejected.end(), [&](const auto& a, const auto& b) {
            return a.first != b.first ? a.first > b.first
                                      : nodes[a.second].node_id < nodes[b.second].node_id;
        });
        rejected.resize(std::min(rejected.size(), options.max_rejections));
        ASSERT_EQ(result.rejections.size(), rejected.size()) << "round " << round;
        for (std::size_t k = 0; k < rejected.size(); ++k) {
            const NodeCapacity& n = nodes[rejected[k].second];
            EXPECT_EQ(result.rejections[k].node_id, n.node_id) << round << "/" << k;
            EXPECT_EQ(result.rejections[k].reason, rejected[k].first);
            EXPECT_EQ(result.rejections[k].detail, CheckFit(vm, n).detail);
        }
        for (std::size_t r = 1; r < kRejectReasonCount; ++r) {
            const auto reason = static_cast<RejectReason>(r);
            EXPECT_EQ(result.RejectedCount(reason), counts[reason]) << ToString(reason);
        }
        EXPECT_EQ(result.RejectedCount(RejectReason::kNone), 0u);
        EXPECT_EQ(result.nodes_considered, nodes.size());
    }
}

}  // namespace
}  // namespace decloud::orchestrator::domain
