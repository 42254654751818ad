#include "decloud/proto/node_messages.hpp"

#include <gtest/gtest.h>

namespace decloud::proto {
namespace {

RegisterNodeRequest SampleRegistration() {
    RegisterNodeRequest r;
    r.node_public_key = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
    r.operator_wallet = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";
    r.public_ip = "203.0.113.7";
    r.region = "eu-west";
    r.tags = {"ssd", "gpu"};
    r.resources.cpu_model = "AMD EPYC";
    r.resources.cpu_cores = 8;
    r.resources.cpu_threads = 16;
    r.resources.virtualization_flags = {"svm"};
    r.resources.kvm_available = true;
    r.resources.memory_bytes = 64ull << 30;
    r.resources.storage_path = "/var/lib/decloud/vms";
    r.resources.storage_total_bytes = 1ull << 40;
    r.resources.storage_free_bytes = 1ull << 39;
    r.resources.gpus.push_back(
        {"0000:01:00.0", "0x10de", "0x2204", "NVIDIA", "GA102 [GeForce RTX 3090]"});
    r.compute = {1600, 9600.5, 16};
    r.agent_version = "0.1.0";
    r.behind_cgnat = true;
    r.timestamp = "2026-11-24T21:07:31.000Z";
    return r;
}

TEST(NodeMessages, RegistrationRoundTrips) {
    const auto r = SampleRegistration();
    auto back = DecodeRegisterNodeRequest(ToJson(r));
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_EQ(*back, r);
    auto plain = r;
    plain.behind_cgnat.reset();
    EXPECT_EQ(*DecodeRegisterNodeRequest(ToJson(plain)), plain);
}

TEST(NodeMessages, HeartbeatAndCommandsRoundTrip) {
    HeartbeatRequest hb{{12.5, 1 << 20, 2 << 20, 3}, "0.1.0"};
    EXPECT_EQ(*DecodeHeartbeatRequest(ToJson(hb)), hb);
    HeartbeatResponse resp;
    resp.next_heartbeat_seconds = 15;
    resp.commands.push_back({"c1", "vm.create", {{"vmId", "x"}}, "2026-11-24T21:07:31.000Z"});
    EXPECT_EQ(*DecodeHeartbeatResponse(ToJson(resp)), resp);
    CommandResult cr{"c1", false, "no space left", {{"free", 0}}};
    EXPECT_EQ(*DecodeCommandResult(ToJson(cr)), cr);
    RegisterNodeResponse rr{"id", "tok", 15, true, true, "reported address is private"};
    EXPECT_EQ(*DecodeRegisterNodeResponse(ToJson(rr)), rr);
}

TEST(NodeMessages, ParseJsonRejectsMalformedText) {
    EXPECT_FALSE(ParseJson(""));
    EXPECT_FALSE(ParseJson("{"));
    EXPECT_FALSE(ParseJson("{\"a\":1} trailing"));
    EXPECT_FALSE(ParseJson("{\"a\":1 /* comment */}"));
    EXPECT_FALSE(ParseJson("\xff\xfe"));
    EXPECT_TRUE(ParseJson("{\"a\":1}"));
}

struct BadCase {
    const char* what;
    std::function<void(nlohmann::json&)> mutate;
    const char* expected_in_message;
};

TEST(NodeMessages, BadRegistrationsNameTheField) {
    const std::vector<BadCase> cases = {
        {"not an object", [](auto& j) { j = nlohmann::json::array(); }, "object"},
        {"missing key", [](auto& j) { j.erase("nodePublicKey"); }, "nodePublicKey: is required"},
        {"wrong type", [](auto& j) { j["operatorWallet"] = 42; },
         "operatorWallet: must be a string"},
        {"old protocol", [](auto& j) { j["protocolVersion"] = 0; }, "protocolVersion"},
        {"negative memory", [](auto& j) { j["resources"]["memoryBytes"] = -1; },
         "resources: memoryBytes: must be a non-negative integer"},
        {"fractional cores", [](auto& j) { j["resources"]["cpuCores"] = 1.5; }, "cpuCores"},
        {"huge threads", [](auto& j) { j["resources"]["cpuThreads"] = 1ull << 40; }, "too large"},
        {"tags not strings",
         [](auto& j) {
             j["tags"] = {1, 2};
         },
         "tags: must be an array of strings"},
        {"gpu missing field", [](auto& j) { j["resources"]["gpus"][0].erase("vendorId"); },
         "gpus[0]: vendorId: is required"},
        {"nan-ish events", [](auto& j) { j["compute"]["eventsPerSecond"] = "fast"; },
         "compute: eventsPerSecond: must be a number"},
        {"cgnat flag type", [](auto& j) { j["behindCgnat"] = "yes"; }, "behindCgnat"},
    };
    for (const auto& c : cases) {
        auto j = ToJson(SampleRegistration());
        c.mutate(j);
        auto r = DecodeRegisterNodeRequest(j);
        ASSERT_FALSE(r) << c.what;
        EXPECT_EQ(r.error().code, common::ErrorCode::kInvalidArgument) << c.what;
        EXPECT_NE(r.error().message.find(c.expected_in_message), std::string::npos)
            << c.what << ": " << r.error().message;
    }
}

TEST(NodeMessages, BadHeartbeatsAreRejected) {
    auto j = ToJson(HeartbeatRequest{{50, 1, 1, 0}, "v"});
    j["usage"]["cpuPercent"] = 150;
    EXPECT_FALSE(DecodeHeartbeatRequest(j));
    j["usage"]["cpuPercent"] = -1;
    EXPECT_FALSE(DecodeHeartbeatRequest(j));
    j.erase("usage");
    EXPECT_FALSE(DecodeHeartbeatRequest(j));
    EXPECT_FALSE(DecodeHeartbeatRequest(nlohmann::json("string")));
}

TEST(NodeMessages, UnknownFieldsAreTolerated) {
    auto j = ToJson(SampleRegistration());
    j["someFutureField"] = {{"x", 1}};
    EXPECT_TRUE(DecodeRegisterNodeRequest(j));
}

TEST(RelayMessagesTest, HeartbeatsCarryRelayReportsAndDesiredStatesBothWays) {
    HeartbeatRequest hb;
    hb.agent_version = "1.0";
    hb.relay = RelayReport{"key=",
                           "next=",
                           {{"dcr5f0c2a9e1b2d",
                             true,
                             51820,
                             {{"peer=", "198.51.100.2:40000", 1700000000, 10, 20, 1234, 0},
                              {"other=", "", 0, 0, 0, std::nullopt, 2}},
                             3,
                             ""}}};
    auto back = DecodeHeartbeatRequest(nlohmann::json::parse(ToJson(hb).dump()));
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_EQ(*back, hb);
    const auto peers = ToJson(hb)["relay"]["interfaces"][0]["peers"];
    EXPECT_EQ(peers[0]["rttMicros"], 1234);
    EXPECT_FALSE(peers[1].contains("rttMicros")) << "never measured: no latency, not 0";
    auto negative = ToJson(hb);
    negative["relay"]["interfaces"][0]["peers"][0]["rttMicros"] = -5;
    EXPECT_FALSE(DecodeHeartbeatRequest(negative));

    HeartbeatResponse reply;
    reply.relay =
        RelayDesiredState{{{"dcc000000000007",
                            0,
                            {"10.200.0.6/30"},
                            {{"peer=", "203.0.113.2:51820", {"10.200.0.5/32"}, 25, ""},
                             {"next=", "203.0.113.2:51820", {"10.200.0.5/32"}, 25, "peer="}}}},
                          {{"dcc000000000007", 30001, "tcp", "10.77.0.2", 8080}},
                          "commit",
                          "mine="};
    auto decoded = DecodeHeartbeatResponse(nlohmann::json::parse(ToJson(reply).dump()));
    ASSERT_TRUE(decoded) << decoded.error().message;
    EXPECT_EQ(*decoded, reply);
    // Without relay state the reply says nothing about it (the agent keeps what it has).
    EXPECT_FALSE(DecodeHeartbeatResponse(ToJson(HeartbeatResponse{}))->relay);

    auto odd_rotation = ToJson(reply);
    odd_rotation["relay"]["keyRotation"] = "later";
    EXPECT_FALSE(DecodeHeartbeatResponse(odd_rotation));
    odd_rotation["relay"]["keyRotation"] = "commit";
    odd_rotation["relay"]["nextPublicKey"] = "";
    EXPECT_FALSE(DecodeHeartbeatResponse(odd_rotation)) << "commit names the key it commits";

    auto bad = ToJson(reply);
    bad["relay"]["forwards"][0]["protocol"] = "sctp";
    auto refused = DecodeHeartbeatResponse(bad);
    ASSERT_FALSE(refused);
    EXPECT_NE(refused.error().message.find("forwards[0]: protocol"), std::string::npos)
        << refused.error().message;
}

}  // namespace
}  // namespace decloud::proto
