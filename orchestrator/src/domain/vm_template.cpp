#include "orchestrator/domain/vm_template.hpp"

#include <algorithm>
#include <array>
#include <limits>
#include <map>
#include <regex>
#include <set>
#include <utility>

namespace decloud::orchestrator::domain {

using common::Error;
using common::Result;
using common::Status;
using nlohmann::json;

namespace {

constexpr std::size_t kMaxIdLength = 64;
constexpr std::size_t kMaxNameLength = 100;
constexpr std::size_t kMaxDescriptionLength = 2000;
constexpr std::size_t kMaxImageLength = 64;
constexpr std::size_t kMaxPortNameLength = 32;
constexpr std::size_t kMaxParameterNameLength = 64;
constexpr std::size_t kMaxPatternLength = 1024;
constexpr std::size_t kMaxParameters = 64;
constexpr std::size_t kMaxPorts = 32;
constexpr std::string_view kCloudConfigHeader = "#cloud-config\n";
constexpr std::string_view kStringTag = "!!str ";

// The orchestrator's own cloud-config part sets these; cloud-init's default merge lets a later
// part replace a top-level key, so a template setting one would drop the user's SSH keys or
// password (merge_how would change that rule for every key).
constexpr std::array<std::string_view, 10> kReservedKeys = {
    "users",    "user",     "ssh_authorized_keys", "hostname",   "fqdn",
    "password", "chpasswd", "preserve_hostname",   "ssh_pwauth", "merge_how"};

constexpr std::array<std::string_view, 4> kProtocols = {"http", "https", "tcp", "udp"};

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

bool IsTemplateId(std::string_view s) {
    return !s.empty() && s.size() <= kMaxIdLength &&
           std::all_of(s.begin(), s.end(), [](char c) { return IsLowerAlnum(c) || c == '-'; });
}

bool IsParameterName(std::string_view s) {
    if (s.empty() || s.size() > kMaxParameterNameLength) return false;
    if (!((s[0] >= 'a' && s[0] <= 'z') || s[0] == '_')) return false;
    return std::all_of(s.begin(), s.end(), [](char c) { return IsLowerAlnum(c) || c == '_'; });
}

bool IsImage(std::string_view s) {
    return !s.empty() && s.size() <= kMaxImageLength && IsLowerAlnum(s[0]) &&
           std::all_of(s.begin(), s.end(),
                       [](char c) { return IsLowerAlnum(c) || c == '-' || c == '.'; });
}

bool IsPortName(std::string_view s) {
    return !s.empty() && s.size() <= kMaxPortNameLength && s[0] >= 'a' && s[0] <= 'z' &&
           std::all_of(s.begin(), s.end(), [](char c) { return IsLowerAlnum(c) || c == '-'; });
}

bool HasControlCharacters(std::string_view s) {
    return std::any_of(s.begin(), s.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u < 0x20 || u == 0x7f;
    });
}

// A name from the caller, quoted for an error message: bounded, and safe whatever its bytes.
std::string Quote(std::string_view s) {
    constexpr std::size_t kShown = 64;
    std::string text(s.substr(0, kShown));
    if (s.size() > kShown) text += "...";
    return json(text).dump(-1, ' ', false, json::error_handler_t::replace);
}

// Decodes one UTF-8 sequence at `i`, rejecting overlong forms, surrogates and values past
// U+10FFFF. Returns the code point and advances `i`, or nullopt.
std::optional<char32_t> DecodeUtf8(std::string_view s, std::size_t& i) {
    const auto lead = static_cast<unsigned char>(s[i]);
    std::size_t length = 0;
    char32_t cp = 0;
    if (lead < 0x80) {
        ++i;
        return lead;
    } else if (lead >= 0xc2 && lead <= 0xdf) {
        length = 2;
        cp = lead & 0x1fu;
    } else if (lead >= 0xe0 && lead <= 0xef) {
        length = 3;
        cp = lead & 0x0fu;
    } else if (lead >= 0xf0 && lead <= 0xf4) {
        length = 4;
        cp = lead & 0x07u;
    } else {
        return std::nullopt;
    }
    if (i + length > s.size()) return std::nullopt;
    for (std::size_t k = 1; k < length; ++k) {
        const auto next = static_cast<unsigned char>(s[i + k]);
        if ((next & 0xc0u) != 0x80u) return std::nullopt;
        cp = (cp << 6) | (next & 0x3fu);
    }
    const bool overlong = (length == 3 && cp < 0x800) || (length == 4 && cp < 0x10000);
    if (overlong || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) return std::nullopt;
    i += length;
    return cp;
}

void AppendUnicodeEscape(std::string& out, char32_t cp) {
    constexpr std::string_view kHex = "0123456789abcdef";
    out += "\\u";
    for (int shift = 12; shift >= 0; shift -= 4) out += kHex[(cp >> shift) & 0xfu];
}

// A JSON string literal, which YAML also reads as a double-quoted scalar with the same value.
// Beyond what JSON requires it escapes what YAML would refuse or fold as a line break (DEL,
// C1 controls such as NEL, U+2028/U+2029, U+FEFF, U+FFFE/U+FFFF), so the scalar never spans
// a line and never makes the document unreadable.
Result<std::string> QuoteScalar(std::string_view s) {
    std::string out;
    out.reserve(s.size() + 2);
    out += '"';
    std::size_t i = 0;
    while (i < s.size()) {
        const std::size_t start = i;
        const auto cp = DecodeUtf8(s, i);
        if (!cp) return Error::InvalidArgument("is not valid UTF-8");
        switch (*cp) {
            case U'"':
                out += "\\\"";
                continue;
            case U'\\':
                out += "\\\\";
                continue;
            case U'\b':
                out += "\\b";
                continue;
            case U'\f':
                out += "\\f";
                continue;
            case U'\n':
                out += "\\n";
                continue;
            case U'\r':
                out += "\\r";
                continue;
            case U'\t':
                out += "\\t";
                continue;
            default:
                break;
        }
        const bool escape = *cp < 0x20 || (*cp >= 0x7f && *cp <= 0x9f) || *cp == 0x2028 ||
                            *cp == 0x2029 || *cp == 0xfeff || *cp == 0xfffe || *cp == 0xffff;
        if (escape) {
            AppendUnicodeEscape(out, *cp);
        } else {
            out.append(s.substr(start, i - start));
        }
    }
    out += '"';
    return out;
}

struct Placeholder {
    std::size_t begin = 0;  // offset of "{{"
    std::size_t end = 0;    // offset just past "}}"
    std::string name;
};

std::string_view TrimRight(std::string_view s) {
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

std::string_view TrimLeft(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    return s;
}

bool StartsComment(std::string_view before) {
    for (std::size_t i = 0; i < before.size(); ++i) {
        if (before[i] == '#' && (i == 0 || before[i - 1] == ' ' || before[i - 1] == '\t')) {
            return true;
        }
    }
    return false;
}

// Whether the text before a placeholder on its line leaves room for exactly one whole scalar:
// after "key: ", after "- " items, or inside a flow collection after "[" or ",", optionally
// tagged "!!str " so that an integer can fill a string field.
bool OpensScalar(std::string_view before) {
    if (StartsComment(before)) return false;
    if (before.ends_with(kStringTag)) before.remove_suffix(kStringTag.size());
    const std::string_view trimmed = TrimRight(before);
    if (trimmed.empty()) return false;
    const bool spaced = trimmed.size() < before.size();
    switch (trimmed.back()) {
        case '[':
        case ',':
            return true;
        case ':':
            return spaced;
        case '-':
            return spaced && std::all_of(trimmed.begin(), trimmed.end(),
                                         [](char c) { return c == ' ' || c == '-'; });
        default:
            return false;
    }
}

// Whether the text after a placeholder ends the scalar: end of line, a comment, or the next
// item or end of a flow collection.
bool ClosesScalar(std::string_view after) {
    if (after.ends_with('\r')) after.remove_suffix(1);
    const std::string_view trimmed = TrimLeft(after);
    if (trimmed.empty()) return true;
    switch (trimmed.front()) {
        case ',':
        case ']':
        case '}':
            return true;
        case '#':
            return trimmed.size() < after.size();
        default:
            return false;
    }
}

Result<std::vector<Placeholder>> ScanPlaceholders(std::string_view text) {
    std::vector<Placeholder> found;
    std::size_t line = 1;
    std::size_t line_start = 0;
    std::size_t pos = 0;
    while (true) {
        const std::size_t open = text.find("{{", pos);
        if (open == std::string_view::npos) return found;
        for (std::size_t k = pos; k < open; ++k) {
            if (text[k] == '\n') {
                ++line;
                line_start = k + 1;
            }
        }
        const std::string where = "user-data line " + std::to_string(line) + ": ";
        std::size_t line_end = text.find('\n', open);
        if (line_end == std::string_view::npos) line_end = text.size();
        const std::size_t close = text.find("}}", open + 2);
        if (close == std::string_view::npos || close > line_end) {
            return Error::InvalidArgument(where + "unclosed {{");
        }
        const std::string_view name = text.substr(open + 2, close - open - 2);
        if (!IsParameterName(name)) {
            return Error::InvalidArgument(where + "{{" + Quote(name) +
                                          "}} is not a placeholder: names are [a-z_][a-z0-9_]*");
        }
        if (!OpensScalar(text.substr(line_start, open - line_start)) ||
            !ClosesScalar(text.substr(close + 2, line_end - close - 2))) {
            return Error::InvalidArgument(where + "{{" + std::string(name) +
                                          "}} must stand alone where a YAML scalar goes "
                                          "(after \"key: \", \"- \", \"[\" or \",\")");
        }
        Placeholder p;
        p.begin = open;
        p.end = close + 2;
        p.name = std::string(name);
        found.push_back(std::move(p));
        pos = close + 2;
    }
}

Status CheckUserData(std::string_view text) {
    if (text.size() > kMaxTemplateUserDataBytes) {
        return Error::InvalidArgument("user-data: at most " +
                                      std::to_string(kMaxTemplateUserDataBytes) + " bytes");
    }
    if (!text.starts_with(kCloudConfigHeader)) {
        return Error::InvalidArgument("user-data: must start with a #cloud-config line");
    }
    std::size_t line = 1;
    std::size_t start = 0;
    while (start < text.size()) {
        std::size_t end = text.find('\n', start);
        if (end == std::string_view::npos) end = text.size();
        const std::string_view row = text.substr(start, end - start);
        const std::size_t colon = row.find(':');
        if (!row.empty() && row[0] != ' ' && row[0] != '#' && colon != std::string_view::npos) {
            std::string_view key = TrimRight(row.substr(0, colon));
            if (key.size() >= 2 && (key.front() == '"' || key.front() == '\'') &&
                key.back() == key.front()) {
                key = key.substr(1, key.size() - 2);
            }
            if (std::find(kReservedKeys.begin(), kReservedKeys.end(), key) != kReservedKeys.end()) {
                return Error::InvalidArgument(
                    "user-data line " + std::to_string(line) + ": " + std::string(key) +
                    " is set by the orchestrator for every VM and cannot be set by a template");
            }
        }
        start = end + 1;
        ++line;
    }
    return common::Ok();
}

// Reading the manifest: each helper names the field it complains about.

// `object_path` names the object ("minimum"); the other helpers take a prefix ("minimum.").
Status CheckKeys(const json& object, std::initializer_list<std::string_view> allowed,
                 const std::string& object_path) {
    for (const auto& item : object.items()) {
        if (std::find(allowed.begin(), allowed.end(), item.key()) == allowed.end()) {
            return Error::InvalidArgument(object_path + ": unknown key " + Quote(item.key()));
        }
    }
    return common::Ok();
}

Result<std::string> ReadString(const json& object, const char* key, const std::string& where) {
    const auto it = object.find(key);
    if (it == object.end()) return Error::InvalidArgument(where + key + ": required");
    if (!it->is_string()) return Error::InvalidArgument(where + key + ": must be a string");
    return it->get<std::string>();
}

Result<std::int64_t> ReadInteger(const json& value, const std::string& field) {
    if (value.is_number_unsigned()) {
        if (value.get<std::uint64_t>() >
            static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
            return Error::InvalidArgument(field + ": out of range");
        }
        return static_cast<std::int64_t>(value.get<std::uint64_t>());
    }
    if (value.is_number_integer()) return value.get<std::int64_t>();
    return Error::InvalidArgument(field + ": must be an integer");
}

Result<std::int64_t> ReadPositive(const json& object, const char* key, std::int64_t max,
                                  const std::string& where) {
    const auto it = object.find(key);
    if (it == object.end()) return Error::InvalidArgument(where + key + ": required");
    auto n = ReadInteger(*it, where + key);
    if (!n) return n.error();
    if (*n < 1 || *n > max) {
        return Error::InvalidArgument(where + key + ": must be between 1 and " +
                                      std::to_string(max));
    }
    return *n;
}

Result<std::string> ReadText(const json& object, const char* key, std::size_t max_length,
                             const std::string& where) {
    auto text = ReadString(object, key, where);
    if (!text) return text;
    if (text->empty() || text->size() > max_length || HasControlCharacters(*text)) {
        return Error::InvalidArgument(where + key + ": 1 to " + std::to_string(max_length) +
                                      " characters without control characters");
    }
    return text;
}

Result<std::regex> CompilePattern(const std::string& pattern) {
    try {
        return std::regex(pattern, std::regex::ECMAScript);
    } catch (const std::regex_error&) {
        return Error::InvalidArgument("is not a valid ECMAScript regular expression");
    }
}

// Whether `value` is acceptable for `p`; the message names the parameter, never the value.
Status CheckValue(const TemplateParameter& p, const json& value) {
    const std::string where = "parameter " + Quote(p.name) + ": ";
    switch (p.type) {
        case ParameterType::kBoolean:
            if (!value.is_boolean()) return Error::InvalidArgument(where + "must be a boolean");
            return common::Ok();
        case ParameterType::kInteger: {
            auto n = ReadInteger(value, "parameter " + Quote(p.name));
            if (!n) return n.error();
            if ((p.minimum && *n < *p.minimum) || (p.maximum && *n > *p.maximum)) {
                return Error::InvalidArgument(
                    where + "must be between " +
                    (p.minimum ? std::to_string(*p.minimum) : std::string("-inf")) + " and " +
                    (p.maximum ? std::to_string(*p.maximum) : std::string("+inf")));
            }
            return common::Ok();
        }
        case ParameterType::kString: {
            if (!value.is_string()) return Error::InvalidArgument(where + "must be a string");
            const auto& text = value.get_ref<const std::string&>();
            if (text.size() > kMaxTemplateStringParameterBytes) {
                return Error::InvalidArgument(where + "at most " +
                                              std::to_string(kMaxTemplateStringParameterBytes) +
                                              " bytes");
            }
            if (auto quoted = QuoteScalar(text); !quoted) {
                return Error::InvalidArgument(where + quoted.error().message);
            }
            if (!p.pattern) return common::Ok();
            auto re = CompilePattern(*p.pattern);
            if (!re) return Error::InvalidArgument(where + "pattern " + re.error().message);
            bool matched = false;
            try {
                matched = std::regex_match(text, *re);
            } catch (const std::regex_error&) {
                return Error::InvalidArgument(where + "too complex to match its pattern");
            }
            if (!matched) {
                return Error::InvalidArgument(where + "does not match the pattern " +
                                              Quote(*p.pattern));
            }
            return common::Ok();
        }
    }
    return Error::Internal("unknown parameter type");
}

Result<ParameterType> ParseParameterType(std::string_view text) {
    if (text == "string") return ParameterType::kString;
    if (text == "integer") return ParameterType::kInteger;
    if (text == "boolean") return ParameterType::kBoolean;
    return Error::InvalidArgument("must be string, integer or boolean");
}

Result<TemplateParameter> ParseParameter(const json& item, const std::string& object_path) {
    if (!item.is_object()) return Error::InvalidArgument(object_path + ": must be an object");
    if (auto st = CheckKeys(
            item,
            {"name", "type", "description", "default", "pattern", "secret", "minimum", "maximum"},
            object_path);
        !st) {
        return st.error();
    }
    const std::string where = object_path + ".";
    TemplateParameter p;
    auto name = ReadString(item, "name", where);
    if (!name) return name.error();
    if (!IsParameterName(*name)) {
        return Error::InvalidArgument(where + "name: must match [a-z_][a-z0-9_]* (at most " +
                                      std::to_string(kMaxParameterNameLength) + " characters)");
    }
    p.name = std::move(*name);
    const std::string field = "parameters." + p.name + ".";

    auto type = ReadString(item, "type", field);
    if (!type) return type.error();
    auto parsed_type = ParseParameterType(*type);
    if (!parsed_type) return Error::InvalidArgument(field + "type: " + parsed_type.error().message);
    p.type = *parsed_type;

    auto description = ReadText(item, "description", kMaxDescriptionLength, field);
    if (!description) return description.error();
    p.description = std::move(*description);

    if (const auto it = item.find("secret"); it != item.end()) {
        if (!it->is_boolean()) return Error::InvalidArgument(field + "secret: must be a boolean");
        p.secret = it->get<bool>();
    }
    if (const auto it = item.find("pattern"); it != item.end()) {
        if (p.type != ParameterType::kString) {
            return Error::InvalidArgument(field + "pattern: only string parameters have one");
        }
        if (!it->is_string() || it->get_ref<const std::string&>().empty() ||
            it->get_ref<const std::string&>().size() > kMaxPatternLength) {
            return Error::InvalidArgument(field + "pattern: must be a string of 1 to " +
                                          std::to_string(kMaxPatternLength) + " characters");
        }
        p.pattern = it->get<std::string>();
        if (auto re = CompilePattern(*p.pattern); !re) {
            return Error::InvalidArgument(field + "pattern: " + re.error().message);
        }
    }
    for (const char* bound : {"minimum", "maximum"}) {
        const auto it = item.find(bound);
        if (it == item.end()) continue;
        if (p.type != ParameterType::kInteger) {
            return Error::InvalidArgument(field + bound + ": only integer parameters have one");
        }
        auto n = ReadInteger(*it, field + bound);
        if (!n) return n.error();
        (std::string_view(bound) == "minimum" ? p.minimum : p.maximum) = *n;
    }
    if (p.minimum && p.maximum && *p.minimum > *p.maximum) {
        return Error::InvalidArgument(field + "minimum: greater than maximum");
    }
    if (const auto it = item.find("default"); it != item.end()) {
        if (p.secret) {
            return Error::InvalidArgument(
                field + "default: a secret parameter cannot have one (it would be shared)");
        }
        if (auto st = CheckValue(p, *it); !st) {
            return Error::InvalidArgument(field + "default: " + st.error().message);
        }
        p.default_value = *it;
    }
    return p;
}

Result<TemplatePort> ParsePort(const json& item, const std::string& object_path) {
    if (!item.is_object()) return Error::InvalidArgument(object_path + ": must be an object");
    if (auto st = CheckKeys(item, {"port", "name", "protocol"}, object_path); !st) {
        return st.error();
    }
    const std::string where = object_path + ".";
    TemplatePort port;
    auto number = ReadPositive(item, "port", std::numeric_limits<std::uint16_t>::max(), where);
    if (!number) return number.error();
    port.port = static_cast<std::uint16_t>(*number);
    auto name = ReadString(item, "name", where);
    if (!name) return name.error();
    if (!IsPortName(*name)) {
        return Error::InvalidArgument(where + "name: must match [a-z][a-z0-9-]* (at most " +
                                      std::to_string(kMaxPortNameLength) + " characters)");
    }
    port.name = std::move(*name);
    auto protocol = ReadString(item, "protocol", where);
    if (!protocol) return protocol.error();
    if (std::find(kProtocols.begin(), kProtocols.end(), *protocol) == kProtocols.end()) {
        return Error::InvalidArgument(where + "protocol: must be http, https, tcp or udp");
    }
    port.protocol = std::move(*protocol);
    return port;
}

Result<TemplateMinimum> ParseMinimum(const json& manifest) {
    const auto it = manifest.find("minimum");
    if (it == manifest.end()) return Error::InvalidArgument("minimum: required");
    if (!it->is_object()) return Error::InvalidArgument("minimum: must be an object");
    if (auto st = CheckKeys(*it, {"cpuCores", "memoryMib", "diskGib"}, "minimum"); !st) {
        return st.error();
    }
    const std::string where = "minimum.";
    TemplateMinimum minimum;
    auto cores = ReadPositive(*it, "cpuCores", std::numeric_limits<std::uint32_t>::max(), where);
    if (!cores) return cores.error();
    minimum.cpu_cores = static_cast<std::uint32_t>(*cores);
    auto memory = ReadPositive(*it, "memoryMib", std::numeric_limits<std::int64_t>::max(), where);
    if (!memory) return memory.error();
    minimum.memory_mib = static_cast<std::uint64_t>(*memory);
    auto disk = ReadPositive(*it, "diskGib", std::numeric_limits<std::int64_t>::max(), where);
    if (!disk) return disk.error();
    minimum.disk_gib = static_cast<std::uint64_t>(*disk);
    return minimum;
}

Status ParsePorts(const json& manifest, VmTemplate& tmpl) {
    const auto it = manifest.find("ports");
    if (it == manifest.end()) return common::Ok();
    if (!it->is_array() || it->size() > kMaxPorts) {
        return Error::InvalidArgument("ports: must be an array of at most " +
                                      std::to_string(kMaxPorts));
    }
    std::set<std::pair<std::uint16_t, std::string>> seen;
    for (std::size_t i = 0; i < it->size(); ++i) {
        const std::string object_path = "ports[" + std::to_string(i) + "]";
        auto port = ParsePort((*it)[i], object_path);
        if (!port) return port.error();
        if (!seen.emplace(port->port, port->protocol == "udp" ? "udp" : "tcp").second) {
            return Error::InvalidArgument(object_path + ".port: " + std::to_string(port->port) +
                                          " is listed twice");
        }
        tmpl.ports.push_back(std::move(*port));
    }
    return common::Ok();
}

Status ParseParameters(const json& manifest, VmTemplate& tmpl) {
    const auto it = manifest.find("parameters");
    if (it == manifest.end()) return common::Ok();
    if (!it->is_array() || it->size() > kMaxParameters) {
        return Error::InvalidArgument("parameters: must be an array of at most " +
                                      std::to_string(kMaxParameters));
    }
    for (std::size_t i = 0; i < it->size(); ++i) {
        auto p = ParseParameter((*it)[i], "parameters[" + std::to_string(i) + "]");
        if (!p) return p.error();
        if (tmpl.FindParameter(p->name) != nullptr) {
            return Error::InvalidArgument("parameters[" + std::to_string(i) + "].name: " + p->name +
                                          " is declared twice");
        }
        tmpl.parameters.push_back(std::move(*p));
    }
    return common::Ok();
}

}  // namespace

std::string_view ToString(ParameterType type) {
    switch (type) {
        case ParameterType::kString:
            return "string";
        case ParameterType::kInteger:
            return "integer";
        case ParameterType::kBoolean:
            return "boolean";
    }
    return "unknown";
}

const TemplateParameter* VmTemplate::FindParameter(std::string_view parameter_name) const {
    const auto it =
        std::find_if(parameters.begin(), parameters.end(),
                     [&](const TemplateParameter& p) { return p.name == parameter_name; });
    return it == parameters.end() ? nullptr : &*it;
}

Result<VmTemplate> ParseTemplate(const json& manifest, std::string user_data) {
    if (!manifest.is_object()) return Error::InvalidArgument("manifest: must be a JSON object");
    if (auto st = CheckKeys(
            manifest,
            {"id", "name", "description", "version", "image", "minimum", "ports", "parameters"},
            "manifest");
        !st) {
        return st.error();
    }
    VmTemplate tmpl;
    auto id = ReadString(manifest, "id", "");
    if (!id) return id.error();
    if (!IsTemplateId(*id)) return Error::InvalidArgument("id: must match [a-z0-9-]{1,64}");
    tmpl.id = std::move(*id);

    auto name = ReadText(manifest, "name", kMaxNameLength, "");
    if (!name) return name.error();
    tmpl.name = std::move(*name);
    auto description = ReadText(manifest, "description", kMaxDescriptionLength, "");
    if (!description) return description.error();
    tmpl.description = std::move(*description);

    auto version = ReadPositive(manifest, "version", std::numeric_limits<std::int64_t>::max(), "");
    if (!version) return version.error();
    tmpl.version = *version;

    auto image = ReadString(manifest, "image", "");
    if (!image) return image.error();
    if (!IsImage(*image)) {
        return Error::InvalidArgument("image: must match [a-z0-9][a-z0-9.-]* (at most " +
                                      std::to_string(kMaxImageLength) + " characters)");
    }
    tmpl.image = std::move(*image);

    auto minimum = ParseMinimum(manifest);
    if (!minimum) return minimum.error();
    tmpl.minimum = *minimum;
    if (auto st = ParsePorts(manifest, tmpl); !st) return st.error();
    if (auto st = ParseParameters(manifest, tmpl); !st) return st.error();

    if (auto st = CheckUserData(user_data); !st) return st.error();
    auto placeholders = ScanPlaceholders(user_data);
    if (!placeholders) return placeholders.error();
    std::set<std::string> used;
    for (const Placeholder& p : *placeholders) {
        if (tmpl.FindParameter(p.name) == nullptr) {
            return Error::InvalidArgument("user-data: {{" + p.name +
                                          "}} is not a declared parameter");
        }
        used.insert(p.name);
    }
    for (const TemplateParameter& p : tmpl.parameters) {
        if (!used.contains(p.name)) {
            return Error::InvalidArgument("parameters: " + p.name +
                                          " is declared but user-data never uses it");
        }
    }
    tmpl.user_data = std::move(user_data);
    return tmpl;
}

Result<std::string> RenderTemplate(const VmTemplate& tmpl, const json& params) {
    static const json kNoParameters = json::object();
    const json& given = params.is_null() ? kNoParameters : params;
    if (!given.is_object()) return Error::InvalidArgument("parameters: must be a JSON object");
    for (const auto& item : given.items()) {
        if (tmpl.FindParameter(item.key()) == nullptr) {
            return Error::InvalidArgument("parameter " + Quote(item.key()) + ": template " +
                                          tmpl.id + " has no such parameter");
        }
    }
    std::map<std::string, std::string, std::less<>> values;
    for (const TemplateParameter& p : tmpl.parameters) {
        const auto it = given.find(p.name);
        const json* value = it != given.end()             ? &*it
                            : p.default_value.has_value() ? &*p.default_value
                                                          : nullptr;
        if (value == nullptr) {
            return Error::InvalidArgument("parameter " + Quote(p.name) + ": required");
        }
        if (auto st = CheckValue(p, *value); !st) return st.error();
        std::string text;
        switch (p.type) {
            case ParameterType::kString: {
                auto quoted = QuoteScalar(value->get_ref<const std::string&>());
                if (!quoted) return quoted.error();
                text = std::move(*quoted);
                break;
            }
            case ParameterType::kInteger:
                text = value->dump();
                break;
            case ParameterType::kBoolean:
                text = value->get<bool>() ? "true" : "false";
                break;
        }
        values.emplace(p.name, std::move(text));
    }

    auto placeholders = ScanPlaceholders(tmpl.user_data);
    if (!placeholders) return placeholders.error();
    std::string out;
    out.reserve(tmpl.user_data.size());
    std::size_t pos = 0;
    for (const Placeholder& p : *placeholders) {
        const auto it = values.find(p.name);
        if (it == values.end()) {
            return Error::InvalidArgument("user-data: {{" + p.name +
                                          "}} is not a declared parameter");
        }
        out.append(tmpl.user_data, pos, p.begin - pos);
        out += it->second;
        pos = p.end;
    }
    out.append(tmpl.user_data, pos);
    return out;
}

json ToJson(const VmTemplate& tmpl) {
    json ports = json::array();
    for (const TemplatePort& p : tmpl.ports) {
        ports.push_back({{"port", p.port}, {"name", p.name}, {"protocol", p.protocol}});
    }
    json parameters = json::array();
    for (const TemplateParameter& p : tmpl.parameters) {
        json item{{"name", p.name},
                  {"type", ToString(p.type)},
                  {"description", p.description},
                  {"secret", p.secret}};
        if (p.default_value) item["default"] = *p.default_value;
        if (p.pattern) item["pattern"] = *p.pattern;
        if (p.minimum) item["minimum"] = *p.minimum;
        if (p.maximum) item["maximum"] = *p.maximum;
        parameters.push_back(std::move(item));
    }
    return json{{"id", tmpl.id},
                {"name", tmpl.name},
                {"description", tmpl.description},
                {"version", tmpl.version},
                {"image", tmpl.image},
                {"minimum",
                 {{"cpuCores", tmpl.minimum.cpu_cores},
                  {"memoryMib", tmpl.minimum.memory_mib},
                  {"diskGib", tmpl.minimum.disk_gib}}},
                {"ports", std::move(ports)},
                {"parameters", std::move(parameters)}};
}

json PublicParameters(const VmTemplate& tmpl, const json& params) {
    json out = json::object();
    if (!params.is_object()) return out;
    for (const auto& item : params.items()) {
        const TemplateParameter* p = tmpl.FindParameter(item.key());
        if (p != nullptr && !p->secret) out[item.key()] = item.value();
    }
    return out;
}

}  // namespace decloud::orchestrator::domain
