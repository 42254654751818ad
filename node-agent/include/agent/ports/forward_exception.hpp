#pragma once

#include "decloud/common/result.hpp"

namespace decloud::agent::ports {

// The host firewall's exception for connections forwarded from CGNAT tunnels to VMs (see
// domain/relay/forward_exception.hpp). Blocking; thread-safe.
class ForwardException {
  public:
    virtual ~ForwardException() = default;
    // Makes the exception present (first, ahead of libvirt's rules) or absent. Idempotent.
    virtual common::Status Ensure(bool wanted) = 0;
};

}  // namespace decloud::agent::ports
