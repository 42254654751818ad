#include "orchestrator/domain/vm.hpp"

#include <array>
#include <string>
#include <utility>

namespace decloud::orchestrator::domain {

namespace {

constexpr std::array<VmState, 9> kAllStates = {
    VmState::kPending,  VmState::kScheduling, VmState::kProvisioning,
    VmState::kRunning,  VmState::kStopping,   VmState::kStopped,
    VmState::kDeleting, VmState::kDeleted,    VmState::kFailed,
};

using S = VmState;

// The whole state machine. Kept as a list of edges rather than a matrix so that a reader can
// check it against the diagram in vm.hpp line by line.
constexpr std::pair<VmState, VmState> kTransitions[] = {
    // The way up.
    {S::kPending, S::kScheduling},
    {S::kScheduling, S::kProvisioning},
    {S::kProvisioning, S::kRunning},
    // Reboot keeps the VM running; it is recorded as an event all the same.
    {S::kRunning, S::kRunning},
    // Stop, and a stop the guest did not complete (it is still running).
    {S::kRunning, S::kStopping},
    {S::kStopping, S::kRunning},
    {S::kStopping, S::kStopped},
    // Start goes through provisioning again: the agent may have to recreate the domain.
    {S::kStopped, S::kProvisioning},
    // Delete from anywhere but deleted; a repeated delete is idempotent.
    {S::kPending, S::kDeleting},
    {S::kScheduling, S::kDeleting},
    {S::kProvisioning, S::kDeleting},
    {S::kRunning, S::kDeleting},
    {S::kStopping, S::kDeleting},
    {S::kStopped, S::kDeleting},
    {S::kDeleting, S::kDeleting},
    {S::kFailed, S::kDeleting},
    {S::kDeleting, S::kDeleted},
    // Nothing exists on any node (never placed, or a failed create left nothing): gone at once.
    {S::kPending, S::kDeleted},
    {S::kScheduling, S::kDeleted},
    {S::kFailed, S::kDeleted},
    // The guest powered itself off; the node's report says so.
    {S::kRunning, S::kStopped},
    // Failure from anywhere but deleted (and failed itself).
    {S::kPending, S::kFailed},
    {S::kScheduling, S::kFailed},
    {S::kProvisioning, S::kFailed},
    {S::kRunning, S::kFailed},
    {S::kStopping, S::kFailed},
    {S::kStopped, S::kFailed},
    {S::kDeleting, S::kFailed},
};

bool Allowed(VmState from, VmState to) {
    for (const auto& [f, t] : kTransitions) {
        if (f == from && t == to) return true;
    }
    return false;
}

}  // namespace

std::string_view ToString(VmState state) {
    switch (state) {
        case VmState::kPending:
            return "pending";
        case VmState::kScheduling:
            return "scheduling";
        case VmState::kProvisioning:
            return "provisioning";
        case VmState::kRunning:
            return "running";
        case VmState::kStopping:
            return "stopping";
        case VmState::kStopped:
            return "stopped";
        case VmState::kDeleting:
            return "deleting";
        case VmState::kDeleted:
            return "deleted";
        case VmState::kFailed:
            return "failed";
    }
    return "unknown";
}

std::optional<VmState> ParseVmState(std::string_view text) {
    for (const VmState state : kAllStates) {
        if (ToString(state) == text) return state;
    }
    return std::nullopt;
}

bool IsTerminal(VmState state) { return state == VmState::kDeleted; }

bool HoldsCapacity(VmState state) {
    switch (state) {
        case VmState::kScheduling:
        case VmState::kProvisioning:
        case VmState::kRunning:
        case VmState::kStopping:
        case VmState::kStopped:
        case VmState::kDeleting:
            return true;
        case VmState::kPending:
        case VmState::kDeleted:
        case VmState::kFailed:
            return false;
    }
    return false;
}

common::Status CheckTransition(VmState from, VmState to) {
    if (Allowed(from, to)) return common::Ok();
    std::string message = "cannot move a VM from ";
    message += ToString(from);
    message += " to ";
    message += ToString(to);
    return common::Error::Conflict(std::move(message));
}

std::string_view ToString(VmAction action) {
    switch (action) {
        case VmAction::kStart:
            return "start";
        case VmAction::kStop:
            return "stop";
        case VmAction::kReboot:
            return "reboot";
        case VmAction::kDelete:
            return "delete";
    }
    return "unknown";
}

common::Result<VmState> NextStateFor(VmAction action, VmState current) {
    std::optional<VmState> next;
    switch (action) {
        case VmAction::kStart:
            if (current == VmState::kStopped) next = VmState::kProvisioning;
            break;
        case VmAction::kStop:
            if (current == VmState::kRunning) next = VmState::kStopping;
            break;
        case VmAction::kReboot:
            if (current == VmState::kRunning) next = VmState::kRunning;
            break;
        case VmAction::kDelete:
            if (!IsTerminal(current)) next = VmState::kDeleting;
            break;
    }
    if (next) return *next;
    std::string message = "cannot ";
    message += ToString(action);  // the verb: "cannot start a VM..."
    message += " a VM that is ";
    message += ToString(current);
    return common::Error::Conflict(std::move(message));
}

std::string GuestStopReason(std::optional<std::uint64_t> ran_for_s) {
    if (ran_for_s && *ran_for_s < kBootWindowSeconds)
        return "failed to start: the guest stopped by itself " + std::to_string(*ran_for_s) +
               " s after it was started; its boot log is kept";
    return "the guest stopped by itself (shut down from inside or crashed); its console log is "
           "kept";
}

}  // namespace decloud::orchestrator::domain
