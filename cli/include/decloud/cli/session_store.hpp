#pragma once

#include <filesystem>
#include <string>

#include "decloud/common/result.hpp"

namespace decloud::cli {

// What `decloud login` keeps between commands. Tokens are credentials: the file is created with
// mode 0600 inside a 0700 directory and replaced atomically.
struct StoredSession {
    std::string api_url;
    std::string wallet_address;
    std::string token;
    std::string refresh_token;
    std::string expires_at;
};

// $DECLOUD_CONFIG_DIR, else $XDG_CONFIG_HOME/decloud, else $HOME/.config/decloud.
std::filesystem::path DefaultConfigDir();

class SessionStore {
  public:
    explicit SessionStore(std::filesystem::path dir) : dir_(std::move(dir)) {}

    std::filesystem::path path() const { return dir_ / "session.json"; }
    // kNotFound when nobody has signed in.
    common::Result<StoredSession> Load() const;
    common::Status Save(const StoredSession& session) const;
    // Succeeds when there is nothing to remove.
    common::Status Remove() const;

  private:
    std::filesystem::path dir_;
};

// Reads a secp256k1 private key file: 64 hex digits, optional 0x, surrounding whitespace ignored.
// Like ssh, refuses a file that group or others may read.
common::Result<std::string> ReadPrivateKeyFile(const std::filesystem::path& file);

}  // namespace decloud::cli
