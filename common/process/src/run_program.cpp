#include "decloud/process/run_program.hpp"
#include "decloud/process/unique_fd.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <system_error>
#include <thread>

namespace decloud::process {

using common::Error;
using common::Result;

namespace {

constexpr std::size_t kMaxCapture = std::size_t{1} << 20;

using Fd = UniqueFd;

// strerror is not thread-safe; the generic category's message is.
std::string ErrnoMessage(int err) {
    return std::error_code(err, std::generic_category()).message();
}

std::string Describe(const std::vector<std::string>& argv) {
    std::string s;
    for (const auto& a : argv) {
        if (!s.empty()) s += ' ';
        s += a;
    }
    return s;
}

}  // namespace

Result<ProgramOutput> RunProgram(const std::vector<std::string>& argv,
                                 std::chrono::milliseconds timeout, const std::string& cwd) {
    if (argv.empty() || argv[0].empty()) return Error::InvalidArgument("empty command");
    // Everything the child needs is prepared before fork: after it only async-signal-safe calls.
    std::vector<std::string> owned = argv;
    std::vector<char*> args;
    args.reserve(owned.size() + 1);
    for (auto& a : owned) args.push_back(a.data());
    args.push_back(nullptr);
    const char* dir = cwd.empty() ? nullptr : cwd.c_str();

    int out_fds[2];
    int err_fds[2];
    int exec_fds[2];  // carries errno from a failed chdir/exec; closes on a successful exec
    if (::pipe2(out_fds, O_CLOEXEC) != 0) return Error::Internal("pipe failed");
    Fd out_read(out_fds[0]);
    Fd out_write(out_fds[1]);
    if (::pipe2(err_fds, O_CLOEXEC) != 0) return Error::Internal("pipe failed");
    Fd err_read(err_fds[0]);
    Fd err_write(err_fds[1]);
    if (::pipe2(exec_fds, O_CLOEXEC) != 0) return Error::Internal("pipe failed");
    Fd exec_read(exec_fds[0]);
    Fd exec_write(exec_fds[1]);

    const pid_t pid = ::fork();
    if (pid < 0) return Error::Internal("fork failed: " + ErrnoMessage(errno));
    if (pid == 0) {
        const int null_fd = ::open("/dev/null", O_RDONLY);
        if (null_fd >= 0) ::dup2(null_fd, STDIN_FILENO);
        ::dup2(out_write.Get(), STDOUT_FILENO);
        ::dup2(err_write.Get(), STDERR_FILENO);
        int failure[2] = {0, 0};  // {0: chdir, 1: exec; errno}
        if (dir != nullptr && ::chdir(dir) != 0) {
            failure[1] = errno;
        } else {
            ::execvp(args[0], args.data());
            failure[0] = 1;
            failure[1] = errno;
        }
        [[maybe_unused]] const auto n = ::write(exec_write.Get(), failure, sizeof failure);
        ::_exit(127);
    }
    out_write.Reset();
    err_write.Reset();
    exec_write.Reset();

    ProgramOutput result;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    bool timed_out = false;
    bool out_open = true;
    bool err_open = true;
    char buf[4096];
    while (out_open || err_open) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            timed_out = true;
            break;
        }
        pollfd fds[2] = {{out_open ? out_read.Get() : -1, POLLIN, 0},
                         {err_open ? err_read.Get() : -1, POLLIN, 0}};
        const int ready = ::poll(fds, 2, static_cast<int>(std::min<long long>(left.count(), 1000)));
        if (ready < 0 && errno != EINTR) break;
        if (ready <= 0) continue;
        for (int i = 0; i < 2; ++i) {
            if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
            const auto n = ::read(fds[i].fd, buf, sizeof buf);
            if (n < 0 && errno == EINTR) continue;
            std::string& sink = i == 0 ? result.out : result.err;
            if (n <= 0) {
                (i == 0 ? out_open : err_open) = false;
                continue;
            }
            if (sink.size() < kMaxCapture)
                sink.append(buf, std::min(static_cast<std::size_t>(n), kMaxCapture - sink.size()));
        }
    }
    // The pipes may close before the process ends; wait for it within the same deadline.
    int status = 0;
    for (;;) {
        if (timed_out) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &status, 0);
            break;
        }
        const pid_t done = ::waitpid(pid, &status, WNOHANG);
        if (done == pid || (done < 0 && errno != EINTR)) break;
        if (std::chrono::steady_clock::now() >= deadline) {
            timed_out = true;
            continue;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }

    int failure[2] = {0, 0};
    if (::read(exec_read.Get(), failure, sizeof failure) == static_cast<ssize_t>(sizeof failure)) {
        if (failure[0] == 0)
            return Error::Unavailable("cannot run " + argv[0] + " in " + cwd + ": " +
                                      ErrnoMessage(failure[1]));
        return Error::Unavailable("cannot run " + argv[0] + ": " + ErrnoMessage(failure[1]));
    }
    if (timed_out)
        return Error::Timeout(Describe(argv) + " did not finish within " +
                              std::to_string(timeout.count()) + " ms");
    if (WIFEXITED(status)) {
        result.exit_code = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
        result.exit_code = 128 + WTERMSIG(status);
    }
    return result;
}

Result<ProgramOutput> RunProgramChecked(const std::vector<std::string>& argv,
                                        std::chrono::milliseconds timeout, const std::string& cwd) {
    auto result = RunProgram(argv, timeout, cwd);
    if (!result) return result;
    if (result->exit_code != 0) {
        std::string err = result->err.empty() ? result->out : result->err;
        if (err.size() > 2000) err.resize(2000);
        while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
        return Error::Internal(Describe(argv) + " exited with status " +
                               std::to_string(result->exit_code) + ": " + err);
    }
    return result;
}

}  // namespace decloud::process
