#include "decloud/process/run_program.hpp"

#include <gtest/gtest.h>

#include <chrono>

namespace decloud::process {
namespace {

using namespace std::chrono_literals;
using common::ErrorCode;

TEST(RunProgram, PassesArgumentsVerbatimWithoutAShell) {
    auto result = RunProgram({"echo", "a;b", "$(id)", "`x`", "*", "'q'"}, 10s);
    ASSERT_TRUE(result) << result.error().message;
    EXPECT_EQ(result->exit_code, 0);
    EXPECT_EQ(result->out, "a;b $(id) `x` * 'q'\n");
}

TEST(RunProgram, SeparatesStdoutStderrAndExitCode) {
    auto result = RunProgram({"sh", "-c", "echo out; echo err >&2; exit 3"}, 10s);
    ASSERT_TRUE(result) << result.error().message;
    EXPECT_EQ(result->exit_code, 3);
    EXPECT_EQ(result->out, "out\n");
    EXPECT_EQ(result->err, "err\n");
}

TEST(RunProgram, CheckedPutsStderrInTheError) {
    auto result = RunProgramChecked({"sh", "-c", "echo 'disk is on fire' >&2; exit 2"}, 10s);
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().code, ErrorCode::kInternal);
    EXPECT_NE(result.error().message.find("disk is on fire"), std::string::npos)
        << result.error().message;
    EXPECT_NE(result.error().message.find("status 2"), std::string::npos);
}

TEST(RunProgram, MissingProgramIsUnavailable) {
    auto result = RunProgram({"decloud-no-such-program-here", "x"}, 10s);
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().code, ErrorCode::kUnavailable);
    EXPECT_NE(result.error().message.find("decloud-no-such-program-here"), std::string::npos);
}

TEST(RunProgram, KillsItAfterTheTimeout) {
    const auto start = std::chrono::steady_clock::now();
    auto result = RunProgram({"sleep", "30"}, 300ms);
    const auto took = std::chrono::steady_clock::now() - start;
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().code, ErrorCode::kTimeout);
    EXPECT_LT(took, 10s);
}

TEST(RunProgram, TimeoutAlsoCoversAChildThatClosedItsOutput) {
    auto result = RunProgram({"sh", "-c", "exec >/dev/null 2>&1; sleep 30"}, 300ms);
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().code, ErrorCode::kTimeout);
}

TEST(RunProgram, RunsInTheGivenDirectory) {
    auto result = RunProgram({"pwd"}, 10s, "/tmp");
    ASSERT_TRUE(result) << result.error().message;
    EXPECT_EQ(result->out, "/tmp\n");
    auto missing = RunProgram({"pwd"}, 10s, "/nonexistent/decloud");
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().code, ErrorCode::kUnavailable);
}

TEST(RunProgram, StdinIsEmpty) {
    auto result = RunProgram({"cat"}, 10s);
    ASSERT_TRUE(result) << result.error().message;
    EXPECT_EQ(result->out, "");
}

TEST(RunProgram, RefusesAnEmptyCommand) {
    auto result = RunProgram({}, 1s);
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().code, ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace decloud::process
