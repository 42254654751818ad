#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace decloud::testing {

// A daemon started by a test. The destructor kills it (by its own pid) if it still runs, so a
// failing test never leaves processes behind. Output goes to a log file for post-mortems.
class ChildProcess {
  public:
    ChildProcess(std::string executable, std::vector<std::string> args, std::string log_path,
                 std::vector<std::pair<std::string, std::string>> extra_env = {});
    ~ChildProcess();
    ChildProcess(const ChildProcess&) = delete;
    ChildProcess& operator=(const ChildProcess&) = delete;

    pid_t pid() const { return pid_; }
    bool Running();
    // SIGTERM, then SIGKILL after `grace`; returns the exit code (128+signal if killed).
    int Terminate(std::chrono::milliseconds grace = std::chrono::seconds{15});
    std::string Log() const;
    const std::string& log_path() const { return log_path_; }

  private:
    pid_t pid_ = -1;
    std::optional<int> exit_code_;
    std::string log_path_;
};

struct CommandResult {
    int exit_code = -1;  // 128+signal if killed; -1 if it could not be started
    std::string out;
    std::string err;
};

// Runs a short-lived command to completion with `input` on its stdin; killed after `timeout`.
CommandResult RunCommand(const std::string& executable, std::vector<std::string> args,
                         std::vector<std::pair<std::string, std::string>> extra_env = {},
                         const std::string& input = {},
                         std::chrono::milliseconds timeout = std::chrono::seconds{60});

// The full path of an executable found on PATH or in the usual system directories (sbin
// included, which a non-login PATH may lack); throws naming it when it is not installed.
std::string FindExecutable(const std::string& name);

// A whole file's contents; empty if it cannot be read.
std::string ReadFile(const std::string& path);

// A TCP port on 127.0.0.1 that was free a moment ago.
std::uint16_t FreeTcpPort();

struct HttpReply {
    int status = 0;
    std::string headers;  // raw header block
    std::string body;

    // The value of a response header (case-insensitive name), or empty.
    std::string Header(std::string_view name) const;
};

// One HTTP/1.1 request over a fresh connection (Connection: close). Empty on connection errors.
std::optional<HttpReply> HttpRequest(
    std::uint16_t port, const std::string& method, const std::string& target,
    const std::string& body = {},
    const std::vector<std::pair<std::string, std::string>>& headers = {},
    std::chrono::milliseconds timeout = std::chrono::seconds{10});

// Sends raw bytes, optionally half-closes, and returns whatever comes back until the server
// closes or `timeout` passes. For malformed and truncated requests.
std::string RawExchange(std::uint16_t port, const std::string& bytes, bool half_close,
                        std::chrono::milliseconds timeout = std::chrono::seconds{5});

// Polls `condition` until it holds or `deadline` passes (for real daemons, not for logic).
bool WaitUntil(const std::function<bool()>& condition, std::chrono::milliseconds deadline,
               std::chrono::milliseconds every = std::chrono::milliseconds{100});

// A fresh directory under /tmp, removed with its contents by the destructor.
class TempDir {
  public:
    explicit TempDir(const std::string& prefix = "decloud-test");
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::string& path() const { return path_; }

  private:
    std::string path_;
};

}  // namespace decloud::testing
