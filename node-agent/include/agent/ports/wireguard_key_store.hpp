#pragma once

#include <optional>

#include "agent/domain/relay/wireguard_key.hpp"
#include "decloud/common/result.hpp"

namespace decloud::agent::ports {

// Where the agent keeps its WireGuard private keys: the one in use and, during a key rotation,
// the staged next one. Both survive restarts, so a rotation interrupted by a crash resumes with
// the same next key the orchestrator already handed to the peers. Blocking.
class WireGuardKeyStore {
  public:
    virtual ~WireGuardKeyStore() = default;

    // The staged next key, if there is one.
    virtual common::Result<std::optional<domain::relay::WireGuardKey>> Staged() = 0;
    // The staged next key, generated and stored first if there is none.
    virtual common::Result<domain::relay::WireGuardKey> StageNext() = 0;
    // The staged key becomes the key in use (atomically); kConflict without one.
    virtual common::Status CommitNext() = 0;
};

}  // namespace decloud::agent::ports
