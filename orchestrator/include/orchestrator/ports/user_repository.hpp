#pragma once

#include <optional>
#include <string>
#include <vector>

#include "decloud/common/clock.hpp"
#include "decloud/common/result.hpp"

namespace decloud::orchestrator::ports {

struct UserRecord {
    std::string wallet_address;
    common::TimePoint created_at{};
    common::TimePoint last_sign_in_at{};
    std::string wallet_public_key;  // hex, uncompressed; recovered at sign-in
    std::optional<std::string> encryption_public_key;
    std::optional<common::TimePoint> encryption_key_updated_at;
};

struct SshKeyRecord {
    std::string id;
    std::string wallet_address;
    std::string name;
    std::string algorithm;
    std::string key_type;
    int bits = 0;
    std::string fingerprint;
    std::string authorized_key;
    common::TimePoint created_at{};
};

// Users' profiles and keys. Blocking, thread-safe. Every call is scoped by the owner's wallet, so
// an id of another user's object is simply not found.
class UserRepository {
  public:
    virtual ~UserRepository() = default;

    // kNotFound if the wallet never signed in.
    virtual common::Result<UserRecord> GetUser(const std::string& wallet) = 0;
    // Sets or (nullopt) clears the registered encryption key.
    virtual common::Status SetEncryptionKey(const std::string& wallet,
                                            const std::optional<std::string>& public_key_hex,
                                            common::TimePoint now) = 0;

    // kConflict when the owner already has this fingerprint or name; kInvalidArgument when the
    // owner already has `max_keys` keys (counted under a lock on the user's row).
    virtual common::Status AddSshKey(const SshKeyRecord& key, std::size_t max_keys) = 0;
    virtual common::Result<std::vector<SshKeyRecord>> ListSshKeys(const std::string& wallet) = 0;
    virtual common::Result<SshKeyRecord> GetSshKey(const std::string& wallet,
                                                   const std::string& id) = 0;
    // kNotFound unless the key exists and belongs to `wallet`.
    virtual common::Status RemoveSshKey(const std::string& wallet, const std::string& id) = 0;
};

}  // namespace decloud::orchestrator::ports
