#include "decloud/testing/netns.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace decloud::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr const char* kNetnsDir = "/run/netns";
constexpr std::string_view kPrefix = "dtn";

const std::string& Ip() {
    static const std::string ip = FindExecutable("ip");
    return ip;
}

std::string Describe(const std::vector<std::string>& argv) {
    std::string s;
    for (const auto& a : argv) s += (s.empty() ? "" : " ") + a;
    return s;
}

void RunIp(const std::vector<std::string>& args, const std::string& input = {}) {
    const auto r = RunCommand(Ip(), args, {}, input, 30s);
    if (r.exit_code != 0)
        throw std::runtime_error("netns: ip " + Describe(args) + " failed (" +
                                 std::to_string(r.exit_code) + "): " + r.err);
}

std::optional<int> ParsePid(std::string_view text) {
    int pid = 0;
    const auto* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, pid);
    if (ec != std::errc{} || ptr != end || pid <= 0) return std::nullopt;
    return pid;
}

bool ProcessAlive(int pid) {
    if (pid <= 0) return false;
    if (::kill(pid, 0) != 0 && errno != EPERM) return false;
    const std::string stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
    const auto paren = stat.rfind(')');
    if (paren == std::string::npos || paren + 2 >= stat.size()) return false;
    return stat[paren + 2] != 'Z' && stat[paren + 2] != 'X';
}

std::vector<int> PidsInNetns(const std::string& name) {
    struct stat ns {};
    if (::stat((std::string(kNetnsDir) + "/" + name).c_str(), &ns) != 0) return {};
    std::vector<int> pids;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator("/proc", ec)) {
        const auto pid = ParsePid(entry.path().filename().string());
        if (!pid || *pid == ::getpid()) continue;
        struct stat st {};
        const std::string link = entry.path().string() + "/ns/net";
        if (::stat(link.c_str(), &st) == 0 && st.st_ino == ns.st_ino && st.st_dev == ns.st_dev &&
            ProcessAlive(*pid))
            pids.push_back(*pid);
    }
    return pids;
}

void KillAndDelete(const std::string& name) noexcept {
    try {
        auto pids = PidsInNetns(name);
        for (const int pid : pids) ::kill(pid, SIGTERM);
        const auto all_gone = [&] {
            return std::none_of(pids.begin(), pids.end(), [](int p) { return ProcessAlive(p); });
        };
        if (!WaitUntil(all_gone, 2s, 20ms)) {
            for (const int pid : pids) {
                if (ProcessAlive(pid)) ::kill(pid, SIGKILL);
            }
            WaitUntil(all_gone, 5s, 20ms);
        }
        RunCommand(Ip(), {"netns", "del", name}, {}, {}, 30s);
    } catch (...) {
        // Destructors must not throw; a leftover is removed by the next run's sweep.
    }
}

// Namespaces of test processes that no longer exist.
void SweepStale() {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(kNetnsDir, ec)) {
        const auto file = entry.path().filename().string();
        if (!file.starts_with(kPrefix)) continue;
        const auto dash = file.find('-');
        if (dash == std::string::npos) continue;
        const auto pid =
            ParsePid(std::string_view(file).substr(kPrefix.size(), dash - kPrefix.size()));
        if (!pid || *pid == ::getpid() || ProcessAlive(*pid)) continue;
        KillAndDelete(file);
    }
}

std::uint16_t Checksum(const void* data, std::size_t len) {
    const auto* p = static_cast<const std::uint8_t*>(data);
    std::uint32_t sum = 0;
    for (std::size_t i = 0; i + 1 < len; i += 2)
        sum += static_cast<std::uint32_t>(p[i] << 8 | p[i + 1]);
    if (len % 2 != 0) sum += static_cast<std::uint32_t>(p[len - 1] << 8);
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return htons(static_cast<std::uint16_t>(~sum));
}

sockaddr_in Ipv4(const std::string& address, std::uint16_t port) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    if (::inet_pton(AF_INET, address.c_str(), &addr.sin_addr) != 1)
        throw std::runtime_error("netns: not an IPv4 address: " + address);
    return addr;
}

std::string PeerText(const sockaddr_in& addr) {
    char buf[INET_ADDRSTRLEN] = {};
    ::inet_ntop(AF_INET, &addr.sin_addr, buf, sizeof buf);
    return buf;
}

int MillisLeft(std::chrono::steady_clock::time_point deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    return static_cast<int>(std::max<long long>(0, left.count()));
}

}  // namespace

NetNamespace::NetNamespace(const std::string& suffix) {
    static std::once_flag swept;
    std::call_once(swept, SweepStale);
    static std::atomic<int> counter{0};
    name_ = std::string(kPrefix) + std::to_string(::getpid()) + "-" + std::to_string(counter++) +
            "-" + suffix;
    RunIp({"netns", "add", name_});
    try {
        RunIp({"-n", name_, "link", "set", "lo", "up"});
    } catch (...) {
        KillAndDelete(name_);
        throw;
    }
}

NetNamespace::~NetNamespace() { KillAndDelete(name_); }

CommandResult NetNamespace::Exec(const std::vector<std::string>& argv,
                                 std::chrono::milliseconds timeout) const {
    std::vector<std::string> args = {"netns", "exec", name_};
    args.insert(args.end(), argv.begin(), argv.end());
    return RunCommand(Ip(), args, {}, {}, timeout);
}

std::string NetNamespace::Run(const std::vector<std::string>& argv) const {
    auto r = Exec(argv);
    if (r.exit_code != 0)
        throw std::runtime_error("netns " + name_ + ": " + Describe(argv) + " failed (" +
                                 std::to_string(r.exit_code) + "): " + r.err);
    return r.out;
}

void NetNamespace::AddAddress(const std::string& device, const std::string& cidr) const {
    RunIp({"-n", name_, "addr", "add", cidr, "dev", device});
}

void NetNamespace::SetUp(const std::string& device) const {
    RunIp({"-n", name_, "link", "set", device, "up"});
}

void NetNamespace::AddRoute(const std::string& destination, const std::string& gateway) const {
    RunIp({"-n", name_, "route", "add", destination, "via", gateway});
}

void NetNamespace::EnableForwarding() const {
    RunInside([] {
        std::ofstream out("/proc/sys/net/ipv4/ip_forward");
        out << "1\n";
        out.flush();
        if (!out) throw std::runtime_error("netns: cannot enable ip_forward");
    });
}

void NetNamespace::ApplyNft(const std::string& ruleset) const {
    const auto r = RunCommand(Ip(), {"netns", "exec", name_, FindExecutable("nft"), "-f", "-"}, {},
                              ruleset, 30s);
    if (r.exit_code != 0) throw std::runtime_error("netns " + name_ + ": nft -f failed: " + r.err);
}

std::unique_ptr<ChildProcess> NetNamespace::Spawn(
    const std::string& executable, std::vector<std::string> args, std::string log_path,
    std::vector<std::pair<std::string, std::string>> extra_env) const {
    // `ip netns exec` execs the command in its own place: the pid is the daemon's.
    std::vector<std::string> full = {"netns", "exec", name_, FindExecutable(executable)};
    full.insert(full.end(), args.begin(), args.end());
    return std::make_unique<ChildProcess>(Ip(), std::move(full), std::move(log_path),
                                          std::move(extra_env));
}

void NetNamespace::RunInside(const std::function<void()>& fn) const {
    const std::string path = std::string(kNetnsDir) + "/" + name_;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw std::runtime_error("netns: cannot open " + path);
    std::exception_ptr failure;
    std::thread worker([&] {
        try {
            if (::setns(fd, CLONE_NEWNET) != 0)
                throw std::runtime_error("netns: setns into " + name_ + " failed");
            fn();
        } catch (...) {
            failure = std::current_exception();
        }
    });
    worker.join();
    ::close(fd);
    if (failure) std::rethrow_exception(failure);
}

int NetNamespace::Socket(int domain, int type, int protocol) const {
    int fd = -1;
    RunInside([&] { fd = ::socket(domain, type | SOCK_CLOEXEC, protocol); });
    if (fd < 0) throw std::runtime_error("netns: socket() in " + name_ + " failed");
    return fd;
}

std::vector<int> NetNamespace::Pids() const { return PidsInNetns(name_); }

void ConnectVeth(const NetNamespace& a, const std::string& a_device, const NetNamespace& b,
                 const std::string& b_device) {
    RunIp({"-n", a.name(), "link", "add", a_device, "type", "veth", "peer", "name", b_device,
           "netns", b.name()});
    a.SetUp(a_device);
    b.SetUp(b_device);
}

EchoServer::EchoServer(const NetNamespace& ns, Transport transport, const std::string& address,
                       std::uint16_t port)
    : transport_(transport) {
    fd_ = ns.Socket(AF_INET, transport == Transport::kTcp ? SOCK_STREAM : SOCK_DGRAM);
    const int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    const auto addr = Ipv4(address, port);
    if (::bind(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 ||
        (transport == Transport::kTcp && ::listen(fd_, 64) != 0)) {
        const int err = errno;
        ::close(fd_);
        throw std::runtime_error("netns: cannot listen on " + address + ":" + std::to_string(port) +
                                 ": " + std::strerror(err));
    }
    if (::pipe2(stop_pipe_, O_CLOEXEC) != 0) {
        ::close(fd_);
        throw std::runtime_error("netns: pipe failed");
    }
    thread_ = std::thread([this] { Serve(); });
}

EchoServer::~EchoServer() {
    const char stop = 1;
    [[maybe_unused]] const auto n = ::write(stop_pipe_[1], &stop, 1);
    if (thread_.joinable()) thread_.join();
    ::close(stop_pipe_[0]);
    ::close(stop_pipe_[1]);
    ::close(fd_);
}

std::vector<std::string> EchoServer::Peers() const {
    std::lock_guard lock(mu_);
    return peers_;
}

void EchoServer::Serve() {
    char buf[65536];
    for (;;) {
        pollfd fds[2] = {{fd_, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
        if (::poll(fds, 2, -1) < 0) {
            if (errno == EINTR) continue;
            return;
        }
        if (fds[1].revents != 0) return;
        if ((fds[0].revents & POLLIN) == 0) continue;
        sockaddr_in peer{};
        socklen_t len = sizeof peer;
        if (transport_ == Transport::kUdp) {
            const auto n =
                ::recvfrom(fd_, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&peer), &len);
            if (n < 0) continue;
            {
                std::lock_guard lock(mu_);
                peers_.push_back(PeerText(peer));
            }
            ::sendto(fd_, buf, static_cast<std::size_t>(n), 0, reinterpret_cast<sockaddr*>(&peer),
                     len);
            continue;
        }
        const int conn = ::accept4(fd_, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC);
        if (conn < 0) continue;
        {
            std::lock_guard lock(mu_);
            peers_.push_back(PeerText(peer));
        }
        // One connection at a time is enough for tests; a silent client is dropped after 10 s.
        std::string data;
        const auto deadline = std::chrono::steady_clock::now() + 10s;
        for (;;) {
            pollfd c[2] = {{conn, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
            if (::poll(c, 2, MillisLeft(deadline)) <= 0 || c[1].revents != 0) break;
            const auto n = ::recv(conn, buf, sizeof buf, 0);
            if (n <= 0) break;
            data.append(buf, static_cast<std::size_t>(n));
        }
        std::size_t sent = 0;
        while (sent < data.size()) {
            const auto n = ::send(conn, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
            if (n <= 0) break;
            sent += static_cast<std::size_t>(n);
        }
        ::close(conn);
    }
}

std::optional<std::string> TcpExchange(const NetNamespace& ns, const std::string& address,
                                       std::uint16_t port, const std::string& payload,
                                       std::chrono::milliseconds timeout) {
    const int fd = ns.Socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    const auto addr = Ipv4(address, port);
    std::optional<std::string> result;
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 &&
        errno != EINPROGRESS) {
        ::close(fd);
        return result;
    }
    pollfd p{fd, POLLOUT, 0};
    int err = 0;
    socklen_t len = sizeof err;
    if (::poll(&p, 1, MillisLeft(deadline)) != 1 ||
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
        ::close(fd);
        return result;
    }
    std::size_t sent = 0;
    while (sent < payload.size()) {
        const auto n = ::send(fd, payload.data() + sent, payload.size() - sent, MSG_NOSIGNAL);
        if (n > 0) {
            sent += static_cast<std::size_t>(n);
            continue;
        }
        if (n < 0 && errno != EAGAIN) break;
        pollfd w{fd, POLLOUT, 0};
        if (::poll(&w, 1, MillisLeft(deadline)) != 1) break;
    }
    if (sent != payload.size()) {
        ::close(fd);
        return result;
    }
    ::shutdown(fd, SHUT_WR);
    std::string received;
    char buf[65536];
    for (;;) {
        pollfd r{fd, POLLIN, 0};
        if (::poll(&r, 1, MillisLeft(deadline)) != 1) {
            ::close(fd);
            return result;  // timed out before the server closed
        }
        const auto n = ::recv(fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EAGAIN) continue;
        if (n < 0) {
            ::close(fd);
            return result;
        }
        if (n == 0) break;
        received.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return received;
}

std::optional<std::string> UdpExchange(const NetNamespace& ns, const std::string& address,
                                       std::uint16_t port, const std::string& payload,
                                       std::chrono::milliseconds timeout) {
    const int fd = ns.Socket(AF_INET, SOCK_DGRAM);
    const auto addr = Ipv4(address, port);
    std::optional<std::string> result;
    if (::sendto(fd, payload.data(), payload.size(), 0, reinterpret_cast<const sockaddr*>(&addr),
                 sizeof addr) == static_cast<ssize_t>(payload.size())) {
        pollfd p{fd, POLLIN, 0};
        char buf[65536];
        if (::poll(&p, 1, static_cast<int>(timeout.count())) == 1) {
            const auto n = ::recv(fd, buf, sizeof buf, 0);
            if (n >= 0) result = std::string(buf, static_cast<std::size_t>(n));
        }
    }
    ::close(fd);
    return result;
}

bool Ping(const NetNamespace& ns, const std::string& address, std::chrono::milliseconds timeout) {
    static std::atomic<std::uint16_t> sequence{1};
    const int fd = ns.Socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
    const auto addr = Ipv4(address, 0);
    const auto id = static_cast<std::uint16_t>(::getpid() & 0xffff);
    const std::uint16_t seq = sequence++;
    std::uint8_t packet[64] = {};
    auto* icmp = reinterpret_cast<icmphdr*>(packet);
    icmp->type = ICMP_ECHO;
    icmp->un.echo.id = htons(id);
    icmp->un.echo.sequence = htons(seq);
    std::memcpy(packet + sizeof(icmphdr), "decloud-ping", 12);
    icmp->checksum = Checksum(packet, sizeof packet);
    bool ok = false;
    if (::sendto(fd, packet, sizeof packet, 0, reinterpret_cast<const sockaddr*>(&addr),
                 sizeof addr) == static_cast<ssize_t>(sizeof packet)) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        std::uint8_t buf[1500];
        while (!ok) {
            pollfd p{fd, POLLIN, 0};
            if (::poll(&p, 1, MillisLeft(deadline)) != 1) break;
            sockaddr_in from{};
            socklen_t len = sizeof from;
            const auto n =
                ::recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
            if (n < static_cast<ssize_t>(sizeof(iphdr))) continue;
            const auto* ip = reinterpret_cast<const iphdr*>(buf);
            const std::size_t header = static_cast<std::size_t>(ip->ihl) * 4;
            if (static_cast<std::size_t>(n) < header + sizeof(icmphdr)) continue;
            const auto* reply = reinterpret_cast<const icmphdr*>(buf + header);
            ok = reply->type == ICMP_ECHOREPLY && ntohs(reply->un.echo.id) == id &&
                 ntohs(reply->un.echo.sequence) == seq &&
                 from.sin_addr.s_addr == addr.sin_addr.s_addr;
        }
    }
    ::close(fd);
    return ok;
}

}  // namespace decloud::testing
