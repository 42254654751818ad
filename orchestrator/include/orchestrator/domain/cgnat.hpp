#pragma once

#include <span>

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
// `public_ranges` (CIDR) count as publicly routable although the registries reserve them: a lab
// or test network numbered from documentation space (203.0.113.0/24) behaves like the Internet.
CgnatAssessment AssessCgnat(std::string_view reported_ip, std::string_view observed_ip,
                            std::optional<bool> operator_flag,
                            std::span<const std::string> public_ranges = {});

// Whether `ip` lies in `cidr` ("a.b.c.d/n" or "x::/n"); false for malformed input or mixed
// families.
bool InCidr(std::string_view ip, std::string_view cidr);
// kInvalidArgument unless `cidr` is a well-formed IPv4 or IPv6 prefix.
common::Status ValidateCidr(std::string_view cidr);

}  // namespace decloud::orchestrator::domain
