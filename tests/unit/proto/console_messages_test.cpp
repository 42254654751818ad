#include "decloud/proto/console_messages.hpp"

#include <gtest/gtest.h>

namespace decloud::proto {
namespace {

using nlohmann::json;

ConsoleMessage Message(ConsoleMessageType type) {
    ConsoleMessage m;
    m.type = type;
    m.session = "s-1";
    return m;
}

TEST(ConsoleMessagesTest, EveryTypeRoundTripsWithBinaryData) {
    std::string binary;
    for (int i = 0; i < 256; ++i) binary.push_back(static_cast<char>(i));  // not UTF-8
    auto open = Message(ConsoleMessageType::kOpen);
    open.vm_id = "6f1c1b1e-9a43-4c36-bb0a-0d9e37c1d1a2";
    auto input = Message(ConsoleMessageType::kInput);
    input.data = binary;
    auto output = Message(ConsoleMessageType::kOutput);
    output.data = binary;
    output.dropped = 12345;
    auto close = Message(ConsoleMessageType::kClose);
    close.reason = "the browser closed the console";
    auto closed = Message(ConsoleMessageType::kClosed);
    closed.reason = "the VM is not running";
    const auto opened = Message(ConsoleMessageType::kOpened);
    for (const auto& m : {open, input, output, close, closed, opened}) {
        const auto j = ToJson(m);
        EXPECT_TRUE(IsConsoleMessage(j)) << j.dump();
        // The wire form is text: it survives a dump and a parse.
        auto decoded = DecodeConsoleMessage(json::parse(j.dump()));
        ASSERT_TRUE(decoded) << decoded.error().message;
        EXPECT_EQ(*decoded, m) << j.dump();
    }
    EXPECT_EQ(ToJson(output)["type"], "console.output");
    EXPECT_EQ(ToJson(output)["dropped"], 12345);
}

TEST(ConsoleMessagesTest, OtherChannelMessagesAreNotConsoleMessages) {
    EXPECT_FALSE(IsConsoleMessage(json{{"type", "commands"}, {"commands", json::array()}}));
    EXPECT_FALSE(IsConsoleMessage(json{{"type", "result"}}));
    EXPECT_FALSE(IsConsoleMessage(json{{"type", 7}}));
    EXPECT_FALSE(IsConsoleMessage(json::array()));
}

TEST(ConsoleMessagesTest, MalformedMessagesAreRefusedNamingTheField) {
    auto error = [](const json& j) {
        auto decoded = DecodeConsoleMessage(j);
        return decoded ? std::string("accepted") : decoded.error().message;
    };
    EXPECT_NE(error({{"type", "console.nope"}, {"session", "s"}}).find("type"), std::string::npos);
    EXPECT_NE(error({{"type", "console.opened"}}).find("session"), std::string::npos);
    EXPECT_NE(
        error({{"type", "console.opened"}, {"session", std::string(65, 'x')}}).find("session"),
        std::string::npos);
    EXPECT_NE(error({{"type", "console.open"}, {"session", "s"}}).find("vmId"), std::string::npos);
    EXPECT_NE(
        error({{"type", "console.input"}, {"session", "s"}, {"data", "not base64!"}}).find("data"),
        std::string::npos);
    const std::string too_long((kMaxConsoleDataBytes / 3 + 2) * 4, 'A');
    EXPECT_NE(
        error({{"type", "console.output"}, {"session", "s"}, {"data", too_long}}).find("data"),
        std::string::npos);
}

TEST(ConsoleMessagesTest, BrowserFrames) {
    const auto out = BrowserConsoleOutput(std::string("a\0\xff", 3), 2);
    EXPECT_EQ(out["type"], "output");
    EXPECT_EQ(out["data"], "YQD/");
    EXPECT_EQ(out["dropped"], 2);
    auto b64 = DecodeBrowserConsoleInput(json{{"type", "input"}, {"data", "bHM="}});
    ASSERT_TRUE(b64);
    EXPECT_EQ(*b64, "ls");
    auto text = DecodeBrowserConsoleInput(json{{"type", "input"}, {"text", "ls -l\r"}});
    ASSERT_TRUE(text);
    EXPECT_EQ(*text, "ls -l\r");
    EXPECT_FALSE(DecodeBrowserConsoleInput(json{{"type", "resize"}}));
    EXPECT_FALSE(DecodeBrowserConsoleInput(json{{"type", "input"}}));
    EXPECT_FALSE(DecodeBrowserConsoleInput(json{{"type", "input"}, {"text", 5}}));
}

}  // namespace
}  // namespace decloud::proto
