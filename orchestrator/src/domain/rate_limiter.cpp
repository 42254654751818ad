#include "orchestrator/domain/rate_limiter.hpp"

#include <algorithm>
#include <cmath>

namespace decloud::orchestrator::domain {

namespace {

double Seconds(common::Duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace

RateLimiter::RateLimiter(RateLimitPolicy policy, std::size_t max_clients)
    : policy_(policy), max_clients_(std::max<std::size_t>(max_clients, 1)) {
    policy_.per_minute = std::max(policy_.per_minute, 1e-6);
    policy_.burst = std::max(policy_.burst, 1.0);
}

double RateLimiter::Refill(const Bucket& b, common::TimePoint now) const {
    const double elapsed = std::max(0.0, Seconds(now - b.updated));
    return std::min(policy_.burst, b.tokens + elapsed * policy_.per_minute / 60.0);
}

void RateLimiter::Evict(common::TimePoint now) {
    std::erase_if(buckets_,
                  [&](const auto& entry) { return Refill(entry.second, now) >= policy_.burst; });
    if (buckets_.size() >= max_clients_) buckets_.clear();
}

std::optional<common::Duration> RateLimiter::Acquire(std::string_view client,
                                                     common::TimePoint now) {
    std::lock_guard lock(mutex_);
    auto it = buckets_.find(std::string(client));
    if (it == buckets_.end()) {
        if (buckets_.size() >= max_clients_) Evict(now);
        it = buckets_.emplace(std::string(client), Bucket{policy_.burst, now}).first;
    }
    Bucket& b = it->second;
    b.tokens = Refill(b, now);
    b.updated = std::max(b.updated, now);
    if (b.tokens >= 1.0) {
        b.tokens -= 1.0;
        return std::nullopt;
    }
    const double wait_s = (1.0 - b.tokens) * 60.0 / policy_.per_minute;
    return std::chrono::duration_cast<common::Duration>(std::chrono::duration<double>(wait_s));
}

std::size_t RateLimiter::TrackedClients() const {
    std::lock_guard lock(mutex_);
    return buckets_.size();
}

long long RetryAfterSeconds(common::Duration wait) {
    const double s = std::ceil(Seconds(wait));
    return std::max(1LL, static_cast<long long>(s));
}

}  // namespace decloud::orchestrator::domain
