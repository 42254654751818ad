#pragma once

#include "orchestrator/adapters/pg/pg_pool.hpp"
#include "orchestrator/ports/user_repository.hpp"

namespace decloud::orchestrator::adapters::pg {

class PgUserRepository final : public ports::UserRepository {
  public:
    explicit PgUserRepository(PgPool& pool) : pool_(pool) {}

    // ports::UserRepository
    common::Result<ports::UserRecord> GetUser(const std::string& wallet) override;
    common::Status SetEncryptionKey(const std::string& wallet,
                                    const std::optional<std::string>& public_key_hex,
                                    common::TimePoint now) override;
    common::Status AddSshKey(const ports::SshKeyRecord& key, std::size_t max_keys) override;
    common::Result<std::vector<ports::SshKeyRecord>> ListSshKeys(
        const std::string& wallet) override;
    common::Result<ports::SshKeyRecord> GetSshKey(const std::string& wallet,
                                                  const std::string& id) override;
    common::Status RemoveSshKey(const std::string& wallet, const std::string& id) override;

  private:
    PgPool& pool_;
};

}  // namespace decloud::orchestrator::adapters::pg
