#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "agent/ports/wireguard_control.hpp"
#include "decloud/common/result.hpp"

namespace decloud::agent::adapters {

// Where wireguard-go puts the UAPI socket of each interface (fixed in wireguard-go, and global:
// not per network namespace, hence interface names unique per host).
inline constexpr const char* kWireGuardSocketDir = "/var/run/wireguard";

struct UapiWireGuardOptions {
    std::string wireguard_go = "wireguard-go";  // looked up in PATH unless it contains a '/'
    // Network namespace (`ip netns` name) of the interfaces; "" = the agent's own.
    std::string netns;
    // wireguard-go's output goes to <log_dir>/<interface>.log; "" = /dev/null.
    std::string log_dir;
    // How long a starting wireguard-go may take to create its interface and socket, and a
    // deleted interface's daemon to exit.
    std::chrono::milliseconds start_timeout{10000};
    std::chrono::milliseconds uapi_timeout{5000};  // one UAPI request
};

// One UAPI request on the socket at `socket_path` ("get=1\n\n" or a set=1 body); returns the
// reply up to and including its terminating empty line. kUnavailable if nothing listens there,
// kTimeout if the daemon does not answer in time. Thread-safe.
common::Result<std::string> UapiRequest(const std::string& socket_path, std::string_view request,
                                        std::chrono::milliseconds timeout);

// ports::WireGuardControl on userspace wireguard-go, configured over its UAPI socket.
//
// Process ownership: wireguard-go runs in the foreground (`-f`, WG_PROCESS_FOREGROUND=1) as a
// child of the agent, in its own session (signals to the agent's process group do not reach it)
// and, with options.netns, inside that namespace (setns between fork and exec). The agent reaps
// it; it is not killed when the agent stops, so tunnels survive an agent restart: Ensure then
// adopts the interface it finds (link present and its socket answering). wireguard-go exits by
// itself when its interface is deleted, which is how Remove stops it (SIGTERM, then SIGKILL by
// pid, only for children that do not go).
//
// Addresses and link state are set over rtnetlink (no `ip`). Ensure notices an interface that
// was deleted behind its back (no link, no socket) and starts it again; a link with that name
// but no UAPI socket, or a socket whose interface is in another namespace, is kConflict.
// Reconciling an existing interface sends only the UAPI changes (domain::relay::PlanUapiSet),
// so peers keep their sessions. Thread-safe (operations are serialised).
class UapiWireGuard final : public ports::WireGuardControl {
  public:
    explicit UapiWireGuard(UapiWireGuardOptions options = {});
    // Leaves the interfaces and their daemons running (see above).
    ~UapiWireGuard() override = default;
    UapiWireGuard(const UapiWireGuard&) = delete;
    UapiWireGuard& operator=(const UapiWireGuard&) = delete;

    // ports::WireGuardControl
    common::Status Ensure(const ports::WireGuardConfig& config) override;
    common::Status Remove(const std::string& interface) override;
    common::Result<ports::WireGuardState> Read(const std::string& interface) override;
    common::Result<std::vector<std::string>> List() override;

    // The pid of the wireguard-go this object started for `interface`, or -1 (none, or adopted).
    pid_t DaemonPid(const std::string& interface);

  private:
    std::string SocketPath(const std::string& interface) const;
    void ReapLocked();
    common::Status StartDaemonLocked(const std::string& interface);
    common::Status StopDaemonLocked(const std::string& interface);

    UapiWireGuardOptions options_;
    std::mutex mu_;
    std::map<std::string, pid_t> children_;  // interface -> wireguard-go we started
};

}  // namespace decloud::agent::adapters
