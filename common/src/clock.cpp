#include "decloud/common/clock.hpp"

#include <cstdio>
#include <ctime>

namespace decloud::common {

std::string FormatRfc3339(TimePoint t) {
    using namespace std::chrono;
    const auto ms = duration_cast<milliseconds>(t.time_since_epoch());
    auto secs = duration_cast<seconds>(ms);
    auto frac = ms - secs;
    if (frac.count() < 0) {  // times before 1970 round toward negative infinity
        secs -= seconds{1};
        frac += seconds{1};
    }
    const std::time_t tt = secs.count();
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<int>(frac.count()));
    return buf;
}

namespace {

bool ReadDigits(std::string_view s, std::size_t& pos, std::size_t n, int& out) {
    if (pos + n > s.size()) return false;
    out = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const char c = s[pos + i];
        if (c < '0' || c > '9') return false;
        out = out * 10 + (c - '0');
    }
    pos += n;
    return true;
}

bool Expect(std::string_view s, std::size_t& pos, char c) {
    if (pos >= s.size() || s[pos] != c) return false;
    ++pos;
    return true;
}

}  // namespace

bool ParseRfc3339(std::string_view s, TimePoint& out) {
    std::size_t pos = 0;
    int year, mon, day, hour, min, sec;
    if (!ReadDigits(s, pos, 4, year) || !Expect(s, pos, '-') || !ReadDigits(s, pos, 2, mon) ||
        !Expect(s, pos, '-') || !ReadDigits(s, pos, 2, day))
        return false;
    if (pos >= s.size() || (s[pos] != 'T' && s[pos] != 't')) return false;
    ++pos;
    if (!ReadDigits(s, pos, 2, hour) || !Expect(s, pos, ':') || !ReadDigits(s, pos, 2, min) ||
        !Expect(s, pos, ':') || !ReadDigits(s, pos, 2, sec))
        return false;
    if (mon < 1 || mon > 12 || day < 1 || hour > 23 || min > 59 || sec > 60) return false;
    const std::chrono::year_month_day ymd{std::chrono::year{year},
                                          std::chrono::month{static_cast<unsigned>(mon)},
                                          std::chrono::day{static_cast<unsigned>(day)}};
    if (!ymd.ok()) return false;
    std::int64_t nanos = 0;
    if (pos < s.size() && s[pos] == '.') {
        ++pos;
        std::size_t digits = 0;
        while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
            if (digits < 9) nanos = nanos * 10 + (s[pos] - '0');
            ++digits;
            ++pos;
        }
        if (digits == 0) return false;
        for (std::size_t i = digits; i < 9; ++i) nanos *= 10;
    }
    std::int64_t offset_seconds = 0;
    if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
        ++pos;
    } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
        const int sign = s[pos] == '-' ? -1 : 1;
        ++pos;
        int oh, om;
        if (!ReadDigits(s, pos, 2, oh) || !Expect(s, pos, ':') || !ReadDigits(s, pos, 2, om))
            return false;
        if (oh > 23 || om > 59) return false;
        offset_seconds = sign * (oh * 3600 + om * 60);
    } else {
        return false;
    }
    if (pos != s.size()) return false;
    using namespace std::chrono;
    const auto days = sys_days{ymd};
    const auto tp = days + hours{hour} + minutes{min} + seconds{sec} - seconds{offset_seconds} +
                    nanoseconds{nanos};
    out = time_point_cast<Duration>(tp);
    return true;
}

}  // namespace decloud::common
