#pragma once

#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "decloud/common/clock.hpp"

namespace decloud::orchestrator::domain {

struct RateLimitPolicy {
    double per_minute = 30;  // sustained rate
    double burst = 10;       // requests allowed at once after a quiet period
};

// Token buckets keyed by client (an IP address). Thread-safe; time comes from the caller.
// Memory is bounded: beyond `max_clients` buckets, idle (full) buckets are dropped first and,
// under a flood of distinct addresses, all of them, which errs towards letting requests in
// rather than locking everybody out.
class RateLimiter {
  public:
    explicit RateLimiter(RateLimitPolicy policy, std::size_t max_clients = 100'000);

    // Spends one request for `client`. nullopt when allowed; otherwise how long until the next
    // request would be allowed (for Retry-After).
    std::optional<common::Duration> Acquire(std::string_view client, common::TimePoint now);

    std::size_t TrackedClients() const;
    const RateLimitPolicy& policy() const { return policy_; }

  private:
    struct Bucket {
        double tokens = 0;
        common::TimePoint updated{};
    };
    double Refill(const Bucket& b, common::TimePoint now) const;
    void Evict(common::TimePoint now);

    RateLimitPolicy policy_;
    std::size_t max_clients_;
    mutable std::mutex mutex_;
    std::unordered_map<std::string, Bucket> buckets_;
};

// Whole seconds for a Retry-After header: rounded up, at least 1.
long long RetryAfterSeconds(common::Duration wait);

}  // namespace decloud::orchestrator::domain
