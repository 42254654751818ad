#pragma once

// What the ingress proxy tests share: the real decloud-ingress binary and the Node upstream
// (tests/tools/upstream) on loopback, curl and the `ws` client as judges, raw sockets for requests
// no client library would send. Everything a test starts is stopped by pid in TearDown, also when
// the test fails.

#include <gtest/gtest.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "decloud/testing/process.hpp"

namespace decloud::ingress_test {

using Headers = std::vector<std::pair<std::string, std::string>>;

std::string Lower(std::string s);

// Case-insensitive header lookups over a parsed header list.
std::string HeaderValue(const Headers& headers, std::string_view name);
std::vector<std::string> HeaderValues(const Headers& headers, std::string_view name);

// What curl saw for one URL (-D and -o into files; trailers are what followed the final block).
struct CurlResult {
    int exit_code = -1;
    std::string err;
    int status = 0;           // final response; 0 if none
    std::string status_line;  // e.g. "HTTP/1.1 404 Not Found"
    std::vector<int> interim_statuses;
    Headers headers;
    Headers trailers;
    std::string body;

    std::string Header(std::string_view name) const { return HeaderValue(headers, name); }
    std::vector<std::string> HeaderList(std::string_view name) const {
        return HeaderValues(headers, name);
    }
    nlohmann::json Json() const;  // the body as JSON (null when it is not JSON)
};

// `curl -sS -D ... -o ... --max-time` with `args` (one URL).
CurlResult Curl(std::vector<std::string> args,
                std::chrono::seconds timeout = std::chrono::seconds{30});

// Runs `script` with bash -c (pipefail); for the large transfers that pipe curl into openssl.
testing::CommandResult Bash(const std::string& script, std::chrono::seconds timeout);

// A parsed HTTP/1.1 response read from a raw socket.
struct RawResponse {
    int status = 0;
    std::string status_line;
    Headers headers;
    Headers trailers;
    std::string body;

    std::string Header(std::string_view name) const { return HeaderValue(headers, name); }
};

// A plain TCP connection to 127.0.0.1 for byte-exact requests.
class RawConnection {
  public:
    explicit RawConnection(std::uint16_t port);
    ~RawConnection();
    RawConnection(const RawConnection&) = delete;
    RawConnection& operator=(const RawConnection&) = delete;

    bool connected() const { return fd_ >= 0; }
    bool Send(std::string_view bytes);
    // Reads one whole response (Content-Length, chunked or close-delimited); nullopt on timeout or
    // a connection closed before the response was complete.
    std::optional<RawResponse> ReadResponse(
        std::chrono::milliseconds timeout = std::chrono::seconds{10});
    // Reads until `marker` was received (returns everything so far, marker included, keeping the
    // rest buffered) or closed/timeout (returns what came, without consuming).
    std::string ReadUntil(std::string_view marker, std::chrono::milliseconds timeout);
    // Reads until the peer closes. `closed` is false when the timeout came first.
    struct Drained {
        std::string bytes;
        bool closed = false;
    };
    Drained ReadUntilClosed(std::chrono::milliseconds timeout);
    void Close();

  private:
    // Appends what arrives within `timeout` (one recv); false on close, error or timeout.
    bool Fill(std::chrono::milliseconds timeout);

    int fd_ = -1;
    bool peer_closed_ = false;
    std::string buffer_;
};

// Parses one response at the start of `raw`; nullopt when incomplete or malformed. `eof` tells
// whether `raw` ends because the connection closed (completes a close-delimited body).
std::optional<RawResponse> ParseResponse(std::string_view raw, bool eof, std::size_t* consumed);

// Kilobytes of a /proc/<pid>/status field such as "VmHWM" or "VmRSS"; -1 if unreadable.
long ProcStatusKb(pid_t pid, std::string_view field);

inline constexpr std::string_view kAppId = "0b7c6d2e-3f4a-4b5c-8d6e-7f8091a2b3c4";
inline constexpr std::string_view kDownId = "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f";
inline constexpr std::string_view kUnknownId = "9e8d7c6b-5a49-4382-9170-6f5e4d3c2b1a";
inline constexpr std::string_view kVmDomain = "vms.localhost";

struct ProxyOptions {
    std::vector<std::string> extra_args;  // e.g. {"--idle-timeout-ms", "500"}
};

class IngressTest : public ::testing::Test {
  protected:
    void SetUp() override;
    void TearDown() override;

    // Starts the proxy (routes: "app" -> upstream app_port_ with extra_port_, "down" -> a closed
    // port; --allowed-ports allowed_port_) and waits for its ready line. Fails the test if it
    // does not come up.
    void StartProxy(const ProxyOptions& options = {});
    // SIGTERM and the exit code (0 expected; ASan leak reports make it non-zero).
    int StopProxy();
    void WriteRoutes(const nlohmann::json& extra_routes = nlohmann::json::array());

    // GET /__stats from the upstream's control port (not through the proxy, not counted).
    nlohmann::json UpstreamStats();
    // The proxy's counters, from the line decloud-ingress prints on SIGUSR1 (an empty object if
    // none came within 5 s).
    nlohmann::json ProxyCounters();
    // The lines of the proxy's output that contain `needle`.
    std::vector<std::string> ProxyLogLines(std::string_view needle) const;

    // "/api/vms/{id}/proxy/http/{port}{rest}"
    static std::string VmPath(std::string_view id, std::uint16_t port, std::string_view rest);
    std::string AppPath(std::string_view rest) const { return VmPath(kAppId, app_port_, rest); }
    std::string ProxyUrl(std::string_view target) const;
    std::string ProxyWsUrl(std::string_view target) const;
    static std::string AppHost() { return "app." + std::string(kVmDomain); }

    // Memory of the proxy process in KiB.
    long ProxyRssKb() const { return ProcStatusKb(proxy_->pid(), "VmRSS"); }
    long ProxyPeakRssKb() const { return ProcStatusKb(proxy_->pid(), "VmHWM"); }

    // Runs tests/tools/upstream/ws-client.js; its JSON report (or {"error": ...}).
    nlohmann::json WsClient(std::vector<std::string> args,
                            std::chrono::seconds timeout = std::chrono::seconds{60});

    static std::string UpstreamDir() { return DECLOUD_UPSTREAM_DIR; }

    testing::TempDir dir_{"decloud-ingress"};
    std::uint16_t app_port_ = 0;      // the VM's default port
    std::uint16_t extra_port_ = 0;    // in the VM's extraPorts
    std::uint16_t allowed_port_ = 0;  // in --allowed-ports
    std::uint16_t secret_port_ = 0;   // upstream listens here but no route may reach it
    std::uint16_t closed_port_ = 0;   // nothing listens ("down" VM's default port)
    std::uint16_t control_port_ = 0;  // the upstream's /__stats, never reached via the proxy
    std::uint16_t proxy_port_ = 0;
    std::string routes_path_;
    std::unique_ptr<testing::ChildProcess> upstream_;
    std::unique_ptr<testing::ChildProcess> proxy_;
    bool proxy_stopped_ = false;
    // When set, StartProxy starts the proxy with this soft RLIMIT_NOFILE (hard limit unchanged).
    std::optional<unsigned long> proxy_soft_fd_limit_;
};

}  // namespace decloud::ingress_test
