#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "decloud/common/clock.hpp"
#include "decloud/common/result.hpp"
#include "orchestrator/domain/vm_template.hpp"

namespace decloud::orchestrator::ports {

// One immutable version of a community template: `tmpl.id` is "<name>.v<version>" (a seed
// template's id never holds a '.'), `tmpl.name` the template's name.
struct CommunityTemplate {
    domain::VmTemplate tmpl;
    std::string name;
    std::string author_wallet;
    std::int64_t version = 0;
    bool deprecated = false;
    std::optional<common::TimePoint> deprecated_at;
    common::TimePoint created_at{};
};

// A version to publish: the manifest (as domain::ParseTemplate reads it, without id and
// version) and its user-data, both validated before.
struct NewCommunityTemplate {
    std::string name;
    std::string author_wallet;
    nlohmann::json manifest;
    std::string user_data;
};

// Community templates, stored durably. Blocking; thread-safe.
class CommunityTemplateRepository {
  public:
    virtual ~CommunityTemplateRepository() = default;

    // Stores the next version of `name` (1 for a new name) for its author. kConflict if another
    // author owns the name. Concurrent publishes of one name get distinct versions.
    virtual common::Result<CommunityTemplate> Publish(const NewCommunityTemplate& version,
                                                      common::TimePoint now) = 0;
    // kNotFound if there is no such version.
    virtual common::Result<CommunityTemplate> Get(const std::string& name,
                                                  std::int64_t version) = 0;
    // Up to `limit` versions in (name, version) order, starting after the version `after`
    // names (from the first when absent; `after` need not exist).
    virtual common::Result<std::vector<CommunityTemplate>> List(
        const std::optional<std::pair<std::string, std::int64_t>>& after, std::size_t limit) = 0;
    // Marks the version deprecated (idempotent) and returns it; kNotFound unless `author`
    // published it.
    virtual common::Result<CommunityTemplate> Deprecate(const std::string& author,
                                                        const std::string& name,
                                                        std::int64_t version,
                                                        common::TimePoint now) = 0;
};

// Checks a #cloud-config document against cloud-init's schema. Blocking; thread-safe.
class CloudConfigValidator {
  public:
    virtual ~CloudConfigValidator() = default;

    // The validator's complaints, empty if the document is valid. kUnavailable or kTimeout if
    // the check itself could not be made.
    virtual common::Result<std::vector<std::string>> Check(const std::string& cloud_config) = 0;
};

}  // namespace decloud::orchestrator::ports
