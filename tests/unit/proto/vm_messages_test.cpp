#include "decloud/proto/vm_messages.hpp"

#include <gtest/gtest.h>

#include "decloud/common/ids.hpp"

namespace decloud::proto {
namespace {

using nlohmann::json;

constexpr const char* kVmA = "6f1c1b1e-9a43-4c36-bb0a-0d9e37c1d1a2";
constexpr const char* kVmB = "0b6c2f7e-1d2a-4e0b-9a0c-8e2f4d6b1a3c";

TEST(VmMessagesTest, AReportRoundTripsWithAGuestThatStoppedByItself) {
    VmReport report;
    report.domains.push_back(ReportedVm{kVmA, "running", {"192.168.122.10"}, std::nullopt});
    report.domains.push_back(
        ReportedVm{kVmB,
                   "stopped",
                   {},
                   GuestStop{common::NewUuid(), "tiny-guest: boot failed\n\xC3\xA9", 12}});
    report.domains.push_back(
        ReportedVm{common::NewUuid(), "crashed", {}, GuestStop{common::NewUuid(), "", {}}});
    const auto wire = ToJson(report).dump();
    auto decoded = DecodeVmReport(json::parse(wire));
    ASSERT_TRUE(decoded) << decoded.error().message;
    EXPECT_EQ(*decoded, report);
    EXPECT_FALSE(json::parse(wire)["domains"][0].contains("stoppedByItself"));
    EXPECT_FALSE(json::parse(wire)["domains"][2]["stoppedByItself"].contains("ranForSeconds"));
}

TEST(VmMessagesTest, MalformedGuestStopsAreRefused) {
    const auto with_stop = [](json stop) {
        return json{{"domains", json::array({json{{"vmId", kVmA},
                                                  {"state", "stopped"},
                                                  {"addresses", json::array()},
                                                  {"stoppedByItself", std::move(stop)}}})}};
    };
    const auto id = common::NewUuid();
    for (const auto& bad :
         {json("a log"), json::object(), json{{"id", id}, {"bootLog", 5}},
          json{{"bootLog", "no id"}}, json{{"id", "1"}, {"bootLog", "x"}},
          json{{"id", id}, {"bootLog", "x"}, {"ranForSeconds", -1}},
          json{{"id", id}, {"bootLog", "x"}, {"ranForSeconds", "12"}},
          json{{"id", id}, {"bootLog", std::string(kMaxBootLogBytes + 1, 'x')}}}) {
        SCOPED_TRACE(bad.dump().substr(0, 80));
        auto decoded = DecodeVmReport(with_stop(bad));
        ASSERT_FALSE(decoded);
        EXPECT_EQ(decoded.error().code, common::ErrorCode::kInvalidArgument);
        EXPECT_NE(decoded.error().message.find("stoppedByItself"), std::string::npos)
            << decoded.error().message;
    }
    EXPECT_TRUE(DecodeVmReport(
        with_stop(json{{"id", id}, {"bootLog", std::string(kMaxBootLogBytes, 'x')}})));
}

}  // namespace
}  // namespace decloud::proto
