#pragma once

#include <chrono>
#include <mutex>
#include <optional>
#include <string>

#include "agent/ports/forward_exception.hpp"

namespace decloud::agent::adapters {

struct IptablesForwardExceptionOptions {
    std::string iptables = "iptables";  // iptables-nft on Debian 12, as libvirt uses it
    std::string netns;                  // `ip netns` name; "" = the agent's own namespace
    // A wanted exception found in place is looked at again only after this long (libvirt or an
    // administrator may have reordered the chain meanwhile); every change is checked at once.
    std::chrono::seconds recheck{60};
    std::chrono::seconds program_timeout{20};
};

// ports::ForwardException with the iptables command (argv, no shell): `-S FORWARD` to read the
// chain, `-D`/`-I FORWARD 1` to remove or put the exception first.
class IptablesForwardException final : public ports::ForwardException {
  public:
    explicit IptablesForwardException(IptablesForwardExceptionOptions options = {});
    common::Status Ensure(bool wanted) override;

  private:
    common::Status Converge(bool wanted);

    IptablesForwardExceptionOptions options_;
    std::mutex mu_;
    std::optional<bool> settled_;  // what the chain held at the last successful check
    std::chrono::steady_clock::time_point checked_at_{};
};

}  // namespace decloud::agent::adapters
