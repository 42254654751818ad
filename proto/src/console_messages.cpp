#include "decloud/proto/console_messages.hpp"

#include <array>
#include <span>

#include "decloud/crypto/crypto.hpp"
#include "decloud/proto/field_reader.hpp"

namespace decloud::proto {

using common::Error;
using common::Result;
using nlohmann::json;

namespace {

#define DECLOUD_TRY(expr)                                \
    do {                                                 \
        if (auto _st = (expr); !_st) return _st.error(); \
    } while (0)

constexpr std::string_view kPrefix = "console.";
constexpr std::array<ConsoleMessageType, 6> kAllTypes = {
    ConsoleMessageType::kOpen,   ConsoleMessageType::kInput,  ConsoleMessageType::kClose,
    ConsoleMessageType::kOpened, ConsoleMessageType::kOutput, ConsoleMessageType::kClosed};

std::string Base64(std::string_view bytes) {
    return crypto::Base64Encode(std::span<const std::uint8_t>(
        reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
}

Result<std::string> FromBase64(const json& j, const char* key) {
    std::string text;
    DECLOUD_TRY(FieldReader(j, "").String(key, text));
    // Checked before decoding: a huge string costs nothing more than its length.
    if (text.size() > (kMaxConsoleDataBytes + 2) / 3 * 4)
        return Error::InvalidArgument(std::string(key) + ": longer than " +
                                      std::to_string(kMaxConsoleDataBytes) + " bytes");
    auto bytes = crypto::Base64Decode(text);
    if (!bytes) return Error::InvalidArgument(std::string(key) + ": not base64");
    return std::string(bytes->begin(), bytes->end());
}

}  // namespace

std::string_view ToString(ConsoleMessageType type) {
    switch (type) {
        case ConsoleMessageType::kOpen:
            return "console.open";
        case ConsoleMessageType::kInput:
            return "console.input";
        case ConsoleMessageType::kClose:
            return "console.close";
        case ConsoleMessageType::kOpened:
            return "console.opened";
        case ConsoleMessageType::kOutput:
            return "console.output";
        case ConsoleMessageType::kClosed:
            return "console.closed";
    }
    return "console.unknown";
}

bool IsConsoleMessage(const json& j) {
    if (!j.is_object()) return false;
    const auto it = j.find("type");
    return it != j.end() && it->is_string() &&
           it->get_ref<const std::string&>().starts_with(kPrefix);
}

json ToJson(const ConsoleMessage& v) {
    json j{{"type", ToString(v.type)}, {"session", v.session}};
    switch (v.type) {
        case ConsoleMessageType::kOpen:
            j["vmId"] = v.vm_id;
            break;
        case ConsoleMessageType::kInput:
            j["data"] = Base64(v.data);
            break;
        case ConsoleMessageType::kOutput:
            j["data"] = Base64(v.data);
            j["dropped"] = v.dropped;
            break;
        case ConsoleMessageType::kClose:
        case ConsoleMessageType::kClosed:
            j["reason"] = v.reason;
            break;
        case ConsoleMessageType::kOpened:
            break;
    }
    return j;
}

Result<ConsoleMessage> DecodeConsoleMessage(const json& j) {
    FieldReader r(j, "");
    DECLOUD_TRY(r.Object());
    std::string type;
    DECLOUD_TRY(r.String("type", type));
    ConsoleMessage v;
    bool known = false;
    for (const auto t : kAllTypes) {
        if (ToString(t) == type) {
            v.type = t;
            known = true;
        }
    }
    if (!known) return Error::InvalidArgument("type: unknown console message '" + type + "'");
    DECLOUD_TRY(r.String("session", v.session));
    if (v.session.empty() || v.session.size() > kMaxConsoleSessionBytes)
        return Error::InvalidArgument("session: 1 to " + std::to_string(kMaxConsoleSessionBytes) +
                                      " bytes");
    switch (v.type) {
        case ConsoleMessageType::kOpen:
            DECLOUD_TRY(r.String("vmId", v.vm_id));
            if (v.vm_id.empty()) return Error::InvalidArgument("vmId: must not be empty");
            break;
        case ConsoleMessageType::kInput:
        case ConsoleMessageType::kOutput: {
            auto data = FromBase64(j, "data");
            if (!data) return data.error();
            v.data = std::move(*data);
            if (v.type == ConsoleMessageType::kOutput)
                DECLOUD_TRY(r.Unsigned("dropped", v.dropped, false));
            break;
        }
        case ConsoleMessageType::kClose:
        case ConsoleMessageType::kClosed:
            DECLOUD_TRY(r.String("reason", v.reason, false));
            break;
        case ConsoleMessageType::kOpened:
            break;
    }
    return v;
}

json BrowserConsoleOutput(std::string_view bytes, std::uint64_t dropped) {
    return json{{"type", "output"}, {"data", Base64(bytes)}, {"dropped", dropped}};
}

Result<std::string> DecodeBrowserConsoleInput(const json& j) {
    FieldReader r(j, "");
    DECLOUD_TRY(r.Object());
    std::string type;
    DECLOUD_TRY(r.String("type", type));
    if (type != "input") return Error::InvalidArgument("type: only 'input' is accepted");
    if (j.contains("text")) {
        std::string text;
        DECLOUD_TRY(r.String("text", text));
        if (text.size() > kMaxConsoleDataBytes)
            return Error::InvalidArgument("text: longer than " +
                                          std::to_string(kMaxConsoleDataBytes) + " bytes");
        return text;
    }
    return FromBase64(j, "data");
}

}  // namespace decloud::proto
