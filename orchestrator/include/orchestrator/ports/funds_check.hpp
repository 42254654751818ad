#pragma once

#include <cstdint>
#include <string>

#include "decloud/common/result.hpp"

namespace decloud::orchestrator::ports {

// Whether a user may start spending. Billing answers it for the VM use cases, which cannot
// depend on billing directly: billing stops VMs through them.
class FundsCheck {
  public:
    virtual ~FundsCheck() = default;
    // Ok when `owner` may start a VM that costs `hourly_rate_micro_usdc`; kPaymentRequired with
    // what to do otherwise.
    virtual common::Status MayStart(const std::string& owner,
                                    std::uint64_t hourly_rate_micro_usdc) = 0;
};

}  // namespace decloud::orchestrator::ports
