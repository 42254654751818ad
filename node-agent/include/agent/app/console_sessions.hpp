#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/thread_pool.hpp>

#include "agent/ports/console.hpp"
#include "decloud/proto/console_messages.hpp"

namespace decloud::agent::app {

struct ConsoleSessionOptions {
    std::size_t max_sessions = 16;  // open at once on this node; more are refused
    // Output waiting to go out, per session. Beyond it the oldest bytes are dropped and counted
    // (console.output's "dropped"): a console never slows the guest, nor grows without bound.
    std::size_t buffer_bytes = 64 * 1024;
    // Output is gathered this long before it is sent, so a chatty guest makes few messages.
    std::chrono::milliseconds flush_interval{20};
};

// The agent's side of serial console sessions (proto/console_messages.hpp): opens a VM's console
// on console.open, relays its output as console.output and input from console.input, and ends
// it on console.close, when the hypervisor ends the stream (console.closed with the reason), or
// when the channel that opened it closes. One session per VM: a newer console.open for the same
// VM takes over, and the older session gets console.closed ("taken over ..."). The blocking
// console calls run on a thread of its own. Thread-safe.
class ConsoleSessions : public std::enable_shared_from_this<ConsoleSessions> {
  public:
    // Puts one message on the command channel the session came from; thread-safe, non-blocking.
    using Send = std::function<void(std::string text)>;

    ConsoleSessions(boost::asio::any_io_executor executor, ports::Consoles& consoles,
                    ConsoleSessionOptions options = {});
    ~ConsoleSessions();
    ConsoleSessions(const ConsoleSessions&) = delete;
    ConsoleSessions& operator=(const ConsoleSessions&) = delete;

    // A console message from the orchestrator; answers go through `send`.
    void Handle(proto::ConsoleMessage message, Send send);
    // The channel closed: every session ends (the orchestrator forgot them too).
    void CloseAll();
    std::size_t OpenSessions() const;
    // Ends every session and waits for the console thread; call before destruction.
    void Stop();

  private:
    struct Session;
    void Open(const proto::ConsoleMessage& message, Send send);
    // Mutex held: forgets the session and frees its stream on the console thread; `notify`
    // sends console.closed with `reason` (after any output still pending).
    void EndLocked(std::shared_ptr<Session> session, const std::string& reason, bool notify);
    void OnData(const std::shared_ptr<Session>& session, std::string bytes);
    void FlushLocked(Session& session);

    boost::asio::any_io_executor executor_;
    ports::Consoles& consoles_;
    ConsoleSessionOptions options_;
    boost::asio::thread_pool io_{1};  // Open, Write and stream teardown, in order
    mutable std::mutex mutex_;
    std::unordered_map<std::string, std::shared_ptr<Session>> sessions_;  // by session id
    std::unordered_map<std::string, std::string> by_vm_;                  // vm id -> session id
    bool stopped_ = false;
};

}  // namespace decloud::agent::app
