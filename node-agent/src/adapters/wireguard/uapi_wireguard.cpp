#include "agent/adapters/wireguard/uapi_wireguard.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>
#include <thread>
#include <utility>

#include "agent/adapters/wireguard/netns.hpp"
#include "agent/adapters/wireguard/rtnetlink.hpp"
#include "agent/domain/relay/uapi.hpp"
#include "decloud/process/unique_fd.hpp"

extern char** environ;

namespace decloud::agent::adapters {

using common::Error;
using common::Result;
using common::Status;
namespace relay = domain::relay;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

constexpr auto kPollEvery = 20ms;

std::string ErrnoText(int err) { return std::error_code(err, std::generic_category()).message(); }

using Fd = decloud::process::UniqueFd;

Result<Fd> ConnectUnix(const std::string& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path)
        return Error::InvalidArgument("socket path too long: " + path);
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (fd.Get() < 0) return Error::Unavailable("cannot create a unix socket: " + ErrnoText(errno));
    if (::connect(fd.Get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
        return Error::Unavailable("no WireGuard daemon answers on " + path + ": " +
                                  ErrnoText(errno));
    return fd;
}

bool SocketAccepts(const std::string& path) { return ConnectUnix(path).has_value(); }

// The executable wireguard-go resolves to, found before fork (execve needs a path).
std::string FindExecutable(const std::string& name) {
    if (name.find('/') != std::string::npos) return ::access(name.c_str(), X_OK) == 0 ? name : "";
    std::string path = std::getenv("PATH") != nullptr ? std::getenv("PATH") : "";
    path += ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    std::stringstream dirs(path);
    std::string dir;
    while (std::getline(dirs, dir, ':')) {
        if (dir.empty()) continue;
        const std::string candidate = dir + "/" + name;
        if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    }
    return "";
}

std::string LogTail(const std::string& path) {
    if (path.empty()) return "";
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    auto text = ss.str();
    if (text.size() > 1500) text = "..." + text.substr(text.size() - 1500);
    return text.empty() ? "" : " (its log: " + text + ")";
}

bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (condition()) return true;
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(kPollEvery);
    }
}

}  // namespace

Result<std::string> UapiRequest(const std::string& socket_path, std::string_view request,
                                std::chrono::milliseconds timeout) {
    auto fd = ConnectUnix(socket_path);
    if (!fd) return fd.error();
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    const auto left = [&] {
        return static_cast<int>(
            std::max<long long>(0, std::chrono::duration_cast<std::chrono::milliseconds>(
                                       deadline - std::chrono::steady_clock::now())
                                       .count()));
    };
    std::size_t sent = 0;
    while (sent < request.size()) {
        const auto n = ::send(fd->Get(), request.data() + sent, request.size() - sent,
                              MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            sent += static_cast<std::size_t>(n);
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            return Error::Unavailable("UAPI write to " + socket_path +
                                      " failed: " + ErrnoText(errno));
        pollfd p{fd->Get(), POLLOUT, 0};
        if (::poll(&p, 1, left()) == 0) return Error::Timeout("UAPI write timed out");
    }
    std::string reply;
    char buf[8192];
    while (!reply.ends_with("\n\n")) {
        pollfd p{fd->Get(), POLLIN, 0};
        const int ready = ::poll(&p, 1, left());
        if (ready < 0 && errno == EINTR) continue;
        if (ready <= 0)
            return Error::Timeout("the WireGuard daemon on " + socket_path +
                                  " did not answer in time");
        const auto n = ::recv(fd->Get(), buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;  // closed: whatever came is the reply (the decoder checks errno=)
        reply.append(buf, static_cast<std::size_t>(n));
        if (reply.size() > (16u << 20)) return Error::Internal("UAPI reply too large");
    }
    return reply;
}

UapiWireGuard::UapiWireGuard(UapiWireGuardOptions options) : options_(std::move(options)) {}

std::string UapiWireGuard::SocketPath(const std::string& interface) const {
    return std::string(kWireGuardSocketDir) + "/" + interface + ".sock";
}

pid_t UapiWireGuard::DaemonPid(const std::string& interface) {
    std::lock_guard lock(mu_);
    ReapLocked();
    const auto it = children_.find(interface);
    return it == children_.end() ? -1 : it->second;
}

void UapiWireGuard::ReapLocked() {
    for (auto it = children_.begin(); it != children_.end();) {
        int status = 0;
        const pid_t r = ::waitpid(it->second, &status, WNOHANG);
        // r == 0: still running. ECHILD: someone else reaped it (SIGCHLD ignored).
        if (r == 0 || (r < 0 && errno == EINTR)) {
            ++it;
        } else {
            it = children_.erase(it);
        }
    }
}

Status UapiWireGuard::StartDaemonLocked(const std::string& interface) {
    const std::string exe = FindExecutable(options_.wireguard_go);
    if (exe.empty())
        return Error::Unavailable(options_.wireguard_go +
                                  " not found (install the wireguard-go package)");
    Fd ns_fd;
    if (!options_.netns.empty()) {
        ns_fd = Fd(::open(NetnsPath(options_.netns).c_str(), O_RDONLY | O_CLOEXEC));
        if (ns_fd.Get() < 0) return Error::NotFound("no network namespace named " + options_.netns);
    }
    std::string log_path;
    if (!options_.log_dir.empty()) {
        std::error_code ec;
        fs::create_directories(options_.log_dir, ec);
        log_path = options_.log_dir + "/" + interface + ".log";
    }
    Fd log_fd(::open(log_path.empty() ? "/dev/null" : log_path.c_str(),
                     O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640));
    if (log_fd.Get() < 0)
        return Error::Unavailable("cannot open " + log_path + ": " + ErrnoText(errno));
    Fd null_fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));

    // A socket file nobody answers on is left by a daemon that was killed; wireguard-go would
    // refuse to start over it.
    ::unlink(SocketPath(interface).c_str());

    // Everything the child needs is prepared before fork: after it only system calls.
    std::vector<std::string> args = {exe, "-f", interface};
    std::vector<std::string> env = {"WG_PROCESS_FOREGROUND=1"};
    for (char** e = environ; *e != nullptr; ++e) {
        const std::string_view entry(*e);
        // Inherited descriptors must not be mistaken for a TUN device or UAPI socket.
        if (entry.starts_with("WG_PROCESS_FOREGROUND=") || entry.starts_with("WG_TUN_FD=") ||
            entry.starts_with("WG_UAPI_FD="))
            continue;
        env.emplace_back(entry);
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<char*> envp;
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    int report[2];
    if (::pipe2(report, O_CLOEXEC) != 0) return Error::Internal("pipe failed: " + ErrnoText(errno));
    Fd report_read(report[0]);
    Fd report_write(report[1]);

    const pid_t pid = ::fork();
    if (pid < 0) return Error::Internal("fork failed: " + ErrnoText(errno));
    if (pid == 0) {
        int failure = 0;
        if (ns_fd.Get() >= 0 && ::setns(ns_fd.Get(), CLONE_NEWNET) != 0) failure = errno;
        if (failure == 0) {
            ::setsid();
            sigset_t none;
            sigemptyset(&none);
            ::sigprocmask(SIG_SETMASK, &none, nullptr);
            for (const int sig : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGCHLD})
                ::signal(sig, SIG_DFL);
            ::dup2(null_fd.Get(), STDIN_FILENO);
            ::dup2(log_fd.Get(), STDOUT_FILENO);
            ::dup2(log_fd.Get(), STDERR_FILENO);
            ::execve(argv[0], argv.data(), envp.data());
            failure = errno;
        }
        [[maybe_unused]] const auto n = ::write(report_write.Get(), &failure, sizeof failure);
        ::_exit(127);
    }
    report_write.Reset();
    int failure = 0;
    if (::read(report_read.Get(), &failure, sizeof failure) ==
        static_cast<ssize_t>(sizeof failure)) {
        ::waitpid(pid, nullptr, 0);
        return Error::Unavailable("cannot start " + exe + " in network namespace '" +
                                  options_.netns + "': " + ErrnoText(failure));
    }
    children_[interface] = pid;

    // Ready when the interface exists and the socket answers.
    auto nl = Rtnetlink::Open(options_.netns);
    if (!nl) return nl.error();
    bool exited = false;
    const bool ready = WaitFor(
        [&] {
            int status = 0;
            if (::waitpid(pid, &status, WNOHANG) == pid) {
                exited = true;
                return true;
            }
            auto link = nl->GetLink(interface);
            return link && link->has_value() && SocketAccepts(SocketPath(interface));
        },
        options_.start_timeout);
    if (exited) {
        children_.erase(interface);
        return Error::Unavailable("wireguard-go for " + interface + " exited at start" +
                                  LogTail(log_path));
    }
    if (!ready) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
        children_.erase(interface);
        return Error::Timeout("wireguard-go for " + interface + " did not come up within " +
                              std::to_string(options_.start_timeout.count()) + " ms" +
                              LogTail(log_path));
    }
    return common::Ok();
}

Status UapiWireGuard::StopDaemonLocked(const std::string& interface) {
    const auto it = children_.find(interface);
    if (it == children_.end()) return common::Ok();
    const pid_t pid = it->second;
    const auto gone = [pid] {
        const pid_t r = ::waitpid(pid, nullptr, WNOHANG);
        return r == pid || (r < 0 && errno == ECHILD);
    };
    // It exits by itself once its interface is gone; signals only for one that does not.
    if (!WaitFor(gone, options_.start_timeout)) {
        ::kill(pid, SIGTERM);
        if (!WaitFor(gone, 2s)) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
        }
    }
    children_.erase(interface);
    return common::Ok();
}

Status UapiWireGuard::Ensure(const ports::WireGuardConfig& config) {
    if (auto valid = relay::ValidateConfig(config); !valid) return valid;
    const std::string& name = config.interface;
    const std::string socket = SocketPath(name);
    std::lock_guard lock(mu_);
    ReapLocked();
    auto nl = Rtnetlink::Open(options_.netns);
    if (!nl) return nl.error();
    auto link = nl->GetLink(name);
    if (!link) return link.error();
    bool accepts = SocketAccepts(socket);
    if (!link->has_value() && accepts) {
        // The daemon of an interface deleted a moment ago may still be on its way out.
        accepts = !WaitFor([&] { return !SocketAccepts(socket); }, options_.start_timeout);
        ReapLocked();
        if (accepts)
            return Error::Conflict("the WireGuard socket of " + name +
                                   " serves an interface in another network namespace");
    }
    if (link->has_value() && !accepts)
        return Error::Conflict("interface " + name + " exists (kind '" + (*link)->kind +
                               "') but no wireguard-go answers on " + socket);
    if (!link->has_value()) {
        // The daemon of a deleted interface may still be exiting: reap it before its successor
        // takes its place in children_, or it would stay a zombie.
        if (auto stopped = StopDaemonLocked(name); !stopped) return stopped;
        if (auto started = StartDaemonLocked(name); !started) return started;
        link = nl->GetLink(name);
        if (!link) return link.error();
        if (!link->has_value())
            return Error::Unavailable("interface " + name + " vanished right after it was created");
    }
    const auto index = (*link)->index;

    // The WireGuard configuration: only what differs, so sessions and learned endpoints stay.
    auto reply = UapiRequest(socket, relay::kUapiGetRequest, options_.uapi_timeout);
    if (!reply) return reply.error();
    auto device = relay::DecodeUapiGet(*reply);
    if (!device) return device.error();
    const auto plan = relay::PlanUapiSet(config, *device);
    if (!plan.Empty()) {
        auto answer = UapiRequest(socket, relay::EncodeUapiSet(plan), options_.uapi_timeout);
        if (!answer) return answer.error();
        if (auto applied = relay::DecodeUapiSetReply(*answer); !applied)
            return Error{applied.error().code, name + ": " + applied.error().message};
    }

    std::vector<std::string> addresses;
    for (const auto& address : config.addresses)
        addresses.push_back(*relay::NormalizeCidr(address, false));
    if (auto set = nl->SetAddresses(index, addresses); !set) return set;
    if (!(*link)->Up()) {
        if (auto up = nl->SetLinkUp(index, true); !up) return up;
    }
    return common::Ok();
}

Status UapiWireGuard::Remove(const std::string& interface) {
    if (!relay::IsValidInterfaceName(interface))
        return Error::InvalidArgument("invalid interface name '" + interface + "'");
    const std::string socket = SocketPath(interface);
    std::lock_guard lock(mu_);
    ReapLocked();
    auto nl = Rtnetlink::Open(options_.netns);
    if (!nl) return nl.error();
    auto link = nl->GetLink(interface);
    if (!link) return link.error();
    if (link->has_value()) {
        if (auto deleted = nl->DeleteLink((*link)->index); !deleted) return deleted;
        // wireguard-go notices its TUN device is gone, removes its socket and exits.
        WaitFor([&] { return !SocketAccepts(socket); }, options_.start_timeout);
    }
    if (auto stopped = StopDaemonLocked(interface); !stopped) return stopped;
    // A socket file nobody answers on is debris; one that answers belongs to another namespace.
    struct stat st {};
    if (::lstat(socket.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) && !SocketAccepts(socket))
        ::unlink(socket.c_str());
    return common::Ok();
}

Result<ports::WireGuardState> UapiWireGuard::Read(const std::string& interface) {
    if (!relay::IsValidInterfaceName(interface))
        return Error::InvalidArgument("invalid interface name '" + interface + "'");
    std::lock_guard lock(mu_);
    ReapLocked();
    auto nl = Rtnetlink::Open(options_.netns);
    if (!nl) return nl.error();
    auto link = nl->GetLink(interface);
    if (!link) return link.error();
    if (!link->has_value()) return Error::NotFound("no interface named " + interface);
    auto reply = UapiRequest(SocketPath(interface), relay::kUapiGetRequest, options_.uapi_timeout);
    if (!reply) return reply.error();
    auto device = relay::DecodeUapiGet(*reply);
    if (!device) return device.error();
    auto addresses = nl->Addresses((*link)->index);
    if (!addresses) return addresses.error();
    return relay::ToWireGuardState(interface, *device, (*link)->Up(), std::move(*addresses));
}

Result<std::vector<std::string>> UapiWireGuard::List() {
    std::lock_guard lock(mu_);
    ReapLocked();
    auto nl = Rtnetlink::Open(options_.netns);
    if (!nl) return nl.error();
    std::vector<std::string> names;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(kWireGuardSocketDir, ec)) {
        const auto file = entry.path().filename().string();
        if (!file.ends_with(".sock")) continue;
        const auto name = file.substr(0, file.size() - 5);
        if (!relay::IsRelayInterfaceName(name)) continue;
        // The socket directory is shared by all namespaces: ours are the ones with a link here.
        auto link = nl->GetLink(name);
        if (!link) return link.error();
        if (link->has_value()) names.push_back(name);
    }
    std::sort(names.begin(), names.end());
    return names;
}

}  // namespace decloud::agent::adapters
