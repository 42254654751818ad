#include "orchestrator/adapters/pg/pg_user_repository.hpp"

#include "pg_support.hpp"

namespace decloud::orchestrator::adapters::pg {

using common::Error;
using common::Result;

namespace {

constexpr const char* kFindClash =
    "SELECT name, fingerprint FROM ssh_keys "
    "WHERE wallet_address = $1 AND (fingerprint = $2 OR name = $3) ORDER BY fingerprint = $2 DESC";
constexpr const char* kSelectUser = R"sql(
SELECT wallet_address, (extract(epoch FROM created_at) * 1000000)::bigint,
       (extract(epoch FROM last_sign_in_at) * 1000000)::bigint, coalesce(wallet_public_key, ''),
       encryption_public_key, (extract(epoch FROM encryption_key_updated_at) * 1000000)::bigint
FROM users WHERE wallet_address = $1)sql";
constexpr const char* kSetEncryptionKey = R"sql(
UPDATE users SET encryption_public_key = $2, encryption_key_updated_at = $3::timestamptz
WHERE wallet_address = $1)sql";
// Locks the owner's row so that concurrent adds cannot exceed the limit together.
constexpr const char* kLockUser = "SELECT 1 FROM users WHERE wallet_address = $1 FOR UPDATE";
constexpr const char* kCountKeys = "SELECT count(*) FROM ssh_keys WHERE wallet_address = $1";
constexpr const char* kInsertKey = R"sql(
INSERT INTO ssh_keys (id, wallet_address, name, algorithm, key_type, bits, fingerprint,
                      authorized_key, created_at)
VALUES ($1::uuid, $2, $3, $4, $5, $6, $7, $8, $9::timestamptz))sql";
constexpr const char* kKeyColumns = R"sql(
SELECT id::text, wallet_address, name, algorithm, key_type, bits, fingerprint, authorized_key,
       (extract(epoch FROM created_at) * 1000000)::bigint
FROM ssh_keys WHERE wallet_address = $1)sql";
constexpr const char* kDeleteKey =
    "DELETE FROM ssh_keys WHERE wallet_address = $1 AND id = $2::uuid";

ports::SshKeyRecord KeyFromRow(const pqxx::row& r) {
    ports::SshKeyRecord k;
    k.id = r[0].as<std::string>();
    k.wallet_address = r[1].as<std::string>();
    k.name = r[2].as<std::string>();
    k.algorithm = r[3].as<std::string>();
    k.key_type = r[4].as<std::string>();
    k.bits = r[5].as<int>();
    k.fingerprint = r[6].as<std::string>();
    k.authorized_key = r[7].as<std::string>();
    k.created_at = FromMicros(r[8].as<long long>());
    return k;
}

common::Status ToStatus(const Result<bool>& r) {
    if (!r) return r.error();
    return common::Ok();
}

}  // namespace

Result<ports::UserRecord> PgUserRepository::GetUser(const std::string& wallet) {
    return InTransaction<ports::UserRecord>(
        pool_, [&](pqxx::work& tx) -> Result<ports::UserRecord> {
            const auto rows = tx.exec_params(kSelectUser, wallet);
            if (rows.empty()) return Error::NotFound("no user " + wallet);
            const auto& r = rows[0];
            ports::UserRecord u;
            u.wallet_address = r[0].as<std::string>();
            u.created_at = FromMicros(r[1].as<long long>());
            u.last_sign_in_at = FromMicros(r[2].as<long long>());
            u.wallet_public_key = r[3].as<std::string>();
            if (!r[4].is_null()) u.encryption_public_key = r[4].as<std::string>();
            if (!r[5].is_null()) u.encryption_key_updated_at = FromMicros(r[5].as<long long>());
            return u;
        });
}

common::Status PgUserRepository::SetEncryptionKey(const std::string& wallet,
                                                  const std::optional<std::string>& public_key_hex,
                                                  common::TimePoint now) {
    return ToStatus(InTransaction<bool>(pool_, [&](pqxx::work& tx) -> Result<bool> {
        const auto r =
            public_key_hex
                ? tx.exec_params0(kSetEncryptionKey, wallet, *public_key_hex, ToPgTime(now))
                : tx.exec_params0(kSetEncryptionKey, wallet, nullptr, nullptr);
        if (r.affected_rows() == 0) return Error::NotFound("no user " + wallet);
        return true;
    }));
}

common::Status PgUserRepository::AddSshKey(const ports::SshKeyRecord& k, std::size_t max_keys) {
    return ToStatus(InTransaction<bool>(pool_, [&](pqxx::work& tx) -> Result<bool> {
        if (tx.exec_params(kLockUser, k.wallet_address).empty())
            return Error::NotFound("no user " + k.wallet_address);
        const auto count = tx.exec_params1(kCountKeys, k.wallet_address)[0].as<long long>();
        if (count >= static_cast<long long>(max_keys))
            return Error::Conflict("you already have " + std::to_string(count) +
                                   " SSH keys, the most allowed; remove one first");
        // The user row is locked, so these checks cannot race another insert for this wallet.
        for (const auto& row :
             tx.exec_params(kFindClash, k.wallet_address, k.fingerprint, k.name)) {
            if (row[1].as<std::string>() == k.fingerprint)
                return Error::Conflict("you already have this key (" + k.fingerprint +
                                       "), named '" + row[0].as<std::string>() + "'");
            return Error::Conflict("you already have a key named '" + k.name +
                                   "'; choose another name");
        }
        tx.exec_params0(kInsertKey, k.id, k.wallet_address, k.name, k.algorithm, k.key_type, k.bits,
                        k.fingerprint, k.authorized_key, ToPgTime(k.created_at));
        return true;
    }));
}

Result<std::vector<ports::SshKeyRecord>> PgUserRepository::ListSshKeys(const std::string& wallet) {
    return InTransaction<std::vector<ports::SshKeyRecord>>(
        pool_, [&](pqxx::work& tx) -> Result<std::vector<ports::SshKeyRecord>> {
            std::vector<ports::SshKeyRecord> out;
            for (const auto& r :
                 tx.exec_params(std::string(kKeyColumns) + " ORDER BY created_at, id", wallet))
                out.push_back(KeyFromRow(r));
            return out;
        });
}

Result<ports::SshKeyRecord> PgUserRepository::GetSshKey(const std::string& wallet,
                                                        const std::string& id) {
    return InTransaction<ports::SshKeyRecord>(
        pool_, [&](pqxx::work& tx) -> Result<ports::SshKeyRecord> {
            const auto rows =
                tx.exec_params(std::string(kKeyColumns) + " AND id = $2::uuid", wallet, id);
            if (rows.empty()) return Error::NotFound("no SSH key with id '" + id + "'");
            return KeyFromRow(rows[0]);
        });
}

common::Status PgUserRepository::RemoveSshKey(const std::string& wallet, const std::string& id) {
    return ToStatus(InTransaction<bool>(pool_, [&](pqxx::work& tx) -> Result<bool> {
        if (tx.exec_params0(kDeleteKey, wallet, id).affected_rows() == 0)
            return Error::NotFound("no SSH key with id '" + id + "'");
        return true;
    }));
}

}  // namespace decloud::orchestrator::adapters::pg
