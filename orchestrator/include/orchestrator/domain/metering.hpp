#pragma once

#include <cstdint>
#include <vector>

#include "decloud/common/clock.hpp"
#include "orchestrator/domain/money.hpp"
#include "orchestrator/domain/vm.hpp"

namespace decloud::orchestrator::domain {

// One entry of a VM's state history (vm_events): from `at` on, the VM is in `to`.
struct StateChange {
    common::TimePoint at{};
    VmState to = VmState::kPending;
};

// Seconds a VM was running within one hour [hour_start, hour_start + 1h).
struct MeterSlice {
    common::TimePoint hour_start{};
    std::int64_t running_seconds = 0;  // 1..3600
    friend bool operator==(const MeterSlice&, const MeterSlice&) = default;
};

// The start of the UTC hour holding `t`.
common::TimePoint HourFloor(common::TimePoint t);

// Running time of a VM within [from, to), from its state history (any order; ties keep their
// order), split at UTC hour boundaries; hours without running time are left out. Time is
// counted in whole seconds: the running intervals' ends are truncated to the second, so an
// hour never holds more than 3600 and a second is never counted in two hours. `from` and `to`
// should be hour boundaries (the metering job meters whole hours only).
std::vector<MeterSlice> RunningSecondsByHour(std::vector<StateChange> history,
                                             common::TimePoint from, common::TimePoint to);

// What `seconds` of running cost at `hourly_rate` (micro-USDC per hour), rounded down to the
// micro-unit: floor(rate x seconds / 3600). A whole hour costs the rate exactly.
Amount ChargeForSeconds(Amount hourly_rate, std::int64_t seconds);

}  // namespace decloud::orchestrator::domain
