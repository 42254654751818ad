#include "decloud/common/settings.hpp"

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <set>
#include <sstream>

#include <toml++/toml.h>

namespace decloud::common {

namespace {

std::string EnvName(std::string_view prefix, const std::string& key) {
    std::string name(prefix);
    name.push_back('_');
    for (char c : key) {
        name.push_back(c == '.' || c == '-'
                           ? '_'
                           : static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
    }
    return name;
}

std::string Trim(std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
    return std::string(s);
}

// Flattens the TOML document into dotted keys; arrays of strings or integers become comma lists.
Status Flatten(const toml::table& table, const std::string& prefix,
               std::map<std::string, std::string>& out) {
    for (const auto& [k, node] : table) {
        const std::string key =
            prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
        if (const auto* sub = node.as_table()) {
            if (auto st = Flatten(*sub, key, out); !st) return st;
        } else if (const auto* arr = node.as_array()) {
            std::string joined;
            for (const auto& el : *arr) {
                auto s = el.value<std::string>();
                if (!s && el.is_integer()) s = std::to_string(*el.value<std::int64_t>());
                if (!s)
                    return Error::InvalidArgument("config key " + key +
                                                  ": arrays must hold strings or integers");
                if (s->find(',') != std::string::npos)
                    return Error::InvalidArgument("config key " + key +
                                                  ": items cannot contain ','");
                if (!joined.empty()) joined.push_back(',');
                joined += *s;
            }
            out[key] = joined;
        } else if (const auto* str = node.as_string()) {
            out[key] = str->get();
        } else if (const auto* i = node.as_integer()) {
            out[key] = std::to_string(i->get());
        } else if (const auto* f = node.as_floating_point()) {
            std::ostringstream os;
            os << f->get();
            out[key] = os.str();
        } else if (const auto* b = node.as_boolean()) {
            out[key] = b->get() ? "true" : "false";
        } else {
            return Error::InvalidArgument("config key " + key + ": unsupported value type");
        }
    }
    return Ok();
}

}  // namespace

std::optional<std::string> Settings::ProcessEnvironment(const std::string& name) {
    if (const char* v = std::getenv(name.c_str())) return std::string(v);
    return std::nullopt;
}

Result<Settings> Settings::Load(std::vector<SettingSpec> specs, const std::string& toml_path,
                                std::string_view env_prefix,
                                const std::vector<std::string>& overrides, const EnvLookup& env) {
    Settings s;
    std::set<std::string> known;
    for (const auto& spec : specs) {
        known.insert(spec.key);
        s.values_[spec.key] = Value{spec.default_value, "default"};
    }
    if (!toml_path.empty()) {
        toml::table table;
        try {
            table = toml::parse_file(toml_path);
        } catch (const toml::parse_error& e) {
            std::ostringstream os;
            os << "config file " << toml_path << ": " << e.description() << " at line "
               << e.source().begin.line;
            return Error::InvalidArgument(os.str());
        }
        std::map<std::string, std::string> flat;
        if (auto st = Flatten(table, "", flat); !st) return st.error();
        for (auto& [k, v] : flat) {
            if (!known.contains(k))
                return Error::InvalidArgument("config file " + toml_path + ": unknown key '" + k +
                                              "'");
            s.values_[k] = Value{v, "file"};
        }
    }
    for (const auto& spec : specs) {
        const auto name = EnvName(env_prefix, spec.key);
        if (auto v = env(name)) s.values_[spec.key] = Value{*v, "env " + name};
    }
    for (const auto& o : overrides) {
        const auto eq = o.find('=');
        if (eq == std::string::npos)
            return Error::InvalidArgument("--set expects key=value, got '" + o + "'");
        const auto key = Trim(std::string_view(o).substr(0, eq));
        if (!known.contains(key)) return Error::InvalidArgument("--set: unknown key '" + key + "'");
        s.values_[key] = Value{Trim(std::string_view(o).substr(eq + 1)), "flag"};
    }
    s.specs_ = std::move(specs);
    return s;
}

Result<Settings::Value> Settings::Find(const std::string& key) const {
    const auto it = values_.find(key);
    if (it == values_.end()) return Error::Internal("setting '" + key + "' is not declared");
    return it->second;
}

Result<std::string> Settings::String(const std::string& key) const {
    auto v = Find(key);
    if (!v) return v.error();
    return v->text;
}

Result<std::int64_t> Settings::Int(const std::string& key, std::int64_t min,
                                   std::int64_t max) const {
    auto v = Find(key);
    if (!v) return v.error();
    const auto& text = v->text;
    std::int64_t out = 0;
    const auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    if (ec != std::errc{} || p != text.data() + text.size())
        return Error::InvalidArgument(key + " (" + v->source + "): '" + text +
                                      "' is not an integer");
    if (out < min || out > max)
        return Error::InvalidArgument(key + " (" + v->source + "): " + text + " is outside [" +
                                      std::to_string(min) + ", " + std::to_string(max) + "]");
    return out;
}

Result<double> Settings::Double(const std::string& key, double min, double max) const {
    auto v = Find(key);
    if (!v) return v.error();
    const auto& text = v->text;
    double out = 0;
    const auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    if (ec != std::errc{} || p != text.data() + text.size() || !std::isfinite(out))
        return Error::InvalidArgument(key + " (" + v->source + "): '" + text + "' is not a number");
    if (out < min || out > max)
        return Error::InvalidArgument(key + " (" + v->source + "): " + text + " is out of range");
    return out;
}

Result<bool> Settings::Bool(const std::string& key) const {
    auto v = Find(key);
    if (!v) return v.error();
    const auto& t = v->text;
    if (t == "true" || t == "1" || t == "yes" || t == "on") return true;
    if (t == "false" || t == "0" || t == "no" || t == "off") return false;
    return Error::InvalidArgument(key + " (" + v->source + "): '" + t + "' is not a boolean");
}

Result<std::chrono::milliseconds> ParseDuration(std::string_view text) {
    std::int64_t n = 0;
    const auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec != std::errc{} || n < 0)
        return Error::InvalidArgument("'" + std::string(text) + "' is not a duration");
    const std::string_view unit(p, static_cast<std::size_t>(text.data() + text.size() - p));
    using namespace std::chrono;
    std::int64_t factor = 0;
    if (unit == "ms")
        factor = 1;
    else if (unit.empty() || unit == "s")
        factor = 1000;
    else if (unit == "m")
        factor = 60'000;
    else if (unit == "h")
        factor = 3'600'000;
    else if (unit == "d")
        factor = 86'400'000;
    else
        return Error::InvalidArgument("'" + std::string(text) + "': unknown unit (ms, s, m, h, d)");
    if (n > INT64_MAX / factor)
        return Error::InvalidArgument("'" + std::string(text) + "' is too long");
    return milliseconds{n * factor};
}

Result<std::chrono::milliseconds> Settings::Duration(const std::string& key) const {
    auto v = Find(key);
    if (!v) return v.error();
    auto d = ParseDuration(v->text);
    if (!d) return Error::InvalidArgument(key + " (" + v->source + "): " + d.error().message);
    return *d;
}

Result<std::vector<std::string>> Settings::StringList(const std::string& key) const {
    auto v = Find(key);
    if (!v) return v.error();
    std::vector<std::string> out;
    std::string_view rest = v->text;
    while (!rest.empty()) {
        const auto comma = rest.find(',');
        auto item = Trim(rest.substr(0, comma));
        if (!item.empty()) out.push_back(std::move(item));
        if (comma == std::string_view::npos) break;
        rest.remove_prefix(comma + 1);
    }
    return out;
}

std::string Settings::Describe() const {
    std::string out;
    for (const auto& [k, v] : values_) out += k + " = " + v.text + "    # " + v.source + "\n";
    return out;
}

}  // namespace decloud::common
