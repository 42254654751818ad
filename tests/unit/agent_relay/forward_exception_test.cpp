#include "agent/domain/relay/forward_exception.hpp"

#include <gtest/gtest.h>

namespace decloud::agent::domain::relay {
namespace {

using Step = ForwardExceptionStep;

const std::string kOurs =
    "-A FORWARD -i dcc+ -m conntrack --ctstate DNAT -m comment --comment decloud-relay-dnat -j "
    "ACCEPT\n";
const std::string kLibvirt =
    "-A FORWARD -j LIBVIRT_FWX\n-A FORWARD -j LIBVIRT_FWI\n-A FORWARD -j LIBVIRT_FWO\n";

TEST(ForwardException, InsertedFirstKeptThereAndRemovedWhenNoLongerWanted) {
    const std::string policy = "-P FORWARD ACCEPT\n";
    EXPECT_EQ(DecideForwardException(policy, true), Step::kInsert);
    EXPECT_EQ(DecideForwardException(policy + kLibvirt, true), Step::kInsert);
    EXPECT_EQ(DecideForwardException(policy + kOurs + kLibvirt, true), Step::kNone);
    EXPECT_EQ(DecideForwardException(policy + kOurs, true), Step::kNone);
    // libvirt put its jumps first (its network started after the agent): ours moves up.
    EXPECT_EQ(DecideForwardException(policy + kLibvirt + kOurs, true), Step::kMoveToTop);
    // Other rules ahead of ours are the administrator's business.
    EXPECT_EQ(
        DecideForwardException(policy + "-A FORWARD -i eth9 -j DROP\n" + kOurs + kLibvirt, true),
        Step::kNone);
    EXPECT_EQ(DecideForwardException(policy + kLibvirt + kOurs, false), Step::kRemove);
    EXPECT_EQ(DecideForwardException(policy + kLibvirt, false), Step::kNone);
    EXPECT_EQ(DecideForwardException("", false), Step::kNone);
}

TEST(ForwardException, TheRuleMatchesTunnelInterfacesAndDnatedConnectionsOnly) {
    const auto rule = ForwardExceptionRule();
    std::string joined;
    for (const auto& part : rule) joined += (joined.empty() ? "" : " ") + part;
    EXPECT_EQ(joined,
              "-i dcc+ -m conntrack --ctstate DNAT -m comment --comment decloud-relay-dnat -j "
              "ACCEPT");
    // What iptables -S prints for it is what DecideForwardException looks for.
    EXPECT_EQ("-A FORWARD " + joined + "\n", kOurs);
}

}  // namespace
}  // namespace decloud::agent::domain::relay
