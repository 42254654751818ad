#pragma once

#include <string>

#include "decloud/common/result.hpp"
#include "decloud/crypto/crypto.hpp"

namespace decloud::agent::adapters {

// The node's Ed25519 key. First start: generates it and writes the seed (base64) to `path`,
// created exclusively with mode 0600 (parent directories 0700). Later starts: loads it. A key
// file readable by group or others is refused (kPermissionDenied), as is malformed content.
common::Result<crypto::Ed25519KeyPair> LoadOrCreateNodeKey(const std::string& path);

}  // namespace decloud::agent::adapters
