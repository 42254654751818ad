#pragma once

// The agent <-> orchestrator wire contract, version 1. JSON field names are camelCase; byte
// counts are integers; times are RFC 3339 strings. Parsing is strict about types and required
// fields and tolerant of unknown fields, so a newer peer can add fields without breaking us.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "decloud/common/result.hpp"
#include "decloud/proto/relay_messages.hpp"

namespace decloud::proto {

inline constexpr int kProtocolVersion = 1;
// Header carrying the node key's Ed25519 signature (base64) of the exact registration body.
inline constexpr std::string_view kSignatureHeader = "X-DeCloud-Signature";

struct GpuInfo {
    std::string pci_address;  // "0000:01:00.0"
    std::string vendor_id;    // "0x10de"
    std::string device_id;    // "0x2204"
    std::string vendor;       // "NVIDIA" where known
    std::string model;        // marketing name where known, else empty
    friend bool operator==(const GpuInfo&, const GpuInfo&) = default;
};

struct NodeResources {
    std::string cpu_model;
    std::uint32_t cpu_cores = 0;                    // physical cores
    std::uint32_t cpu_threads = 0;                  // logical CPUs
    std::vector<std::string> virtualization_flags;  // "vmx", "svm" as found in /proc/cpuinfo
    bool kvm_available = false;                     // /dev/kvm opened and KVM_GET_API_VERSION ok
    bool vms_enabled = true;  // the agent runs VMs (absent on the wire: true, as older agents did)
    std::uint64_t memory_bytes = 0;
    std::string storage_path;  // the VM image directory measured
    std::uint64_t storage_total_bytes = 0;
    std::uint64_t storage_free_bytes = 0;
    std::vector<GpuInfo> gpus;
    friend bool operator==(const NodeResources&, const NodeResources&) = default;
};

struct ComputeScore {
    std::uint32_t points = 0;      // see docs/architecture.md, "Compute points"
    double events_per_second = 0;  // sysbench total over all threads
    std::uint32_t benchmark_threads = 0;
    friend bool operator==(const ComputeScore&, const ComputeScore&) = default;
};

struct RegisterNodeRequest {
    int protocol_version = kProtocolVersion;
    std::string node_public_key;  // Ed25519, base64
    std::string operator_wallet;  // 0x..., EIP-55 checked by the orchestrator
    std::string public_ip;        // what the agent believes its public address is (may be empty)
    std::string region;
    std::vector<std::string> tags;
    NodeResources resources;
    ComputeScore compute;
    std::string agent_version;
    std::optional<bool> behind_cgnat;  // operator's manual override, absent = detect
    // The operator's price per compute point per hour in micro-USDC (0: the platform default).
    std::uint64_t price_per_point_micro_usdc = 0;
    std::string timestamp;  // RFC 3339; signatures older than a few minutes are refused
    friend bool operator==(const RegisterNodeRequest&, const RegisterNodeRequest&) = default;
};

struct RegisterNodeResponse {
    std::string node_id;
    std::string node_token;  // bearer credential for this node's later calls
    std::uint32_t heartbeat_interval_seconds = 15;
    bool behind_cgnat = false;
    bool requires_relay = false;
    std::string cgnat_reason;
    friend bool operator==(const RegisterNodeResponse&, const RegisterNodeResponse&) = default;
};

struct NodeUsage {
    double cpu_percent = 0;  // 0..100 over all logical CPUs
    std::uint64_t memory_used_bytes = 0;
    std::uint64_t storage_used_bytes = 0;
    std::uint32_t running_vms = 0;
    friend bool operator==(const NodeUsage&, const NodeUsage&) = default;
};

struct HeartbeatRequest {
    NodeUsage usage;
    std::string agent_version;
    std::optional<RelayReport> relay = std::nullopt;  // agents with relaying enabled
    friend bool operator==(const HeartbeatRequest&, const HeartbeatRequest&) = default;
};

struct Command {
    std::string id;
    std::string type;
    nlohmann::json payload = nlohmann::json::object();
    std::string created_at;
    friend bool operator==(const Command&, const Command&) = default;
};

struct HeartbeatResponse {
    std::uint32_t next_heartbeat_seconds = 15;
    std::vector<Command> commands;
    // Present for nodes that take part in relaying (or reported relay interfaces): the complete
    // relay state to converge on. Absent: leave relay interfaces as they are.
    std::optional<RelayDesiredState> relay;
    friend bool operator==(const HeartbeatResponse&, const HeartbeatResponse&) = default;
};

struct CommandResult {
    std::string command_id;
    bool success = false;
    std::string message;
    nlohmann::json data = nlohmann::json::object();
    friend bool operator==(const CommandResult&, const CommandResult&) = default;
};

// JSON mapping. Decode* returns kInvalidArgument naming the offending field for bad input.
nlohmann::json ToJson(const NodeResources& v);
nlohmann::json ToJson(const NodeUsage& v);
nlohmann::json ToJson(const RegisterNodeRequest& v);
nlohmann::json ToJson(const RegisterNodeResponse& v);
nlohmann::json ToJson(const HeartbeatRequest& v);
nlohmann::json ToJson(const HeartbeatResponse& v);
nlohmann::json ToJson(const Command& v);
nlohmann::json ToJson(const CommandResult& v);

common::Result<NodeResources> DecodeNodeResources(const nlohmann::json& j);
common::Result<NodeUsage> DecodeNodeUsage(const nlohmann::json& j);
common::Result<RegisterNodeRequest> DecodeRegisterNodeRequest(const nlohmann::json& j);
common::Result<RegisterNodeResponse> DecodeRegisterNodeResponse(const nlohmann::json& j);
common::Result<HeartbeatRequest> DecodeHeartbeatRequest(const nlohmann::json& j);
common::Result<HeartbeatResponse> DecodeHeartbeatResponse(const nlohmann::json& j);
common::Result<Command> DecodeCommand(const nlohmann::json& j);
common::Result<CommandResult> DecodeCommandResult(const nlohmann::json& j);

// Parses text as JSON (no comments, no trailing garbage) and decodes it.
common::Result<nlohmann::json> ParseJson(std::string_view text);

}  // namespace decloud::proto
