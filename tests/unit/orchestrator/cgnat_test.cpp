#include "orchestrator/domain/cgnat.hpp"

#include <gtest/gtest.h>

namespace decloud::orchestrator::domain {
namespace {

struct Case {
    const char* ip;
    AddressScope scope;
};

TEST(ClassifyAddress, EveryNonGlobalIpv4Range) {
    const Case cases[] = {
        {"10.0.0.1", AddressScope::kPrivate},
        {"10.255.255.255", AddressScope::kPrivate},
        {"172.16.0.1", AddressScope::kPrivate},
        {"172.31.255.254", AddressScope::kPrivate},
        {"192.168.1.1", AddressScope::kPrivate},
        {"100.64.0.1", AddressScope::kSharedCgnat},
        {"100.127.255.254", AddressScope::kSharedCgnat},
        {"127.0.0.1", AddressScope::kLoopback},
        {"127.10.0.1", AddressScope::kLoopback},
        {"169.254.10.1", AddressScope::kLinkLocal},
        {"0.0.0.0", AddressScope::kReserved},
        {"192.0.2.10", AddressScope::kReserved},
        {"198.18.0.1", AddressScope::kReserved},
        {"198.51.100.1", AddressScope::kReserved},
        {"203.0.113.9", AddressScope::kReserved},
        {"224.0.0.1", AddressScope::kReserved},
        {"240.0.0.1", AddressScope::kReserved},
        {"255.255.255.255", AddressScope::kReserved},
    };
    for (const auto& c : cases) EXPECT_EQ(ClassifyAddress(c.ip).scope, c.scope) << c.ip;
}

TEST(ClassifyAddress, RangeBoundariesAreExact) {
    EXPECT_EQ(ClassifyAddress("172.15.255.255").scope, AddressScope::kGlobal);
    EXPECT_EQ(ClassifyAddress("172.32.0.0").scope, AddressScope::kGlobal);
    EXPECT_EQ(ClassifyAddress("100.63.255.255").scope, AddressScope::kGlobal);
    EXPECT_EQ(ClassifyAddress("100.128.0.0").scope, AddressScope::kGlobal);
    EXPECT_EQ(ClassifyAddress("192.167.255.255").scope, AddressScope::kGlobal);
    EXPECT_EQ(ClassifyAddress("11.0.0.1").scope, AddressScope::kGlobal);
    EXPECT_EQ(ClassifyAddress("8.8.8.8").scope, AddressScope::kGlobal);
    EXPECT_EQ(ClassifyAddress("100.64.0.1").range, "100.64.0.0/10");
}

TEST(ClassifyAddress, Ipv6Ranges) {
    const Case cases[] = {
        {"::1", AddressScope::kLoopback},
        {"::", AddressScope::kUnspecified},
        {"fe80::1", AddressScope::kLinkLocal},
        {"fd12:3456::1", AddressScope::kPrivate},
        {"fc00::1", AddressScope::kPrivate},
        {"ff02::1", AddressScope::kReserved},
        {"2001:db8::1", AddressScope::kReserved},
        {"100::1", AddressScope::kReserved},
        {"2001::1", AddressScope::kReserved},
        {"::ffff:10.1.2.3", AddressScope::kPrivate},
        {"::ffff:100.64.1.1", AddressScope::kSharedCgnat},
        {"::ffff:8.8.8.8", AddressScope::kGlobal},
        {"2a00:1450:4001:80b::200e", AddressScope::kGlobal},
        {"2606:4700::1111", AddressScope::kGlobal},
        {"4000::1", AddressScope::kReserved},
    };
    for (const auto& c : cases) EXPECT_EQ(ClassifyAddress(c.ip).scope, c.scope) << c.ip;
}

TEST(ClassifyAddress, NonAddressesAreInvalid) {
    for (const char* s :
         {"", "localhost", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.4/24", "::g"}) {
        EXPECT_EQ(ClassifyAddress(s).scope, AddressScope::kInvalid) << s;
    }
}

TEST(AssessCgnat, PublicAddressMatchingTheSourceNeedsNoRelay) {
    const auto a = AssessCgnat("8.8.4.4", "8.8.4.4", std::nullopt);
    EXPECT_FALSE(a.behind_cgnat);
    EXPECT_FALSE(a.requires_relay);
    EXPECT_NE(a.reason.find("publicly routable"), std::string::npos);
}

TEST(AssessCgnat, CgnatAndPrivateReportedAddressesNeedARelay) {
    auto a = AssessCgnat("100.72.3.4", "8.8.4.4", std::nullopt);
    EXPECT_TRUE(a.behind_cgnat);
    EXPECT_TRUE(a.requires_relay);
    EXPECT_NE(a.reason.find("100.64.0.0/10"), std::string::npos);
    a = AssessCgnat("192.168.0.10", "8.8.4.4", std::nullopt);
    EXPECT_TRUE(a.requires_relay);
    EXPECT_NE(a.reason.find("private"), std::string::npos);
    a = AssessCgnat("fd00::5", "2606:4700::1111", std::nullopt);
    EXPECT_TRUE(a.requires_relay);
}

TEST(AssessCgnat, MismatchWithTheObservedSourceMeansNat) {
    const auto a = AssessCgnat("8.8.4.4", "1.1.1.1", std::nullopt);
    EXPECT_TRUE(a.behind_cgnat);
    EXPECT_NE(a.reason.find("differs"), std::string::npos);
    EXPECT_FALSE(AssessCgnat("2606:4700::1111", "2606:4700:0::1111", std::nullopt).behind_cgnat)
        << "same address in another spelling";
    EXPECT_FALSE(AssessCgnat("8.8.4.4", "::ffff:8.8.4.4", std::nullopt).behind_cgnat);
}

TEST(AssessCgnat, WithoutAReportedAddressTheSourceDecides) {
    EXPECT_FALSE(AssessCgnat("", "8.8.4.4", std::nullopt).behind_cgnat);
    const auto a = AssessCgnat("", "127.0.0.1", std::nullopt);
    EXPECT_TRUE(a.requires_relay);
    EXPECT_NE(a.reason.find("observed"), std::string::npos);
    EXPECT_TRUE(AssessCgnat("", "", std::nullopt).requires_relay);
}

TEST(AssessCgnat, OperatorFlagForcesARelay) {
    const auto a = AssessCgnat("8.8.4.4", "8.8.4.4", true);
    EXPECT_TRUE(a.behind_cgnat);
    EXPECT_TRUE(a.requires_relay);
    EXPECT_NE(a.reason.find("operator"), std::string::npos);
    EXPECT_FALSE(AssessCgnat("8.8.4.4", "8.8.4.4", false).behind_cgnat);
}

TEST(AssessCgnat, ConfiguredRangesCountAsPublicButCgnatSpaceStaysCgnat) {
    const std::vector<std::string> lab{"203.0.113.0/24", "2001:db8::/32"};
    EXPECT_TRUE(AssessCgnat("203.0.113.2", "203.0.113.2", std::nullopt).requires_relay);
    const auto a = AssessCgnat("203.0.113.2", "203.0.113.2", std::nullopt, lab);
    EXPECT_FALSE(a.requires_relay) << a.reason;
    EXPECT_FALSE(AssessCgnat("2001:db8::7", "2001:db8::7", std::nullopt, lab).requires_relay);
    // Behind NAT is still behind NAT, and CGNAT space is not a lab range.
    EXPECT_TRUE(AssessCgnat("203.0.113.2", "198.51.100.2", std::nullopt, lab).requires_relay);
    EXPECT_TRUE(AssessCgnat("100.64.0.2", "203.0.113.9", std::nullopt, lab).requires_relay);
}

TEST(InCidr, MatchesPrefixesOfBothFamiliesAndRejectsMalformedOnes) {
    EXPECT_TRUE(InCidr("203.0.113.255", "203.0.113.0/24"));
    EXPECT_FALSE(InCidr("203.0.114.0", "203.0.113.0/24"));
    EXPECT_TRUE(InCidr("10.1.2.3", "0.0.0.0/0"));
    EXPECT_TRUE(InCidr("2001:db8:ffff::1", "2001:db8::/32"));
    EXPECT_FALSE(InCidr("2001:db9::1", "2001:db8::/32"));
    EXPECT_FALSE(InCidr("203.0.113.1", "2001:db8::/32"));
    EXPECT_FALSE(InCidr("203.0.113.1", "203.0.113.0/33"));
    EXPECT_TRUE(ValidateCidr("203.0.113.0/24"));
    EXPECT_FALSE(ValidateCidr("203.0.113.0"));
    EXPECT_FALSE(ValidateCidr("example.com/24"));
    EXPECT_FALSE(ValidateCidr("10.0.0.0/-1"));
}

}  // namespace
}  // namespace decloud::orchestrator::domain
