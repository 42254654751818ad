#pragma once

#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "decloud/common/clock.hpp"
#include "decloud/common/result.hpp"
#include "decloud/proto/node_messages.hpp"
#include "orchestrator/domain/scheduling.hpp"
#include "orchestrator/domain/vm_template.hpp"
#include "orchestrator/ports/community_template_repository.hpp"
#include "orchestrator/ports/funds_check.hpp"
#include "orchestrator/ports/user_repository.hpp"
#include "orchestrator/ports/vm_repository.hpp"

namespace decloud::orchestrator::app {

struct VmServiceOptions {
    std::uint32_t max_cores = 64;
    std::uint64_t max_memory_mib = 512 * 1024;
    std::uint64_t max_disk_gib = 16 * 1024;
    std::size_t max_user_data_bytes = 64 * 1024;
    std::size_t max_vms_per_user = 100;
    std::vector<std::string> images = {"debian-12"};  // images the agents offer
    domain::ScoringWeights weights;
    common::Duration command_redelivery = std::chrono::seconds{60};
    common::Duration stop_grace = std::chrono::seconds{30};
    // A domain nobody owns is destroyed after this long (the agent may be mid-create).
    common::Duration orphan_grace = std::chrono::minutes{10};
    // VMs younger than this are not judged by a node's report (their create may be in flight).
    common::Duration report_settle_time = std::chrono::minutes{2};
};

struct CreateVmRequest {
    std::string name;
    domain::VmRequirements requirements;
    std::string image;
    std::vector<std::string> ssh_key_ids;
    std::optional<std::string> encrypted_password;  // ECIES ciphertext (hex) for the owner only
    std::optional<std::string> password_hash;       // crypt(3) SHA-512 hash for cloud-init
    std::string user_data;                          // the user's own cloud-init, optional
    std::string template_id;  // a catalogue template instead of user_data, optional
    nlohmann::json template_params = nlohmann::json::object();
    std::string idempotency_key;
};

struct CreateVmOutcome {
    ports::VmRecord vm;
    bool replayed = false;  // an earlier request with the same Idempotency-Key created it
};

struct VmPage {
    std::vector<ports::VmRecord> vms;
    std::string next_cursor;
};

// A quote: where a VM would go and what it would cost, creating nothing.
struct VmQuote {
    domain::ScheduleResult schedule;
    std::string explanation;  // why nothing fits, when nothing does
};

// VMs on behalf of their owners, and the node side of the command channel. Blocking: every
// method that touches a repository runs off the I/O threads. HasCommands is in-memory.
class VmService {
  public:
    VmService(ports::VmRepository& vms, ports::UserRepository& users, const common::Clock& clock,
              VmServiceOptions options);

    common::Result<CreateVmOutcome> Create(const std::string& owner, CreateVmRequest request);
    common::Result<VmQuote> Quote(const CreateVmRequest& request);
    common::Result<ports::VmRecord> Get(const std::string& owner, const std::string& vm_id);
    common::Result<VmPage> List(const std::string& owner, std::size_t limit,
                                const std::string& cursor);
    // What the VM's guest wrote on its console before it last stopped by itself; kNotFound for
    // another owner's VM or when none was kept.
    common::Result<ports::BootLogRecord> BootLog(const std::string& owner,
                                                 const std::string& vm_id);
    common::Result<std::vector<ports::VmEvent>> Events(const std::string& owner,
                                                       const std::string& vm_id);
    common::Result<ports::VmRecord> Act(const std::string& owner, const std::string& vm_id,
                                        domain::VmAction action);

    // Node side. Commands to deliver to this node now (marked delivered).
    common::Result<std::vector<proto::Command>> TakeCommands(const std::string& node_id);
    // Whether this replica believes the node has commands waiting (no database access).
    bool HasCommands(const std::string& node_id) const;
    // Reloads that belief from the database (a job runs it every second or so).
    common::Status RefreshCommandHints();
    common::Status CompleteCommand(const std::string& node_id, const proto::CommandResult& result);
    common::Result<ports::ReconcileOutcome> Report(
        const std::string& node_id, const std::vector<ports::ReportedDomain>& report);
    // Offline sweeper and heartbeat flush tell us which nodes left or came back.
    common::Status NodesWentOffline(const std::vector<std::string>& node_ids);
    common::Status NodesCameOnline(const std::vector<std::string>& node_ids);

    // Called (on any thread, must not block) with a node id whenever commands for it were
    // queued here or found by RefreshCommandHints: the command channel pushes them at once.
    void SetCommandListener(std::function<void(const std::string& node_id)> listener) {
        listener_ = std::move(listener);
    }

    // The template catalogue (set once at start-up, before serving).
    void SetTemplates(std::vector<domain::VmTemplate> templates) {
        templates_ = std::move(templates);
    }
    const std::vector<domain::VmTemplate>& Templates() const { return templates_; }
    const domain::VmTemplate* FindTemplate(std::string_view id) const;
    // Community templates ("<name>.v<n>" ids), looked up when no seed template has the id; a
    // deprecated version is refused for new VMs (kUnprocessable). Null: seed templates only.
    // Creating or starting a VM that costs something asks `funds` first (null: never refused).
    void SetFundsCheck(ports::FundsCheck* funds) { funds_ = funds; }
    void SetCommunityTemplates(ports::CommunityTemplateRepository* repository) {
        community_ = repository;
    }

    const VmServiceOptions& options() const { return options_; }

  private:
    common::Status Validate(const CreateVmRequest& request) const;
    // Fills the image from the template, checks its minimum resources and renders it; the
    // rendered cloud-init (empty without a template).
    // `resolved` receives the template (empty without one).
    common::Result<std::string> ApplyTemplate(CreateVmRequest& request,
                                              std::optional<domain::VmTemplate>& resolved) const;
    common::Result<domain::VmTemplate> ResolveTemplate(const std::string& id) const;
    // The scheduler's answer over the online nodes, for a request already validated.
    common::Result<VmQuote> Place(const domain::VmRequirements& requirements);
    void HintCommand(const std::string& node_id);

    ports::VmRepository& vms_;
    ports::UserRepository& users_;
    const common::Clock& clock_;
    VmServiceOptions options_;

    std::function<void(const std::string&)> listener_;
    std::vector<domain::VmTemplate> templates_;
    ports::CommunityTemplateRepository* community_ = nullptr;
    ports::FundsCheck* funds_ = nullptr;
    mutable std::mutex hints_mutex_;
    std::unordered_set<std::string> nodes_with_commands_;
};

// Validates a VM name: 1-63 characters; anything printable is kept as the display name, and a
// host name is derived from it (see HostNameFor).
common::Status ValidateVmName(std::string_view name);
// A DNS label from the name: lowercase letters, digits and '-', else "vm-<id prefix>".
std::string HostNameFor(std::string_view name, std::string_view vm_id);

// The cloud-init user-data for a VM: a #cloud-config document written as JSON (which YAML
// parsers read as is, so no user string can change its structure) with the host name, SSH
// keys and password hash; the user's own user-data, if any, joined as a second MIME part.
std::string RenderUserData(const std::string& hostname,
                           const std::vector<std::string>& authorized_keys,
                           const std::optional<std::string>& password_hash,
                           const std::string& user_data, const std::string& boundary);

}  // namespace decloud::orchestrator::app
