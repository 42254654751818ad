#pragma once

#include <string>

#include "agent/domain/relay/wireguard_key.hpp"
#include "decloud/common/result.hpp"
#include "decloud/crypto/crypto.hpp"

namespace decloud::agent::adapters {

// The node's Ed25519 key. First start: generates it and writes the seed (base64) to `path`,
// created exclusively with mode 0600 (parent directories 0700). Later starts: loads it. A key
// file readable by group or others is refused (kPermissionDenied), as is malformed content.
common::Result<crypto::Ed25519KeyPair> LoadOrCreateNodeKey(const std::string& path);

// The agent's WireGuard private key for its relay interfaces, kept the same way (base64, as
// `wg genkey` writes it). Only its public half is ever sent to the orchestrator.
common::Result<domain::relay::WireGuardKey> LoadOrCreateWireGuardKey(const std::string& path);

}  // namespace decloud::agent::adapters
