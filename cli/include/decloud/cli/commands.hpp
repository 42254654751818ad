#pragma once

#include <filesystem>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "decloud/cli/session_store.hpp"
#include "decloud/common/result.hpp"

namespace decloud::cli {

// Where a command sends its output and which API and session it uses. `api_url` empty means
// "the URL of the stored session, else http://127.0.0.1:8080".
struct CommandContext {
    std::ostream& out;
    SessionStore store;
    std::string api_url;
    bool json = false;    // print the API's JSON instead of a human summary
    std::string ca_file;  // PEM certificates to trust for https (empty: the system's)
};

inline constexpr std::string_view kDefaultApiUrl = "http://127.0.0.1:8080";

// Sign-In with Ethereum using a local key: nonce, EIP-4361 message for the orchestrator's
// advertised domain (which must be the API URL's authority), personal_sign, verify; stores the
// session.
common::Status Login(CommandContext& ctx, const std::filesystem::path& key_file);
common::Status Logout(CommandContext& ctx);
common::Status WhoAmI(CommandContext& ctx);

common::Status SshKeyAdd(CommandContext& ctx, const std::string& public_key_or_file,
                         const std::optional<std::string>& name);
common::Status SshKeyList(CommandContext& ctx);
common::Status SshKeyRemove(CommandContext& ctx, const std::string& id);

// Registers the key derived from a signature by the wallet in `key_file` (see
// crypto::DeriveEncryptionKey), or an explicit public key.
common::Status EncryptionKeyDerive(CommandContext& ctx, const std::filesystem::path& key_file);
common::Status EncryptionKeySet(CommandContext& ctx, const std::string& public_key_hex);
common::Status EncryptionKeyClear(CommandContext& ctx);

// Encrypts a VM password to the signed-in user's encryption key (as the API reports it) and
// prints the hex payload; decrypts one with the wallet key, or with the key derived from it.
common::Status PasswordEncrypt(CommandContext& ctx, const std::string& password);
common::Status PasswordDecrypt(CommandContext& ctx, const std::filesystem::path& key_file,
                               const std::string& payload_hex, bool derived);

// A new wallet key in `key_file` (created 0600, never overwritten); prints its address.
common::Status KeyNew(CommandContext& ctx, const std::filesystem::path& key_file);
common::Status KeyAddress(CommandContext& ctx, const std::filesystem::path& key_file);

struct VmCreateOptions {
    std::string name;
    std::uint32_t cpu_cores = 1;
    std::uint64_t memory_mib = 1024;
    std::uint64_t disk_gib = 10;
    std::string image = "debian-12";
    std::string tier = "standard";
    std::optional<std::string> node_id;
    std::optional<std::string> region;
    std::vector<std::string> tags;
    std::vector<std::string> ssh_key_ids;
    std::optional<std::string> user_data_file;
    std::optional<std::string> template_id;
    std::vector<std::string> template_params;  // name=value, converted to the declared type
    std::optional<std::string> idempotency_key;
    bool quote_only = false;  // ask where it would go and what it would cost, create nothing
};
common::Status VmCreate(CommandContext& ctx, const VmCreateOptions& options);
common::Status VmList(CommandContext& ctx);
common::Status VmShow(CommandContext& ctx, const std::string& id);
// start, stop, reboot or delete.
common::Status VmAct(CommandContext& ctx, const std::string& id, const std::string& action);
common::Status VmEvents(CommandContext& ctx, const std::string& id);

common::Status NodeList(CommandContext& ctx, const std::optional<std::string>& status);
common::Status NodeShow(CommandContext& ctx, const std::string& id);

}  // namespace decloud::cli
