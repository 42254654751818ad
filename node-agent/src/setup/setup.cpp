#include "agent/setup/setup.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <vector>

#include "agent/adapters/benchmark.hpp"
#include "agent/adapters/identity.hpp"
#include "agent/adapters/libvirt/libvirt_hypervisor.hpp"
#include "agent/adapters/sysinfo.hpp"
#include "agent/app/registration.hpp"
#include "agent/config.hpp"
#include "decloud/crypto/crypto.hpp"
#include "decloud/net/http_client.hpp"
#include "decloud/process/run_program.hpp"
#include "decloud/proto/node_messages.hpp"

namespace decloud::agent::setup {

namespace asio = boost::asio;
namespace fs = std::filesystem;
namespace http = boost::beast::http;
using common::Error;

CLI::App* AddSetupCommand(CLI::App& cli, SetupOptions& options) {
    auto* cmd = cli.add_subcommand(
        "setup",
        "first run: write the configuration, check libvirt, KVM, WireGuard and nftables, "
        "benchmark this machine and register it with the orchestrator");
    cmd->add_option("--orchestrator-url", options.orchestrator_url,
                    "the orchestrator's URL, e.g. https://orchestrator.example.org");
    cmd->add_option("--operator-wallet", options.operator_wallet,
                    "the Ethereum address (EIP-55) this node's earnings are paid to");
    cmd->add_option("-c,--config", options.config_path,
                    "agent configuration to write (created if missing)")
        ->capture_default_str();
    cmd->add_flag("--non-interactive", options.non_interactive,
                  "never ask: take the flags, else the values already in the file");
    cmd->add_flag("--skip-registration", options.skip_registration,
                  "check and benchmark only; the service registers when it starts");
    return cmd;
}

common::Result<std::string> ValidateOrchestratorUrl(std::string_view url) {
    std::string text(url);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.pop_back();
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.erase(0, 1);
    if (text.empty()) return Error::InvalidArgument("orchestrator URL: required");
    auto parsed = net::ParseHttpUrl(text);
    if (!parsed)
        return Error::InvalidArgument("orchestrator URL '" + text + "': " + parsed.error().message +
                                      " (expected http(s)://host[:port][/path])");
    if (parsed->host.empty())
        return Error::InvalidArgument("orchestrator URL '" + text + "': no host");
    while (text.size() > 1 && text.back() == '/') text.pop_back();
    return text;
}

common::Result<std::string> ValidateOperatorWallet(std::string_view wallet) {
    std::string text(wallet);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.pop_back();
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.erase(0, 1);
    if (text.empty()) return Error::InvalidArgument("operator wallet: required");
    auto normalized = crypto::NormalizeEthereumAddress(text);
    if (!normalized)
        return Error::InvalidArgument("operator wallet '" + text +
                                      "': " + normalized.error().message +
                                      " (expected 0x and 40 hex digits, EIP-55 checksummed when "
                                      "mixed case)");
    return *normalized;
}

namespace {

std::string Trim(std::string_view s) {
    const auto first = s.find_first_not_of(" \t\r");
    if (first == std::string_view::npos) return {};
    const auto last = s.find_last_not_of(" \t\r");
    return std::string(s.substr(first, last - first + 1));
}

std::string TomlQuote(std::string_view value) {
    std::string out = "\"";
    for (const char c : value) {
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\t':
                out += "\\t";
                break;
            case '\r':
                out += "\\r";
                break;
            default:
                out += c;
        }
    }
    return out + "\"";
}

std::vector<std::string> SplitLines(std::string_view text) {
    std::vector<std::string> lines;
    std::size_t start = 0;
    while (start < text.size()) {
        const auto end = text.find('\n', start);
        if (end == std::string_view::npos) {
            lines.emplace_back(text.substr(start));
            break;
        }
        lines.emplace_back(text.substr(start, end - start));
        start = end + 1;
    }
    return lines;
}

// The table a header line opens ("[node]" -> "node"), or nullopt for other lines.
std::optional<std::string> TableOf(const std::string& line) {
    const auto t = Trim(line);
    if (t.size() < 2 || t.front() != '[' || t.starts_with("[[")) return std::nullopt;
    const auto close = t.find(']');
    if (close == std::string::npos) return std::nullopt;
    return Trim(std::string_view(t).substr(1, close - 1));
}

// True if `line` assigns `key` (`key = ...`).
bool AssignsKey(const std::string& line, std::string_view key) {
    const auto t = Trim(line);
    if (!t.starts_with(key)) return false;
    return Trim(std::string_view(t).substr(key.size())).starts_with("=");
}

// Index range [begin, end) of the lines inside `table` (after its header), or nullopt.
std::optional<std::pair<std::size_t, std::size_t>> TableRange(const std::vector<std::string>& lines,
                                                              std::string_view table) {
    for (std::size_t i = 0; i < lines.size(); ++i) {
        if (TableOf(lines[i]) != std::string(table)) continue;
        std::size_t end = i + 1;
        while (end < lines.size() && !TableOf(lines[end])) ++end;
        return std::make_pair(i + 1, end);
    }
    return std::nullopt;
}

void SetKey(std::vector<std::string>& lines, std::string_view table, std::string_view key,
            std::string_view value) {
    const auto assignment = std::string(key) + " = " + TomlQuote(value);
    const auto range = TableRange(lines, table);
    if (!range) {
        if (!lines.empty() && !Trim(lines.back()).empty()) lines.emplace_back();
        lines.push_back("[" + std::string(table) + "]");
        lines.push_back(assignment);
        return;
    }
    for (auto i = range->first; i < range->second; ++i) {
        if (AssignsKey(lines[i], key)) {
            lines[i] = assignment;
            return;
        }
    }
    lines.insert(lines.begin() + static_cast<std::ptrdiff_t>(range->first), assignment);
}

}  // namespace

std::string ReadTomlString(std::string_view text, std::string_view table, std::string_view key) {
    const auto lines = SplitLines(text);
    const auto range = TableRange(lines, table);
    if (!range) return {};
    for (auto i = range->first; i < range->second; ++i) {
        if (!AssignsKey(lines[i], key)) continue;
        const auto t = Trim(lines[i]);
        const auto open = t.find('"', t.find('='));
        if (open == std::string::npos) return {};
        std::string value;
        for (auto j = open + 1; j < t.size(); ++j) {
            if (t[j] == '"') return value;
            if (t[j] == '\\' && j + 1 < t.size()) {
                ++j;
                switch (t[j]) {
                    case 'n':
                        value += '\n';
                        break;
                    case 't':
                        value += '\t';
                        break;
                    case 'r':
                        value += '\r';
                        break;
                    default:
                        value += t[j];
                }
                continue;
            }
            value += t[j];
        }
        return {};  // unterminated
    }
    return {};
}

common::Result<std::string> RenderAgentConfig(std::string_view template_text,
                                              const SetupAnswers& answers) {
    auto url = ValidateOrchestratorUrl(answers.orchestrator_url);
    if (!url) return url.error();
    auto wallet = ValidateOperatorWallet(answers.operator_wallet);
    if (!wallet) return wallet.error();
    auto lines = SplitLines(template_text);
    SetKey(lines, "orchestrator", "url", *url);
    SetKey(lines, "node", "operator_wallet", *wallet);
    std::string out;
    for (const auto& line : lines) out += line + "\n";
    return out;
}

namespace {

// Reports one step to the operator: "  ok    what: detail" or "  FAIL  what: detail".
class Reporter {
  public:
    Reporter(std::ostream& out, std::ostream& err) : out_(out), err_(err) {}
    void Ok(std::string_view what, std::string_view detail) {
        out_ << "  ok    " << what << ": " << detail << "\n";
    }
    void Note(std::string_view what, std::string_view detail) {
        out_ << "  note  " << what << ": " << detail << "\n";
    }
    void Fail(std::string_view what, std::string_view detail) {
        err_ << "  FAIL  " << what << ": " << detail << "\n";
    }
    std::ostream& out() { return out_; }
    std::ostream& err() { return err_; }

  private:
    std::ostream& out_;
    std::ostream& err_;
};

// Asks until a valid answer comes; `current` is taken on an empty line. Nullopt on end of input.
std::optional<std::string> Ask(std::istream& in, Reporter& r, const std::string& question,
                               const std::string& current,
                               common::Result<std::string> (*validate)(std::string_view)) {
    for (;;) {
        r.out() << question << (current.empty() ? "" : " [" + current + "]") << ": " << std::flush;
        std::string line;
        if (!std::getline(in, line)) {
            r.out() << "\n";
            return std::nullopt;
        }
        if (Trim(line).empty()) line = current;
        auto valid = validate(line);
        if (valid) return *valid;
        r.err() << "  " << valid.error().message << "\n";
    }
}

common::Result<std::string> ReadWholeFile(const std::string& path) {
    std::ifstream file(path, std::ios::binary);
    if (!file) return Error::Unavailable("cannot read " + path + ": " + std::strerror(errno));
    std::ostringstream text;
    text << file.rdbuf();
    return text.str();
}

// Replaces `path` atomically. An existing file keeps its mode and owner (the package makes it
// 0640 root:decloud); a new one is 0640 with its directory's group.
common::Status WriteConfig(const std::string& path, const std::string& text) {
    const fs::path target(path);
    const auto dir = target.parent_path().empty() ? fs::path(".") : target.parent_path();
    std::error_code ec;
    if (!fs::exists(dir, ec)) {
        fs::create_directories(dir, ec);
        if (ec) return Error::Unavailable("cannot create " + dir.string() + ": " + ec.message());
        ::chmod(dir.c_str(), 0750);
    }
    struct stat existing {};
    const bool exists = ::stat(path.c_str(), &existing) == 0;
    struct stat dir_stat {};
    ::stat(dir.c_str(), &dir_stat);
    const auto tmp = path + ".setup-tmp";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return Error::Unavailable("cannot write " + tmp + ": " + std::strerror(errno));
    std::size_t written = 0;
    while (written < text.size()) {
        const auto n = ::write(fd, text.data() + written, text.size() - written);
        if (n < 0) {
            if (errno == EINTR) continue;
            const std::string why = std::strerror(errno);
            ::close(fd);
            ::unlink(tmp.c_str());
            return Error::Unavailable("cannot write " + tmp + ": " + why);
        }
        written += static_cast<std::size_t>(n);
    }
    const uid_t uid = exists ? existing.st_uid : ::geteuid();
    const gid_t gid = exists ? existing.st_gid : dir_stat.st_gid;
    const mode_t mode = exists ? (existing.st_mode & 07777) : 0640;
    // Only root may give the file away; anyone else keeps it as their own.
    if (::geteuid() == 0 && ::fchown(fd, uid, gid) != 0) {
        const std::string why = std::strerror(errno);
        ::close(fd);
        ::unlink(tmp.c_str());
        return Error::Unavailable("cannot set the owner of " + tmp + ": " + why);
    }
    if (::fchmod(fd, mode) != 0 || ::fsync(fd) != 0) {
        const std::string why = std::strerror(errno);
        ::close(fd);
        ::unlink(tmp.c_str());
        return Error::Unavailable("cannot finish " + tmp + ": " + why);
    }
    ::close(fd);
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        const std::string why = std::strerror(errno);
        ::unlink(tmp.c_str());
        return Error::Unavailable("cannot replace " + path + ": " + why);
    }
    return {};
}

std::optional<std::string> FindInPath(const std::string& name) {
    const char* path_env = std::getenv("PATH");
    std::string path = path_env ? path_env : "/usr/local/bin:/usr/bin:/bin";
    path += ":/usr/local/sbin:/usr/sbin:/sbin";  // a non-login root shell may lack sbin
    std::stringstream dirs(path);
    std::string dir;
    while (std::getline(dirs, dir, ':')) {
        if (dir.empty()) continue;
        const auto candidate = dir + "/" + name;
        if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    }
    return std::nullopt;
}

// Each prerequisite, all reported; false if any failed.
bool CheckPrerequisites(const AgentConfig& config, bool kvm_usable, Reporter& r) {
    bool ok = true;
    if (config.vms.enabled) {
        try {
            adapters::LibvirtOptions lv;
            lv.uri = config.vms.libvirt_uri;
            lv.storage_dir = config.vm_storage_path;
            adapters::LibvirtHypervisor hypervisor(lv);
            auto domains = hypervisor.List();
            if (domains) {
                r.Ok("libvirt", "reachable at " + config.vms.libvirt_uri + " (" +
                                    std::to_string(domains->size()) + " DeCloud VMs)");
            } else {
                r.Fail("libvirt", "cannot reach " + config.vms.libvirt_uri + ": " +
                                      domains.error().message +
                                      ". Is libvirtd running (systemctl status libvirtd) and is "
                                      "package libvirt-daemon-system installed?");
                ok = false;
            }
        } catch (const std::exception& e) {
            r.Fail("libvirt", std::string("unusable settings: ") + e.what());
            ok = false;
        }
        if (kvm_usable) {
            r.Ok("KVM", "/dev/kvm is usable: VMs run with hardware acceleration");
        } else if (config.vms.domain_type == "kvm") {
            r.Fail("KVM",
                   "vms.domain_type is \"kvm\" but /dev/kvm is not usable. Enable virtualisation "
                   "in the firmware (or nested virtualisation), or set vms.domain_type = \"auto\"");
            ok = false;
        } else {
            r.Note("KVM",
                   "/dev/kvm is not usable: VMs will run with QEMU emulation (much slower). "
                   "Enable virtualisation in the firmware for full speed");
        }
    } else {
        r.Note("libvirt", "vms.enabled = false: this node runs no VMs, libvirt is not checked");
    }
    for (const auto& [program, package] :
         {std::pair{"wireguard-go", "wireguard-go"}, std::pair{"wg", "wireguard-tools"}}) {
        if (auto found = FindInPath(program)) {
            r.Ok("WireGuard", std::string(program) + " at " + *found);
        } else {
            r.Fail("WireGuard", std::string(program) + " not found: apt install " + package);
            ok = false;
        }
    }
    if (auto nft = FindInPath("nft"); !nft) {
        r.Fail("nftables", "nft not found: apt install nftables");
        ok = false;
    } else {
        auto listed = process::RunProgram({*nft, "list", "tables"}, std::chrono::seconds{10});
        if (listed && listed->exit_code == 0) {
            r.Ok("nftables", "nft can read the ruleset");
        } else {
            const auto why = listed ? Trim(listed->err) : listed.error().message;
            r.Fail("nftables", "nft cannot read the ruleset (" + why +
                                   "). Run setup as root; the agent needs CAP_NET_ADMIN");
            ok = false;
        }
    }
    return ok;
}

// Gives files setup created in the state directory to that directory's owner (the service's
// user), so the agent can read the key setup generated as root.
void MatchStateOwner(const std::string& state_dir, const std::vector<std::string>& files) {
    if (::geteuid() != 0) return;
    struct stat dir {};
    if (::stat(state_dir.c_str(), &dir) != 0 || dir.st_uid == 0) return;
    // Not fatal when it fails: the agent names an unreadable key clearly when it starts.
    for (const auto& f : files) (void)::chown(f.c_str(), dir.st_uid, dir.st_gid);
}

// By value: the coroutine outlives the caller's temporaries.
asio::awaitable<common::Result<net::Response>> PostRegistration(net::HttpClient* client,
                                                                std::string target,
                                                                app::SignedRequest signed_req) {
    net::Request req{http::verb::post, target, 11};
    req.set(http::field::content_type, "application/json");
    req.set(proto::kSignatureHeader, signed_req.signature);
    req.body() = std::move(signed_req.body);
    auto sending = client->Send(std::move(req));
    co_return co_await std::move(sending);
}

int Register(const AgentConfig& config, const crypto::Ed25519KeyPair& key,
             const proto::NodeResources& resources, const proto::ComputeScore& compute,
             const std::string& agent_version, Reporter& r) {
    auto url = net::ParseHttpUrl(config.orchestrator_url);
    if (!url) {
        r.Fail("registration", "orchestrator.url: " + url.error().message);
        return kSetupBadInput;
    }
    net::ClientOptions http_options;
    http_options.tls = url->scheme == "https";
    http_options.ca_file = config.orchestrator_ca_file;
    http_options.request_timeout = config.request_timeout;
    http_options.connect_timeout =
        std::min(config.request_timeout, std::chrono::milliseconds{5000});
    common::SystemClock clock;
    auto signed_req = app::BuildSignedRegistration(key, config.profile, resources, compute,
                                                   agent_version, clock.Now());
    const auto base = url->base_path == "/" ? std::string() : url->base_path;

    asio::io_context ioc(1);
    net::HttpClient client(ioc.get_executor(), url->host, url->port, http_options);
    std::optional<common::Result<net::Response>> reply;
    asio::co_spawn(ioc, PostRegistration(&client, base + "/api/nodes/register", signed_req),
                   [&reply](std::exception_ptr e, common::Result<net::Response> result) {
                       if (e) {
                           try {
                               std::rethrow_exception(e);
                           } catch (const std::exception& ex) {
                               reply = Error::Internal(ex.what());
                           }
                           return;
                       }
                       reply = std::move(result);
                   });
    ioc.run();
    if (!reply || !*reply) {
        r.Fail("registration",
               "cannot reach the orchestrator at " + config.orchestrator_url + ": " +
                   (reply ? reply->error().message : std::string("no answer")) +
                   ". Check the URL, DNS and that outgoing connections are allowed");
        return kSetupRegistration;
    }
    const auto& resp = **reply;
    if (resp.result_int() != 200) {
        r.Fail("registration", "the orchestrator refused this node (HTTP " +
                                   std::to_string(resp.result_int()) + "): " + resp.body());
        return kSetupRegistration;
    }
    auto json = proto::ParseJson(resp.body());
    auto decoded = json ? proto::DecodeRegisterNodeResponse(*json)
                        : common::Result<proto::RegisterNodeResponse>(json.error());
    if (!decoded) {
        r.Fail("registration",
               "the orchestrator's answer is not a registration: " + decoded.error().message);
        return kSetupRegistration;
    }
    r.Ok(
        "registration",
        "registered as node " + decoded->node_id +
            (decoded->requires_relay ? " (behind NAT: the orchestrator will assign a relay)" : ""));
    return kSetupOk;
}

}  // namespace

int RunSetup(const SetupOptions& options, const std::string& agent_version, std::istream& in,
             std::ostream& out, std::ostream& err) {
    Reporter r(out, err);
    const auto& path = options.config_path;
    std::error_code ec;
    std::string template_text;
    if (fs::exists(path, ec)) {
        auto text = ReadWholeFile(path);
        if (!text) {
            r.Fail("configuration", text.error().message);
            return kSetupConfigFailed;
        }
        template_text = std::move(*text);
    } else {
        template_text = std::string(DefaultAgentConfig());
    }

    // Answers: flags first; then the operator; with --non-interactive, what the file holds.
    SetupAnswers answers;
    const auto current_url = ReadTomlString(template_text, "orchestrator", "url");
    const auto current_wallet = ReadTomlString(template_text, "node", "operator_wallet");
    struct Question {
        std::string* answer;
        std::string flag_value;
        std::string current;
        const char* question;
        const char* flag;
        common::Result<std::string> (*validate)(std::string_view);
    };
    for (const auto& q :
         {Question{&answers.orchestrator_url, options.orchestrator_url, current_url,
                   "Orchestrator URL", "--orchestrator-url", &ValidateOrchestratorUrl},
          Question{&answers.operator_wallet, options.operator_wallet, current_wallet,
                   "Operator wallet (receives the earnings)", "--operator-wallet",
                   &ValidateOperatorWallet}}) {
        if (!q.flag_value.empty() || options.non_interactive) {
            auto valid = q.validate(q.flag_value.empty() ? q.current : q.flag_value);
            if (!valid) {
                r.Fail("input", valid.error().message + (q.flag_value.empty()
                                                             ? std::string(" (give ") + q.flag +
                                                                   " or set it in " + path + ")"
                                                             : ""));
                return kSetupBadInput;
            }
            *q.answer = *valid;
            continue;
        }
        auto answer = Ask(in, r, q.question, q.current, q.validate);
        if (!answer) {
            r.Fail("input",
                   std::string("no answer for ") + q.question + " (or give " + q.flag + ")");
            return kSetupBadInput;
        }
        *q.answer = *answer;
    }

    auto rendered = RenderAgentConfig(template_text, answers);
    if (!rendered) {
        r.Fail("configuration", rendered.error().message);
        return kSetupBadInput;
    }
    if (auto written = WriteConfig(path, *rendered); !written) {
        r.Fail("configuration", written.error().message + " (run setup as root)");
        return kSetupConfigFailed;
    }
    // The daemon's own parser judges the file, so setup never writes what the agent refuses.
    auto settings = common::Settings::Load(AgentSettingSpecs(), path, kAgentEnvPrefix, {});
    if (!settings) {
        r.Fail("configuration", path + ": " + settings.error().message);
        return kSetupConfigFailed;
    }
    auto config = BuildAgentConfig(*settings);
    if (!config) {
        r.Fail("configuration", path + ": " + config.error().message);
        return kSetupConfigFailed;
    }
    r.Ok("configuration", "written to " + path + " (orchestrator " + config->orchestrator_url +
                              ", wallet " + config->profile.operator_wallet + ")");

    const adapters::SysinfoPaths sysinfo;
    const bool kvm_usable = adapters::KvmUsable(sysinfo.dev_kvm);
    if (!CheckPrerequisites(*config, kvm_usable, r)) {
        r.err() << "setup stopped: fix the failed checks above and run it again\n";
        return kSetupPrerequisites;
    }

    auto key = adapters::LoadOrCreateNodeKey(config->NodeKeyPath());
    if (!key) {
        r.Fail("node key", config->NodeKeyPath() + ": " + key.error().message);
        return kSetupConfigFailed;
    }
    r.Ok("node key", key->PublicKeyBase64() + " (" + config->NodeKeyPath() + ")");

    auto resources = adapters::DiscoverResources(sysinfo, config->vm_storage_path);
    if (!resources) {
        r.Fail("discovery", resources.error().message);
        return kSetupBenchmark;
    }
    resources->vms_enabled = config->vms.enabled;
    r.Ok("discovery", resources->cpu_model + ", " + std::to_string(resources->cpu_threads) +
                          " threads, " + std::to_string(resources->memory_bytes >> 20) +
                          " MiB memory, " + std::to_string(resources->storage_free_bytes >> 30) +
                          " GiB free for VMs");
    adapters::BenchmarkOptions bench;
    bench.sysbench = config->sysbench;
    bench.threads = config->benchmark_threads;
    bench.seconds = config->benchmark_seconds;
    bench.cache_file = config->BenchmarkCachePath();
    bench.max_age = std::chrono::duration_cast<std::chrono::hours>(config->benchmark_max_age);
    r.out() << "  ...   benchmarking the CPU for " << bench.seconds << " s\n" << std::flush;
    common::SystemClock clock;
    auto compute =
        adapters::RunOrLoadBenchmark(bench, *resources, config->baseline_events_per_second_per_core,
                                     config->points_per_baseline_core, clock.Now());
    MatchStateOwner(config->state_dir, {config->NodeKeyPath(), config->BenchmarkCachePath()});
    if (!compute) {
        r.Fail("benchmark",
               compute.error().message + " (is sysbench installed? apt install sysbench)");
        return kSetupBenchmark;
    }
    std::ostringstream points;
    points << compute->points << " compute points ("
           << static_cast<long>(compute->events_per_second) << " events/s on "
           << compute->benchmark_threads << " threads)";
    r.Ok("benchmark", points.str());

    if (options.skip_registration) {
        r.Note("registration", "skipped (--skip-registration)");
    } else if (const int registered =
                   Register(*config, *key, *resources, *compute, agent_version, r);
               registered != kSetupOk) {
        return registered;
    }
    r.out() << "\nThis node is set up. Start the agent now and at every boot:\n"
            << "  systemctl enable --now decloud-node-agent\n";
    return kSetupOk;
}

}  // namespace decloud::agent::setup
