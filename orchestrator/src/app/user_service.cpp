#include "orchestrator/app/user_service.hpp"

#include <algorithm>

#include "decloud/common/ids.hpp"
#include "decloud/crypto/ecies.hpp"
#include "decloud/crypto/ssh_key.hpp"

namespace decloud::orchestrator::app {

using common::Error;
using common::ErrorCode;
using common::Result;

namespace {

UserView ToView(ports::UserRecord user) {
    UserView v;
    if (user.encryption_public_key) {
        v.encryption_public_key = *user.encryption_public_key;
        v.encryption_key_source = "registered";
    } else if (!user.wallet_public_key.empty()) {
        v.encryption_public_key = user.wallet_public_key;
        v.encryption_key_source = "wallet";
    } else {
        v.encryption_key_source = "none";  // known from the next sign-in on
    }
    v.user = std::move(user);
    return v;
}

bool NameChar(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == ' ' ||
           c == '.' || c == '_' || c == '@' || c == '+' || c == '-';
}

}  // namespace

common::Status ValidateKeyName(std::string_view name) {
    if (name.empty() || name.size() > 64) return Error::InvalidArgument("name: 1 to 64 characters");
    if (name.front() == ' ' || name.back() == ' ')
        return Error::InvalidArgument("name: no leading or trailing spaces");
    for (char c : name)
        if (!NameChar(c))
            return Error::InvalidArgument(
                "name: only letters, digits, spaces and . _ @ + - are allowed");
    return common::Ok();
}

UserService::UserService(ports::UserRepository& repository, const common::Clock& clock)
    : repository_(repository), clock_(clock) {}

Result<UserView> UserService::Profile(const std::string& wallet) {
    auto user = repository_.GetUser(wallet);
    if (!user) return user.error();
    return ToView(std::move(*user));
}

Result<UserView> UserService::SetEncryptionKey(const std::string& wallet,
                                               std::string_view public_key_hex) {
    auto key = crypto::ParseSecp256k1PublicKeyHex(public_key_hex);
    if (!key) return Error::InvalidArgument("publicKey: " + key.error().message);
    if (auto st = repository_.SetEncryptionKey(wallet, crypto::HexEncode(*key), clock_.Now()); !st)
        return st.error();
    return Profile(wallet);
}

Result<UserView> UserService::ClearEncryptionKey(const std::string& wallet) {
    if (auto st = repository_.SetEncryptionKey(wallet, std::nullopt, clock_.Now()); !st)
        return st.error();
    return Profile(wallet);
}

Result<ports::SshKeyRecord> UserService::AddSshKey(const std::string& wallet,
                                                   std::optional<std::string> name,
                                                   std::string_view public_key) {
    auto parsed = crypto::ParseSshPublicKey(public_key);
    if (!parsed) return Error::InvalidArgument("publicKey: " + parsed.error().message);
    if (!name) {
        // The comment, or else a name from the fingerprint ('/' of base64 is no name character).
        std::string fallback = parsed->algorithm + " " + parsed->fingerprint.substr(7, 12);
        std::replace_if(
            fallback.begin(), fallback.end(), [](char c) { return !NameChar(c); }, '-');
        name = ValidateKeyName(parsed->comment) ? parsed->comment : fallback;
    }
    if (auto st = ValidateKeyName(*name); !st) return st.error();

    ports::SshKeyRecord rec;
    rec.id = common::NewUuid();
    rec.wallet_address = wallet;
    rec.name = std::move(*name);
    rec.algorithm = parsed->algorithm;
    rec.key_type = parsed->type;
    rec.bits = parsed->bits;
    rec.fingerprint = parsed->fingerprint;
    rec.authorized_key = parsed->authorized_key;
    rec.created_at = clock_.Now();
    if (auto st = repository_.AddSshKey(rec, kMaxSshKeysPerUser); !st) return st.error();
    return rec;
}

Result<std::vector<ports::SshKeyRecord>> UserService::ListSshKeys(const std::string& wallet) {
    return repository_.ListSshKeys(wallet);
}

Result<ports::SshKeyRecord> UserService::GetSshKey(const std::string& wallet,
                                                   const std::string& id) {
    if (!common::IsUuid(id)) return Error::NotFound("no SSH key with id '" + id + "'");
    return repository_.GetSshKey(wallet, id);
}

common::Status UserService::RemoveSshKey(const std::string& wallet, const std::string& id) {
    if (!common::IsUuid(id)) return Error::NotFound("no SSH key with id '" + id + "'");
    return repository_.RemoveSshKey(wallet, id);
}

}  // namespace decloud::orchestrator::app
