#include "agent/domain/console_text.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <string_view>

namespace decloud::agent::domain {
namespace {

TEST(ConsoleText, LineEndsBecomeNewlinesAndEscapesAndControlsGo) {
    EXPECT_EQ(ReadableConsoleText("a\r\nb\rc\n"), "a\nb\nc\n");
    EXPECT_EQ(ReadableConsoleText("\x1b[0;32m  OK  \x1b[0m Started\tx"), "  OK   Started\tx");
    EXPECT_EQ(ReadableConsoleText("\x1b]0;title\a after"), " after");
    EXPECT_EQ(ReadableConsoleText("\x1b]0;title\x1b\\ after"), " after");
    using namespace std::string_view_literals;
    EXPECT_EQ(ReadableConsoleText("bell\a nul\0 del\x7f end"sv), "bell nul del end");
    EXPECT_EQ(ReadableConsoleText("\x1b"), "");
    EXPECT_EQ(ReadableConsoleText("cut \x1b[12"), "cut ");
}

TEST(ConsoleText, InvalidUtf8IsReplacedAndValidTextKept) {
    EXPECT_EQ(ReadableConsoleText("h\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"),
              "h\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80");
    EXPECT_EQ(ReadableConsoleText("a\xFF"
                                  "b"),
              "a\xEF\xBF\xBD"
              "b");
    EXPECT_EQ(ReadableConsoleText("overlong \xC0\xAF"), "overlong \xEF\xBF\xBD\xEF\xBF\xBD");
    EXPECT_EQ(ReadableConsoleText("surrogate \xED\xA0\x80"),
              "surrogate \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
    EXPECT_EQ(ReadableConsoleText("short \xE2\x82"), "short \xEF\xBF\xBD\xEF\xBF\xBD");
    // A character cut off at the start of a tail is dropped, not replaced.
    EXPECT_EQ(ReadableConsoleText("\x82\xAC rest"), " rest");
}

bool IsValidUtf8(const std::string& s) {
    for (std::size_t i = 0; i < s.size();) {
        const auto b = static_cast<unsigned char>(s[i]);
        std::size_t n = b < 0x80         ? 1
                        : (b >> 5) == 6  ? 2
                        : (b >> 4) == 14 ? 3
                        : (b >> 3) == 30 ? 4
                                         : 0;
        if (n == 0 || i + n > s.size()) return false;
        for (std::size_t k = 1; k < n; ++k)
            if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
        i += n;
    }
    return true;
}

TEST(ConsoleText, AnyBytesGiveValidTextWithoutControls) {
    std::mt19937_64 random(7);
    for (int round = 0; round < 2000; ++round) {
        std::string raw(random() % 200, '\0');
        for (auto& c : raw) c = static_cast<char>(random());
        const auto text = ReadableConsoleText(raw);
        ASSERT_TRUE(IsValidUtf8(text));
        for (const char c : text) {
            const auto u = static_cast<unsigned char>(c);
            ASSERT_TRUE(u >= 0x20 || c == '\n' || c == '\t') << static_cast<int>(u);
            ASSERT_NE(u, 0x7F);
        }
    }
}

TEST(ConsoleText, TailStartsAtALineOrCharacterBoundary) {
    EXPECT_EQ(TailOfLog("short", 10), "short");
    EXPECT_EQ(TailOfLog("first line\nsecond\nthird", 14), "second\nthird");
    EXPECT_EQ(TailOfLog("first line\nsecond\nthird", 12), "second\nthird");
    EXPECT_EQ(TailOfLog("first line\nsecond\nthird", 11), "third");
    EXPECT_EQ(TailOfLog("aaaa\xC3\xA9\xC3\xA9", 3), "\xC3\xA9");
    EXPECT_EQ(TailOfLog("abc", 0), "");
}

}  // namespace
}  // namespace decloud::agent::domain
