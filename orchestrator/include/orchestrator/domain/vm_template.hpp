#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "decloud/common/result.hpp"

namespace decloud::orchestrator::domain {

// A VM template: a manifest (templates/<id>/template.json) and a #cloud-config document
// (templates/<id>/user-data.yaml) with {{name}} placeholders where whole YAML scalars go.
// The format is described in templates/README.md.

inline constexpr std::size_t kMaxTemplateUserDataBytes = std::size_t{64} * 1024;
inline constexpr std::size_t kMaxTemplateStringParameterBytes = 4096;

struct TemplatePort {
    std::uint16_t port = 0;
    std::string name;
    std::string protocol;  // http, https, tcp or udp
};

struct TemplateMinimum {
    std::uint32_t cpu_cores = 0;
    std::uint64_t memory_mib = 0;
    std::uint64_t disk_gib = 0;
};

enum class ParameterType { kString, kInteger, kBoolean };
std::string_view ToString(ParameterType type);

struct TemplateParameter {
    std::string name;
    ParameterType type = ParameterType::kString;
    std::string description;
    std::optional<nlohmann::json> default_value;  // absent: the parameter is required
    std::optional<std::string> pattern;           // strings only; ECMAScript, whole match
    std::optional<std::int64_t> minimum;          // integers only, inclusive
    std::optional<std::int64_t> maximum;          // integers only, inclusive
    bool secret = false;  // a secret's value is never echoed back (and it has no default)
};

struct VmTemplate {
    std::string id;
    std::string name;
    std::string description;
    std::int64_t version = 0;
    std::string image;
    TemplateMinimum minimum;
    std::vector<TemplatePort> ports;
    std::vector<TemplateParameter> parameters;
    std::string user_data;  // the #cloud-config document, placeholders unexpanded

    const TemplateParameter* FindParameter(std::string_view parameter_name) const;
};

// Builds a template from its manifest and user-data, or kInvalidArgument naming the offending
// field: unknown or mistyped keys, an id outside [a-z0-9-]{1,64}, a non-positive minimum,
// a port outside 1-65535, a parameter name outside [a-z_][a-z0-9_]*, a duplicate, a bad
// pattern, a default of the wrong type or not matching its pattern/range, a secret with a
// default, user-data that is not #cloud-config or sets keys the orchestrator owns, and
// placeholders that are unclosed, undeclared, not a whole scalar, or declared but unused.
common::Result<VmTemplate> ParseTemplate(const nlohmann::json& manifest, std::string user_data);

// Expands the placeholders with `params` (a JSON object, or null for none): a string becomes
// a JSON-quoted scalar (which YAML reads back as the same string, whatever it contains), an
// integer or boolean a literal. kInvalidArgument naming the parameter for an undeclared one,
// a missing required one, a wrong type, a string over 4096 bytes, invalid UTF-8 or not
// matching the pattern, an integer out of range. Error messages never contain values.
common::Result<std::string> RenderTemplate(const VmTemplate& tmpl, const nlohmann::json& params);

// The manifest as JSON, in the format ParseTemplate reads (without the user-data), for listings.
nlohmann::json ToJson(const VmTemplate& tmpl);

// `params` without the template's secret parameters, for storing or showing what a VM was
// created with. Keys the template does not declare are dropped too.
nlohmann::json PublicParameters(const VmTemplate& tmpl, const nlohmann::json& params);

}  // namespace decloud::orchestrator::domain
