#pragma once

#include <atomic>
#include <chrono>
#include <string>

namespace decloud::common {

using TimePoint = std::chrono::system_clock::time_point;
using Duration = std::chrono::system_clock::duration;

// The one seam through which wall time enters: domain code takes `now` as an argument, services
// hold a Clock&, tests hand in a ManualClock and never sleep. Implementations are thread-safe.
class Clock {
  public:
    virtual ~Clock() = default;
    virtual TimePoint Now() const = 0;
};

class SystemClock final : public Clock {
  public:
    TimePoint Now() const override { return std::chrono::system_clock::now(); }
};

class ManualClock final : public Clock {
  public:
    explicit ManualClock(TimePoint start = TimePoint{std::chrono::seconds{1'800'000'000}})
        : now_(start.time_since_epoch().count()) {}
    TimePoint Now() const override { return TimePoint{Duration{now_.load()}}; }
    void Set(TimePoint t) { now_.store(t.time_since_epoch().count()); }
    void Advance(Duration d) { now_.fetch_add(d.count()); }

  private:
    std::atomic<Duration::rep> now_;
};

// RFC 3339 in UTC with millisecond precision ("2026-11-24T21:07:31.046Z").
std::string FormatRfc3339(TimePoint t);
// Accepts RFC 3339 with 'Z' or a numeric offset and optional fraction; false on anything else.
bool ParseRfc3339(std::string_view text, TimePoint& out);

}  // namespace decloud::common
