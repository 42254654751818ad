#pragma once

#include <optional>
#include <string>
#include <vector>

#include "decloud/common/clock.hpp"
#include "decloud/common/result.hpp"
#include "orchestrator/ports/user_repository.hpp"

namespace decloud::orchestrator::app {

inline constexpr std::size_t kMaxSshKeysPerUser = 32;

struct UserView {
    ports::UserRecord user;
    // The key VM passwords are encrypted to: the registered one, else the wallet's own.
    std::string encryption_public_key;
    std::string encryption_key_source;  // "registered" or "wallet"
};

// A signed-in user's own profile and keys. Every method takes the caller's wallet and touches
// nothing else. Blocking (repository calls): run off the I/O threads.
class UserService {
  public:
    UserService(ports::UserRepository& repository, const common::Clock& clock);

    common::Result<UserView> Profile(const std::string& wallet);
    // Registers a secp256k1 public key (hex, 33 or 65 bytes) as the user's encryption key.
    common::Result<UserView> SetEncryptionKey(const std::string& wallet,
                                              std::string_view public_key_hex);
    common::Result<UserView> ClearEncryptionKey(const std::string& wallet);

    // Validates the OpenSSH line; the name defaults to the key's comment, else its fingerprint.
    common::Result<ports::SshKeyRecord> AddSshKey(const std::string& wallet,
                                                  std::optional<std::string> name,
                                                  std::string_view public_key);
    common::Result<std::vector<ports::SshKeyRecord>> ListSshKeys(const std::string& wallet);
    common::Result<ports::SshKeyRecord> GetSshKey(const std::string& wallet, const std::string& id);
    common::Status RemoveSshKey(const std::string& wallet, const std::string& id);

  private:
    ports::UserRepository& repository_;
    const common::Clock& clock_;
};

// Key names: 1-64 characters of letters, digits, space and . _ @ + - (shown in lists, used in
// VM requests).
common::Status ValidateKeyName(std::string_view name);

}  // namespace decloud::orchestrator::app
