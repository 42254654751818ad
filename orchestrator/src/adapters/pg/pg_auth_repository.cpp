#include "orchestrator/adapters/pg/pg_auth_repository.hpp"

#include "decloud/common/ids.hpp"
#include "pg_support.hpp"

namespace decloud::orchestrator::adapters::pg {

using common::Error;
using common::Result;

namespace {

constexpr const char* kPurgeNonces =
    "DELETE FROM auth_nonces WHERE expires_at < $1::timestamptz - interval '1 day'";
constexpr const char* kInsertNonce =
    "INSERT INTO auth_nonces (nonce, issued_at, expires_at) VALUES ($1, $2::timestamptz, "
    "$3::timestamptz)";
// Spends the nonce only if it is ours, unused and unexpired; the row lock makes two concurrent
// sign-ins with one nonce impossible.
constexpr const char* kSelectNonce =
    "SELECT used_at IS NOT NULL, expires_at <= $2::timestamptz FROM auth_nonces WHERE nonce = $1 "
    "FOR UPDATE";
constexpr const char* kUseNonce =
    "UPDATE auth_nonces SET used_at = $2::timestamptz WHERE nonce = $1";
constexpr const char* kUpsertUser = R"sql(
INSERT INTO users (wallet_address, created_at, last_sign_in_at, wallet_public_key)
VALUES ($1, $2::timestamptz, $2::timestamptz, $3)
ON CONFLICT (wallet_address) DO UPDATE
SET last_sign_in_at = EXCLUDED.last_sign_in_at, wallet_public_key = EXCLUDED.wallet_public_key)sql";
constexpr const char* kInsertSession = R"sql(
INSERT INTO auth_sessions (id, wallet_address, created_at, expires_at)
VALUES ($1::uuid, $2, $3::timestamptz, $4::timestamptz))sql";
constexpr const char* kSessionActive = R"sql(
SELECT count(*) FROM auth_sessions
WHERE id = $1::uuid AND revoked_at IS NULL AND expires_at > $2::timestamptz)sql";
constexpr const char* kRevokeAllSessions = R"sql(
UPDATE auth_sessions SET revoked_at = $2::timestamptz
WHERE wallet_address = $1 AND revoked_at IS NULL AND expires_at > $2::timestamptz)sql";
constexpr const char* kRevokeSession =
    "UPDATE auth_sessions SET revoked_at = $2::timestamptz WHERE id = $1::uuid AND revoked_at IS "
    "NULL";

common::Status ToStatus(const Result<bool>& r) {
    if (!r) return r.error();
    return common::Ok();
}

}  // namespace

common::Status PgAuthRepository::StoreNonce(const std::string& nonce, common::TimePoint issued_at,
                                            common::TimePoint expires_at) {
    return ToStatus(InTransaction<bool>(pool_, [&](pqxx::work& tx) -> Result<bool> {
        tx.exec_params0(kPurgeNonces, ToPgTime(issued_at));
        tx.exec_params0(kInsertNonce, nonce, ToPgTime(issued_at), ToPgTime(expires_at));
        return true;
    }));
}

common::Status PgAuthRepository::ConsumeNonce(const std::string& nonce, common::TimePoint now) {
    return ToStatus(InTransaction<bool>(pool_, [&](pqxx::work& tx) -> Result<bool> {
        const auto rows = tx.exec_params(kSelectNonce, nonce, ToPgTime(now));
        if (rows.empty()) return Error::NotFound("unknown nonce");
        if (rows[0][0].as<bool>()) return Error::Conflict("nonce already used");
        if (rows[0][1].as<bool>()) return Error::Timeout("nonce expired");
        tx.exec_params0(kUseNonce, nonce, ToPgTime(now));
        return true;
    }));
}

common::Status PgAuthRepository::CreateSession(const std::string& session_id,
                                               const std::string& wallet,
                                               const std::string& wallet_public_key_hex,
                                               common::TimePoint now,
                                               common::TimePoint expires_at) {
    return ToStatus(InTransaction<bool>(pool_, [&](pqxx::work& tx) -> Result<bool> {
        tx.exec_params0(kUpsertUser, wallet, ToPgTime(now), wallet_public_key_hex);
        tx.exec_params0(kInsertSession, session_id, wallet, ToPgTime(now), ToPgTime(expires_at));
        return true;
    }));
}

Result<bool> PgAuthRepository::SessionActive(const std::string& session_id, common::TimePoint now) {
    if (!common::IsUuid(session_id)) return false;
    return InTransaction<bool>(pool_, [&](pqxx::work& tx) -> Result<bool> {
        return tx.exec_params1(kSessionActive, session_id, ToPgTime(now))[0].as<long long>() > 0;
    });
}

common::Status PgAuthRepository::RevokeSession(const std::string& session_id,
                                               common::TimePoint now) {
    if (!common::IsUuid(session_id)) return Error::NotFound("no such session");
    return ToStatus(InTransaction<bool>(pool_, [&](pqxx::work& tx) -> Result<bool> {
        tx.exec_params0(kRevokeSession, session_id, ToPgTime(now));
        return true;
    }));
}

Result<std::size_t> PgAuthRepository::RevokeAllSessions(const std::string& wallet,
                                                        common::TimePoint now) {
    return InTransaction<std::size_t>(pool_, [&](pqxx::work& tx) -> Result<std::size_t> {
        return static_cast<std::size_t>(
            tx.exec_params0(kRevokeAllSessions, wallet, ToPgTime(now)).affected_rows());
    });
}

}  // namespace decloud::orchestrator::adapters::pg
