#include "decloud/proto/vm_messages.hpp"

#include "decloud/common/ids.hpp"
#include "decloud/proto/field_reader.hpp"

namespace decloud::proto {

using common::Error;
using common::Result;

using nlohmann::json;

namespace {

constexpr std::size_t kMaxReportedDomains = 4096;
constexpr std::size_t kMaxAddressesPerVm = 16;

#define DECLOUD_TRY(expr)                                \
    do {                                                 \
        if (auto _st = (expr); !_st) return _st.error(); \
    } while (0)

common::Status VmIdField(const FieldReader& r, std::string& out) {
    DECLOUD_TRY(r.String("vmId", out));
    if (!common::IsUuid(out)) return Error::InvalidArgument("vmId: must be a UUID");
    return common::Ok();
}

}  // namespace

json ToJson(const ChannelPush& v) {
    json commands = json::array();
    for (const auto& c : v.commands) commands.push_back(ToJson(c));
    return json{{"type", "commands"}, {"commands", std::move(commands)}};
}

Result<ChannelPush> DecodeChannelPush(const json& j) {
    FieldReader r(j, "");
    DECLOUD_TRY(r.Object());
    std::string type;
    DECLOUD_TRY(r.String("type", type));
    if (type != "commands") return Error::InvalidArgument("type: unknown message '" + type + "'");
    const auto it = j.find("commands");
    if (it == j.end() || !it->is_array())
        return Error::InvalidArgument("commands: an array is required");
    ChannelPush v;
    for (std::size_t i = 0; i < it->size(); ++i) {
        auto c = DecodeCommand((*it)[i]);
        if (!c)
            return Error::InvalidArgument("commands[" + std::to_string(i) +
                                          "]: " + c.error().message);
        v.commands.push_back(std::move(*c));
    }
    return v;
}

json ToJson(const CreateVmPayload& v) {
    return json{{"vmId", v.vm_id},
                {"name", v.name},
                {"hostname", v.hostname},
                {"cpuCores", v.cpu_cores},
                {"memoryMib", v.memory_mib},
                {"diskGib", v.disk_gib},
                {"image", v.image},
                {"userData", v.user_data},
                {"ingressPorts", v.ingress_ports}};
}

json ToJson(const VmRefPayload& v) {
    return json{{"vmId", v.vm_id}, {"graceSeconds", v.grace_seconds}};
}

json ToJson(const VmReport& v) {
    json domains = json::array();
    for (const auto& d : v.domains) {
        json domain{{"vmId", d.vm_id}, {"state", d.state}, {"addresses", d.addresses}};
        if (d.stopped_by_itself) {
            json stop{{"id", d.stopped_by_itself->id}, {"bootLog", d.stopped_by_itself->boot_log}};
            if (d.stopped_by_itself->ran_for_s)
                stop["ranForSeconds"] = *d.stopped_by_itself->ran_for_s;
            domain["stoppedByItself"] = std::move(stop);
        }
        domains.push_back(std::move(domain));
    }
    return json{{"domains", std::move(domains)}};
}

Result<CreateVmPayload> DecodeCreateVmPayload(const json& j) {
    FieldReader r(j, "payload");
    DECLOUD_TRY(r.Object());
    CreateVmPayload v;
    DECLOUD_TRY(VmIdField(r, v.vm_id));
    DECLOUD_TRY(r.String("name", v.name));
    DECLOUD_TRY(r.String("hostname", v.hostname));
    DECLOUD_TRY(r.Unsigned("cpuCores", v.cpu_cores));
    DECLOUD_TRY(r.Unsigned("memoryMib", v.memory_mib));
    DECLOUD_TRY(r.Unsigned("diskGib", v.disk_gib));
    DECLOUD_TRY(r.String("image", v.image));
    DECLOUD_TRY(r.String("userData", v.user_data, false));
    if (j.contains("ingressPorts")) {
        const auto& ports = j["ingressPorts"];
        if (!ports.is_array() || ports.size() > 32)
            return Error::InvalidArgument("payload.ingressPorts: an array of at most 32 ports");
        for (const auto& port : ports) {
            if (!port.is_number_unsigned() || port.get<std::uint64_t>() == 0 ||
                port.get<std::uint64_t>() > 65535)
                return Error::InvalidArgument("payload.ingressPorts: ports are 1 to 65535");
            v.ingress_ports.push_back(port.get<std::uint16_t>());
        }
    }
    if (v.cpu_cores == 0 || v.memory_mib == 0 || v.disk_gib == 0)
        return Error::InvalidArgument("payload: cpuCores, memoryMib and diskGib must be positive");
    return v;
}

Result<VmRefPayload> DecodeVmRefPayload(const json& j) {
    FieldReader r(j, "payload");
    DECLOUD_TRY(r.Object());
    VmRefPayload v;
    DECLOUD_TRY(VmIdField(r, v.vm_id));
    DECLOUD_TRY(r.Unsigned("graceSeconds", v.grace_seconds, false));
    return v;
}

Result<VmReport> DecodeVmReport(const json& j) {
    FieldReader r(j, "");
    DECLOUD_TRY(r.Object());
    const auto it = j.find("domains");
    if (it == j.end() || !it->is_array())
        return Error::InvalidArgument("domains: an array is required");
    if (it->size() > kMaxReportedDomains)
        return Error::InvalidArgument("domains: at most 4096 entries");
    VmReport v;
    for (std::size_t i = 0; i < it->size(); ++i) {
        FieldReader d((*it)[i], "domains[" + std::to_string(i) + "]");
        DECLOUD_TRY(d.Object());
        ReportedVm vm;
        DECLOUD_TRY(d.String("vmId", vm.vm_id));
        if (!common::IsUuid(vm.vm_id))
            return Error::InvalidArgument("domains[" + std::to_string(i) + "].vmId: not a UUID");
        DECLOUD_TRY(d.String("state", vm.state));
        DECLOUD_TRY(d.StringArray("addresses", vm.addresses, false));
        if (vm.addresses.size() > kMaxAddressesPerVm || vm.state.size() > 32)
            return Error::InvalidArgument("domains[" + std::to_string(i) + "]: too large");
        if (const auto stop = (*it)[i].find("stoppedByItself"); stop != (*it)[i].end()) {
            FieldReader s(*stop, "domains[" + std::to_string(i) + "].stoppedByItself");
            DECLOUD_TRY(s.Object());
            GuestStop guest_stop;
            DECLOUD_TRY(s.String("id", guest_stop.id));
            if (!common::IsUuid(guest_stop.id))
                return Error::InvalidArgument("domains[" + std::to_string(i) +
                                              "].stoppedByItself.id: not a UUID");
            DECLOUD_TRY(s.String("bootLog", guest_stop.boot_log));
            if (guest_stop.boot_log.size() > kMaxBootLogBytes)
                return Error::InvalidArgument("domains[" + std::to_string(i) +
                                              "].stoppedByItself.bootLog: longer than 64 KiB");
            if (stop->contains("ranForSeconds")) {
                std::uint64_t ran = 0;
                DECLOUD_TRY(s.Unsigned("ranForSeconds", ran));
                guest_stop.ran_for_s = ran;
            }
            vm.stopped_by_itself = std::move(guest_stop);
        }
        v.domains.push_back(std::move(vm));
    }
    return v;
}

#undef DECLOUD_TRY

}  // namespace decloud::proto
