#include "orchestrator/app/vm_service.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>

#include "decloud/common/ids.hpp"

namespace decloud::orchestrator::app {

using common::Error;
using common::Result;
using common::Status;
using domain::VmAction;
using domain::VmState;
using nlohmann::json;

namespace {

constexpr std::size_t kMaxVmNameLength = 63;
constexpr std::size_t kMaxImageLength = 64;
constexpr std::size_t kMaxSshKeysPerVm = 16;
constexpr std::size_t kMaxEncryptedPasswordHex = 1024;
constexpr std::size_t kMaxIdempotencyKeyLength = 128;
constexpr std::size_t kCommandsPerDelivery = 16;
constexpr std::uint64_t kMinMemoryMib = 128;

bool IsHex(std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    });
}

// crypt(3) SHA-512: "$6$" [rounds=N$] salt "$" 86 characters of [./0-9A-Za-z].
bool IsSha512CryptHash(std::string_view h) {
    if (!h.starts_with("$6$") || h.size() > 200) return false;
    const auto last = h.rfind('$');
    if (last == std::string_view::npos || last < 3 || h.size() - last - 1 != 86) return false;
    return std::all_of(h.begin() + 3, h.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
               c == '.' || c == '/' || c == '$' || c == '=';
    });
}

json CommandPayload(const ports::VmRecord& vm) { return json{{"vmId", vm.id}}; }

ports::NodeCommand NewCommand(const ports::VmRecord& vm, std::string type, json payload,
                              common::TimePoint now) {
    ports::NodeCommand c;
    c.id = common::NewUuid();
    c.node_id = vm.node_id;
    c.vm_id = vm.id;
    c.type = std::move(type);
    c.payload = std::move(payload);
    c.created_at = now;
    return c;
}

}  // namespace

Status ValidateVmName(std::string_view name) {
    if (name.empty() || name.size() > kMaxVmNameLength)
        return Error::InvalidArgument("name: 1 to 63 characters");
    for (unsigned char c : name)
        if (c < 0x20 || c == 0x7f)
            return Error::InvalidArgument("name: control characters are not allowed");
    return common::Ok();
}

std::string HostNameFor(std::string_view name, std::string_view vm_id) {
    std::string host;
    for (char c : name) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (ok)
            host.push_back(c);
        else if (!host.empty() && host.back() != '-')
            host.push_back('-');
    }
    while (!host.empty() && host.back() == '-') host.pop_back();
    if (host.size() > 63) host.resize(63);
    while (!host.empty() && host.back() == '-') host.pop_back();
    if (host.empty()) host = "vm-" + std::string(vm_id.substr(0, 8));
    return host;
}

std::string RenderUserData(const std::string& hostname,
                           const std::vector<std::string>& authorized_keys,
                           const std::optional<std::string>& password_hash,
                           const std::string& user_data, const std::string& boundary) {
    json config{{"hostname", hostname},
                {"preserve_hostname", false},
                {"ssh_authorized_keys", authorized_keys}};
    if (password_hash) {
        config["ssh_pwauth"] = true;
        config["users"] = json::array({"default", json{{"name", "decloud"},
                                                       {"hashed_passwd", *password_hash},
                                                       {"lock_passwd", false},
                                                       {"groups", "sudo"},
                                                       {"shell", "/bin/bash"},
                                                       {"ssh_authorized_keys", authorized_keys}}});
    }
    // JSON is YAML: every user-supplied string is a quoted scalar, whatever it contains.
    std::string ours = "#cloud-config\n" + config.dump() + "\n";
    if (user_data.empty()) return ours;
    const std::string user_type =
        user_data.starts_with("#!") ? "text/x-shellscript" : "text/cloud-config";
    std::string out = "Content-Type: multipart/mixed; boundary=\"" + boundary +
                      "\"\nMIME-Version: 1.0\n\n--" + boundary +
                      "\nContent-Type: text/cloud-config; charset=\"utf-8\"\n"
                      "Content-Disposition: attachment; filename=\"decloud.cfg\"\n\n" +
                      ours + "\n--" + boundary + "\nContent-Type: " + user_type +
                      "; charset=\"utf-8\"\nContent-Disposition: attachment; "
                      "filename=\"user-data\"\n\n" +
                      user_data + "\n--" + boundary + "--\n";
    return out;
}

VmService::VmService(ports::VmRepository& vms, ports::UserRepository& users,
                     const common::Clock& clock, VmServiceOptions options)
    : vms_(vms), users_(users), clock_(clock), options_(std::move(options)) {}

Status VmService::Validate(const CreateVmRequest& r) const {
    if (auto st = ValidateVmName(r.name); !st) return st;
    const auto& q = r.requirements;
    if (q.cores == 0 || q.cores > options_.max_cores)
        return Error::InvalidArgument("cpuCores: between 1 and " +
                                      std::to_string(options_.max_cores));
    if (q.memory_mib < kMinMemoryMib || q.memory_mib > options_.max_memory_mib)
        return Error::InvalidArgument("memoryMib: between " + std::to_string(kMinMemoryMib) +
                                      " and " + std::to_string(options_.max_memory_mib));
    if (q.disk_gib == 0 || q.disk_gib > options_.max_disk_gib)
        return Error::InvalidArgument("diskGib: between 1 and " +
                                      std::to_string(options_.max_disk_gib));
    if (q.gpu && (q.gpu->count == 0 || q.gpu->count > 16))
        return Error::InvalidArgument("gpu.count: between 1 and 16");
    if (!q.target_node_id.empty() && !common::IsUuid(q.target_node_id))
        return Error::InvalidArgument("nodeId: not a node id");
    if (r.image.empty() || r.image.size() > kMaxImageLength)
        return Error::InvalidArgument("image: required");
    if (std::find(options_.images.begin(), options_.images.end(), r.image) ==
        options_.images.end()) {
        std::string known;
        for (const auto& i : options_.images) known += (known.empty() ? "" : ", ") + i;
        return Error::InvalidArgument("image: unknown image '" + r.image + "' (known: " + known +
                                      ")");
    }
    if (r.ssh_key_ids.size() > kMaxSshKeysPerVm)
        return Error::InvalidArgument("sshKeyIds: at most 16 keys");
    for (const auto& id : r.ssh_key_ids)
        if (!common::IsUuid(id))
            return Error::InvalidArgument("sshKeyIds: '" + id + "' is not an id");
    if (r.user_data.size() > options_.max_user_data_bytes)
        return Error::InvalidArgument("userData: at most " +
                                      std::to_string(options_.max_user_data_bytes) + " bytes");
    if (r.encrypted_password &&
        (r.encrypted_password->empty() || r.encrypted_password->size() > kMaxEncryptedPasswordHex ||
         r.encrypted_password->size() % 2 != 0 || !IsHex(*r.encrypted_password)))
        return Error::InvalidArgument(
            "encryptedPassword: hex ECIES ciphertext of at most 512 bytes expected");
    if (r.password_hash && !IsSha512CryptHash(*r.password_hash))
        return Error::InvalidArgument(
            "passwordHash: a SHA-512 crypt hash ($6$salt$hash, as from 'openssl passwd -6') "
            "expected; never send the password itself");
    if (r.idempotency_key.size() > kMaxIdempotencyKeyLength)
        return Error::InvalidArgument("Idempotency-Key: at most 128 characters");
    return common::Ok();
}

const domain::VmTemplate* VmService::FindTemplate(std::string_view id) const {
    for (const auto& t : templates_)
        if (t.id == id) return &t;
    return nullptr;
}

Result<domain::VmTemplate> VmService::ResolveTemplate(const std::string& id) const {
    if (const auto* seed = FindTemplate(id)) return *seed;
    const auto missing = [&] {
        return Error::InvalidArgument("template: there is no template '" + id + "'");
    };
    // Community ids are "<name>.v<version>"; seed ids never hold a '.'.
    const auto dot = id.rfind(".v");
    if (community_ == nullptr || dot == std::string::npos || dot == 0) return missing();
    std::int64_t version = 0;
    const char* digits = id.data() + dot + 2;
    const auto [end, ec] = std::from_chars(digits, id.data() + id.size(), version);
    if (ec != std::errc() || end != id.data() + id.size() || version < 1) return missing();
    auto found = community_->Get(id.substr(0, dot), version);
    if (!found) {
        if (found.error().code == common::ErrorCode::kNotFound) return missing();
        return found.error();
    }
    // Deprecated: VMs already made from it keep running; new ones are refused.
    if (found->deprecated)
        return Error::Unprocessable("template '" + id +
                                    "' is deprecated by its author; new VMs cannot use it (see "
                                    "GET /api/templates?source=community for other versions)");
    return std::move(found->tmpl);
}

Result<std::string> VmService::ApplyTemplate(CreateVmRequest& r,
                                             std::optional<domain::VmTemplate>& resolved) const {
    resolved.reset();
    if (r.template_id.empty()) {
        if (!r.template_params.is_null() && !r.template_params.empty())
            return Error::InvalidArgument("templateParams: only with a template");
        return std::string();
    }
    auto found = ResolveTemplate(r.template_id);
    if (!found) return found.error();
    resolved = std::move(*found);
    const auto* tmpl = &*resolved;
    if (!r.user_data.empty())
        return Error::InvalidArgument(
            "userData: give either a template or your own user-data, not both");
    if (r.image.empty()) r.image = tmpl->image;
    const auto& q = r.requirements;
    const auto& min = tmpl->minimum;
    if (q.cores < min.cpu_cores || q.memory_mib < min.memory_mib || q.disk_gib < min.disk_gib)
        return Error::InvalidArgument("template '" + tmpl->id + "' needs at least " +
                                      std::to_string(min.cpu_cores) + " cores, " +
                                      std::to_string(min.memory_mib) + " MiB of memory and " +
                                      std::to_string(min.disk_gib) + " GiB of disk");
    return domain::RenderTemplate(*tmpl, r.template_params);
}

Result<VmQuote> VmService::Quote(const CreateVmRequest& original) {
    CreateVmRequest request = original;
    std::optional<domain::VmTemplate> resolved;
    if (auto rendered = ApplyTemplate(request, resolved); !rendered) return rendered.error();
    if (auto st = Validate(request); !st) return st.error();
    return Place(request.requirements);
}

Result<VmQuote> VmService::Place(const domain::VmRequirements& requirements) {
    const auto now = clock_.Now();
    auto nodes = vms_.SchedulableNodes(now - std::chrono::days{30}, now);
    if (!nodes) return nodes.error();
    domain::ScheduleOptions options;
    options.weights = options_.weights;
    VmQuote quote;
    quote.schedule = domain::Schedule(requirements, *nodes, options);
    if (quote.schedule.candidates.empty())
        quote.explanation = domain::ExplainNoPlacement(requirements, quote.schedule);
    return quote;
}

Result<CreateVmOutcome> VmService::Create(const std::string& owner, CreateVmRequest request) {
    std::optional<domain::VmTemplate> resolved;
    auto rendered_template = ApplyTemplate(request, resolved);
    if (!rendered_template) return rendered_template.error();
    const domain::VmTemplate* tmpl_used = resolved ? &*resolved : nullptr;
    if (auto st = Validate(request); !st) return st.error();
    if (!request.idempotency_key.empty()) {
        auto existing = vms_.FindByIdempotencyKey(owner, request.idempotency_key);
        if (existing) return CreateVmOutcome{std::move(*existing), true};
        if (existing.error().code != common::ErrorCode::kNotFound) return existing.error();
    }
    std::vector<std::string> authorized_keys;
    for (const auto& key_id : request.ssh_key_ids) {
        auto key = users_.GetSshKey(owner, key_id);
        if (!key) {
            if (key.error().code == common::ErrorCode::kNotFound)
                return Error::InvalidArgument("sshKeyIds: you have no SSH key with id '" + key_id +
                                              "'");
            return key.error();
        }
        authorized_keys.push_back(key->authorized_key);
    }
    auto quote = Place(request.requirements);
    if (!quote) return quote.error();
    if (quote->schedule.candidates.empty()) return Error::Unprocessable(quote->explanation);

    const auto now = clock_.Now();
    ports::VmRecord vm;
    vm.id = common::NewUuid();
    vm.owner_wallet = owner;
    vm.name = request.name;
    vm.state = VmState::kProvisioning;
    vm.requirements = request.requirements;
    vm.image = request.image;
    vm.ssh_key_ids = request.ssh_key_ids;
    vm.encrypted_password = request.encrypted_password;
    vm.user_data = request.user_data;
    vm.template_id = request.template_id;
    if (tmpl_used)
        vm.template_params = domain::PublicParameters(*tmpl_used, request.template_params);
    vm.gpu_count = request.requirements.gpu ? request.requirements.gpu->count : 0;
    vm.idempotency_key = request.idempotency_key;
    vm.created_at = now;
    vm.updated_at = now;
    const auto hostname = HostNameFor(vm.name, vm.id);
    // The template's web ports are what its users open through the node's ingress.
    std::vector<std::uint16_t> ingress_ports;
    if (tmpl_used) {
        for (const auto& port : tmpl_used->ports) {
            if (port.protocol == "http" || port.protocol == "https")
                ingress_ports.push_back(port.port);
        }
    }
    const auto user_data =
        RenderUserData(hostname, authorized_keys, request.password_hash,
                       request.template_id.empty() ? request.user_data : *rendered_template,
                       "decloud-" + common::RandomHex(12));

    // Best first; a node another request filled in the meantime is skipped for the next.
    std::string last_conflict;
    for (const auto& placement : quote->schedule.candidates) {
        vm.node_id = placement.node_id;
        vm.points = placement.points;
        vm.hourly_rate_micro_usdc = placement.hourly_rate_micro_usdc;
        if (funds_ && vm.hourly_rate_micro_usdc > 0) {
            if (auto st = funds_->MayStart(owner, vm.hourly_rate_micro_usdc); !st)
                return st.error();
        }
        json payload{{"vmId", vm.id},
                     {"name", vm.name},
                     {"hostname", hostname},
                     {"cpuCores", vm.requirements.cores},
                     {"memoryMib", vm.requirements.memory_mib},
                     {"diskGib", vm.requirements.disk_gib},
                     {"image", vm.image},
                     {"userData", user_data},
                     {"ingressPorts", ingress_ports}};
        auto command = NewCommand(vm, "create_vm", std::move(payload), now);
        auto inserted = vms_.InsertPlaced(vm, command, options_.max_vms_per_user, now);
        if (inserted) {
            const bool replayed = inserted->id != vm.id;
            if (!replayed) {
                HintCommand(vm.node_id);
                spdlog::info("vm {} ({}) placed on node {}: {} points, {} micro-USDC/h", vm.id,
                             owner, vm.node_id, vm.points, vm.hourly_rate_micro_usdc);
            }
            return CreateVmOutcome{std::move(*inserted), replayed};
        }
        if (inserted.error().code != common::ErrorCode::kConflict) return inserted.error();
        last_conflict = inserted.error().message;
    }
    return Error::Unprocessable("every node that could host this VM filled up meanwhile (" +
                                last_conflict + "); try again");
}

Result<ports::VmRecord> VmService::Get(const std::string& owner, const std::string& vm_id) {
    if (!common::IsUuid(vm_id)) return Error::NotFound("no VM with id '" + vm_id + "'");
    return vms_.Get(owner, vm_id);
}

Result<VmPage> VmService::List(const std::string& owner, std::size_t limit,
                               const std::string& cursor) {
    if (limit == 0 || limit > 500) return Error::InvalidArgument("limit: between 1 and 500");
    if (!cursor.empty() && !common::IsUuid(cursor))
        return Error::InvalidArgument("cursor: not a cursor from a previous page");
    ports::VmListQuery q;
    q.owner_wallet = owner;
    q.limit = limit + 1;
    q.after_id = cursor;
    auto rows = vms_.List(q);
    if (!rows) return rows.error();
    VmPage page;
    page.vms = std::move(*rows);
    if (page.vms.size() > limit) {
        page.vms.resize(limit);
        page.next_cursor = page.vms.back().id;
    }
    return page;
}

Result<ports::BootLogRecord> VmService::BootLog(const std::string& owner,
                                                const std::string& vm_id) {
    auto vm = Get(owner, vm_id);
    if (!vm) return vm.error();
    return vms_.BootLog(vm_id);
}

Result<std::vector<ports::VmEvent>> VmService::Events(const std::string& owner,
                                                      const std::string& vm_id) {
    auto vm = Get(owner, vm_id);
    if (!vm) return vm.error();
    return vms_.Events(vm_id);
}

Result<ports::VmRecord> VmService::Act(const std::string& owner, const std::string& vm_id,
                                       VmAction action) {
    auto vm = Get(owner, vm_id);
    if (!vm) return vm.error();
    auto next = domain::NextStateFor(action, vm->state);
    if (!next) return next.error();
    const auto now = clock_.Now();
    ports::VmTransition t;
    t.expected_from = {vm->state};
    t.to = *next;
    if (vm->node_id.empty()) {
        // Never placed: nothing exists on any node, so the VM can simply go.
        if (action != VmAction::kDelete)
            return Error::Conflict(
                "the VM was never placed on a node; delete it and create it "
                "again");
        t.to = VmState::kDeleted;
        t.reason = "deleted by its owner before placement";
        return vms_.Transition(vm_id, t, now);
    }
    switch (action) {
        case VmAction::kStart:
            if (funds_ && vm->hourly_rate_micro_usdc > 0) {
                if (auto st = funds_->MayStart(owner, vm->hourly_rate_micro_usdc); !st)
                    return st.error();
            }
            t.reason = "started by its owner";
            t.command = NewCommand(*vm, "start_vm", CommandPayload(*vm), now);
            break;
        case VmAction::kStop: {
            t.reason = "stopped by its owner";
            auto payload = CommandPayload(*vm);
            payload["graceSeconds"] =
                std::chrono::duration_cast<std::chrono::seconds>(options_.stop_grace).count();
            t.command = NewCommand(*vm, "stop_vm", std::move(payload), now);
            break;
        }
        case VmAction::kReboot:
            t.reason = "rebooted by its owner";
            t.command = NewCommand(*vm, "reboot_vm", CommandPayload(*vm), now);
            break;
        case VmAction::kDelete:
            t.reason = "deleted by its owner";
            t.command = NewCommand(*vm, "delete_vm", CommandPayload(*vm), now);
            break;
    }
    auto moved = vms_.Transition(vm_id, t, now);
    if (moved) HintCommand(vm->node_id);
    return moved;
}

void VmService::HintCommand(const std::string& node_id) {
    {
        std::lock_guard lock(hints_mutex_);
        nodes_with_commands_.insert(node_id);
    }
    if (listener_) listener_(node_id);
}

bool VmService::HasCommands(const std::string& node_id) const {
    std::lock_guard lock(hints_mutex_);
    return nodes_with_commands_.contains(node_id);
}

Status VmService::RefreshCommandHints() {
    auto nodes = vms_.NodesWithCommands(options_.command_redelivery, clock_.Now());
    if (!nodes) return nodes.error();
    std::unordered_set<std::string> fresh(nodes->begin(), nodes->end());
    {
        std::lock_guard lock(hints_mutex_);
        nodes_with_commands_.swap(fresh);
    }
    if (listener_)
        for (const auto& node_id : *nodes) listener_(node_id);
    return common::Ok();
}

Result<std::vector<proto::Command>> VmService::TakeCommands(const std::string& node_id) {
    auto taken =
        vms_.TakeCommands(node_id, kCommandsPerDelivery, options_.command_redelivery, clock_.Now());
    if (!taken) return taken.error();
    if (taken->size() < kCommandsPerDelivery) {
        std::lock_guard lock(hints_mutex_);
        nodes_with_commands_.erase(node_id);
    }
    std::vector<proto::Command> out;
    out.reserve(taken->size());
    for (auto& c : *taken) {
        proto::Command pc;
        pc.id = c.id;
        pc.type = c.type;
        pc.payload = std::move(c.payload);
        pc.created_at = common::FormatRfc3339(c.created_at);
        out.push_back(std::move(pc));
    }
    return out;
}

Status VmService::CompleteCommand(const std::string& node_id, const proto::CommandResult& result) {
    if (!common::IsUuid(result.command_id))
        return Error::NotFound("no command with id '" + result.command_id + "'");
    std::vector<std::string> addresses;
    if (const auto it = result.data.find("addresses"); it != result.data.end() && it->is_array()) {
        for (const auto& a : *it)
            if (a.is_string() && a.get_ref<const std::string&>().size() <= 64)
                addresses.push_back(a.get<std::string>());
    }
    std::string message = result.message.substr(0, 2000);
    return vms_.CompleteCommand(node_id, result.command_id, result.success, message, addresses,
                                clock_.Now());
}

Result<ports::ReconcileOutcome> VmService::Report(
    const std::string& node_id, const std::vector<ports::ReportedDomain>& report) {
    auto outcome = vms_.Reconcile(node_id, report, options_.report_settle_time,
                                  options_.orphan_grace, clock_.Now());
    if (!outcome) return outcome.error();
    for (const auto& id : outcome->lost)
        spdlog::warn("node {} lost the domain of vm {}: marked failed", node_id, id);
    for (const auto& id : outcome->unknown)
        spdlog::warn("node {} runs domain {} that no VM there owns", node_id, id);
    for (const auto& d : report)
        if (d.stopped_by_itself)
            spdlog::info("node {}: the guest of vm {} stopped by itself; boot log of {} bytes kept",
                         node_id, d.vm_id, d.stopped_by_itself->boot_log.size());
    if (!outcome->lost.empty() || !outcome->unknown.empty()) HintCommand(node_id);
    return outcome;
}

Status VmService::NodesWentOffline(const std::vector<std::string>& node_ids) {
    if (node_ids.empty()) return common::Ok();
    return vms_.SetNodeOffline(node_ids, true, clock_.Now());
}

Status VmService::NodesCameOnline(const std::vector<std::string>& node_ids) {
    if (node_ids.empty()) return common::Ok();
    return vms_.SetNodeOffline(node_ids, false, clock_.Now());
}

}  // namespace decloud::orchestrator::app
