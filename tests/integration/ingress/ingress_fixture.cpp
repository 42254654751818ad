#include "ingress_fixture.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace decloud::ingress_test {

using namespace std::chrono_literals;
using namespace std::string_literals;
using nlohmann::json;

namespace {

std::string ReadFile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::string Trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return std::string(s);
}

// "Name: value" lines into pairs (lines without a colon are skipped).
void AddHeaderLine(Headers& headers, std::string_view line) {
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) return;
    headers.emplace_back(std::string(line.substr(0, colon)), Trim(line.substr(colon + 1)));
}

std::vector<std::string_view> SplitLines(std::string_view text) {
    std::vector<std::string_view> lines;
    std::size_t start = 0;
    while (start <= text.size()) {
        const auto end = text.find("\r\n", start);
        if (end == std::string_view::npos) {
            if (start < text.size()) lines.push_back(text.substr(start));
            break;
        }
        lines.push_back(text.substr(start, end - start));
        start = end + 2;
    }
    return lines;
}

int StatusOf(std::string_view status_line) {
    // "HTTP/1.1 200 OK"
    if (status_line.size() < 12) return 0;
    return std::atoi(std::string(status_line.substr(9, 3)).c_str());
}

}  // namespace

std::string Lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

std::string HeaderValue(const Headers& headers, std::string_view name) {
    for (const auto& [k, v] : headers)
        if (k.size() == name.size() && strncasecmp(k.data(), name.data(), name.size()) == 0)
            return v;
    return {};
}

std::vector<std::string> HeaderValues(const Headers& headers, std::string_view name) {
    std::vector<std::string> values;
    for (const auto& [k, v] : headers)
        if (k.size() == name.size() && strncasecmp(k.data(), name.data(), name.size()) == 0)
            values.push_back(v);
    return values;
}

json CurlResult::Json() const { return json::parse(body, nullptr, /*allow_exceptions=*/false); }

CurlResult Curl(std::vector<std::string> args, std::chrono::seconds timeout) {
    testing::TempDir files("decloud-curl");
    const std::string head_path = files.path() + "/head", body_path = files.path() + "/body";
    std::vector<std::string> full{
        "-sS", "-D", head_path, "-o", body_path, "--max-time", std::to_string(timeout.count())};
    full.insert(full.end(), args.begin(), args.end());
    const auto run = testing::RunCommand("/usr/bin/curl", full, {}, {}, timeout + 10s);
    CurlResult result;
    result.exit_code = run.exit_code;
    result.err = run.err;
    result.body = ReadFile(body_path);
    // Blocks: "HTTP/..." lines start a response; what follows the final one is trailers.
    bool in_final_block = false, after_final = false;
    const std::string head = ReadFile(head_path);
    for (const auto line : SplitLines(head)) {
        if (line.starts_with("HTTP/")) {
            const int status = StatusOf(line);
            if (status >= 100 && status < 200 && status != 101) {
                result.interim_statuses.push_back(status);
                in_final_block = false;
            } else {
                result.status = status;
                result.status_line = std::string(line);
                result.headers.clear();
                in_final_block = true;
            }
            after_final = false;
            continue;
        }
        if (line.empty()) {
            if (in_final_block) after_final = true;
            in_final_block = false;
            continue;
        }
        if (in_final_block)
            AddHeaderLine(result.headers, line);
        else if (after_final)
            AddHeaderLine(result.trailers, line);
    }
    return result;
}

testing::CommandResult Bash(const std::string& script, std::chrono::seconds timeout) {
    return testing::RunCommand("/bin/bash", {"-c", "set -euo pipefail\n" + script}, {}, {},
                               timeout);
}

// --- raw sockets -----------------------------------------------------------------------------

RawConnection::RawConnection(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) Close();
}

RawConnection::~RawConnection() { Close(); }

void RawConnection::Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
}

bool RawConnection::Send(std::string_view bytes) {
    std::size_t sent = 0;
    while (fd_ >= 0 && sent < bytes.size()) {
        const auto n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) return false;
        sent += static_cast<std::size_t>(n);
    }
    return fd_ >= 0;
}

bool RawConnection::Fill(std::chrono::milliseconds timeout) {
    if (fd_ < 0 || peer_closed_) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(std::max<long>(timeout.count(), 0))) <= 0) return false;
    char buf[65536];
    const auto n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) {
        peer_closed_ = true;
        return false;
    }
    buffer_.append(buf, static_cast<std::size_t>(n));
    return true;
}

namespace {

std::chrono::milliseconds Left(std::chrono::steady_clock::time_point deadline) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(deadline -
                                                                 std::chrono::steady_clock::now());
}

}  // namespace

std::optional<RawResponse> RawConnection::ReadResponse(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        std::size_t consumed = 0;
        if (auto response = ParseResponse(buffer_, peer_closed_, &consumed)) {
            buffer_.erase(0, consumed);
            return response;
        }
        if (peer_closed_ || Left(deadline).count() <= 0) return std::nullopt;
        Fill(Left(deadline));
    }
}

std::string RawConnection::ReadUntil(std::string_view marker, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (const auto at = buffer_.find(marker); at != std::string::npos) {
            std::string out = buffer_.substr(0, at + marker.size());
            buffer_.erase(0, at + marker.size());
            return out;
        }
        if (peer_closed_ || Left(deadline).count() <= 0) return buffer_;
        Fill(Left(deadline));
    }
}

RawConnection::Drained RawConnection::ReadUntilClosed(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!peer_closed_ && Left(deadline).count() > 0) Fill(Left(deadline));
    Drained drained{std::move(buffer_), peer_closed_};
    buffer_.clear();
    return drained;
}

std::optional<RawResponse> ParseResponse(std::string_view raw, bool eof, std::size_t* consumed) {
    const auto head_end = raw.find("\r\n\r\n");
    if (head_end == std::string_view::npos) return std::nullopt;
    const auto lines = SplitLines(raw.substr(0, head_end));
    if (lines.empty() || !lines[0].starts_with("HTTP/1.")) return std::nullopt;
    RawResponse response;
    response.status_line = std::string(lines[0]);
    response.status = StatusOf(lines[0]);
    for (std::size_t i = 1; i < lines.size(); ++i) AddHeaderLine(response.headers, lines[i]);
    std::size_t pos = head_end + 4;
    const bool no_body = (response.status >= 100 && response.status < 200) ||
                         response.status == 204 || response.status == 304;
    const auto length = response.Header("Content-Length");
    const auto encoding = response.Header("Transfer-Encoding");
    if (no_body) {
    } else if (strcasecmp(encoding.c_str(), "chunked") == 0) {
        for (;;) {
            const auto line_end = raw.find("\r\n", pos);
            if (line_end == std::string_view::npos) return std::nullopt;
            const auto size_text = std::string(raw.substr(pos, line_end - pos));
            char* end = nullptr;
            const auto size = std::strtoull(size_text.c_str(), &end, 16);
            if (end == size_text.c_str()) return std::nullopt;
            pos = line_end + 2;
            if (size == 0) {
                // Trailers up to an empty line.
                for (;;) {
                    const auto trailer_end = raw.find("\r\n", pos);
                    if (trailer_end == std::string_view::npos) return std::nullopt;
                    const auto line = raw.substr(pos, trailer_end - pos);
                    pos = trailer_end + 2;
                    if (line.empty()) break;
                    AddHeaderLine(response.trailers, line);
                }
                break;
            }
            if (raw.size() < pos + size + 2) return std::nullopt;
            response.body.append(raw.substr(pos, size));
            pos += size + 2;
        }
    } else if (!length.empty()) {
        const auto size = std::stoull(length);
        if (raw.size() < pos + size) return std::nullopt;
        response.body = std::string(raw.substr(pos, size));
        pos += size;
    } else {
        if (!eof) return std::nullopt;
        response.body = std::string(raw.substr(pos));
        pos = raw.size();
    }
    *consumed = pos;
    return response;
}

long ProcStatusKb(pid_t pid, std::string_view field) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.starts_with(field) && line.size() > field.size() && line[field.size()] == ':')
            return std::atol(line.c_str() + field.size() + 1);
    }
    return -1;
}

// --- fixture ---------------------------------------------------------------------------------

namespace {

// Starts `command` (each wrapper - setpriv, prlimit, env - execs the next, so the pid is the
// daemon's) with SIGKILL as its parent-death signal: a test binary that crashes takes its
// daemons along instead of leaving them running.
std::unique_ptr<testing::ChildProcess> Spawn(std::vector<std::string> command,
                                             const std::string& log_path) {
    std::vector<std::string> args{"--pdeathsig", "KILL", "--"};
    args.insert(args.end(), command.begin(), command.end());
    return std::make_unique<testing::ChildProcess>("/usr/bin/setpriv", std::move(args), log_path);
}

}  // namespace

void IngressTest::SetUp() {
    ASSERT_TRUE(std::filesystem::exists(UpstreamDir() + "/node_modules/ws"))
        << "the upstream's npm packages are missing: npm ci --prefix " << UpstreamDir();
    // FreeTcpPort's ports were free a moment ago; another process may take one before node
    // binds it, so a start that meets EADDRINUSE is retried with fresh ports.
    for (int attempt = 1;; ++attempt) {
        app_port_ = testing::FreeTcpPort();
        extra_port_ = testing::FreeTcpPort();
        allowed_port_ = testing::FreeTcpPort();
        secret_port_ = testing::FreeTcpPort();
        closed_port_ = testing::FreeTcpPort();
        control_port_ = testing::FreeTcpPort();
        const std::string ports = std::to_string(app_port_) + "," + std::to_string(extra_port_) +
                                  "," + std::to_string(allowed_port_) + "," +
                                  std::to_string(secret_port_);
        upstream_ = Spawn({"/usr/bin/env", "node", UpstreamDir() + "/upstream.js", "--ports", ports,
                           "--control", std::to_string(control_port_)},
                          dir_.path() + "/upstream-" + std::to_string(attempt) + ".log");
        bool in_use = false;
        const bool listening = testing::WaitUntil(
            [&] {
                const auto log = upstream_->Log();
                in_use = log.find("EADDRINUSE") != std::string::npos;
                return in_use || log.find("upstream listening") != std::string::npos;
            },
            15s, 20ms);
        if (listening && !in_use) break;
        ASSERT_TRUE(in_use && attempt < 5) << upstream_->Log();
        upstream_->Terminate();
    }
    routes_path_ = dir_.path() + "/routes.json";
    WriteRoutes();
}

void IngressTest::TearDown() {
    if (proxy_ && !proxy_stopped_) {
        const int code = StopProxy();
        EXPECT_EQ(code, 0) << "decloud-ingress did not exit cleanly on SIGTERM:\n" << proxy_->Log();
    }
    if (upstream_) upstream_->Terminate(5s);
    if (HasFailure()) {
        if (proxy_) std::cerr << "--- decloud-ingress log ---\n" << proxy_->Log() << "\n";
        if (upstream_) std::cerr << "--- upstream log ---\n" << upstream_->Log() << "\n";
    }
}

void IngressTest::WriteRoutes(const json& extra_routes) {
    json routes = json::array();
    routes.push_back({{"vmId", kAppId},
                      {"name", "app"},
                      {"address", "127.0.0.1"},
                      {"defaultPort", app_port_},
                      {"extraPorts", {extra_port_}}});
    routes.push_back({{"vmId", kDownId},
                      {"name", "down"},
                      {"address", "127.0.0.1"},
                      {"defaultPort", closed_port_},
                      {"extraPorts", json::array()}});
    for (const auto& r : extra_routes) routes.push_back(r);
    // Written aside and renamed so a SIGHUP never reads half a file.
    const std::string tmp = routes_path_ + ".tmp";
    std::ofstream(tmp) << json{{"routes", routes}}.dump(2);
    std::filesystem::rename(tmp, routes_path_);
}

void IngressTest::StartProxy(const ProxyOptions& options) {
    // The proxy is an ASan build; a small quarantine keeps freed buffers from counting as peak
    // memory. /usr/bin/env replaces ASAN_OPTIONS rather than adding a second copy.
    const char* inherited = std::getenv("ASAN_OPTIONS");
    std::string asan = inherited ? std::string(inherited) + ":" : std::string();
    asan += "quarantine_size_mb=8";
    std::vector<std::string> command;
    if (proxy_soft_fd_limit_) {
        rlimit limit{};
        ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &limit), 0);
        command = {"/usr/bin/prlimit",
                   "--nofile=" + std::to_string(*proxy_soft_fd_limit_) + ":" +
                       std::to_string(limit.rlim_max),
                   "--"};
    }
    command.insert(command.end(),
                   {"/usr/bin/env"s, "ASAN_OPTIONS=" + asan, std::string(DECLOUD_INGRESS_BIN),
                    "--listen"s, "127.0.0.1:0"s, "--routes"s, routes_path_, "--vm-domain"s,
                    std::string(kVmDomain), "--allowed-ports"s, std::to_string(allowed_port_)});
    command.insert(command.end(), options.extra_args.begin(), options.extra_args.end());
    proxy_ = Spawn(std::move(command), dir_.path() + "/ingress.log");
    proxy_stopped_ = false;
    const std::string ready = "decloud-ingress listening on 127.0.0.1:";
    std::string log;
    const bool up = testing::WaitUntil(
        [&] {
            log = proxy_->Log();
            return log.find(ready) != std::string::npos || !proxy_->Running();
        },
        30s, 20ms);
    const auto at = log.find(ready);
    ASSERT_TRUE(up && at != std::string::npos) << "decloud-ingress did not start:\n" << log;
    proxy_port_ = static_cast<std::uint16_t>(std::atoi(log.c_str() + at + ready.size()));
    ASSERT_NE(proxy_port_, 0) << log;
}

int IngressTest::StopProxy() {
    proxy_stopped_ = true;
    return proxy_->Terminate(20s);
}

json IngressTest::UpstreamStats() {
    const auto reply = testing::HttpRequest(control_port_, "GET", "/__stats");
    if (!reply || reply->status != 200) return json::object();
    return json::parse(reply->body, nullptr, /*allow_exceptions=*/false);
}

std::vector<std::string> IngressTest::ProxyLogLines(std::string_view needle) const {
    std::vector<std::string> lines;
    std::istringstream log(proxy_->Log());
    for (std::string line; std::getline(log, line);) {
        if (line.find(needle) != std::string::npos) lines.push_back(line);
    }
    return lines;
}

json IngressTest::ProxyCounters() {
    const auto stats_lines = [&] { return ProxyLogLines("{\"stats\""); };
    const auto before = stats_lines().size();
    if (::kill(proxy_->pid(), SIGUSR1) != 0) return json::object();
    json stats = json::object();
    testing::WaitUntil(
        [&] {
            const auto lines = stats_lines();
            if (lines.size() <= before) return false;
            stats = json::parse(lines.back(), nullptr, /*allow_exceptions=*/false)["stats"];
            return true;
        },
        std::chrono::seconds{5}, std::chrono::milliseconds{20});
    return stats;
}

std::string IngressTest::VmPath(std::string_view id, std::uint16_t port, std::string_view rest) {
    return "/api/vms/" + std::string(id) + "/proxy/http/" + std::to_string(port) +
           std::string(rest);
}

std::string IngressTest::ProxyUrl(std::string_view target) const {
    return "http://127.0.0.1:" + std::to_string(proxy_port_) + std::string(target);
}

std::string IngressTest::ProxyWsUrl(std::string_view target) const {
    return "ws://127.0.0.1:" + std::to_string(proxy_port_) + std::string(target);
}

json IngressTest::WsClient(std::vector<std::string> args, std::chrono::seconds timeout) {
    args.insert(args.begin(), {"node", UpstreamDir() + "/ws-client.js"});
    const auto run = testing::RunCommand("/usr/bin/env", args, {}, {}, timeout);
    auto report = json::parse(run.out, nullptr, /*allow_exceptions=*/false);
    if (report.is_discarded())
        return json{{"error",
                     "ws-client exit " + std::to_string(run.exit_code) + ": " + run.out + run.err}};
    return report;
}

}  // namespace decloud::ingress_test
