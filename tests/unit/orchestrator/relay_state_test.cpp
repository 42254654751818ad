#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <set>
#include <utility>

#include "orchestrator/domain/relay.hpp"

namespace decloud::orchestrator::domain {
namespace {

using S = RelayState;
using namespace std::chrono_literals;

constexpr std::array<RelayState, 5> kStates = {S::kProvisioning, S::kActive, S::kDegraded,
                                               S::kRepairing, S::kRemoved};

// Written out independently of the implementation; every other pair must be refused.
const std::set<std::pair<RelayState, RelayState>>& Expected() {
    static const std::set<std::pair<RelayState, RelayState>> allowed = {
        {S::kProvisioning, S::kActive},  {S::kProvisioning, S::kRepairing},
        {S::kProvisioning, S::kRemoved}, {S::kActive, S::kActive},
        {S::kActive, S::kDegraded},      {S::kActive, S::kRepairing},
        {S::kActive, S::kRemoved},       {S::kDegraded, S::kActive},
        {S::kDegraded, S::kRepairing},   {S::kDegraded, S::kRemoved},
        {S::kRepairing, S::kActive},     {S::kRepairing, S::kRepairing},
        {S::kRepairing, S::kRemoved},
    };
    return allowed;
}

TEST(RelayStateTest, NamesRoundTrip) {
    std::set<std::string_view> names;
    for (const RelayState s : kStates) {
        names.insert(ToString(s));
        EXPECT_EQ(ParseRelayState(ToString(s)), s);
    }
    EXPECT_EQ(names.size(), kStates.size());
    EXPECT_EQ(ToString(S::kRepairing), "repairing");
    EXPECT_EQ(ParseRelayState("Active"), std::nullopt);
    EXPECT_EQ(ParseRelayRole("primary"), RelayRole::kPrimary);
    EXPECT_EQ(ParseRelayRole("standby"), RelayRole::kStandby);
    EXPECT_EQ(ParseRelayRole("backup"), std::nullopt);
    EXPECT_EQ(ToString(RelayRole::kStandby), "standby");
    EXPECT_EQ(ParsePortProtocol("udp"), PortProtocol::kUdp);
    EXPECT_EQ(ToString(PortProtocol::kTcp), "tcp");
    EXPECT_EQ(ParsePortProtocol("TCP"), std::nullopt);
}

TEST(RelayStateTest, OnlyRemovedIsNotLive) {
    for (const RelayState s : kStates) EXPECT_EQ(IsLive(s), s != S::kRemoved) << ToString(s);
}

TEST(RelayStateTest, TransitionTableMatchesTheDesign) {
    for (const RelayState from : kStates) {
        for (const RelayState to : kStates) {
            const auto st = CheckTransition(from, to);
            const bool expected = Expected().contains({from, to});
            EXPECT_EQ(static_cast<bool>(st), expected) << ToString(from) << " -> " << ToString(to);
            if (!st) {
                EXPECT_EQ(st.error().code, common::ErrorCode::kConflict);
                EXPECT_NE(st.error().message.find(std::string(ToString(from))), std::string::npos);
                EXPECT_NE(st.error().message.find(std::string(ToString(to))), std::string::npos);
            }
        }
    }
}

TEST(RelayStateTest, RemovedIsTerminal) {
    for (const RelayState to : kStates) EXPECT_FALSE(CheckTransition(S::kRemoved, to));
}

TEST(RelayStateTest, RepairAttemptsCountAndReset) {
    EXPECT_EQ(RepairAttemptsAfter(S::kDegraded, S::kRepairing, 0), 1u);
    EXPECT_EQ(RepairAttemptsAfter(S::kRepairing, S::kRepairing, 1), 2u);
    EXPECT_EQ(RepairAttemptsAfter(S::kRepairing, S::kRepairing, 2), 3u);
    EXPECT_EQ(RepairAttemptsAfter(S::kRepairing, S::kActive, 3), 0u);
    EXPECT_EQ(RepairAttemptsAfter(S::kRepairing, S::kRemoved, 3), 3u);
    EXPECT_EQ(RepairAttemptsAfter(S::kActive, S::kDegraded, 0), 0u);
    // A fresh repair after recovering starts again at 1.
    EXPECT_EQ(RepairAttemptsAfter(S::kActive, S::kRepairing, 7), 1u);
}

TEST(RelayStateTest, ApplyTransitionRecordsTimeReasonAndEvent) {
    const common::TimePoint t0{std::chrono::seconds{1'800'000'000}};
    RelayAssignment a;
    a.id = "a1";
    a.role = RelayRole::kStandby;
    a.created_at = a.state_changed_at = a.updated_at = t0;

    const auto up = ApplyTransition(a, S::kActive, "handshake seen on both ends", t0 + 5s);
    ASSERT_TRUE(up);
    EXPECT_EQ(*up, (RelayEvent{t0 + 5s, S::kProvisioning, S::kActive, RelayRole::kStandby,
                               "handshake seen on both ends"}));
    EXPECT_EQ(a.state, S::kActive);
    EXPECT_EQ(a.state_reason, "handshake seen on both ends");
    EXPECT_EQ(a.state_changed_at, t0 + 5s);

    ASSERT_TRUE(ApplyTransition(a, S::kDegraded, "no handshake for 180 s", t0 + 10min));
    ASSERT_TRUE(ApplyTransition(a, S::kRepairing, "attempt 1", t0 + 11min));
    ASSERT_TRUE(ApplyTransition(a, S::kRepairing, "attempt 2", t0 + 13min));
    EXPECT_EQ(a.repair_attempts, 2u);
    EXPECT_EQ(a.state_changed_at, t0 + 13min);  // every attempt restarts the clock
    ASSERT_TRUE(ApplyTransition(a, S::kActive, "repaired", t0 + 14min));
    EXPECT_EQ(a.repair_attempts, 0u);

    // Refused: nothing changes.
    ASSERT_TRUE(ApplyTransition(a, S::kRemoved, "released", t0 + 20min));
    const RelayAssignment before = a;
    const auto refused = ApplyTransition(a, S::kActive, "back?", t0 + 21min);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, common::ErrorCode::kConflict);
    EXPECT_EQ(a.state, before.state);
    EXPECT_EQ(a.state_reason, "released");
    EXPECT_EQ(a.updated_at, t0 + 20min);
}

TEST(RelayStateTest, PublicUrls) {
    EXPECT_EQ(PublicUrl("203.0.113.7", 30001), "203.0.113.7:30001");
    EXPECT_EQ(PublicUrl("2001:db8::1", 30001), "[2001:db8::1]:30001");
    EXPECT_EQ(PublicUrl("[2001:db8::1]", 443), "[2001:db8::1]:443");
    EXPECT_EQ(PublicUrl("relay.example.org", 30002), "relay.example.org:30002");
    EXPECT_EQ(PublicUrl("", 1), ":1");
}

}  // namespace
}  // namespace decloud::orchestrator::domain
