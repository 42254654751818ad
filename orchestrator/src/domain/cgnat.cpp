#include "orchestrator/domain/cgnat.hpp"

#include <array>
#include <boost/asio/ip/address.hpp>

namespace decloud::orchestrator::domain {

namespace {

namespace ip = boost::asio::ip;

struct V4Range {
    std::uint32_t base;
    int prefix;
    AddressScope scope;
    const char* text;
};

constexpr std::uint32_t V4(unsigned a, unsigned b, unsigned c, unsigned d) {
    return a << 24 | b << 16 | c << 8 | d;
}

// IANA IPv4 special-purpose registry, the entries that are not globally reachable.
constexpr std::array kV4Ranges{
    V4Range{V4(0, 0, 0, 0), 8, AddressScope::kReserved, "0.0.0.0/8"},
    V4Range{V4(10, 0, 0, 0), 8, AddressScope::kPrivate, "10.0.0.0/8"},
    V4Range{V4(100, 64, 0, 0), 10, AddressScope::kSharedCgnat, "100.64.0.0/10"},
    V4Range{V4(127, 0, 0, 0), 8, AddressScope::kLoopback, "127.0.0.0/8"},
    V4Range{V4(169, 254, 0, 0), 16, AddressScope::kLinkLocal, "169.254.0.0/16"},
    V4Range{V4(172, 16, 0, 0), 12, AddressScope::kPrivate, "172.16.0.0/12"},
    V4Range{V4(192, 0, 0, 0), 24, AddressScope::kReserved, "192.0.0.0/24"},
    V4Range{V4(192, 0, 2, 0), 24, AddressScope::kReserved, "192.0.2.0/24"},
    V4Range{V4(192, 88, 99, 0), 24, AddressScope::kReserved, "192.88.99.0/24"},
    V4Range{V4(192, 168, 0, 0), 16, AddressScope::kPrivate, "192.168.0.0/16"},
    V4Range{V4(198, 18, 0, 0), 15, AddressScope::kReserved, "198.18.0.0/15"},
    V4Range{V4(198, 51, 100, 0), 24, AddressScope::kReserved, "198.51.100.0/24"},
    V4Range{V4(203, 0, 113, 0), 24, AddressScope::kReserved, "203.0.113.0/24"},
    V4Range{V4(224, 0, 0, 0), 4, AddressScope::kReserved, "224.0.0.0/4"},
    V4Range{V4(240, 0, 0, 0), 4, AddressScope::kReserved, "240.0.0.0/4"},
};

AddressClass ClassifyV4(std::uint32_t a) {
    for (const auto& r : kV4Ranges) {
        const std::uint32_t mask = r.prefix == 0 ? 0 : ~std::uint32_t{0} << (32 - r.prefix);
        if ((a & mask) == r.base) return {r.scope, r.text};
    }
    return {AddressScope::kGlobal, {}};
}

struct V6Range {
    std::array<std::uint8_t, 16> base;
    int prefix;
    AddressScope scope;
    const char* text;
};

bool InV6(const ip::address_v6::bytes_type& b, const V6Range& r) {
    int bits = r.prefix;
    for (std::size_t i = 0; i < 16 && bits > 0; ++i, bits -= 8) {
        const std::uint8_t mask = bits >= 8 ? 0xff : static_cast<std::uint8_t>(0xff << (8 - bits));
        if ((b[i] & mask) != (r.base[i] & mask)) return false;
    }
    return true;
}

// IANA IPv6 special-purpose registry, the entries that are not globally reachable, plus
// everything outside 2000::/3 (the only block allocated for global unicast).
const std::array<V6Range, 8> kV6Ranges{{
    {{0x01, 0x00}, 64, AddressScope::kReserved, "100::/64"},
    {{0x20, 0x01, 0x0d, 0xb8}, 32, AddressScope::kReserved, "2001:db8::/32"},
    {{0x20, 0x01, 0x00, 0x00}, 32, AddressScope::kReserved, "2001::/32"},
    {{0x20, 0x01, 0x00, 0x20}, 28, AddressScope::kReserved, "2001:20::/28"},
    {{0x3f, 0xff}, 20, AddressScope::kReserved, "3fff::/20"},
    {{0xfc}, 7, AddressScope::kPrivate, "fc00::/7"},
    {{0xfe, 0x80}, 10, AddressScope::kLinkLocal, "fe80::/10"},
    {{0xff}, 8, AddressScope::kReserved, "ff00::/8"},
}};

AddressClass ClassifyV6(const ip::address_v6& a) {
    if (a.is_unspecified()) return {AddressScope::kUnspecified, "::/128"};
    if (a.is_loopback()) return {AddressScope::kLoopback, "::1/128"};
    if (a.is_v4_mapped()) return ClassifyV4(ip::make_address_v4(ip::v4_mapped, a).to_uint());
    const auto b = a.to_bytes();
    for (const auto& r : kV6Ranges) {
        if (InV6(b, r)) return {r.scope, r.text};
    }
    if ((b[0] & 0xe0) != 0x20) return {AddressScope::kReserved, "outside 2000::/3"};
    return {AddressScope::kGlobal, {}};
}

std::optional<ip::address> Parse(std::string_view text) {
    boost::system::error_code ec;
    auto a = ip::make_address(std::string(text), ec);
    if (ec) return std::nullopt;
    if (a.is_v6() && a.to_v6().is_v4_mapped())
        return ip::address{ip::make_address_v4(ip::v4_mapped, a.to_v6())};
    return a;
}

const char* Describe(AddressScope s) {
    switch (s) {
        case AddressScope::kGlobal:
            return "global";
        case AddressScope::kPrivate:
            return "private";
        case AddressScope::kSharedCgnat:
            return "CGNAT shared";
        case AddressScope::kLoopback:
            return "loopback";
        case AddressScope::kLinkLocal:
            return "link-local";
        case AddressScope::kUnspecified:
            return "unspecified";
        case AddressScope::kReserved:
            return "reserved";
        case AddressScope::kInvalid:
            return "invalid";
    }
    return "invalid";
}

}  // namespace

AddressClass ClassifyAddress(std::string_view text) {
    const auto a = Parse(text);
    if (!a) return {AddressScope::kInvalid, {}};
    if (a->is_v4()) return ClassifyV4(a->to_v4().to_uint());
    return ClassifyV6(a->to_v6());
}

std::string CanonicalAddress(std::string_view text) {
    const auto a = Parse(text);
    return a ? a->to_string() : std::string();
}

namespace {

struct Prefix {
    ip::address network;
    int length = 0;
};

std::optional<Prefix> ParsePrefix(std::string_view cidr) {
    const auto slash = cidr.find('/');
    if (slash == std::string_view::npos) return std::nullopt;
    const auto network = Parse(cidr.substr(0, slash));
    const auto length_text = cidr.substr(slash + 1);
    if (!network || length_text.empty() || length_text.size() > 3) return std::nullopt;
    int length = 0;
    for (const char c : length_text) {
        if (c < '0' || c > '9') return std::nullopt;
        length = length * 10 + (c - '0');
    }
    if (length > (network->is_v4() ? 32 : 128)) return std::nullopt;
    return Prefix{*network, length};
}

}  // namespace

bool InCidr(std::string_view text, std::string_view cidr) {
    const auto prefix = ParsePrefix(cidr);
    const auto a = Parse(text);
    if (!prefix || !a || a->is_v4() != prefix->network.is_v4()) return false;
    if (a->is_v4()) {
        const std::uint32_t mask =
            prefix->length == 0 ? 0 : ~std::uint32_t{0} << (32 - prefix->length);
        return (a->to_v4().to_uint() & mask) == (prefix->network.to_v4().to_uint() & mask);
    }
    const auto x = a->to_v6().to_bytes();
    const auto y = prefix->network.to_v6().to_bytes();
    for (int bit = 0; bit < prefix->length; ++bit) {
        const int byte = bit / 8;
        const int mask = 0x80 >> (bit % 8);
        if ((x[byte] & mask) != (y[byte] & mask)) return false;
    }
    return true;
}

common::Status ValidateCidr(std::string_view cidr) {
    if (!ParsePrefix(cidr))
        return common::Error::InvalidArgument("'" + std::string(cidr) +
                                              "' is not an IP prefix such as 203.0.113.0/24");
    return common::Ok();
}

CgnatAssessment AssessCgnat(std::string_view reported_ip, std::string_view observed_ip,
                            std::optional<bool> operator_flag,
                            std::span<const std::string> public_ranges) {
    if (operator_flag.value_or(false)) {
        return {true, true, "the operator marked this node as behind CGNAT"};
    }
    const auto reported = CanonicalAddress(reported_ip);
    const auto observed = CanonicalAddress(observed_ip);
    // Without a reported address, what we saw is all we know.
    const std::string& effective = reported.empty() ? observed : reported;
    if (effective.empty()) {
        return {true, true, "no usable address was reported or observed"};
    }
    auto cls = ClassifyAddress(effective);
    for (const auto& range : public_ranges)
        if (InCidr(effective, range)) cls = {AddressScope::kGlobal, {}};
    const std::string source = reported.empty() ? "observed" : "reported";
    if (cls.scope == AddressScope::kSharedCgnat) {
        return {true, true,
                source + " address " + effective + " is in CGNAT shared space " + cls.range};
    }
    if (cls.scope != AddressScope::kGlobal) {
        return {true, true,
                source + " address " + effective + " is " + Describe(cls.scope) + " (" + cls.range +
                    "), not reachable from the Internet"};
    }
    if (!reported.empty() && !observed.empty() && reported != observed) {
        return {true, true,
                "reported address " + reported + " differs from the source address " + observed +
                    " the orchestrator saw: the node is behind NAT"};
    }
    return {false, false, source + " address " + effective + " is publicly routable"};
}

}  // namespace decloud::orchestrator::domain
