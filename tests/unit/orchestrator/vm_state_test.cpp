#include <gtest/gtest.h>

#include <array>
#include <set>
#include <string>
#include <utility>

#include "orchestrator/domain/vm.hpp"

namespace decloud::orchestrator::domain {
namespace {

using S = VmState;

constexpr std::array<VmState, 9> kStates = {
    S::kPending, S::kScheduling, S::kProvisioning, S::kRunning, S::kStopping,
    S::kStopped, S::kDeleting,   S::kDeleted,      S::kFailed,
};

constexpr std::array<VmAction, 4> kActions = {VmAction::kStart, VmAction::kStop, VmAction::kReboot,
                                              VmAction::kDelete};

// The expected table, written out independently of the implementation. Every pair not listed
// here must be refused.
const std::set<std::pair<VmState, VmState>>& Expected() {
    static const std::set<std::pair<VmState, VmState>> allowed = {
        {S::kPending, S::kScheduling},   {S::kPending, S::kDeleting},
        {S::kPending, S::kFailed},       {S::kScheduling, S::kProvisioning},
        {S::kScheduling, S::kDeleting},  {S::kScheduling, S::kFailed},
        {S::kProvisioning, S::kRunning}, {S::kProvisioning, S::kDeleting},
        {S::kProvisioning, S::kFailed},  {S::kRunning, S::kRunning},
        {S::kRunning, S::kStopping},     {S::kRunning, S::kDeleting},
        {S::kRunning, S::kFailed},       {S::kStopping, S::kRunning},
        {S::kStopping, S::kStopped},     {S::kStopping, S::kDeleting},
        {S::kStopping, S::kFailed},      {S::kStopped, S::kProvisioning},
        {S::kStopped, S::kDeleting},     {S::kStopped, S::kFailed},
        {S::kDeleting, S::kDeleting},    {S::kDeleting, S::kDeleted},
        {S::kDeleting, S::kFailed},      {S::kFailed, S::kDeleting},
        {S::kPending, S::kDeleted},      {S::kScheduling, S::kDeleted},
        {S::kFailed, S::kDeleted},       {S::kRunning, S::kStopped},
    };
    return allowed;
}

TEST(VmStateTest, NamesRoundTrip) {
    std::set<std::string_view> names;
    for (const VmState s : kStates) {
        names.insert(ToString(s));
        EXPECT_EQ(ParseVmState(ToString(s)), s) << ToString(s);
    }
    EXPECT_EQ(names.size(), kStates.size());
    EXPECT_EQ(ToString(S::kProvisioning), "provisioning");
    EXPECT_EQ(ParseVmState("Running"), std::nullopt);
    EXPECT_EQ(ParseVmState(""), std::nullopt);
    EXPECT_EQ(ToString(VmAction::kReboot), "reboot");
}

TEST(VmStateTest, OnlyDeletedIsTerminal) {
    for (const VmState s : kStates) EXPECT_EQ(IsTerminal(s), s == S::kDeleted) << ToString(s);
}

TEST(VmStateTest, CapacityIsHeldFromSchedulingUntilDeleted) {
    const std::set<VmState> holding = {S::kScheduling, S::kProvisioning, S::kRunning,
                                       S::kStopping,   S::kStopped,      S::kDeleting};
    for (const VmState s : kStates) {
        EXPECT_EQ(HoldsCapacity(s), holding.contains(s)) << ToString(s);
    }
}

TEST(VmStateTest, FullTransitionTable) {
    int allowed = 0;
    for (const VmState from : kStates) {
        for (const VmState to : kStates) {
            const auto status = CheckTransition(from, to);
            const bool expected = Expected().contains({from, to});
            ASSERT_EQ(status.has_value(), expected) << ToString(from) << " -> " << ToString(to);
            if (expected) {
                ++allowed;
                continue;
            }
            EXPECT_EQ(status.error().code, common::ErrorCode::kConflict);
            EXPECT_EQ(status.error().message, "cannot move a VM from " +
                                                  std::string(ToString(from)) + " to " +
                                                  std::string(ToString(to)));
        }
    }
    EXPECT_EQ(allowed, static_cast<int>(Expected().size()));
}

TEST(VmStateTest, TheRulesThatMatterMost) {
    EXPECT_FALSE(CheckTransition(S::kRunning, S::kProvisioning));
    EXPECT_TRUE(CheckTransition(S::kStopped, S::kProvisioning));
    EXPECT_TRUE(CheckTransition(S::kFailed, S::kDeleting));
    EXPECT_FALSE(CheckTransition(S::kFailed, S::kProvisioning));
    EXPECT_FALSE(CheckTransition(S::kFailed, S::kRunning));
    for (const VmState to : kStates) {
        EXPECT_FALSE(CheckTransition(S::kDeleted, to)) << "deleted -> " << ToString(to);
    }
    for (const VmState from : kStates) {
        if (IsTerminal(from)) continue;
        EXPECT_TRUE(CheckTransition(from, S::kDeleting)) << ToString(from);
        EXPECT_EQ(CheckTransition(from, S::kFailed).has_value(), from != S::kFailed)
            << ToString(from);
    }
}

TEST(VmStateTest, NextStateForEveryActionAndState) {
    // For each action, the states it is allowed from and where it leads; everything else is a
    // conflict.
    const auto next = [](VmAction action, VmState from) -> std::optional<VmState> {
        switch (action) {
            case VmAction::kStart:
                if (from == S::kStopped) return S::kProvisioning;
                return std::nullopt;
            case VmAction::kStop:
                if (from == S::kRunning) return S::kStopping;
                return std::nullopt;
            case VmAction::kReboot:
                if (from == S::kRunning) return S::kRunning;
                return std::nullopt;
            case VmAction::kDelete:
                if (from == S::kDeleted) return std::nullopt;
                return S::kDeleting;
        }
        return std::nullopt;
    };
    for (const VmAction action : kActions) {
        for (const VmState from : kStates) {
            const auto result = NextStateFor(action, from);
            const auto expected = next(action, from);
            const std::string label =
                std::string(ToString(action)) + " from " + std::string(ToString(from));
            ASSERT_EQ(result.has_value(), expected.has_value()) << label;
            if (expected) {
                EXPECT_EQ(*result, *expected) << label;
                EXPECT_TRUE(CheckTransition(from, *result)) << label << " must be in the table";
            } else {
                EXPECT_EQ(result.error().code, common::ErrorCode::kConflict) << label;
                EXPECT_EQ(result.error().message, "cannot " + std::string(ToString(action)) +
                                                      " a VM that is " +
                                                      std::string(ToString(from)));
            }
        }
    }
}

TEST(VmStateTest, ConflictMessagesReadPlainly) {
    EXPECT_EQ(NextStateFor(VmAction::kStart, S::kDeleting).error().message,
              "cannot start a VM that is deleting");
    EXPECT_EQ(NextStateFor(VmAction::kStart, S::kFailed).error().message,
              "cannot start a VM that is failed");
    EXPECT_EQ(NextStateFor(VmAction::kStop, S::kStopped).error().message,
              "cannot stop a VM that is stopped");
    EXPECT_EQ(NextStateFor(VmAction::kReboot, S::kStopped).error().message,
              "cannot reboot a VM that is stopped");
    EXPECT_EQ(NextStateFor(VmAction::kDelete, S::kDeleted).error().message,
              "cannot delete a VM that is deleted");
    EXPECT_EQ(CheckTransition(S::kRunning, S::kProvisioning).error().message,
              "cannot move a VM from running to provisioning");
}

TEST(VmStateTest, DeleteIsAllowedFromFailedAndRepeatable) {
    EXPECT_EQ(NextStateFor(VmAction::kDelete, S::kFailed).value(), S::kDeleting);
    EXPECT_EQ(NextStateFor(VmAction::kDelete, S::kDeleting).value(), S::kDeleting);
    EXPECT_EQ(NextStateFor(VmAction::kDelete, S::kPending).value(), S::kDeleting);
}

TEST(VmStateTest, ALifeFromCreateToDelete) {
    // The happy path, each step checked by the table.
    const std::array<VmState, 11> life = {
        S::kPending, S::kScheduling,   S::kProvisioning, S::kRunning,  S::kRunning, S::kStopping,
        S::kStopped, S::kProvisioning, S::kRunning,      S::kDeleting, S::kDeleted,
    };
    for (std::size_t i = 1; i < life.size(); ++i) {
        EXPECT_TRUE(CheckTransition(life[i - 1], life[i]))
            << ToString(life[i - 1]) << " -> " << ToString(life[i]);
    }
}

TEST(GuestStopReason, WithinTheBootWindowItIsAFailedStart) {
    EXPECT_EQ(GuestStopReason(8),
              "failed to start: the guest stopped by itself 8 s after it was started; its boot "
              "log is kept");
    EXPECT_NE(GuestStopReason(kBootWindowSeconds - 1).find("failed to start"), std::string::npos);
    for (const auto& later : {std::optional<std::uint64_t>(kBootWindowSeconds),
                              std::optional<std::uint64_t>(86400), std::optional<std::uint64_t>()})
        EXPECT_EQ(GuestStopReason(later).find("failed to start"), std::string::npos);
}

}  // namespace
}  // namespace decloud::orchestrator::domain
