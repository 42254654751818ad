#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "decloud/common/result.hpp"

namespace decloud::common {

// One configuration key a daemon understands, with its default (as text) and a line of help.
struct SettingSpec {
    std::string key;  // dotted, "server.port"
    std::string default_value;
    std::string help;
};

// Layered configuration: defaults < TOML file < environment < command-line overrides.
// Keys are dotted paths into the TOML tables; the environment variable of "server.port" under
// prefix "DECLOUD_ORCHESTRATOR" is DECLOUD_ORCHESTRATOR_SERVER_PORT. Unknown keys in the file or
// the overrides are errors, so typos surface at start-up instead of being silently ignored.
class Settings {
  public:
    using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;

    // `overrides` are "key=value" strings (from repeated --set flags).
    static Result<Settings> Load(std::vector<SettingSpec> specs, const std::string& toml_path,
                                 std::string_view env_prefix,
                                 const std::vector<std::string>& overrides,
                                 const EnvLookup& env = ProcessEnvironment);
    static std::optional<std::string> ProcessEnvironment(const std::string& name);

    // Typed accessors; the error names the key and where its bad value came from.
    Result<std::string> String(const std::string& key) const;
    Result<std::int64_t> Int(const std::string& key, std::int64_t min, std::int64_t max) const;
    Result<double> Double(const std::string& key, double min, double max) const;
    Result<bool> Bool(const std::string& key) const;
    // "250ms", "15s", "2m", "1h", "7d"; a bare number means seconds.
    Result<std::chrono::milliseconds> Duration(const std::string& key) const;
    // Comma-separated in env/overrides, a TOML array of strings in the file.
    Result<std::vector<std::string>> StringList(const std::string& key) const;

    // Where each key's value came from ("default", "file", "env", "flag"), for --print-config.
    std::string Describe() const;
    const std::vector<SettingSpec>& Specs() const { return specs_; }

  private:
    struct Value {
        std::string text;
        std::string source;
    };
    Result<Value> Find(const std::string& key) const;

    std::vector<SettingSpec> specs_;
    std::map<std::string, Value> values_;
};

Result<std::chrono::milliseconds> ParseDuration(std::string_view text);

}  // namespace decloud::common
