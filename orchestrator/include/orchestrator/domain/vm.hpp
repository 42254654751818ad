#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "decloud/common/clock.hpp"
#include "decloud/common/result.hpp"

namespace decloud::orchestrator::domain {

// The life of a VM. Every change is stored with its time and reason (vm_events).
//   pending -> scheduling -> provisioning -> running <-> stopping -> stopped -> provisioning..
//   running -> stopped (the guest powered off by itself, seen in the node's report)
//   pending, scheduling, failed -> deleted (nothing on any node to clean up)
//   any non-terminal -> deleting -> deleted;  any non-terminal -> failed;  failed -> deleting
// Two self-transitions exist: running -> running (a reboot) and deleting -> deleting (a repeated
// delete). Nothing leaves deleted; failed only goes to deleting (a failed VM is not restarted).
enum class VmState {
    kPending,
    kScheduling,
    kProvisioning,
    kRunning,
    kStopping,
    kStopped,
    kDeleting,
    kDeleted,
    kFailed,
};
std::string_view ToString(VmState state);
std::optional<VmState> ParseVmState(std::string_view text);

bool IsTerminal(VmState state);  // deleted
// Whether the VM holds capacity on its node (everything between scheduling and deleted: from
// scheduling, which holds what it is being placed with, to deleting). Pending, deleted and
// failed do not.
bool HoldsCapacity(VmState state);

// The allowed transitions, in one table; kConflict naming both states otherwise.
common::Status CheckTransition(VmState from, VmState to);

// What a user action asks of a VM in a given state: the state to move to, or kConflict saying
// why not ("cannot start a VM that is deleting"). start: stopped -> provisioning; stop:
// running -> stopping; reboot: running -> running; delete: any non-terminal -> deleting.
// Whatever it returns is allowed by CheckTransition from `current`.
enum class VmAction { kStart, kStop, kReboot, kDelete };
std::string_view ToString(VmAction action);
common::Result<VmState> NextStateFor(VmAction action, VmState current);

// A guest that stopped by itself within this long of being started failed to start (its boot
// went wrong); later, it was shut down from inside or crashed.
inline constexpr std::uint64_t kBootWindowSeconds = 300;
// The reason recorded when a node reports that a VM's guest stopped by itself, `ran_for_s`
// after it was started (unknown after an agent restart).
std::string GuestStopReason(std::optional<std::uint64_t> ran_for_s);

}  // namespace decloud::orchestrator::domain
