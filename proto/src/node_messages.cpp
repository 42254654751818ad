#include "decloud/proto/node_messages.hpp"

#include "decloud/proto/field_reader.hpp"

#include <cmath>
#include <limits>

namespace decloud::proto {

using common::Error;
using common::Result;
using common::Status;
using nlohmann::json;

namespace {

#define DECLOUD_TRY(expr)                                \
    do {                                                 \
        if (auto _st = (expr); !_st) return _st.error(); \
    } while (0)

Result<GpuInfo> DecodeGpu(const json& j) {
    FieldReader r(j, "");
    DECLOUD_TRY(r.Object());
    GpuInfo g;
    DECLOUD_TRY(r.String("pciAddress", g.pci_address));
    DECLOUD_TRY(r.String("vendorId", g.vendor_id));
    DECLOUD_TRY(r.String("deviceId", g.device_id));
    DECLOUD_TRY(r.String("vendor", g.vendor, false));
    DECLOUD_TRY(r.String("model", g.model, false));
    return g;
}

Result<ComputeScore> DecodeComputeScore(const json& j) {
    FieldReader r(j, "");
    DECLOUD_TRY(r.Object());
    ComputeScore c;
    DECLOUD_TRY(r.Unsigned("points", c.points));
    DECLOUD_TRY(r.Double("eventsPerSecond", c.events_per_second, 0, 1e12));
    DECLOUD_TRY(r.Unsigned("benchmarkThreads", c.benchmark_threads));
    return c;
}

json ToJson(const GpuInfo& g) {
    return json{{"pciAddress", g.pci_address},
                {"vendorId", g.vendor_id},
                {"deviceId", g.device_id},
                {"vendor", g.vendor},
                {"model", g.model}};
}

json ToJson(const ComputeScore& c) {
    return json{{"points", c.points},
                {"eventsPerSecond", c.events_per_second},
                {"benchmarkThreads", c.benchmark_threads}};
}

}  // namespace

json ToJson(const NodeResources& v) {
    json gpus = json::array();
    for (const auto& g : v.gpus) gpus.push_back(ToJson(g));
    return json{{"cpuModel", v.cpu_model},
                {"cpuCores", v.cpu_cores},
                {"cpuThreads", v.cpu_threads},
                {"virtualizationFlags", v.virtualization_flags},
                {"kvmAvailable", v.kvm_available},
                {"vmsEnabled", v.vms_enabled},
                {"memoryBytes", v.memory_bytes},
                {"storagePath", v.storage_path},
                {"storageTotalBytes", v.storage_total_bytes},
                {"storageFreeBytes", v.storage_free_bytes},
                {"gpus", std::move(gpus)}};
}

json ToJson(const NodeUsage& v) {
    return json{{"cpuPercent", v.cpu_percent},
                {"memoryUsedBytes", v.memory_used_bytes},
                {"storageUsedBytes", v.storage_used_bytes},
                {"runningVms", v.running_vms}};
}

json ToJson(const RegisterNodeRequest& v) {
    json j{{"protocolVersion", v.protocol_version},
           {"nodePublicKey", v.node_public_key},
           {"operatorWallet", v.operator_wallet},
           {"publicIp", v.public_ip},
           {"region", v.region},
           {"tags", v.tags},
           {"resources", ToJson(v.resources)},
           {"compute", ToJson(v.compute)},
           {"agentVersion", v.agent_version},
           {"timestamp", v.timestamp}};
    if (v.behind_cgnat) j["behindCgnat"] = *v.behind_cgnat;
    if (v.price_per_point_micro_usdc != 0)
        j["pricePerPointMicroUsdc"] = v.price_per_point_micro_usdc;
    return j;
}

json ToJson(const RegisterNodeResponse& v) {
    return json{{"nodeId", v.node_id},
                {"nodeToken", v.node_token},
                {"heartbeatIntervalSeconds", v.heartbeat_interval_seconds},
                {"behindCgnat", v.behind_cgnat},
                {"requiresRelay", v.requires_relay},
                {"cgnatReason", v.cgnat_reason}};
}

json ToJson(const HeartbeatRequest& v) {
    json j{{"usage", ToJson(v.usage)}, {"agentVersion", v.agent_version}};
    if (v.relay) j["relay"] = ToJson(*v.relay);
    return j;
}

json ToJson(const Command& v) {
    return json{
        {"id", v.id}, {"type", v.type}, {"payload", v.payload}, {"createdAt", v.created_at}};
}

json ToJson(const HeartbeatResponse& v) {
    json commands = json::array();
    for (const auto& c : v.commands) commands.push_back(ToJson(c));
    json j{{"nextHeartbeatSeconds", v.next_heartbeat_seconds}, {"commands", std::move(commands)}};
    if (v.relay) j["relay"] = ToJson(*v.relay);
    return j;
}

json ToJson(const CommandResult& v) {
    return json{{"commandId", v.command_id},
                {"success", v.success},
                {"message", v.message},
                {"data", v.data}};
}

Result<NodeResources> DecodeNodeResources(const json& j) {
    FieldReader r(j, "");
    DECLOUD_TRY(r.Object());
    NodeResources v;
    DECLOUD_TRY(r.String("cpuModel", v.cpu_model));
    DECLOUD_TRY(r.Unsigned("cpuCores", v.cpu_cores));
    DECLOUD_TRY(r.Unsigned("cpuThreads", v.cpu_threads));
    DECLOUD_TRY(r.StringArray("virtualizationFlags", v.virtualization_flags, false));
    DECLOUD_TRY(r.Bool("kvmAvailable", v.kvm_available));
    DECLOUD_TRY(r.Bool("vmsEnabled", v.vms_enabled, false));
    DECLOUD_TRY(r.Unsigned("memoryBytes", v.memory_bytes));
    DECLOUD_TRY(r.String("storagePath", v.storage_path, false));
    DECLOUD_TRY(r.Unsigned("storageTotalBytes", v.storage_total_bytes));
    DECLOUD_TRY(r.Unsigned("storageFreeBytes", v.storage_free_bytes));
    const auto gpus = j.find("gpus");
    if (gpus != j.end() && !gpus->is_null()) {
        if (!gpus->is_array()) return Error::InvalidArgument("gpus: must be an array");
        for (std::size_t i = 0; i < gpus->size(); ++i) {
            auto g = DecodeGpu((*gpus)[i]);
            if (!g)
                return Error::InvalidArgument("gpus[" + std::to_string(i) +
                                              "]: " + g.error().message);
            v.gpus.push_back(std::move(*g));
        }
    }
    return v;
}

Result<NodeUsage> DecodeNodeUsage(const json& j) {
    FieldReader r(j, "");
    DECLOUD_TRY(r.Object());
    NodeUsage v;
    DECLOUD_TRY(r.Double("cpuPercent", v.cpu_percent, 0, 100));
    DECLOUD_TRY(r.Unsigned("memoryUsedBytes", v.memory_used_bytes));
    DECLOUD_TRY(r.Unsigned("storageUsedBytes", v.storage_used_bytes));
    DECLOUD_TRY(r.Unsigned("runningVms", v.running_vms));
    return v;
}

Result<RegisterNodeRequest> DecodeRegisterNodeRequest(const json& j) {
    FieldReader r(j, "");
    DECLOUD_TRY(r.Object());
    RegisterNodeRequest v;
    DECLOUD_TRY(r.Int("protocolVersion", v.protocol_version));
    if (v.protocol_version != kProtocolVersion)
        return Error::InvalidArgument("protocolVersion: " + std::to_string(v.protocol_version) +
                                      " is not supported (expected " +
                                      std::to_string(kProtocolVersion) + ")");
    DECLOUD_TRY(r.String("nodePublicKey", v.node_public_key));
    DECLOUD_TRY(r.String("operatorWallet", v.operator_wallet));
    DECLOUD_TRY(r.String("publicIp", v.public_ip, false));
    DECLOUD_TRY(r.String("region", v.region, false));
    DECLOUD_TRY(r.StringArray("tags", v.tags, false));
    DECLOUD_TRY(r.Nested("resources", v.resources, DecodeNodeResources));
    DECLOUD_TRY(r.Nested("compute", v.compute, DecodeComputeScore));
    DECLOUD_TRY(r.String("agentVersion", v.agent_version, false));
    DECLOUD_TRY(r.OptionalBool("behindCgnat", v.behind_cgnat));
    DECLOUD_TRY(r.Unsigned("pricePerPointMicroUsdc", v.price_per_point_micro_usdc, false));
    DECLOUD_TRY(r.String("timestamp", v.timestamp));
    return v;
}

Result<RegisterNodeResponse> DecodeRegisterNodeResponse(const json& j) {
    FieldReader r(j, "");
    DECLOUD_TRY(r.Object());
    RegisterNodeResponse v;
    DECLOUD_TRY(r.String("nodeId", v.node_id));
    DECLOUD_TRY(r.String("nodeToken", v.node_token));
    DECLOUD_TRY(r.Unsigned("heartbeatIntervalSeconds", v.heartbeat_interval_seconds));
    DECLOUD_TRY(r.Bool("behindCgnat", v.behind_cgnat));
    DECLOUD_TRY(r.Bool("requiresRelay", v.requires_relay));
    DECLOUD_TRY(r.String("cgnatReason", v.cgnat_reason, false));
    return v;
}

Result<HeartbeatRequest> DecodeHeartbeatRequest(const json& j) {
    FieldReader r(j, "");
    DECLOUD_TRY(r.Object());
    HeartbeatRequest v;
    DECLOUD_TRY(r.Nested("usage", v.usage, DecodeNodeUsage));
    DECLOUD_TRY(r.String("agentVersion", v.agent_version, false));
    if (const auto it = j.find("relay"); it != j.end() && !it->is_null()) {
        RelayReport relay;
        DECLOUD_TRY(r.Nested("relay", relay, DecodeRelayReport));
        v.relay = std::move(relay);
    }
    return v;
}

Result<Command> DecodeCommand(const json& j) {
    FieldReader r(j, "");
    DECLOUD_TRY(r.Object());
    Command v;
    DECLOUD_TRY(r.String("id", v.id));
    DECLOUD_TRY(r.String("type", v.type));
    const auto p = j.find("payload");
    if (p != j.end() && !p->is_null()) {
        if (!p->is_object()) return Error::InvalidArgument("payload: must be an object");
        v.payload = *p;
    }
    DECLOUD_TRY(r.String("createdAt", v.created_at, false));
    return v;
}

Result<HeartbeatResponse> DecodeHeartbeatResponse(const json& j) {
    FieldReader r(j, "");
    DECLOUD_TRY(r.Object());
    HeartbeatResponse v;
    DECLOUD_TRY(r.Unsigned("nextHeartbeatSeconds", v.next_heartbeat_seconds));
    const auto cmds = j.find("commands");
    if (cmds != j.end() && !cmds->is_null()) {
        if (!cmds->is_array()) return Error::InvalidArgument("commands: must be an array");
        for (std::size_t i = 0; i < cmds->size(); ++i) {
            auto c = DecodeCommand((*cmds)[i]);
            if (!c)
                return Error::InvalidArgument("commands[" + std::to_string(i) +
                                              "]: " + c.error().message);
            v.commands.push_back(std::move(*c));
        }
    }
    if (const auto it = j.find("relay"); it != j.end() && !it->is_null()) {
        RelayDesiredState relay;
        DECLOUD_TRY(r.Nested("relay", relay, DecodeRelayDesiredState));
        v.relay = std::move(relay);
    }
    return v;
}

Result<CommandResult> DecodeCommandResult(const json& j) {
    FieldReader r(j, "");
    DECLOUD_TRY(r.Object());
    CommandResult v;
    DECLOUD_TRY(r.String("commandId", v.command_id));
    DECLOUD_TRY(r.Bool("success", v.success));
    DECLOUD_TRY(r.String("message", v.message, false));
    const auto d = j.find("data");
    if (d != j.end() && !d->is_null()) v.data = *d;
    return v;
}

Result<json> ParseJson(std::string_view text) {
    json j = json::parse(text, nullptr, /*allow_exceptions=*/false, /*ignore_comments=*/false);
    if (j.is_discarded()) return Error::InvalidArgument("body is not valid JSON");
    return Result<json>(boost::system::in_place_value, std::move(j));
}

#undef DECLOUD_TRY

}  // namespace decloud::proto
