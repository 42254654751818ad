#pragma once

#include <string>

#include "agent/domain/relay/wireguard_key.hpp"
#include "agent/ports/wireguard_key_store.hpp"
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

// The WireGuard keys in files: the key in use at `path` (LoadOrCreateWireGuardKey), the staged
// next key at `path`.next, same format and mode; committing renames the next over the current.
class FileWireGuardKeyStore : public ports::WireGuardKeyStore {
  public:
    explicit FileWireGuardKeyStore(std::string path) : path_(std::move(path)) {}

    common::Result<std::optional<domain::relay::WireGuardKey>> Staged() override;
    common::Result<domain::relay::WireGuardKey> StageNext() override;
    common::Status CommitNext() override;

  private:
    std::string NextPath() const { return path_ + ".next"; }
    std::string path_;
};

}  // namespace decloud::agent::adapters
