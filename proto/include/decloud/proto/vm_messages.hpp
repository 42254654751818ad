#pragma once

// VM commands the orchestrator sends to an agent (as proto::Command payloads) and the agent's
// report of its domains. Same rules as node_messages.hpp: camelCase, strict types, unknown
// fields tolerated.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "decloud/common/result.hpp"
#include "decloud/proto/node_messages.hpp"

namespace decloud::proto {

// Command types.
inline constexpr std::string_view kCreateVm = "create_vm";
inline constexpr std::string_view kStartVm = "start_vm";
inline constexpr std::string_view kStopVm = "stop_vm";
inline constexpr std::string_view kRebootVm = "reboot_vm";
inline constexpr std::string_view kDeleteVm = "delete_vm";

struct CreateVmPayload {
    std::string vm_id;
    std::string name;      // the owner's display name (any text)
    std::string hostname;  // a DNS label derived from it
    std::uint32_t cpu_cores = 1;
    std::uint64_t memory_mib = 512;
    std::uint64_t disk_gib = 1;
    std::string image;
    std::string user_data;  // complete cloud-init user-data
    // Ports of the VM's web apps for the node's ingress, the first one also its default port
    // (host form without a port prefix); they are reachable even when not on the allow-list.
    std::vector<std::uint16_t> ingress_ports;
    friend bool operator==(const CreateVmPayload&, const CreateVmPayload&) = default;
};

// start_vm, stop_vm, reboot_vm, delete_vm.
struct VmRefPayload {
    std::string vm_id;
    std::uint32_t grace_seconds = 30;  // stop: ACPI first, power off after this
    friend bool operator==(const VmRefPayload&, const VmRefPayload&) = default;
};

// The guest stopped (powered off or crashed) without the orchestrator asking: what it wrote on
// its console since it was started, kept for its owner.
struct GuestStop {
    std::string id;        // a UUID the agent gives each stop, so one sent twice is recorded once
    std::string boot_log;  // UTF-8 text, at most kMaxBootLogBytes
    std::optional<std::uint64_t> ran_for_s;  // since the agent started it, when it knows
    friend bool operator==(const GuestStop&, const GuestStop&) = default;
};
inline constexpr std::size_t kMaxBootLogBytes = 64 * 1024;

struct ReportedVm {
    std::string vm_id;
    std::string state;  // running, stopped, paused, crashed, other
    std::vector<std::string> addresses;
    std::optional<GuestStop> stopped_by_itself;  // sent until a report carrying it is accepted
    friend bool operator==(const ReportedVm&, const ReportedVm&) = default;
};

// POST /api/nodes/{id}/vms/report: every DeCloud domain on the node.
struct VmReport {
    std::vector<ReportedVm> domains;
    friend bool operator==(const VmReport&, const VmReport&) = default;
};

// What the orchestrator pushes on a node's command channel (GET /api/nodes/{id}/channel, a
// WebSocket the agent opens): {"type": "commands", "commands": [Command...]}.
struct ChannelPush {
    std::vector<Command> commands;
    friend bool operator==(const ChannelPush&, const ChannelPush&) = default;
};

nlohmann::json ToJson(const ChannelPush& v);
common::Result<ChannelPush> DecodeChannelPush(const nlohmann::json& j);

nlohmann::json ToJson(const CreateVmPayload& v);
nlohmann::json ToJson(const VmRefPayload& v);
nlohmann::json ToJson(const VmReport& v);
common::Result<CreateVmPayload> DecodeCreateVmPayload(const nlohmann::json& j);
common::Result<VmRefPayload> DecodeVmRefPayload(const nlohmann::json& j);
common::Result<VmReport> DecodeVmReport(const nlohmann::json& j);

}  // namespace decloud::proto
