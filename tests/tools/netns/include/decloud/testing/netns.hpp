#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "decloud/testing/process.hpp"

// Network namespaces for tests: build small networks (an "internet", a relay, a carrier NAT, a
// node behind CGNAT...) out of namespaces and veth pairs, run commands, daemons and sockets
// inside them, and have all of it removed when the objects go away, also when a test fails.
// Traffic stays inside the namespaces the test created. Needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN)
// and iproute2. The namespace setup shells out to `ip` (a test tool may; product code does not).
namespace decloud::testing {

// A network namespace of its own, named "dtn<pid>-<n>-<suffix>" (pid of the test process, n a
// per-process counter), with lo up. The destructor kills every process that still runs inside
// (SIGTERM, then SIGKILL after 2 s; they are the test's) and deletes the namespace, which
// removes its interfaces and the veth ends in it. Namespaces left by crashed runs (their test
// pid is gone) are removed when the first namespace of a process is created.
// Constructors and helpers throw std::runtime_error with the command's stderr on failure.
class NetNamespace {
  public:
    explicit NetNamespace(const std::string& suffix);
    ~NetNamespace();
    NetNamespace(const NetNamespace&) = delete;
    NetNamespace& operator=(const NetNamespace&) = delete;

    // The name for `ip netns exec`, and for the agent adapters' netns options.
    const std::string& name() const { return name_; }

    // Runs a command inside (ip netns exec <name> argv...) to completion.
    CommandResult Exec(const std::vector<std::string>& argv,
                       std::chrono::milliseconds timeout = std::chrono::seconds{30}) const;
    // Exec that throws when the command fails; returns its stdout.
    std::string Run(const std::vector<std::string>& argv) const;

    void AddAddress(const std::string& device, const std::string& cidr) const;
    void SetUp(const std::string& device) const;
    // `ip route add <destination> via <gateway>`; destination may be "default".
    void AddRoute(const std::string& destination, const std::string& gateway) const;
    // net.ipv4.ip_forward=1 in this namespace.
    void EnableForwarding() const;
    // An nft ruleset (nft -f -) applied inside, e.g. a masquerading carrier NAT.
    void ApplyNft(const std::string& ruleset) const;

    // A daemon inside the namespace; the ChildProcess kills it by its pid. `executable` is
    // looked up in PATH.
    std::unique_ptr<ChildProcess> Spawn(
        const std::string& executable, std::vector<std::string> args, std::string log_path,
        std::vector<std::pair<std::string, std::string>> extra_env = {}) const;

    // Runs `fn` on a thread that joined this namespace; sockets it creates stay in it.
    // Exceptions from `fn` are rethrown here.
    void RunInside(const std::function<void()>& fn) const;
    // A socket inside this namespace (close it yourself); throws on failure.
    int Socket(int domain, int type, int protocol = 0) const;

    // Processes running inside now (other than the test process itself).
    std::vector<int> Pids() const;

  private:
    std::string name_;
};

// A veth pair with `a_device` in `a` and `b_device` in `b` (created directly inside them, so
// the names only need to be unique per namespace), both up. Gone when a namespace is deleted.
void ConnectVeth(const NetNamespace& a, const std::string& a_device, const NetNamespace& b,
                 const std::string& b_device);

enum class Transport { kTcp, kUdp };

// An echo server inside a namespace: TCP connections get back what they sent once they
// half-close; UDP datagrams are answered one for one. It remembers the peer address of every
// connection/datagram (to check NAT). Served by one thread; stopped and joined by the
// destructor.
class EchoServer {
  public:
    EchoServer(const NetNamespace& ns, Transport transport, const std::string& address,
               std::uint16_t port);
    ~EchoServer();
    EchoServer(const EchoServer&) = delete;
    EchoServer& operator=(const EchoServer&) = delete;

    std::vector<std::string> Peers() const;  // "a.b.c.d" of each peer, in order

  private:
    void Serve();

    Transport transport_;
    int fd_ = -1;
    int stop_pipe_[2] = {-1, -1};
    mutable std::mutex mu_;
    std::vector<std::string> peers_;
    std::thread thread_;
};

// Connects from inside `ns` to address:port over TCP, sends `payload`, half-closes and returns
// everything received until the server closes. Empty optional on connection failure or timeout.
std::optional<std::string> TcpExchange(const NetNamespace& ns, const std::string& address,
                                       std::uint16_t port, const std::string& payload,
                                       std::chrono::milliseconds timeout = std::chrono::seconds{5});
// Sends one UDP datagram from inside `ns` and returns the first answer within `timeout`.
std::optional<std::string> UdpExchange(const NetNamespace& ns, const std::string& address,
                                       std::uint16_t port, const std::string& payload,
                                       std::chrono::milliseconds timeout = std::chrono::seconds{2});
// One ICMP echo request from inside `ns`; true if the reply came within `timeout`.
bool Ping(const NetNamespace& ns, const std::string& address,
          std::chrono::milliseconds timeout = std::chrono::seconds{1});

}  // namespace decloud::testing
