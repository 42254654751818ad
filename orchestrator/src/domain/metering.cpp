#include "orchestrator/domain/metering.hpp"

#include <algorithm>

namespace decloud::orchestrator::domain {

namespace {

using std::chrono::duration_cast;
using std::chrono::hours;
using std::chrono::seconds;

std::int64_t EpochSeconds(common::TimePoint t) {
    // Floor, also for times before the epoch.
    const auto since = t.time_since_epoch();
    auto s = duration_cast<seconds>(since);
    if (s > since) s -= seconds{1};
    return s.count();
}

}  // namespace

common::TimePoint HourFloor(common::TimePoint t) {
    const std::int64_t s = EpochSeconds(t);
    std::int64_t h = s / 3600;
    if (s % 3600 < 0) --h;
    return common::TimePoint{hours{h}};
}

std::vector<MeterSlice> RunningSecondsByHour(std::vector<StateChange> history,
                                             common::TimePoint from, common::TimePoint to) {
    std::stable_sort(history.begin(), history.end(),
                     [](const StateChange& a, const StateChange& b) { return a.at < b.at; });
    const std::int64_t window_begin = EpochSeconds(from);
    const std::int64_t window_end = EpochSeconds(to);
    std::vector<MeterSlice> slices;
    const auto add = [&](std::int64_t begin, std::int64_t end) {
        begin = std::max(begin, window_begin);
        end = std::min(end, window_end);
        while (begin < end) {
            const std::int64_t hour = begin >= 0 ? begin / 3600 : (begin - 3599) / 3600;
            const std::int64_t hour_end = (hour + 1) * 3600;
            const std::int64_t stop = std::min(end, hour_end);
            const common::TimePoint hour_start{hours{hour}};
            if (!slices.empty() && slices.back().hour_start == hour_start)
                slices.back().running_seconds += stop - begin;
            else
                slices.push_back({hour_start, stop - begin});
            begin = stop;
        }
    };
    for (std::size_t i = 0; i < history.size(); ++i) {
        if (history[i].to != VmState::kRunning) continue;
        const std::int64_t begin = EpochSeconds(history[i].at);
        const std::int64_t end =
            i + 1 < history.size() ? EpochSeconds(history[i + 1].at) : window_end;
        add(begin, end);
    }
    return slices;
}

Amount ChargeForSeconds(Amount hourly_rate, std::int64_t seconds_running) {
    if (hourly_rate.micros() <= 0 || seconds_running <= 0) return Amount::Micros(0);
    return MulDivFloor(hourly_rate,
                       static_cast<std::uint64_t>(std::min<std::int64_t>(seconds_running, 3600)),
                       3600);
}

}  // namespace decloud::orchestrator::domain
