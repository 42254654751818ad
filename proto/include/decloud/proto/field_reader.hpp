#pragma once

// Strict JSON field readers: the message decoders here and the API's request bodies use them, so
// every wrong field is reported the same way, named with its JSON path.

#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "decloud/common/result.hpp"

namespace decloud::proto {

// Field readers: the error names the field with its JSON path so a client knows what to fix.
class FieldReader {
  public:
    FieldReader(const nlohmann::json& j, std::string path) : j_(j), path_(std::move(path)) {}

    common::Status Object() const {
        if (!j_.is_object())
            return common::Error::InvalidArgument(Where("") + "must be a JSON object");
        return common::Ok();
    }

    common::Status String(const char* key, std::string& out, bool required = true) const {
        const auto it = j_.find(key);
        if (it == j_.end() || it->is_null()) return Missing(key, required);
        if (!it->is_string())
            return common::Error::InvalidArgument(Where(key) + "must be a string");
        out = it->get<std::string>();
        return common::Ok();
    }

    // Leaves `out` empty when the field is absent or null.
    common::Status OptionalString(const char* key, std::optional<std::string>& out) const {
        const auto it = j_.find(key);
        if (it == j_.end() || it->is_null()) return common::Ok();
        if (!it->is_string())
            return common::Error::InvalidArgument(Where(key) + "must be a string");
        out = it->get<std::string>();
        return common::Ok();
    }

    template <class UInt>
    common::Status Unsigned(const char* key, UInt& out, bool required = true) const {
        const auto it = j_.find(key);
        if (it == j_.end() || it->is_null()) return Missing(key, required);
        if (!it->is_number_integer() ||
            (it->is_number_integer() && !it->is_number_unsigned() && it->get<std::int64_t>() < 0))
            return common::Error::InvalidArgument(Where(key) + "must be a non-negative integer");
        const auto v = it->get<std::uint64_t>();
        if (v > std::numeric_limits<UInt>::max())
            return common::Error::InvalidArgument(Where(key) + "is too large");
        out = static_cast<UInt>(v);
        return common::Ok();
    }

    common::Status Int(const char* key, int& out, bool required = true) const {
        const auto it = j_.find(key);
        if (it == j_.end() || it->is_null()) return Missing(key, required);
        if (!it->is_number_integer())
            return common::Error::InvalidArgument(Where(key) + "must be an integer");
        const auto v = it->get<std::int64_t>();
        if (v < std::numeric_limits<int>::min() || v > std::numeric_limits<int>::max())
            return common::Error::InvalidArgument(Where(key) + "is out of range");
        out = static_cast<int>(v);
        return common::Ok();
    }

    common::Status Double(const char* key, double& out, double min, double max,
                          bool required = true) const {
        const auto it = j_.find(key);
        if (it == j_.end() || it->is_null()) return Missing(key, required);
        if (!it->is_number())
            return common::Error::InvalidArgument(Where(key) + "must be a number");
        const auto v = it->get<double>();
        if (!std::isfinite(v) || v < min || v > max)
            return common::Error::InvalidArgument(Where(key) + "is out of range");
        out = v;
        return common::Ok();
    }

    common::Status Bool(const char* key, bool& out, bool required = true) const {
        const auto it = j_.find(key);
        if (it == j_.end() || it->is_null()) return Missing(key, required);
        if (!it->is_boolean())
            return common::Error::InvalidArgument(Where(key) + "must be true or false");
        out = it->get<bool>();
        return common::Ok();
    }

    common::Status OptionalBool(const char* key, std::optional<bool>& out) const {
        const auto it = j_.find(key);
        if (it == j_.end() || it->is_null()) {
            out.reset();
            return common::Ok();
        }
        if (!it->is_boolean())
            return common::Error::InvalidArgument(Where(key) + "must be true, false or null");
        out = it->get<bool>();
        return common::Ok();
    }

    common::Status StringArray(const char* key, std::vector<std::string>& out,
                               bool required = true) const {
        const auto it = j_.find(key);
        if (it == j_.end() || it->is_null()) return Missing(key, required);
        if (!it->is_array())
            return common::Error::InvalidArgument(Where(key) + "must be an array of strings");
        out.clear();
        for (const auto& el : *it) {
            if (!el.is_string())
                return common::Error::InvalidArgument(Where(key) + "must be an array of strings");
            out.push_back(el.get<std::string>());
        }
        return common::Ok();
    }

    // Decodes a nested object with `decode`, prefixing its errors with this path.
    template <class T, class F>
    common::Status Nested(const char* key, T& out, F decode, bool required = true) const {
        const auto it = j_.find(key);
        if (it == j_.end() || it->is_null()) return Missing(key, required);
        auto r = decode(*it);
        if (!r) return common::Error::InvalidArgument(Where(key) + r.error().message);
        out = std::move(*r);
        return common::Ok();
    }

    // Decodes an array of objects with `decode`; errors name the element ("key[2]: ...").
    // Absent or null is an empty array.
    template <class T, class F>
    common::Status Array(const char* key, std::vector<T>& out, F decode) const {
        const auto it = j_.find(key);
        out.clear();
        if (it == j_.end() || it->is_null()) return common::Ok();
        if (!it->is_array()) return common::Error::InvalidArgument(Where(key) + "must be an array");
        const std::string element = path_.empty() ? key : path_ + "." + key;
        for (std::size_t i = 0; i < it->size(); ++i) {
            auto r = decode((*it)[i]);
            if (!r)
                return common::Error::InvalidArgument(element + "[" + std::to_string(i) +
                                                      "]: " + r.error().message);
            out.push_back(std::move(*r));
        }
        return common::Ok();
    }

    std::string Where(std::string_view key) const {
        std::string w = path_;
        if (!key.empty()) {
            if (!w.empty()) w += ".";
            w += key;
        }
        return w.empty() ? std::string() : w + ": ";
    }

  private:
    common::Status Missing(const char* key, bool required) const {
        if (required) return common::Error::InvalidArgument(Where(key) + "is required");
        return common::Ok();
    }

    const nlohmann::json& j_;
    std::string path_;
};

}  // namespace decloud::proto
