#include "decloud/testing/libvirt_sandbox.hpp"

#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string_view>

#ifndef DECLOUD_SOURCE_DIR
#error "DECLOUD_SOURCE_DIR must be defined (see tests/tools/libvirt/CMakeLists.txt)"
#endif

namespace decloud::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr std::string_view kNetnsPrefix = "dcl-";
constexpr const char* kNetnsDir = "/run/netns";
constexpr const char* kEtcNetnsDir = "/etc/netns";
constexpr const char* kLibvirtdPidFile = "/run/libvirtd.pid";
constexpr const char* kVirtlogdPidFile = "/run/virtlogd.pid";
constexpr const char* kLibvirtSocket = "/run/libvirt/libvirt-sock";
constexpr const char* kVirtlogdSocket = "/run/libvirt/virtlogd-sock";
constexpr const char* kDnsmasqPidFile = "/run/libvirt/network/default.pid";
constexpr const char* kDefaultNetworkXml = "/usr/share/libvirt/networks/default.xml";
constexpr const char* kStateDirPrefix = "decloud-libvirt-";  // under /tmp
constexpr const char* kQemuLogDir = "/var/log/libvirt/qemu";
// libvirtd's QEMU driver looks this user up before it reads qemu.conf.
constexpr const char* kQemuUser = "libvirt-qemu";
// State a libvirtd leaves behind; stale copies make the next one try to reconnect to dead guests
// and networks.
constexpr const char* kStateDirs[] = {"/run/libvirt/qemu", "/run/libvirt/network",
                                      "/var/lib/libvirt/dnsmasq"};
constexpr const char* kQemuConf =
    "# Written by decloud::testing::LibvirtSandbox for the daemons in its namespace.\n"
    "user = \"root\"\n"
    "group = \"root\"\n"
    "security_driver = \"none\"\n";

void WriteFile(const fs::path& path, const std::string& content) {
    std::ofstream out(path, std::ios::trunc);
    out << content;
    if (!out) throw std::runtime_error("LibvirtSandbox: cannot write " + path.string());
}

std::string Tail(const std::string& text, std::size_t max_bytes) {
    return text.size() <= max_bytes ? text : "..." + text.substr(text.size() - max_bytes);
}

std::string Trim(std::string s) {
    const auto not_space = [](unsigned char c) { return !std::isspace(c); };
    s.erase(s.begin(), std::find_if(s.begin(), s.end(), not_space));
    s.erase(std::find_if(s.rbegin(), s.rend(), not_space).base(), s.end());
    return s;
}

std::optional<int> ParsePid(std::string_view text) {
    int pid = 0;
    const auto* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, pid);
    if (ec != std::errc{} || ptr != end || pid <= 0) return std::nullopt;
    return pid;
}

std::optional<int> PidFromFile(const fs::path& path) { return ParsePid(Trim(ReadFile(path))); }

// Alive and not a zombie: processes of a crashed run are reparented to an init that may never
// reap them, and a zombie holds nothing.
bool ProcessAlive(int pid) {
    if (pid <= 0) return false;
    if (::kill(pid, 0) != 0 && errno != EPERM) return false;
    const std::string stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
    const auto paren = stat.rfind(')');
    if (paren == std::string::npos || paren + 2 >= stat.size()) return false;
    const char state = stat[paren + 2];
    return state != 'Z' && state != 'X';
}

// Every process whose network namespace is the one bound at `ns_path`.
std::vector<int> PidsInNetns(const fs::path& ns_path) {
    struct stat ns {};
    if (::stat(ns_path.c_str(), &ns) != 0) return {};
    std::vector<int> pids;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator("/proc", ec)) {
        const auto pid = ParsePid(entry.path().filename().string());
        if (!pid || *pid == ::getpid()) continue;
        struct stat st {};
        const std::string link = entry.path().string() + "/ns/net";
        if (::stat(link.c_str(), &st) == 0 && st.st_ino == ns.st_ino && st.st_dev == ns.st_dev &&
            ProcessAlive(*pid)) {
            pids.push_back(*pid);
        }
    }
    return pids;
}

// SIGTERM, then SIGKILL for whatever is left after `grace`.
void KillAll(const std::vector<int>& pids, std::chrono::milliseconds grace) {
    if (pids.empty()) return;
    for (const int pid : pids) ::kill(pid, SIGTERM);
    const auto all_dead = [&] {
        return std::none_of(pids.begin(), pids.end(), [](int pid) { return ProcessAlive(pid); });
    };
    if (WaitUntil(all_dead, grace, 50ms)) return;
    for (const int pid : pids) {
        if (ProcessAlive(pid)) ::kill(pid, SIGKILL);
    }
    WaitUntil(all_dead, 5s, 50ms);
}

bool SocketAccepts(const char* path) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path);
    const bool ok = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    return ok;
}

CommandResult Ip(const std::vector<std::string>& args) {
    return RunCommand(FindExecutable("ip"), args, {}, {}, 30s);
}

// Removes a sandbox's namespace and /etc overlay after killing everything still running in it.
void RemoveSandboxNamespace(const std::string& name) {
    const fs::path ns_path = fs::path(kNetnsDir) / name;
    if (fs::exists(ns_path)) {
        KillAll(PidsInNetns(ns_path), 10s);
        Ip({"netns", "delete", name});
    }
    std::error_code ec;
    fs::remove_all(fs::path(kEtcNetnsDir) / name, ec);
    // The sandbox's logs: /tmp/decloud-libvirt-<name>-XXXXXX.
    const std::string logs_prefix = std::string(kStateDirPrefix) + name + "-";
    for (const auto& entry : fs::directory_iterator("/tmp", ec)) {
        if (entry.path().filename().string().starts_with(logs_prefix)) {
            std::error_code ignored;
            fs::remove_all(entry.path(), ignored);
        }
    }
}

// Sandboxes of earlier runs that crashed: their namespace is dcl-<pid> with our /etc/netns
// overlay, and that pid is gone. A live owner means another sandbox runs now: we cannot share
// libvirtd's global sockets with it.
void RemoveStaleSandboxes() {
    std::set<std::string> names;
    for (const char* dir : {kNetnsDir, kEtcNetnsDir}) {
        std::error_code ec;
        for (const auto& entry : fs::directory_iterator(dir, ec)) {
            const std::string name = entry.path().filename().string();
            if (name.starts_with(kNetnsPrefix) && ParsePid(name.substr(kNetnsPrefix.size())))
                names.insert(name);
        }
    }
    for (const auto& name : names) {
        if (!fs::exists(fs::path(kEtcNetnsDir) / name / "libvirt")) continue;  // not a sandbox
        const int owner = *ParsePid(name.substr(kNetnsPrefix.size()));
        if (owner != ::getpid() && ProcessAlive(owner)) {
            throw std::runtime_error("LibvirtSandbox: another sandbox (namespace " + name +
                                     ", test pid " + std::to_string(owner) +
                                     ") is running; libvirtd's sockets are global, so only one "
                                     "can run at a time (use RESOURCE_LOCK libvirtd)");
        }
        RemoveSandboxNamespace(name);
    }
}

void RequireNoForeignDaemon(const char* pid_file, const char* socket, const char* what) {
    const auto pid = PidFromFile(pid_file);
    if ((pid && ProcessAlive(*pid)) || SocketAccepts(socket)) {
        throw std::runtime_error(std::string("LibvirtSandbox: a ") + what +
                                 " that is not ours is running (" + pid_file + ": " +
                                 (pid ? std::to_string(*pid) : std::string("none")) + ", socket " +
                                 socket + "); stop it, the sandbox needs /run/libvirt to itself");
    }
}

// Called only while no libvirtd runs.
void RemoveLibvirtState() {
    for (const char* dir : kStateDirs) {
        std::error_code ec;
        for (const auto& entry : fs::directory_iterator(dir, ec)) {
            std::error_code ignored;
            fs::remove_all(entry.path(), ignored);
        }
    }
}

// The host's passwd/group plus the libvirt-qemu user and groups libvirtd looks up, with ids
// unused on the host; the files only exist inside the daemons' mount namespace.
void WriteAccountOverlay(const fs::path& etc) {
    std::string passwd = ReadFile("/etc/passwd");
    std::string group = ReadFile("/etc/group");
    const auto has_entry = [](const std::string& db, const std::string& name) {
        return db.starts_with(name + ":") || db.find("\n" + name + ":") != std::string::npos;
    };
    const auto has_id = [](const std::string& db, int id) {
        std::stringstream lines(db);
        std::string line;
        while (std::getline(lines, line)) {
            std::stringstream fields(line);
            std::string field;
            for (int i = 0; i < 3 && std::getline(fields, field, ':'); ++i) {
                if (i == 2 && field == std::to_string(id)) return true;
            }
        }
        return false;
    };
    int id = 64055;
    while (has_id(passwd, id) || has_id(group, id)) ++id;
    if (!passwd.empty() && passwd.back() != '\n') passwd += '\n';
    if (!group.empty() && group.back() != '\n') group += '\n';
    if (!has_entry(group, kQemuUser)) {
        group += std::string(kQemuUser) + ":x:" + std::to_string(id) + ":\n";
    }
    if (!has_entry(group, "kvm")) group += "kvm:x:" + std::to_string(id + 1) + ":\n";
    if (!has_entry(passwd, kQemuUser)) {
        passwd += std::string(kQemuUser) + ":x:" + std::to_string(id) + ":" + std::to_string(id) +
                  ":Libvirt Qemu:/var/lib/libvirt:/usr/sbin/nologin\n";
    }
    WriteFile(etc / "passwd", passwd);
    WriteFile(etc / "group", group);
}

std::string GuestCacheDir() {
    if (const char* dir = std::getenv("DECLOUD_GUEST_CACHE"); dir && *dir) return dir;
    const char* home = std::getenv("HOME");
    if (!home || !*home) {
        throw std::runtime_error("BuildOrLoadTinyGuest: set HOME or DECLOUD_GUEST_CACHE");
    }
    return std::string(home) + "/.cache/decloud-guest";
}

}  // namespace

TinyGuest BuildOrLoadTinyGuest() {
    static std::mutex mutex;
    static std::optional<TinyGuest> built;
    const std::lock_guard lock(mutex);
    if (built) return *built;

    const std::string script =
        std::string(DECLOUD_SOURCE_DIR) + "/tests/tools/guest/build-tiny-guest.sh";
    if (!fs::exists(script)) throw std::runtime_error("BuildOrLoadTinyGuest: no " + script);
    const std::string dir = GuestCacheDir();
    std::error_code ec;
    fs::create_directories(dir, ec);
    // The first build downloads a kernel package; later runs only compare a stamp.
    const auto result = RunCommand(FindExecutable("bash"), {script, dir}, {}, {}, 20min);
    if (result.exit_code != 0) {
        throw std::runtime_error("BuildOrLoadTinyGuest: " + script + " " + dir + " failed (exit " +
                                 std::to_string(result.exit_code) + "):\n" + result.out +
                                 result.err);
    }
    TinyGuest guest;
    guest.kernel = dir + "/vmlinuz";
    guest.initrd = dir + "/initrd.img";
    guest.base_image = dir + "/base.qcow2";
    guest.cmdline = Trim(ReadFile(dir + "/cmdline"));
    for (const auto& path : {guest.kernel, guest.initrd, guest.base_image}) {
        if (!fs::is_regular_file(path)) {
            throw std::runtime_error("BuildOrLoadTinyGuest: the script did not produce " + path +
                                     ":\n" + result.out + result.err);
        }
    }
    if (guest.cmdline.empty()) throw std::runtime_error("BuildOrLoadTinyGuest: empty cmdline");
    built = guest;
    return guest;
}

LibvirtSandbox::LibvirtSandbox(std::string existing_netns)
    : existing_netns_(std::move(existing_netns)), owns_netns_(existing_netns_.empty()) {
    try {
        Start();
    } catch (...) {
        TearDown();
        throw;
    }
}

LibvirtSandbox::~LibvirtSandbox() { TearDown(); }

void LibvirtSandbox::Start() {
    started_at_ = fs::file_time_type::clock::now();
    RemoveStaleSandboxes();
    RequireNoForeignDaemon(kLibvirtdPidFile, kLibvirtSocket, "libvirtd");
    RequireNoForeignDaemon(kVirtlogdPidFile, kVirtlogdSocket, "virtlogd");
    RemoveLibvirtState();

    netns_ = owns_netns_ ? std::string(kNetnsPrefix) + std::to_string(::getpid()) : existing_netns_;
    std::string tmpl = "/tmp/" + std::string(kStateDirPrefix) + netns_ + "-XXXXXX";
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("LibvirtSandbox: mkdtemp failed");
    state_dir_ = tmpl;

    // `ip netns exec` bind-mounts each entry of /etc/netns/<ns>/ over /etc/<entry>. Written before
    // the namespace exists, so a namespace of ours always has it (RemoveStaleSandboxes relies on
    // that).
    etc_dir_ = std::string(kEtcNetnsDir) + "/" + netns_;
    fs::create_directories(fs::path(etc_dir_) / "libvirt" / "qemu" / "networks");
    WriteFile(fs::path(etc_dir_) / "libvirt" / "qemu.conf", kQemuConf);
    WriteAccountOverlay(etc_dir_);

    if (owns_netns_) {
        if (const auto r = Ip({"netns", "add", netns_}); r.exit_code != 0) {
            throw std::runtime_error("LibvirtSandbox: ip netns add " + netns_ + ": " + r.err);
        }
        if (const auto r = Ip({"-n", netns_, "link", "set", "lo", "up"}); r.exit_code != 0) {
            throw std::runtime_error("LibvirtSandbox: lo up in " + netns_ + ": " + r.err);
        }
    }

    virtlogd_ = std::make_unique<ChildProcess>(
        FindExecutable("ip"),
        std::vector<std::string>{"netns", "exec", netns_, FindExecutable("virtlogd")},
        state_dir_ + "/virtlogd.log");
    virtlogd_pid_ = virtlogd_->pid();
    const bool virtlogd_up =
        WaitUntil([&] { return !virtlogd_->Running() || SocketAccepts(kVirtlogdSocket); }, 30s);
    if (!virtlogd_up || !virtlogd_->Running()) {
        throw std::runtime_error("LibvirtSandbox: virtlogd did not start\n" + Logs());
    }
    StartLibvirtd();
    EnsureDefaultNetwork();
}

void LibvirtSandbox::StartLibvirtd() {
    libvirtd_ = std::make_unique<ChildProcess>(
        FindExecutable("ip"),
        std::vector<std::string>{"netns", "exec", netns_, FindExecutable("libvirtd")},
        state_dir_ + "/libvirtd.log");
    libvirtd_pid_ = libvirtd_->pid();
    // The socket appears before the drivers are initialised; a successful call means both.
    const bool up = WaitUntil(
        [&] {
            return !libvirtd_->Running() ||
                   (SocketAccepts(kLibvirtSocket) && Virsh({"uri"}, 10).exit_code == 0);
        },
        60s, 200ms);
    if (!up || !libvirtd_->Running()) {
        throw std::runtime_error("LibvirtSandbox: libvirtd did not start\n" + Logs());
    }
}

void LibvirtSandbox::EnsureDefaultNetwork() {
    auto info = Virsh({"net-info", NetworkName()});
    if (info.exit_code != 0) {
        const auto defined = Virsh({"net-define", kDefaultNetworkXml});
        if (defined.exit_code != 0) {
            throw std::runtime_error("LibvirtSandbox: net-define " +
                                     std::string(kDefaultNetworkXml) + ": " + defined.err + "\n" +
                                     Logs());
        }
        info = Virsh({"net-info", NetworkName()});
    }
    bool active = false;
    std::stringstream lines(info.out);
    for (std::string line; std::getline(lines, line);) {
        if (line.starts_with("Active:")) active = line.find("yes") != std::string::npos;
    }
    if (!active) {
        const auto started = Virsh({"net-start", NetworkName()});
        if (started.exit_code != 0) {
            throw std::runtime_error("LibvirtSandbox: net-start " + NetworkName() + ": " +
                                     started.err + "\n" + Logs());
        }
    }
}

void LibvirtSandbox::TearDown() noexcept {
    try {
        if (libvirtd_ && libvirtd_->Running()) {
            // Everything this libvirtd knows is ours: its configuration lives in our overlay.
            std::stringstream domains(Virsh({"list", "--all", "--name"}, 30).out);
            for (std::string name; std::getline(domains, name);) {
                name = Trim(name);
                if (name.empty()) continue;
                Virsh({"destroy", name}, 30);
                Virsh({"undefine", "--nvram", name}, 30);
            }
            std::stringstream networks(Virsh({"net-list", "--all", "--name"}, 30).out);
            for (std::string name; std::getline(networks, name);) {
                name = Trim(name);
                if (name.empty()) continue;
                Virsh({"net-destroy", name}, 30);
                Virsh({"net-undefine", name}, 30);
            }
        }
        if (libvirtd_) libvirtd_->Terminate(15s);
        if (virtlogd_) virtlogd_->Terminate(10s);
        if (!netns_.empty()) {
            // dnsmasq outlives libvirtd by design; it and any guest libvirt failed to destroy
            // still run in our namespace.
            const fs::path ns_path = fs::path(kNetnsDir) / netns_;
            const auto in_ns = PidsInNetns(ns_path);
            if (const auto dnsmasq = PidFromFile(kDnsmasqPidFile);
                dnsmasq && std::find(in_ns.begin(), in_ns.end(), *dnsmasq) != in_ns.end()) {
                KillAll({*dnsmasq}, 5s);
            }
            if (owns_netns_) {
                RemoveSandboxNamespace(netns_);
            } else {
                std::error_code ec;
                fs::remove_all(fs::path(kEtcNetnsDir) / netns_, ec);
            }
        }
        // netns_ is set only once the checks for other daemons passed.
        if (!netns_.empty() && !(libvirtd_ && libvirtd_->Running())) RemoveLibvirtState();
        if (!state_dir_.empty()) {
            std::error_code ec;
            fs::remove_all(state_dir_, ec);
        }
    } catch (...) {
        // A destructor must not throw; what could not be removed is removed by the next sandbox.
    }
}

CommandResult LibvirtSandbox::Virsh(const std::vector<std::string>& args,
                                    int timeout_seconds) const {
    std::vector<std::string> argv{"-c", Uri()};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(FindExecutable("virsh"), argv, {}, {}, std::chrono::seconds{timeout_seconds});
}

LibvirtSandbox::Output LibvirtSandbox::ExecInNamespace(const std::vector<std::string>& argv,
                                                       int timeout_seconds) const {
    std::vector<std::string> args{"netns", "exec", netns_};
    args.insert(args.end(), argv.begin(), argv.end());
    const auto r =
        RunCommand(FindExecutable("ip"), args, {}, {}, std::chrono::seconds{timeout_seconds});
    return Output{r.exit_code, r.out, r.err};
}

std::string LibvirtSandbox::HttpGet(const std::string& address, int port, const std::string& path,
                                    int timeout_seconds) const {
    const std::string host = address.find(':') != std::string::npos ? "[" + address + "]" : address;
    const auto r = ExecInNamespace({"curl", "-sfg", "--max-time", std::to_string(timeout_seconds),
                                    "http://" + host + ":" + std::to_string(port) + path},
                                   timeout_seconds + 5);
    return r.exit_code == 0 ? r.out : std::string{};
}

void LibvirtSandbox::RestartLibvirtd() {
    if (libvirtd_) libvirtd_->Terminate(15s);
    StartLibvirtd();
}

std::string LibvirtSandbox::Logs() const {
    std::string out;
    for (const char* name : {"libvirtd", "virtlogd"}) {
        out += "--- " + std::string(name) + " ---\n" +
               Tail(ReadFile(state_dir_ + "/" + name + ".log"), 8000) + "\n";
    }
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(kQemuLogDir, ec)) {
        std::error_code time_ec;
        if (entry.path().extension() != ".log" ||
            fs::last_write_time(entry.path(), time_ec) < started_at_ || time_ec) {
            continue;
        }
        out +=
            "--- " + entry.path().string() + " ---\n" + Tail(ReadFile(entry.path()), 4000) + "\n";
    }
    return out;
}

}  // namespace decloud::testing
