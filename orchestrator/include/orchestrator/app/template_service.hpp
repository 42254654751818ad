#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "decloud/common/clock.hpp"
#include "decloud/common/result.hpp"
#include "orchestrator/domain/vm_template.hpp"
#include "orchestrator/ports/community_template_repository.hpp"

namespace decloud::orchestrator::app {

inline constexpr std::size_t kMaxCommunityTemplateNameLength = 48;

// A publish request checked by the domain's template rules: the manifest to store and the
// template it makes (id "<name>.v0" until a version is assigned).
struct CommunityTemplateDraft {
    std::string name;
    nlohmann::json manifest;
    domain::VmTemplate tmpl;
};

// Parses the body of POST /api/templates: {name, description, image?, minimum, ports?,
// parameters?, userData}. `name` is [a-z0-9][a-z0-9-]{0,47}; image defaults to debian-12.
// kInvalidArgument naming the field (unknown keys, types, duplicate parameters, anything
// domain::ParseTemplate refuses); kPayloadTooLarge for user-data over 64 KiB. Parameters may
// not carry a `pattern`: a user's regular expression would run inside the orchestrator on
// every VM create, with a backtracking engine.
common::Result<CommunityTemplateDraft> ParseCommunityTemplate(const nlohmann::json& body);

// The template's user-data with every placeholder filled by its default or a sample of its
// type, so that a schema checker sees a plain #cloud-config document.
std::string SampleCloudConfig(const domain::VmTemplate& tmpl);

// "<name>.v<version>" and back; nullopt for anything else (seed ids have no '.').
std::string CommunityTemplateId(std::string_view name, std::int64_t version);
std::optional<std::pair<std::string, std::int64_t>> ParseCommunityTemplateId(std::string_view id);

enum class TemplateSource { kSeed, kCommunity };
std::string_view ToString(TemplateSource source);

// A template as listed: seed ones fill `entry.tmpl` only.
struct TemplateView {
    TemplateSource source = TemplateSource::kSeed;
    ports::CommunityTemplate entry;
};

struct TemplatePage {
    std::vector<TemplateView> templates;
    std::string next_cursor;  // the id to pass for the next page; empty after the last
};

struct PublishOutcome {
    std::optional<ports::CommunityTemplate> published;
    std::vector<std::string> schema_errors;  // cloud-init's complaints; nothing was stored
};

// The template catalogue: seed templates (the VM service's, fixed before serving) and community
// ones (from the repository). Blocking (repository, cloud-init); run off the I/O threads.
// Thread-safe.
class TemplateService {
  public:
    TemplateService(const std::vector<domain::VmTemplate>& seeds,
                    ports::CommunityTemplateRepository& repository,
                    ports::CloudConfigValidator& validator, const common::Clock& clock);

    // Validates and stores the next version of the body's template for `author`. kConflict if
    // the name is a seed template's or another author's.
    common::Result<PublishOutcome> Publish(const std::string& author, const nlohmann::json& body);
    // Up to `limit` templates: seed ones first (by id), then community ones (by name, version);
    // `source` nullopt: both. `cursor`: empty for the first page, else the id the previous page
    // ended with (kInvalidArgument if it names no template of `source`).
    common::Result<TemplatePage> List(std::optional<TemplateSource> source, std::string_view cursor,
                                      std::size_t limit);
    common::Result<TemplateView> Get(const std::string& id);
    // kNotFound for a seed template, an unknown id, or another author's version.
    common::Result<ports::CommunityTemplate> Deprecate(const std::string& author,
                                                       const std::string& id);

  private:
    const domain::VmTemplate* FindSeed(std::string_view id) const;

    const std::vector<domain::VmTemplate>& seeds_;
    ports::CommunityTemplateRepository& repository_;
    ports::CloudConfigValidator& validator_;
    const common::Clock& clock_;
};

}  // namespace decloud::orchestrator::app
