#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "orchestrator/domain/node.hpp"

namespace decloud::orchestrator::domain {

// How an address can be reached from the Internet.
enum class AddressScope {
    kGlobal,
    kPrivate,      // RFC 1918, IPv6 unique local (fc00::/7)
    kSharedCgnat,  // RFC 6598, 100.64.0.0/10
    kLoopback,
    kLinkLocal,
    kUnspecified,
    kReserved,  // documentation, benchmarking, multicast, "this network", future use, ...
    kInvalid,   // not an IP address
};

struct AddressClass {
    AddressScope scope = AddressScope::kInvalid;
    std::string range;  // the matching range, e.g. "100.64.0.0/10"; empty for global
};

// Classifies an IPv4 or IPv6 literal; IPv4-mapped IPv6 (::ffff:a.b.c.d) is classified as IPv4.
AddressClass ClassifyAddress(std::string_view ip);
// The address in canonical text, IPv4-mapped IPv6 unwrapped; empty if not an address.
std::string CanonicalAddress(std::string_view ip);

// Decides whether a node needs a relay from what it reported, what the orchestrator saw as the
// connection's source, and the operator's manual flag (true forces a relay).
CgnatAssessment AssessCgnat(std::string_view reported_ip, std::string_view observed_ip,
                            std::optional<bool> operator_flag);

}  // namespace decloud::orchestrator::domain
