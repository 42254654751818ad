#include "agent/app/vm_manager.hpp"

#include <gtest/gtest.h>

#include <condition_variable>

#include "decloud/fakes/fake_hypervisor.hpp"

namespace decloud::agent::app {
namespace {

using nlohmann::json;

constexpr const char* kVm = "0b7c2f3e-4d5a-4b6c-8d7e-9f0a1b2c3d4e";
constexpr const char* kOtherVm = "1c8d3a4f-5e6b-4c7d-9e8f-0a1b2c3d4e5f";

proto::Command CreateCommand(const std::string& id, const std::string& vm,
                             std::uint64_t memory_mib = 1024, const std::string& image = "tiny") {
    proto::CreateVmPayload p;
    p.vm_id = vm;
    p.name = "web <1>";
    p.hostname = "web-1";
    p.cpu_cores = 2;
    p.memory_mib = memory_mib;
    p.disk_gib = 5;
    p.image = image;
    p.user_data = "#cloud-config\n{\"hostname\": \"web-1\"}\n";
    return proto::Command{id, "create_vm", proto::ToJson(p), ""};
}

proto::Command RefCommand(const std::string& id, const std::string& type, const std::string& vm) {
    return proto::Command{id, type, json{{"vmId", vm}, {"graceSeconds", 5}}, ""};
}

class VmManagerTest : public ::testing::Test {
  protected:
    VmManagerOptions Options() {
        VmManagerOptions o;
        o.max_memory_mib = 4096;
        o.max_vcpus = 8;
        o.clock = [this] {
            std::lock_guard lock(mutex_);
            return now_;
        };
        return o;
    }
    void Advance(std::chrono::seconds by) {
        std::lock_guard lock(mutex_);
        now_ += by;
    }

    VmManagerTest()
        : manager_(hypervisor_, images_, Options(), [this](auto r) {
              std::lock_guard lock(mutex_);
              results_.push_back(std::move(r));
              arrived_.notify_all();
          }) {}

    // Waits (bounded) for `n` results from the worker thread.
    std::vector<proto::CommandResult> WaitForResults(std::size_t n) {
        std::unique_lock lock(mutex_);
        arrived_.wait_for(lock, std::chrono::seconds{30}, [&] { return results_.size() >= n; });
        return results_;
    }

    fakes::FakeHypervisor hypervisor_;
    fakes::FakeImageStore images_{{"tiny", "debian-12"}};
    std::mutex mutex_;
    std::chrono::steady_clock::time_point now_{std::chrono::hours{1000}};
    std::condition_variable arrived_;
    std::vector<proto::CommandResult> results_;
    VmManager manager_;
};

TEST_F(VmManagerTest, CreateBuildsTheSpecAndSeedFromThePayload) {
    const auto r = manager_.Execute(CreateCommand("c1", kVm));
    ASSERT_TRUE(r.success) << r.message;
    EXPECT_EQ(r.command_id, "c1");
    EXPECT_EQ(r.data.at("addresses").size(), 1U);
    const auto spec = hypervisor_.Specs().at(kVm);
    EXPECT_EQ(spec.name, "web <1>");
    EXPECT_EQ(spec.vcpus, 2U);
    EXPECT_EQ(spec.memory_mib, 1024U);
    EXPECT_EQ(spec.disk_gib, 5U);
    EXPECT_EQ(spec.base_image, "/images/tiny/disk.qcow2");
    EXPECT_EQ(spec.network, "default");
    EXPECT_EQ(spec.seed.meta_data,
              std::string("instance-id: ") + kVm + "\nlocal-hostname: web-1\n");
    EXPECT_EQ(json::parse(spec.seed.network_config).at("version"), 2);
    EXPECT_EQ(spec.seed.user_data, "#cloud-config\n{\"hostname\": \"web-1\"}\n");
}

TEST_F(VmManagerTest, CreateIsIdempotentAndChecksCapacityAndImages) {
    ASSERT_TRUE(manager_.Execute(CreateCommand("c1", kVm, 3072)).success);
    // The same VM again (a redelivered command) is found, not refused for lack of room.
    ASSERT_TRUE(manager_.Execute(CreateCommand("c2", kVm, 3072)).success);
    EXPECT_EQ(hypervisor_.DomainCount(), 1U);

    const auto full = manager_.Execute(CreateCommand("c3", kOtherVm, 2048));
    EXPECT_FALSE(full.success);
    EXPECT_NE(full.message.find("1024 MiB of memory left"), std::string::npos) << full.message;

    const auto no_image = manager_.Execute(CreateCommand("c4", kOtherVm, 512, "plan9"));
    EXPECT_FALSE(no_image.success);
    EXPECT_NE(no_image.message.find("plan9"), std::string::npos) << no_image.message;
    EXPECT_EQ(hypervisor_.DomainCount(), 1U);
}

TEST_F(VmManagerTest, LifecycleCommandsReachTheHypervisor) {
    ASSERT_TRUE(manager_.Execute(CreateCommand("c1", kVm)).success);
    EXPECT_TRUE(manager_.Execute(RefCommand("s1", "stop_vm", kVm)).success);
    EXPECT_EQ(hypervisor_.Describe(kVm)->state, ports::DomainState::kStopped);
    EXPECT_TRUE(manager_.Execute(RefCommand("s2", "start_vm", kVm)).success);
    EXPECT_EQ(hypervisor_.Describe(kVm)->state, ports::DomainState::kRunning);
    EXPECT_TRUE(manager_.Execute(RefCommand("r1", "reboot_vm", kVm)).success);
    EXPECT_TRUE(manager_.Execute(RefCommand("d1", "delete_vm", kVm)).success);
    EXPECT_EQ(hypervisor_.DomainCount(), 0U);
    // Deleting what is gone succeeds (at-least-once delivery).
    EXPECT_TRUE(manager_.Execute(RefCommand("d2", "delete_vm", kVm)).success);
    // Starting what does not exist is a failure the orchestrator records.
    const auto start = manager_.Execute(RefCommand("s3", "start_vm", kVm));
    EXPECT_FALSE(start.success);
    EXPECT_NE(start.message.find(kVm), std::string::npos);
}

TEST_F(VmManagerTest, AHostNameThatCouldBreakTheSeedIsRefused) {
    auto c = CreateCommand("c1", kVm);
    c.payload["hostname"] = "evil\nuser-data: x";
    const auto r = manager_.Execute(c);
    EXPECT_FALSE(r.success);
    EXPECT_NE(r.message.find("DNS label"), std::string::npos) << r.message;
    EXPECT_EQ(hypervisor_.DomainCount(), 0U);
}

TEST_F(VmManagerTest, MalformedAndUnknownCommandsFailClearly) {
    auto r = manager_.Execute(proto::Command{"x1", "format_disk", json{{"vmId", kVm}}, ""});
    EXPECT_FALSE(r.success);
    EXPECT_NE(r.message.find("format_disk"), std::string::npos);
    r = manager_.Execute(proto::Command{"x2", "stop_vm", json{{"vmId", "../etc"}}, ""});
    EXPECT_FALSE(r.success);
    EXPECT_NE(r.message.find("vmId"), std::string::npos) << r.message;
    r = manager_.Execute(proto::Command{"x3", "create_vm", json{{"vmId", kVm}}, ""});
    EXPECT_FALSE(r.success);
    EXPECT_TRUE(hypervisor_.Calls().empty());
}

TEST_F(VmManagerTest, HypervisorErrorsBecomeFailedResults) {
    hypervisor_.FailNext("create", common::Error::Unavailable("libvirtd is not running"));
    const auto r = manager_.Execute(CreateCommand("c1", kVm));
    EXPECT_FALSE(r.success);
    EXPECT_NE(r.message.find("libvirtd is not running"), std::string::npos);
}

TEST_F(VmManagerTest, SubmittedCommandsRunInOrderAndRepeatsAreAnsweredFromMemory) {
    manager_.Submit(
        {CreateCommand("c1", kVm), RefCommand("s1", "stop_vm", kVm), CreateCommand("c1", kVm)});
    auto results = WaitForResults(2);
    ASSERT_EQ(results.size(), 2U);
    EXPECT_EQ(results[0].command_id, "c1");
    EXPECT_EQ(results[1].command_id, "s1");
    const auto calls_before = hypervisor_.Calls().size();
    // Delivered again (our result was lost): the earlier result, without running it again.
    manager_.Submit({RefCommand("s1", "stop_vm", kVm)});
    results = WaitForResults(3);
    ASSERT_EQ(results.size(), 3U);
    EXPECT_EQ(results[2].command_id, "s1");
    EXPECT_TRUE(results[2].success);
    EXPECT_EQ(hypervisor_.Calls().size(), calls_before);
    EXPECT_EQ(manager_.Backlog(), 0U);
}

TEST_F(VmManagerTest, ReportListsTheDomains) {
    ASSERT_TRUE(manager_.Execute(CreateCommand("c1", kVm)).success);
    ASSERT_TRUE(manager_.Execute(RefCommand("s1", "stop_vm", kVm)).success);
    auto report = manager_.Report();
    ASSERT_TRUE(report);
    ASSERT_EQ(report->domains.size(), 1U);
    EXPECT_EQ(report->domains[0].vm_id, kVm);
    EXPECT_EQ(report->domains[0].state, "stopped");
    hypervisor_.FailNext("list", common::Error::Unavailable("libvirtd restarting"));
    EXPECT_FALSE(manager_.Report());
}

const proto::ReportedVm& Reported(const proto::VmReport& report, const std::string& vm_id) {
    for (const auto& d : report.domains)
        if (d.vm_id == vm_id) return d;
    throw std::runtime_error("not reported: " + vm_id);
}

TEST_F(VmManagerTest, AGuestThatStopsByItselfIsReportedWithItsLogUntilTheReportIsAccepted) {
    ASSERT_TRUE(manager_.Execute(CreateCommand("c1", kVm)).success);
    ASSERT_TRUE(manager_.Execute(CreateCommand("c2", kOtherVm, 512)).success);
    auto report = manager_.Report();
    ASSERT_TRUE(report);
    EXPECT_FALSE(Reported(*report, kVm).stopped_by_itself);

    Advance(std::chrono::seconds{12});
    hypervisor_.GuestStops(kVm, "Booting\nno root file system, powering off\n");
    report = manager_.Report();
    ASSERT_TRUE(report);
    const auto& stopped = Reported(*report, kVm);
    EXPECT_EQ(stopped.state, "stopped");
    ASSERT_TRUE(stopped.stopped_by_itself);
    EXPECT_EQ(stopped.stopped_by_itself->boot_log, "Booting\nno root file system, powering off\n");
    EXPECT_EQ(stopped.stopped_by_itself->ran_for_s, 12U);
    EXPECT_FALSE(Reported(*report, kOtherVm).stopped_by_itself);

    // Not accepted yet (the orchestrator was down): the next report carries it again.
    auto again = manager_.Report();
    ASSERT_TRUE(again);
    EXPECT_EQ(Reported(*again, kVm).stopped_by_itself, stopped.stopped_by_itself);
    manager_.ReportDelivered(*again);
    auto after = manager_.Report();
    ASSERT_TRUE(after);
    EXPECT_FALSE(Reported(*after, kVm).stopped_by_itself);

    // Started again by its owner, it fails again: a new stop, timed from the new start.
    ASSERT_TRUE(manager_.Execute(RefCommand("s1", "start_vm", kVm)).success);
    Advance(std::chrono::seconds{3});
    hypervisor_.GuestStops(kVm, "second boot\n");
    report = manager_.Report();
    ASSERT_TRUE(report);
    ASSERT_TRUE(Reported(*report, kVm).stopped_by_itself);
    EXPECT_EQ(Reported(*report, kVm).stopped_by_itself->ran_for_s, 3U);
    EXPECT_EQ(Reported(*report, kVm).stopped_by_itself->boot_log, "second boot\n");
}

TEST_F(VmManagerTest, AStopTheOrchestratorAskedForIsNotAStopByItself) {
    ASSERT_TRUE(manager_.Execute(CreateCommand("c1", kVm)).success);
    ASSERT_TRUE(manager_.Execute(RefCommand("s1", "stop_vm", kVm)).success);
    auto report = manager_.Report();
    ASSERT_TRUE(report);
    EXPECT_EQ(Reported(*report, kVm).state, "stopped");
    EXPECT_FALSE(Reported(*report, kVm).stopped_by_itself);
    // Deleting a VM whose stop was not yet accepted forgets that stop.
    ASSERT_TRUE(manager_.Execute(RefCommand("s2", "start_vm", kVm)).success);
    hypervisor_.GuestStops(kVm, "x\n");
    ASSERT_TRUE(manager_.Report());
    ASSERT_TRUE(manager_.Execute(RefCommand("d1", "delete_vm", kVm)).success);
    report = manager_.Report();
    ASSERT_TRUE(report);
    EXPECT_TRUE(report->domains.empty());
}

TEST_F(VmManagerTest, AStopRacingAReportIsNotTakenForAStopByItself) {
    ASSERT_TRUE(manager_.Execute(CreateCommand("c1", kVm)).success);
    ASSERT_TRUE(manager_.Report());
    // The report lists the guest running; the owner's stop runs before it looks at the list.
    hypervisor_.after_next_list = [&] {
        ASSERT_TRUE(manager_.Execute(RefCommand("s1", "stop_vm", kVm)).success);
    };
    ASSERT_TRUE(manager_.Report());
    auto report = manager_.Report();
    ASSERT_TRUE(report);
    EXPECT_EQ(Reported(*report, kVm).state, "stopped");
    EXPECT_FALSE(Reported(*report, kVm).stopped_by_itself);
    // Started again, it is watched again.
    ASSERT_TRUE(manager_.Execute(RefCommand("s2", "start_vm", kVm)).success);
    hypervisor_.GuestStops(kVm, "panic\n");
    report = manager_.Report();
    ASSERT_TRUE(report);
    EXPECT_TRUE(Reported(*report, kVm).stopped_by_itself);
}

TEST_F(VmManagerTest, AGuestFoundRunningAfterARestartIsWatchedWithoutAStartTime) {
    ASSERT_TRUE(manager_.Execute(CreateCommand("c1", kVm)).success);
    // A second manager over the same hypervisor: the agent restarted.
    VmManager restarted(hypervisor_, images_, Options(), [](auto) {});
    ASSERT_TRUE(restarted.Report());
    hypervisor_.FailNext("boot_log", common::Error::Internal("cannot read console.log"));
    hypervisor_.GuestStops(kVm, "lost\n");
    auto report = restarted.Report();
    ASSERT_TRUE(report);
    ASSERT_TRUE(Reported(*report, kVm).stopped_by_itself);
    EXPECT_FALSE(Reported(*report, kVm).stopped_by_itself->ran_for_s);
    // The log could not be read: the stop is reported all the same.
    EXPECT_EQ(Reported(*report, kVm).stopped_by_itself->boot_log, "");
    restarted.Shutdown();
}

}  // namespace
}  // namespace decloud::agent::app
