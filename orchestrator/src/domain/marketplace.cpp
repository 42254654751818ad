#include "orchestrator/domain/marketplace.hpp"

#include <nlohmann/json.hpp>

#include "decloud/common/ids.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <limits>
#include <type_traits>

namespace decloud::orchestrator::domain {

using common::Error;
using common::Result;
using common::Status;
using nlohmann::json;

namespace {

constexpr std::size_t kMaxTagLength = 64;
constexpr std::size_t kMaxRegionLength = 64;
constexpr std::size_t kMaxDisplayName = 64;
constexpr std::size_t kMaxDescription = 2000;
constexpr std::size_t kMaxGpuText = 64;
constexpr std::size_t kMaxCursorLength = 512;

bool IsTagChar(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_' || c == '.' ||
           c == ':';
}

Status ValidateTagList(const std::vector<std::string>& tags, std::string_view what) {
    if (tags.size() > kMaxMarketTags)
        return Error::InvalidArgument(std::string(what) + ": at most " +
                                      std::to_string(kMaxMarketTags) + " tags");
    for (const auto& t : tags) {
        if (t.empty() || t.size() > kMaxTagLength)
            return Error::InvalidArgument(std::string(what) + ": each tag has 1 to 64 characters");
        if (!std::all_of(t.begin(), t.end(), IsTagChar))
            return Error::InvalidArgument(std::string(what) +
                                          ": tags may only use letters, digits and - _ . :");
    }
    return common::Ok();
}

// Counts the code points of well-formed UTF-8 without control characters (newline allowed
// when `multiline`); nullopt otherwise.
std::optional<std::size_t> CountText(std::string_view s, bool multiline) {
    std::size_t count = 0;
    for (std::size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        std::size_t len = 0;
        std::uint32_t cp = 0;
        if (c < 0x80) {
            if ((c < 0x20 && !(multiline && c == '\n')) || c == 0x7f) return std::nullopt;
            len = 1;
            cp = c;
        } else if ((c & 0xe0) == 0xc0) {
            len = 2;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4;
            cp = c & 0x07;
        } else {
            return std::nullopt;
        }
        if (i + len > s.size()) return std::nullopt;
        for (std::size_t k = 1; k < len; ++k) {
            const auto cc = static_cast<unsigned char>(s[i + k]);
            if ((cc & 0xc0) != 0x80) return std::nullopt;
            cp = (cp << 6) | (cc & 0x3f);
        }
        // Overlong forms, surrogates, beyond Unicode and C1 controls are refused.
        static constexpr std::array<std::uint32_t, 5> kMin = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < kMin[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ||
            (cp >= 0x80 && cp < 0xa0))
            return std::nullopt;
        i += len;
        ++count;
    }
    return count;
}

constexpr std::string_view kBase64Url =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string Base64UrlEncode(std::string_view in) {
    std::string out;
    std::size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
        const auto n = (static_cast<std::uint32_t>(static_cast<unsigned char>(in[i])) << 16) |
                       (static_cast<std::uint32_t>(static_cast<unsigned char>(in[i + 1])) << 8) |
                       static_cast<unsigned char>(in[i + 2]);
        for (int shift = 18; shift >= 0; shift -= 6) out += kBase64Url[(n >> shift) & 63];
    }
    if (const auto rest = in.size() - i; rest > 0) {
        std::uint32_t n = static_cast<std::uint32_t>(static_cast<unsigned char>(in[i])) << 16;
        if (rest == 2) n |= static_cast<std::uint32_t>(static_cast<unsigned char>(in[i + 1])) << 8;
        out += kBase64Url[(n >> 18) & 63];
        out += kBase64Url[(n >> 12) & 63];
        if (rest == 2) out += kBase64Url[(n >> 6) & 63];
    }
    return out;
}

std::optional<std::string> Base64UrlDecode(std::string_view in) {
    if (in.size() % 4 == 1) return std::nullopt;
    std::string out;
    std::uint32_t acc = 0;
    int bits = 0;
    for (const char c : in) {
        const auto pos = kBase64Url.find(c);
        if (pos == std::string_view::npos) return std::nullopt;
        acc = (acc << 6) | static_cast<std::uint32_t>(pos);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((acc >> bits) & 0xff);
        }
    }
    // Leftover bits must be zero, so every cursor has exactly one spelling.
    if ((acc & ((1u << bits) - 1)) != 0) return std::nullopt;
    return out;
}

void Mix(std::uint64_t& h, std::string_view s) {
    for (const char c : s) {
        h ^= static_cast<unsigned char>(c);
        h *= 0x100000001b3ull;
    }
    h ^= 0xff;  // separator, so ("ab","c") differs from ("a","bc")
    h *= 0x100000001b3ull;
}

template <class T>
std::string Opt(const std::optional<T>& v) {
    if (!v) return "-";
    if constexpr (std::is_same_v<T, bool>) return *v ? "1" : "0";
    return std::to_string(*v);
}

}  // namespace

std::string_view ToString(MarketSort sort) {
    switch (sort) {
        case MarketSort::kPrice:
            return "price";
        case MarketSort::kUptime:
            return "uptime";
        case MarketSort::kFreeCapacity:
            return "free";
        case MarketSort::kComputePoints:
            return "points";
    }
    return "price";
}

std::optional<MarketSort> ParseMarketSort(std::string_view text) {
    for (const auto s : {MarketSort::kPrice, MarketSort::kUptime, MarketSort::kFreeCapacity,
                         MarketSort::kComputePoints})
        if (ToString(s) == text) return s;
    return std::nullopt;
}

Status Validate(const MarketFilter& f) {
    if (auto st = ValidateTagList(f.tags_all, "tagsAll"); !st) return st;
    if (auto st = ValidateTagList(f.tags_any, "tagsAny"); !st) return st;
    if (f.region.size() > kMaxRegionLength ||
        !std::all_of(f.region.begin(), f.region.end(), [](char c) {
            return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
        }))
        return Error::InvalidArgument(
            "region: at most 64 lowercase letters, digits and '-' (e.g. eu-west)");
    if (f.min_price && f.max_price && *f.min_price > *f.max_price)
        return Error::InvalidArgument("minPrice: greater than maxPrice");
    if (f.min_price && *f.min_price > kMaxPricePerPoint)
        return Error::InvalidArgument("minPrice: at most " + std::to_string(kMaxPricePerPoint));
    if (f.max_price && *f.max_price > kMaxPricePerPoint)
        return Error::InvalidArgument("maxPrice: at most " + std::to_string(kMaxPricePerPoint));
    if (f.gpu_vendor.size() > kMaxGpuText || f.gpu_model.size() > kMaxGpuText)
        return Error::InvalidArgument("gpuVendor, gpuModel: at most 64 characters");
    for (const auto& text : {f.gpu_vendor, f.gpu_model})
        if (!CountText(text, false))
            return Error::InvalidArgument("gpuVendor, gpuModel: printable UTF-8 only");
    if (f.has_gpu && !*f.has_gpu &&
        (!f.gpu_vendor.empty() || !f.gpu_model.empty() || (f.min_gpu_count && *f.min_gpu_count)))
        return Error::InvalidArgument("gpu=false contradicts gpuVendor, gpuModel or gpuCount");
    if (f.min_gpu_count && *f.min_gpu_count > 64)
        return Error::InvalidArgument("gpuCount: at most 64");
    if (f.min_uptime_bp && *f.min_uptime_bp > 10000)
        return Error::InvalidArgument("minUptime: a percentage, 0 to 100");
    constexpr std::uint64_t kHuge = std::uint64_t{1} << 40;
    if ((f.min_free_points && *f.min_free_points > kHuge) ||
        (f.min_free_memory_mib && *f.min_free_memory_mib > kHuge) ||
        (f.min_free_disk_gib && *f.min_free_disk_gib > kHuge))
        return Error::InvalidArgument("minFreePoints, minFreeMemoryMib, minFreeDiskGib: too large");
    if (f.limit < 1 || f.limit > kMaxMarketPageSize)
        return Error::InvalidArgument("limit: 1 to " + std::to_string(kMaxMarketPageSize));
    if (f.vm_cores < 1 || f.vm_cores > 1024) return Error::InvalidArgument("cores: 1 to 1024");
    return common::Ok();
}

std::uint64_t RawPointsFor(std::uint64_t points_at_tier, QualityTier tier) {
    const auto r = RatioOf(tier);
    // points <= 2^40 (validated), den <= 2: no overflow.
    return (points_at_tier * r.denominator + r.numerator - 1) / r.numerator;
}

std::uint64_t QueryHash(const MarketFilter& f) {
    std::uint64_t h = 0xcbf29ce484222325ull;
    for (const auto& t : f.tags_all) Mix(h, t);
    Mix(h, "|");
    for (const auto& t : f.tags_any) Mix(h, t);
    Mix(h, "|");
    for (const auto& s :
         {f.region, Opt(f.min_price), Opt(f.max_price), Opt(f.has_gpu), f.gpu_vendor, f.gpu_model,
          Opt(f.min_gpu_count), Opt(f.min_uptime_bp), Opt(f.min_free_points),
          Opt(f.min_free_memory_mib), Opt(f.min_free_disk_gib), std::string(ToString(f.tier)),
          Opt(f.behind_cgnat), std::string(f.featured_only ? "1" : "0"),
          std::string(ToString(f.sort)), std::string(f.descending ? "d" : "a")})
        Mix(h, s);
    return h;
}

namespace {

// A check over the cursor's fields, so that an edited cursor is refused rather than continuing
// from a position of the client's making. Not a secret: cursors carry no private data.
std::uint64_t CursorCheck(const MarketCursor& c) {
    std::uint64_t h = 0x6d61726b65743037ull;  // "market07"
    Mix(h, ToString(c.sort));
    Mix(h, c.descending ? "d" : "a");
    Mix(h, std::to_string(c.key));
    Mix(h, c.node_id);
    Mix(h, std::to_string(c.query_hash));
    return h;
}

}  // namespace

std::string EncodeCursor(const MarketCursor& c) {
    const json j{{"s", ToString(c.sort)},
                 {"d", c.descending},
                 {"k", c.key},
                 {"i", c.node_id},
                 {"q", std::to_string(c.query_hash)},
                 {"c", std::to_string(CursorCheck(c))}};
    return Base64UrlEncode(j.dump());
}

Result<MarketCursor> DecodeCursor(std::string_view text, const MarketFilter& filter) {
    const auto bad = [](std::string why) {
        return Error::InvalidArgument("cursor: " + std::move(why) +
                                      "; start again without a cursor");
    };
    if (text.size() > kMaxCursorLength) return bad("too long");
    const auto raw = Base64UrlDecode(text);
    // What EncodeCursor writes is printable ASCII JSON; anything else (a stray NUL from an
    // appended character, say) was not made here.
    if (!raw ||
        !std::all_of(raw->begin(), raw->end(), [](char ch) { return ch >= 0x20 && ch < 0x7f; }))
        return bad("not a cursor this server issued");
    const auto j = json::parse(*raw, nullptr, false);
    if (j.is_discarded() || !j.is_object() || j.size() != 6) return bad("malformed");
    const auto s = j.find("s");
    const auto d = j.find("d");
    const auto k = j.find("k");
    const auto i = j.find("i");
    const auto q = j.find("q");
    const auto check = j.find("c");
    if (check == j.end() || !check->is_string()) return bad("malformed");
    if (s == j.end() || !s->is_string() || d == j.end() || !d->is_boolean() || k == j.end() ||
        !k->is_number_integer() || i == j.end() || !i->is_string() || q == j.end() ||
        !q->is_string())
        return bad("malformed");
    MarketCursor c;
    const auto sort = ParseMarketSort(s->get<std::string>());
    if (!sort) return bad("malformed");
    c.sort = *sort;
    c.descending = d->get<bool>();
    c.key = k->get<std::int64_t>();
    c.node_id = i->get<std::string>();
    if (!common::IsUuid(c.node_id)) return bad("malformed");
    const auto qs = q->get<std::string>();
    if (qs.empty() || qs.size() > 20 ||
        !std::all_of(qs.begin(), qs.end(), [](char ch) { return ch >= '0' && ch <= '9'; }))
        return bad("malformed");
    try {
        c.query_hash = std::stoull(qs);
    } catch (const std::exception&) {
        return bad("malformed");
    }
    if (check->get<std::string>() != std::to_string(CursorCheck(c))) return bad("it was altered");
    if (c.sort != filter.sort || c.descending != filter.descending ||
        c.query_hash != QueryHash(filter))
        return bad("it belongs to a different query (filters or sort changed)");
    return c;
}

std::uint32_t UptimeBasisPoints(double ratio) {
    if (!(ratio > 0)) return 0;  // also NaN
    if (ratio >= 1) return 10000;
    // A hair of tolerance so that exactly 95 % computed as 0.9499999999 is not rounded down.
    return static_cast<std::uint32_t>(ratio * 10000 + 1e-9);
}

std::uint64_t HourlyPrice(std::uint32_t cores, QualityTier tier, std::uint64_t node_points,
                          std::uint32_t node_cores, std::uint64_t price_per_point) {
    const auto points = PointsConsumed(cores, node_points, node_cores, tier);
    if (points == std::numeric_limits<std::uint64_t>::max()) return points;
    if (price_per_point != 0 &&
        points > std::numeric_limits<std::uint64_t>::max() / price_per_point)
        return std::numeric_limits<std::uint64_t>::max();
    return points * price_per_point;
}

Status Validate(const NodeProfile& p) {
    const auto name = CountText(p.display_name, false);
    if (!name) return Error::InvalidArgument("displayName: printable UTF-8 text only");
    if (*name < 1 || *name > kMaxDisplayName)
        return Error::InvalidArgument("displayName: 1 to 64 characters");
    if (p.display_name.front() == ' ' || p.display_name.back() == ' ')
        return Error::InvalidArgument("displayName: no leading or trailing spaces");
    const auto description = CountText(p.description, true);
    if (!description)
        return Error::InvalidArgument(
            "description: printable UTF-8 text only (newlines allowed, no other control "
            "characters)");
    if (*description > kMaxDescription)
        return Error::InvalidArgument("description: at most 2000 characters");
    if (auto st = ValidateTagList(p.tags, "tags"); !st) return st;
    if (p.price_per_point_micro_usdc && *p.price_per_point_micro_usdc > kMaxPricePerPoint)
        return Error::InvalidArgument("pricePerPointMicroUsdc: at most " +
                                      std::to_string(kMaxPricePerPoint));
    return common::Ok();
}

Status ValidateReview(int rating, std::string_view text) {
    if (rating < 1 || rating > 5) return Error::InvalidArgument("rating: 1 to 5");
    const auto length = CountText(text, true);
    if (!length) return Error::InvalidArgument("text: printable UTF-8 only (newlines allowed)");
    if (*length > kMaxReviewLength) return Error::InvalidArgument("text: at most 1000 characters");
    return common::Ok();
}

}  // namespace decloud::orchestrator::domain
