#pragma once

// Strict JSON field readers shared by the message decoders (private to decloud_proto).

#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "decloud/common/result.hpp"

namespace decloud::proto::detail {

using common::Error;
using common::Status;
using nlohmann::json;

// Field readers: the error names the field with its JSON path so a client knows what to fix.
class FieldReader {
  public:
    FieldReader(const json& j, std::string path) : j_(j), path_(std::move(path)) {}

    Status Object() const {
        if (!j_.is_object()) return Error::InvalidArgument(Where("") + "must be a JSON object");
        return common::Ok();
    }

    Status String(const char* key, std::string& out, bool required = true) const {
        const auto it = j_.find(key);
        if (it == j_.end() || it->is_null()) return Missing(key, required);
        if (!it->is_string()) return Error::InvalidArgument(Where(key) + "must be a string");
        out = it->get<std::string>();
        return common::Ok();
    }

    template <class UInt>
    Status Unsigned(const char* key, UInt& out, bool required = true) const {
        const auto it = j_.find(key);
        if (it == j_.end() || it->is_null()) return Missing(key, required);
        if (!it->is_number_integer() ||
            (it->is_number_integer() && !it->is_number_unsigned() && it->get<std::int64_t>() < 0))
            return Error::InvalidArgument(Where(key) + "must be a non-negative integer");
        const auto v = it->get<std::uint64_t>();
        if (v > std::numeric_limits<UInt>::max())
            return Error::InvalidArgument(Where(key) + "is too large");
        out = static_cast<UInt>(v);
        return common::Ok();
    }

    Status Int(const char* key, int& out, bool required = true) const {
        const auto it = j_.find(key);
        if (it == j_.end() || it->is_null()) return Missing(key, required);
        if (!it->is_number_integer())
            return Error::InvalidArgument(Where(key) + "must be an integer");
        const auto v = it->get<std::int64_t>();
        if (v < std::numeric_limits<int>::min() || v > std::numeric_limits<int>::max())
            return Error::InvalidArgument(Where(key) + "is out of range");
        out = static_cast<int>(v);
        return common::Ok();
    }

    Status Double(const char* key, double& out, double min, double max,
                  bool required = true) const {
        const auto it = j_.find(key);
        if (it == j_.end() || it->is_null()) return Missing(key, required);
        if (!it->is_number()) return Error::InvalidArgument(Where(key) + "must be a number");
        const auto v = it->get<double>();
        if (!std::isfinite(v) || v < min || v > max)
            return Error::InvalidArgument(Where(key) + "is out of range");
        out = v;
        return common::Ok();
    }

    Status Bool(const char* key, bool& out, bool required = true) const {
        const auto it = j_.find(key);
        if (it == j_.end() || it->is_null()) return Missing(key, required);
        if (!it->is_boolean()) return Error::InvalidArgument(Where(key) + "must be true or false");
        out = it->get<bool>();
        return common::Ok();
    }

    Status OptionalBool(const char* key, std::optional<bool>& out) const {
        const auto it = j_.find(key);
        if (it == j_.end() || it->is_null()) {
            out.reset();
            return common::Ok();
        }
        if (!it->is_boolean())
            return Error::InvalidArgument(Where(key) + "must be true, false or null");
        out = it->get<bool>();
        return common::Ok();
    }

    Status StringArray(const char* key, std::vector<std::string>& out, bool required = true) const {
        const auto it = j_.find(key);
        if (it == j_.end() || it->is_null()) return Missing(key, required);
        if (!it->is_array())
            return Error::InvalidArgument(Where(key) + "must be an array of strings");
        out.clear();
        for (const auto& el : *it) {
            if (!el.is_string())
                return Error::InvalidArgument(Where(key) + "must be an array of strings");
            out.push_back(el.get<std::string>());
        }
        return common::Ok();
    }

    // Decodes a nested object with `decode`, prefixing its errors with this path.
    template <class T, class F>
    Status Nested(const char* key, T& out, F decode, bool required = true) const {
        const auto it = j_.find(key);
        if (it == j_.end() || it->is_null()) return Missing(key, required);
        auto r = decode(*it);
        if (!r) return Error::InvalidArgument(Where(key) + r.error().message);
        out = std::move(*r);
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
    Status Missing(const char* key, bool required) const {
        if (required) return Error::InvalidArgument(Where(key) + "is required");
        return common::Ok();
    }

    const json& j_;
    std::string path_;
};

}  // namespace decloud::proto::detail
