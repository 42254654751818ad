#include "orchestrator/adapters/templates/cloud_init_validator.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <system_error>
#include <thread>

extern char** environ;

namespace decloud::orchestrator::adapters::templates {

using common::Error;
using common::Result;

namespace {

constexpr std::size_t kMaxOutput = std::size_t{256} * 1024;
constexpr std::size_t kMaxComplaints = 50;
constexpr std::size_t kMaxComplaintLength = 500;
constexpr std::string_view kErrorsPrefix = "Cloud config schema errors: ";

std::string ErrnoMessage(int err) {
    return std::error_code(err, std::generic_category()).message();
}

class Fd {
  public:
    explicit Fd(int fd = -1) : fd_(fd) {}
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() { Reset(); }
    int Get() const { return fd_; }
    void Reset() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

  private:
    int fd_;
};

// A file only this process can read, removed when it goes out of scope.
class TempFile {
  public:
    TempFile() {
        std::string pattern =
            (std::filesystem::temp_directory_path() / "decloud-cloud-config-XXXXXX").string();
        fd_ = ::mkstemp(pattern.data());
        if (fd_ >= 0) path_ = pattern;
    }
    TempFile(const TempFile&) = delete;
    TempFile& operator=(const TempFile&) = delete;
    ~TempFile() {
        if (fd_ >= 0) ::close(fd_);
        if (!path_.empty()) ::unlink(path_.c_str());
    }
    bool ok() const { return fd_ >= 0; }
    const std::string& path() const { return path_; }
    bool Write(std::string_view text) {
        while (!text.empty()) {
            const auto n = ::write(fd_, text.data(), text.size());
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return false;
            text.remove_prefix(static_cast<std::size_t>(n));
        }
        return true;
    }

  private:
    int fd_ = -1;
    std::string path_;
};

bool IsKeyChar(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
}

// Whether `rest` starts with "<key>: " (how cloud-init begins each complaint).
bool StartsComplaint(std::string_view rest) {
    std::size_t i = 0;
    while (i < rest.size() && IsKeyChar(rest[i])) ++i;
    return i > 0 && rest.substr(i).starts_with(": ");
}

std::string Trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\n' || s.front() == '\r'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\n' || s.back() == '\r'))
        s.remove_suffix(1);
    return std::string(s);
}

void ReplaceAll(std::string& s, std::string_view from, std::string_view to) {
    if (from.empty()) return;
    for (auto at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
        s.replace(at, from.size(), to);
}

std::string Bounded(std::string s) {
    if (s.size() > kMaxComplaintLength) {
        s.resize(kMaxComplaintLength);
        s += "...";
    }
    return s;
}

}  // namespace

std::vector<std::string> ParseSchemaComplaints(std::string_view output, std::string_view file) {
    std::string text(output);
    if (!file.empty()) {
        ReplaceAll(text, file, "userData");
        ReplaceAll(text, std::filesystem::path(file).filename().string(), "userData");
    }
    std::vector<std::string> out;
    const auto at = text.find(kErrorsPrefix);
    if (at == std::string::npos) {
        const auto trimmed = Trim(text);
        out.push_back(
            Bounded(trimmed.empty() ? "cloud-init schema refused the document" : trimmed));
        return out;
    }
    const std::string_view list = std::string_view(text).substr(at + kErrorsPrefix.size());
    std::size_t start = 0;
    for (std::size_t i = 0; i + 2 <= list.size() && out.size() < kMaxComplaints; ++i) {
        if (list[i] == ',' && list[i + 1] == ' ' && StartsComplaint(list.substr(i + 2))) {
            out.push_back(Bounded(Trim(list.substr(start, i - start))));
            start = i + 2;
        }
    }
    if (out.size() < kMaxComplaints) {
        auto last = Trim(list.substr(start));
        if (!last.empty()) out.push_back(Bounded(std::move(last)));
    }
    return out;
}

CloudInitValidator::CloudInitValidator(CloudInitValidatorOptions options)
    : options_(std::move(options)), slots_(std::clamp(options_.max_concurrent, 1, 64)) {}

Result<std::vector<std::string>> CloudInitValidator::Check(const std::string& cloud_config) {
    if (!slots_.try_acquire_for(options_.timeout))
        return Error::Unavailable("the cloud-init schema check is busy; try again");
    struct Release {
        std::counting_semaphore<64>& s;
        ~Release() { s.release(); }
    } release{slots_};

    TempFile file;
    if (!file.ok())
        return Error::Internal("cannot create a temporary file: " + ErrnoMessage(errno));
    if (!file.Write(cloud_config)) return Error::Internal("cannot write a temporary file");

    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return Error::Internal("pipe failed: " + ErrnoMessage(errno));
    Fd read_end(fds[0]);
    Fd write_end(fds[1]);

    posix_spawn_file_actions_t actions;
    ::posix_spawn_file_actions_init(&actions);
    ::posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    ::posix_spawn_file_actions_adddup2(&actions, write_end.Get(), STDOUT_FILENO);
    ::posix_spawn_file_actions_adddup2(&actions, write_end.Get(), STDERR_FILENO);
    std::vector<std::string> argv_text = {options_.program, "schema", "--config-file", file.path()};
    std::vector<char*> argv;
    for (auto& a : argv_text) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = 0;
    const int spawned =
        ::posix_spawnp(&pid, options_.program.c_str(), &actions, nullptr, argv.data(), environ);
    ::posix_spawn_file_actions_destroy(&actions);
    if (spawned != 0)
        return Error::Unavailable("cannot run " + options_.program + ": " + ErrnoMessage(spawned));
    write_end.Reset();

    std::string output;
    const auto deadline = std::chrono::steady_clock::now() + options_.timeout;
    bool timed_out = false;
    char buf[4096];
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            timed_out = true;
            break;
        }
        pollfd pfd{read_end.Get(), POLLIN, 0};
        const int ready =
            ::poll(&pfd, 1, static_cast<int>(std::min<long long>(left.count(), 1000)));
        if (ready < 0 && errno != EINTR) break;
        if (ready <= 0) continue;
        const auto n = ::read(read_end.Get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        if (output.size() < kMaxOutput)
            output.append(buf, std::min(static_cast<std::size_t>(n), kMaxOutput - output.size()));
    }
    int status = 0;
    for (;;) {
        if (timed_out) {
            ::kill(pid, SIGKILL);
            while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
            }
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
    if (timed_out)
        return Error::Timeout("cloud-init schema did not finish within " +
                              std::to_string(options_.timeout.count()) + " ms");
    if (!WIFEXITED(status))
        return Error::Internal("cloud-init schema ended by signal " +
                               std::to_string(WIFSIGNALED(status) ? WTERMSIG(status) : 0));
    if (WEXITSTATUS(status) == 0) return std::vector<std::string>{};
    if (WEXITSTATUS(status) == 127 && output.find(kErrorsPrefix) == std::string::npos)
        return Error::Unavailable("cannot run " + options_.program + ": " + Trim(output));
    return ParseSchemaComplaints(output, file.path());
}

}  // namespace decloud::orchestrator::adapters::templates
