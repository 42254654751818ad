// ConsoleSessions with scripted consoles: the protocol of a session (opened, output, input,
// closed), take-over, refusal, drop-oldest buffering and teardown. The libvirt adapter itself is
// tested against real libvirt (tests/e2e/console_e2e_test.cpp).
#include "agent/app/console_sessions.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <mutex>
#include <vector>

namespace decloud::agent::app {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using proto::ConsoleMessage;
using proto::ConsoleMessageType;

// A console whose output the test writes and whose input it reads. Thread-safe.
class ScriptedConsoles final : public ports::Consoles {
  public:
    struct State {
        std::mutex mutex;
        ports::ConsoleSink sink;
        std::string written;
        bool closed = false;
    };

    common::Result<std::unique_ptr<ports::ConsoleStream>> Open(const std::string& vm_id,
                                                               ports::ConsoleSink sink) override {
        std::lock_guard lock(mutex_);
        if (vm_id == "stopped") return common::Error::Conflict("the VM is not running");
        auto state = std::make_shared<State>();
        state->sink = std::move(sink);
        consoles_[vm_id].push_back(state);
        return std::unique_ptr<ports::ConsoleStream>(std::make_unique<Stream>(state));
    }

    std::shared_ptr<State> Latest(const std::string& vm_id) {
        std::lock_guard lock(mutex_);
        auto& list = consoles_[vm_id];
        return list.empty() ? nullptr : list.back();
    }
    std::size_t Opened(const std::string& vm_id) {
        std::lock_guard lock(mutex_);
        return consoles_[vm_id].size();
    }

  private:
    class Stream final : public ports::ConsoleStream {
      public:
        explicit Stream(std::shared_ptr<State> state) : state_(std::move(state)) {}
        ~Stream() override { Close(); }
        common::Status Write(std::string_view bytes) override {
            std::lock_guard lock(state_->mutex);
            if (state_->closed) return common::Error::Unavailable("closed");
            state_->written += bytes;
            return common::Ok();
        }
        void Close() override {
            std::lock_guard lock(state_->mutex);
            state_->closed = true;
        }

      private:
        std::shared_ptr<State> state_;
    };

    std::mutex mutex_;
    std::map<std::string, std::vector<std::shared_ptr<State>>> consoles_;
};

class ConsoleSessionsTest : public ::testing::Test {
  protected:
    void SetUp() override { sessions_ = Make({}); }
    void TearDown() override {
        if (sessions_) sessions_->Stop();
    }

    std::shared_ptr<ConsoleSessions> Make(ConsoleSessionOptions options) {
        options.flush_interval = 1ms;
        return std::make_shared<ConsoleSessions>(io_.get_executor(), consoles_, options);
    }

    ConsoleSessions::Send Sender() {
        return [this](std::string text) {
            std::lock_guard lock(mutex_);
            sent_.push_back(json::parse(text));
        };
    }

    void Send(ConsoleMessageType type, const std::string& session, const std::string& vm_id = {},
              const std::string& data = {}) {
        ConsoleMessage m;
        m.type = type;
        m.session = session;
        m.vm_id = vm_id;
        m.data = data;
        sessions_->Handle(m, Sender());
    }

    // Runs the executor until `done` holds (bounded).
    bool RunUntil(const std::function<bool()>& done, std::chrono::milliseconds limit = 5s) {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        while (std::chrono::steady_clock::now() < deadline) {
            io_.restart();
            io_.run_for(5ms);
            if (done()) return true;
        }
        return done();
    }

    // The messages sent so far of `type` for `session`, decoded.
    std::vector<ConsoleMessage> SentOf(ConsoleMessageType type, const std::string& session) {
        std::lock_guard lock(mutex_);
        std::vector<ConsoleMessage> out;
        for (const auto& j : sent_) {
            auto m = proto::DecodeConsoleMessage(j);
            if (m && m->type == type && m->session == session) out.push_back(*m);
        }
        return out;
    }
    std::string OutputOf(const std::string& session) {
        std::string all;
        for (const auto& m : SentOf(ConsoleMessageType::kOutput, session)) all += m.data;
        return all;
    }

    boost::asio::io_context io_;
    ScriptedConsoles consoles_;
    std::shared_ptr<ConsoleSessions> sessions_;
    std::mutex mutex_;
    std::vector<json> sent_;
};

TEST_F(ConsoleSessionsTest, RelaysOutputAndInputUntilTheOrchestratorCloses) {
    Send(ConsoleMessageType::kOpen, "s1", "vm-a");
    ASSERT_TRUE(RunUntil([&] { return !SentOf(ConsoleMessageType::kOpened, "s1").empty(); }));
    auto console = consoles_.Latest("vm-a");
    ASSERT_TRUE(console);
    console->sink.on_data("login: ");
    console->sink.on_data(std::string("\x1b[0m\xff", 5));
    ASSERT_TRUE(RunUntil([&] { return OutputOf("s1").size() == 12; }));
    EXPECT_EQ(OutputOf("s1"), std::string("login: \x1b[0m\xff", 12));

    Send(ConsoleMessageType::kInput, "s1", {}, "root\r");
    ASSERT_TRUE(RunUntil([&] {
        std::lock_guard lock(console->mutex);
        return console->written == "root\r";
    }));
    EXPECT_EQ(sessions_->OpenSessions(), 1u);

    Send(ConsoleMessageType::kClose, "s1");
    EXPECT_EQ(sessions_->OpenSessions(), 0u);
    ASSERT_TRUE(RunUntil([&] {
        std::lock_guard lock(console->mutex);
        return console->closed;
    }));
    // The orchestrator asked for it: no console.closed goes back.
    EXPECT_TRUE(SentOf(ConsoleMessageType::kClosed, "s1").empty());
}

TEST_F(ConsoleSessionsTest, TheHypervisorEndingTheStreamSendsTheReason) {
    Send(ConsoleMessageType::kOpen, "s1", "vm-a");
    ASSERT_TRUE(RunUntil([&] { return !SentOf(ConsoleMessageType::kOpened, "s1").empty(); }));
    auto console = consoles_.Latest("vm-a");
    console->sink.on_data("last words");
    console->sink.on_end("the VM stopped");
    ASSERT_TRUE(RunUntil([&] { return !SentOf(ConsoleMessageType::kClosed, "s1").empty(); }));
    EXPECT_EQ(SentOf(ConsoleMessageType::kClosed, "s1")[0].reason, "the VM stopped");
    EXPECT_EQ(OutputOf("s1"), "last words") << "pending output goes out before the close";
    EXPECT_EQ(sessions_->OpenSessions(), 0u);
}

TEST_F(ConsoleSessionsTest, ANewSessionOfTheSameVmTakesOver) {
    Send(ConsoleMessageType::kOpen, "s1", "vm-a");
    ASSERT_TRUE(RunUntil([&] { return !SentOf(ConsoleMessageType::kOpened, "s1").empty(); }));
    Send(ConsoleMessageType::kOpen, "s2", "vm-a");
    ASSERT_TRUE(RunUntil([&] { return !SentOf(ConsoleMessageType::kOpened, "s2").empty(); }));
    ASSERT_EQ(SentOf(ConsoleMessageType::kClosed, "s1").size(), 1u);
    EXPECT_NE(SentOf(ConsoleMessageType::kClosed, "s1")[0].reason.find("taken over"),
              std::string::npos);
    EXPECT_EQ(consoles_.Opened("vm-a"), 2u);
    EXPECT_EQ(sessions_->OpenSessions(), 1u);
    // Input for the old session goes nowhere; the new one still works.
    Send(ConsoleMessageType::kInput, "s1", {}, "old");
    Send(ConsoleMessageType::kInput, "s2", {}, "new");
    auto console = consoles_.Latest("vm-a");
    ASSERT_TRUE(RunUntil([&] {
        std::lock_guard lock(console->mutex);
        return console->written == "new";
    }));
}

TEST_F(ConsoleSessionsTest, RefusesWhatItCannotOpen) {
    Send(ConsoleMessageType::kOpen, "s1", "stopped");
    ASSERT_TRUE(RunUntil([&] { return !SentOf(ConsoleMessageType::kClosed, "s1").empty(); }));
    EXPECT_EQ(SentOf(ConsoleMessageType::kClosed, "s1")[0].reason, "the VM is not running");
    EXPECT_TRUE(SentOf(ConsoleMessageType::kOpened, "s1").empty());

    sessions_->Stop();
    sessions_ = Make({.max_sessions = 1, .buffer_bytes = 64 * 1024, .flush_interval = 1ms});
    Send(ConsoleMessageType::kOpen, "a", "vm-a");
    Send(ConsoleMessageType::kOpen, "b", "vm-b");
    ASSERT_TRUE(RunUntil([&] { return !SentOf(ConsoleMessageType::kClosed, "b").empty(); }));
    EXPECT_NE(SentOf(ConsoleMessageType::kClosed, "b")[0].reason.find("too many"),
              std::string::npos);
    ASSERT_TRUE(RunUntil([&] { return !SentOf(ConsoleMessageType::kOpened, "a").empty(); }));
}

TEST_F(ConsoleSessionsTest, DropsTheOldestOutputBeyondTheBufferAndCountsIt) {
    sessions_->Stop();
    sessions_ = Make({.max_sessions = 4, .buffer_bytes = 10, .flush_interval = 1ms});
    Send(ConsoleMessageType::kOpen, "s1", "vm-a");
    ASSERT_TRUE(RunUntil([&] { return !SentOf(ConsoleMessageType::kOpened, "s1").empty(); }));
    auto console = consoles_.Latest("vm-a");
    // Without running the executor nothing is flushed: 26 bytes arrive, 10 are kept.
    console->sink.on_data("abcdefghijklm");
    console->sink.on_data("nopqrstuvwxyz");
    ASSERT_TRUE(RunUntil([&] { return !OutputOf("s1").empty(); }));
    EXPECT_EQ(OutputOf("s1"), "qrstuvwxyz");
    EXPECT_EQ(SentOf(ConsoleMessageType::kOutput, "s1").back().dropped, 16u);
}

TEST_F(ConsoleSessionsTest, TheChannelClosingEndsEverySession) {
    Send(ConsoleMessageType::kOpen, "s1", "vm-a");
    Send(ConsoleMessageType::kOpen, "s2", "vm-b");
    ASSERT_TRUE(RunUntil([&] { return !SentOf(ConsoleMessageType::kOpened, "s2").empty(); }));
    sessions_->CloseAll();
    EXPECT_EQ(sessions_->OpenSessions(), 0u);
    ASSERT_TRUE(RunUntil([&] {
        auto a = consoles_.Latest("vm-a");
        auto b = consoles_.Latest("vm-b");
        std::scoped_lock lock(a->mutex, b->mutex);
        return a->closed && b->closed;
    }));
}

}  // namespace
}  // namespace decloud::agent::app
