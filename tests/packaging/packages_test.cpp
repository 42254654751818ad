// The Debian packages as an operator meets them: built by scripts/package.sh, judged by lintian
// and systemd-analyze, then installed, upgraded to a newer build, removed and purged with dpkg in
// a Debian 12 root made by debootstrap (cached under $HOME/.cache/decloud-debootstrap).
// DECLOUD_TEST_DEBS and DECLOUD_TEST_NEWER_DEBS, when set, name directories of .debs made before
// (scripts/package.sh, and again with --revision for the newer build) instead of packaging here.
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "decloud/testing/process.hpp"

namespace decloud::packaging {
namespace {

namespace fs = std::filesystem;
using testing::CommandResult;
using testing::RunCommand;

constexpr auto kPackageTimeout = std::chrono::minutes{30};
constexpr const char* kWallet = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";

std::string Describe(const CommandResult& r) {
    return "exit " + std::to_string(r.exit_code) + "\nstdout:\n" + r.out + "\nstderr:\n" + r.err;
}

std::vector<std::string> Lines(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        if (!line.empty()) lines.push_back(line);
    return lines;
}

struct Debs {
    std::string agent;
    std::string orchestrator;
};

// The two .debs in `dir`.
Debs FindDebs(const std::string& dir, const std::string& context) {
    Debs debs;
    for (const auto& entry : fs::directory_iterator(dir)) {
        const auto name = entry.path().filename().string();
        if (name.starts_with("decloud-node-agent_")) debs.agent = entry.path();
        if (name.starts_with("decloud-orchestrator_")) debs.orchestrator = entry.path();
    }
    if (debs.agent.empty() || debs.orchestrator.empty())
        throw std::runtime_error("no decloud .debs in " + dir + ": " + context);
    return debs;
}

// Runs scripts/package.sh into `dir` and returns the two .debs it made. With `prebuilt_env` set
// in the environment (a directory package.sh filled before), takes the .debs from there.
Debs BuildPackages(const std::string& dir, const std::string& revision, const char* prebuilt_env) {
    if (const char* prebuilt = std::getenv(prebuilt_env); prebuilt && *prebuilt) {
        return FindDebs(prebuilt, "(from $" + std::string(prebuilt_env) + ")");
    }
    fs::remove_all(dir);
    std::vector<std::string> args = {"--output", dir};
    if (!revision.empty()) args.insert(args.end(), {"--revision", revision});
    auto made = RunCommand(std::string(DECLOUD_SOURCE_DIR) + "/scripts/package.sh", args, {}, {},
                           kPackageTimeout);
    if (made.exit_code != 0)
        throw std::runtime_error("scripts/package.sh failed: " + Describe(made));
    return FindDebs(dir, made.out);
}

std::string Field(const std::string& deb, const std::string& field) {
    auto r = RunCommand(testing::FindExecutable("dpkg-deb"), {"-f", deb, field});
    if (r.exit_code != 0) throw std::runtime_error("dpkg-deb -f " + deb + ": " + Describe(r));
    while (!r.out.empty() && r.out.back() == '\n') r.out.pop_back();
    return r.out;
}

// The package names of a Depends field (first alternative of each, versions dropped).
std::vector<std::string> DependsNames(const std::string& depends) {
    std::vector<std::string> names;
    std::stringstream items(depends);
    for (std::string item; std::getline(items, item, ',');) {
        static const std::regex kName(R"(^\s*([a-z0-9][a-z0-9+.\-]*))");
        std::smatch m;
        if (std::regex_search(item, m, kName)) names.push_back(m[1]);
    }
    return names;
}

class Packages : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        const std::string work = DECLOUD_TEST_WORK_DIR;
        try {
            debs_ = new Debs(BuildPackages(work + "/debs", "", "DECLOUD_TEST_DEBS"));
            // A newer build of the same sources: only the Debian revision differs.
            newer_ =
                new Debs(BuildPackages(work + "/debs-newer", "9999", "DECLOUD_TEST_NEWER_DEBS"));
        } catch (const std::exception& e) {
            *setup_error_ = e.what();
        }
    }
    static void TearDownTestSuite() {
        delete debs_;
        delete newer_;
        debs_ = newer_ = nullptr;
    }
    void SetUp() override { ASSERT_TRUE(debs_ && newer_) << "no packages: " << *setup_error_; }
    static Debs* debs_;
    static Debs* newer_;
    static std::string* setup_error_;
};
Debs* Packages::debs_ = nullptr;
std::string* Packages::setup_error_ = new std::string;
Debs* Packages::newer_ = nullptr;

TEST_F(Packages, NamesVersionsAndDependsAreRight) {
    const auto version = Field(debs_->agent, "Version");
    EXPECT_TRUE(std::regex_match(version, std::regex(R"(\d+\.\d+\.\d+-1)"))) << version;
    EXPECT_EQ(fs::path(debs_->agent).filename().string(),
              "decloud-node-agent_" + version + "_amd64.deb");
    EXPECT_EQ(fs::path(debs_->orchestrator).filename().string(),
              "decloud-orchestrator_" + version + "_amd64.deb");
    EXPECT_EQ(Field(newer_->agent, "Version"), version.substr(0, version.size() - 1) + "9999");
    auto r = RunCommand(testing::FindExecutable("dpkg"),
                        {"--compare-versions", Field(newer_->agent, "Version"), "gt", version});
    EXPECT_EQ(r.exit_code, 0) << "the newer build does not sort after the first";

    const auto agent_depends = Field(debs_->agent, "Depends");
    for (const char* dep : {"libvirt-daemon-system", "qemu-system-x86", "qemu-utils",
                            "wireguard-tools", "wireguard-go", "nftables", "iptables",
                            "genisoimage | xorriso", "sysbench", "adduser", "libvirt0"})
        EXPECT_NE(agent_depends.find(dep), std::string::npos) << dep << " in " << agent_depends;
    const auto orch_depends = Field(debs_->orchestrator, "Depends");
    for (const char* dep : {"postgresql-client", "adduser", "libpqxx"})
        EXPECT_NE(orch_depends.find(dep), std::string::npos) << dep << " in " << orch_depends;
    EXPECT_EQ(Field(debs_->agent, "Architecture"), "amd64");
}

TEST_F(Packages, LintianIsCleanOrEveryOverrideIsJustified) {
    for (const auto& deb : {debs_->agent, debs_->orchestrator}) {
        auto r = RunCommand(testing::FindExecutable("lintian"),
                            {"--fail-on", "error,warning", "--display-info", deb}, {}, {},
                            std::chrono::minutes{10});
        EXPECT_EQ(r.exit_code, 0) << deb << "\n" << Describe(r);
        for (const auto& line : Lines(r.out)) {
            // Only informational tags and overridden ones may remain.
            EXPECT_TRUE(line.starts_with("I: ") || line.starts_with("O: ") ||
                        line.starts_with("N: "))
                << deb << ": " << line;
        }
    }
    // Every override in the packages' lintian files carries a comment saying why.
    for (const char* name : {"decloud-node-agent", "decloud-orchestrator"}) {
        std::ifstream file(std::string(DECLOUD_SOURCE_DIR) + "/packaging/lintian/" + name);
        std::string line, previous;
        while (std::getline(file, line)) {
            if (!line.empty() && line[0] != '#') {
                EXPECT_TRUE(previous.starts_with("#"))
                    << name << ": override without reason: " << line;
            }
            previous = line;
        }
    }
}

TEST_F(Packages, SystemdAnalyzeVerifiesTheUnits) {
    // The units are verified as installed: in a root holding both packages' files, the host's
    // systemd units they refer to (sysinit.target, ...) and kill (ExecReload).
    testing::TempDir root("decloud-units");
    fs::create_directories(root.path() + "/lib/systemd/system");
    fs::create_directories(root.path() + "/bin");
    auto copied = RunCommand(testing::FindExecutable("cp"),
                             {"-a", "/lib/systemd/system/.", root.path() + "/lib/systemd/system/"});
    ASSERT_EQ(copied.exit_code, 0) << Describe(copied);
    fs::copy_file("/bin/kill", root.path() + "/bin/kill");
    for (const auto& deb : {debs_->agent, debs_->orchestrator}) {
        auto x = RunCommand(testing::FindExecutable("dpkg-deb"), {"-x", deb, root.path()});
        ASSERT_EQ(x.exit_code, 0) << Describe(x);
    }
    for (const char* unit : {"decloud-node-agent.service", "decloud-orchestrator.service"}) {
        const auto path = root.path() + "/lib/systemd/system/" + unit;
        ASSERT_TRUE(fs::exists(path)) << path;
        auto r = RunCommand(testing::FindExecutable("systemd-analyze"),
                            {"verify", "--root=" + root.path(), "--man=no", path});
        EXPECT_EQ(r.exit_code, 0) << unit << "\n" << Describe(r);
        EXPECT_EQ(r.err, "") << unit;
        std::ifstream file(path);
        std::stringstream text;
        text << file.rdbuf();
        EXPECT_NE(text.str().find("Restart=on-failure"), std::string::npos) << unit;
        EXPECT_NE(text.str().find("NoNewPrivileges=yes"), std::string::npos) << unit;
        EXPECT_NE(text.str().find("ProtectSystem=strict"), std::string::npos) << unit;
    }
}

// A Debian 12 root extracted from the cached tarball. Whatever happens, nothing stays mounted
// under it and it is deleted (without crossing into other filesystems).
class DebianRoot {
  public:
    explicit DebianRoot(const std::string& tarball) : dir_("decloud-chroot") {
        path_ = dir_.path() + "/root";
        fs::create_directories(path_);
        auto r = RunCommand(testing::FindExecutable("tar"),
                            {"-C", path_, "--numeric-owner", "-xpf", tarball}, {}, {},
                            std::chrono::minutes{10});
        if (r.exit_code != 0) throw std::runtime_error("cannot extract the root: " + Describe(r));
    }
    ~DebianRoot() {
        // The tests mount nothing; this guards against a maintainer script that did.
        std::ifstream mounts("/proc/self/mounts");
        std::vector<std::string> under;
        for (std::string dev, point, rest; mounts >> dev >> point && std::getline(mounts, rest);)
            if (point.starts_with(path_ + "/")) under.push_back(point);
        std::sort(under.rbegin(), under.rend());
        for (const auto& m : under) ::umount2(m.c_str(), MNT_DETACH);
        RunCommand(testing::FindExecutable("rm"), {"-rf", "--one-file-system", path_}, {}, {},
                   std::chrono::minutes{5});
    }
    DebianRoot(const DebianRoot&) = delete;
    DebianRoot& operator=(const DebianRoot&) = delete;

    const std::string& path() const { return path_; }
    std::string operator/(const std::string& inside) const { return path_ + inside; }

    CommandResult Run(std::vector<std::string> command) const {
        command.insert(command.begin(), path_);
        // No systemd runs here; the maintainer scripts must cope with that.
        return RunCommand(testing::FindExecutable("chroot"), command,
                          {{"PATH", "/usr/sbin:/usr/bin:/sbin:/bin"},
                           {"DEBIAN_FRONTEND", "noninteractive"},
                           {"LC_ALL", "C"}},
                          {}, std::chrono::minutes{5});
    }

    // A passwd or group entry's fields from the root's own files; empty if absent.
    std::vector<std::string> Entry(const std::string& file, const std::string& name) const {
        std::ifstream in(path_ + file);
        for (std::string line; std::getline(in, line);) {
            if (!line.starts_with(name + ":")) continue;
            std::vector<std::string> fields;
            std::stringstream parts(line);
            for (std::string f; std::getline(parts, f, ':');) fields.push_back(f);
            if (line.back() == ':') fields.emplace_back();
            return fields;
        }
        return {};
    }

  private:
    testing::TempDir dir_;
    std::string path_;
};

struct FileInfo {
    bool exists = false;
    mode_t mode = 0;
    uid_t uid = 0;
    gid_t gid = 0;
};

FileInfo Stat(const std::string& path) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) return {};
    return {true, st.st_mode & 07777, st.st_uid, st.st_gid};
}

std::string ReadAll(const std::string& path) { return testing::ReadFile(path); }

TEST_F(Packages, InstallUpgradeRemoveAndPurgeInADebian12Chroot) {
    // The cached root holds the packages' Depends, so dpkg itself proves they are complete.
    std::vector<std::string> needed;
    for (const auto& deb : {debs_->agent, debs_->orchestrator})
        for (auto& name : DependsNames(Field(deb, "Depends"))) needed.push_back(name);
    const char* home = std::getenv("HOME");
    const std::string tarball =
        std::string(home ? home : "/root") + "/.cache/decloud-debootstrap/bookworm.tar";
    std::vector<std::string> args = {tarball};
    args.insert(args.end(), needed.begin(), needed.end());
    auto made = RunCommand(std::string(DECLOUD_SOURCE_DIR) + "/tests/packaging/make-debian-root.sh",
                           args, {}, {}, std::chrono::minutes{40});
    ASSERT_EQ(made.exit_code, 0) << Describe(made);

    DebianRoot root(tarball);
    fs::create_directories(root / "/tmp/debs");
    for (const auto& deb : {debs_->agent, debs_->orchestrator})
        fs::copy_file(deb, root / ("/tmp/debs/" + fs::path(deb).filename().string()));
    for (const auto& deb : {newer_->agent, newer_->orchestrator})
        fs::copy_file(deb, root / ("/tmp/debs/newer-" + fs::path(deb).filename().string()));
    const auto in_root = [](const std::string& deb) {
        return "/tmp/debs/" + fs::path(deb).filename().string();
    };
    const auto in_root_newer = [](const std::string& deb) {
        return "/tmp/debs/newer-" + fs::path(deb).filename().string();
    };

    // --- Install both.
    auto installed = root.Run({"dpkg", "-i", in_root(debs_->agent), in_root(debs_->orchestrator)});
    ASSERT_EQ(installed.exit_code, 0) << Describe(installed);

    const auto user = root.Entry("/etc/passwd", "decloud");
    ASSERT_EQ(user.size(), 7u) << "no system user decloud";
    const uid_t uid = static_cast<uid_t>(std::stoul(user[2]));
    const gid_t gid = static_cast<gid_t>(std::stoul(user[3]));
    EXPECT_LT(uid, 1000u) << "decloud must be a system user";
    EXPECT_EQ(user[5], "/var/lib/decloud");
    EXPECT_EQ(user[6], "/usr/sbin/nologin");
    ASSERT_EQ(root.Entry("/etc/group", "decloud").at(2), std::to_string(gid));
    for (const char* group : {"libvirt", "kvm"}) {
        const auto g = root.Entry("/etc/group", group);
        ASSERT_EQ(g.size(), 4u) << group << " group missing in the root";
        EXPECT_NE(("," + g[3] + ",").find(",decloud,"), std::string::npos)
            << "decloud not in group " << group << ": " << g[3];
    }

    struct Expect {
        const char* path;
        mode_t mode;
        uid_t uid;
        gid_t gid;
    };
    for (const auto& e :
         {Expect{"/usr/bin/decloud-agent", 0755, 0, 0},
          Expect{"/usr/bin/decloud-orchestrator", 0755, 0, 0}, Expect{"/etc/decloud", 0750, 0, gid},
          Expect{"/etc/decloud/agent.toml", 0640, 0, gid},
          Expect{"/etc/decloud/orchestrator.toml", 0640, 0, gid},
          Expect{"/lib/systemd/system/decloud-node-agent.service", 0644, 0, 0},
          Expect{"/lib/systemd/system/decloud-orchestrator.service", 0644, 0, 0},
          Expect{"/var/lib/decloud", 0755, 0, gid},
          Expect{"/var/lib/decloud/agent", 0700, uid, gid},
          Expect{"/var/lib/decloud/vms", 0755, uid, gid},
          Expect{"/var/lib/decloud/images", 0755, uid, gid},
          Expect{"/var/lib/decloud/orchestrator", 0700, uid, gid},
          Expect{"/usr/share/doc/decloud-node-agent/copyright", 0644, 0, 0},
          Expect{"/usr/share/man/man8/decloud-agent.8.gz", 0644, 0, 0}}) {
        const auto info = Stat(root / e.path);
        ASSERT_TRUE(info.exists) << e.path;
        EXPECT_EQ(info.mode, e.mode) << e.path << std::oct << " mode " << info.mode;
        EXPECT_EQ(info.uid, e.uid) << e.path;
        EXPECT_EQ(info.gid, e.gid) << e.path;
    }
    EXPECT_TRUE(fs::exists(root / "/usr/share/decloud/templates"));
    // The web console, where web.root's default looks for it.
    const auto index = Stat(root / "/usr/share/decloud/web/index.html");
    EXPECT_TRUE(index.exists);
    EXPECT_EQ(index.mode, 0644u) << std::oct << index.mode;
    EXPECT_NE(ReadAll(root / "/usr/share/decloud/web/index.html").find("<script"),
              std::string::npos);
    auto conffiles = root.Run({"dpkg-query", "-W", "-f=${Conffiles}", "decloud-node-agent"});
    EXPECT_NE(conffiles.out.find("/etc/decloud/agent.toml"), std::string::npos) << conffiles.out;
    conffiles = root.Run({"dpkg-query", "-W", "-f=${Conffiles}", "decloud-orchestrator"});
    EXPECT_NE(conffiles.out.find("/etc/decloud/orchestrator.toml"), std::string::npos);
    EXPECT_NE(
        ReadAll(root / "/etc/decloud/agent.toml").find("state_dir = \"/var/lib/decloud/agent\""),
        std::string::npos);
    // Not enabled before setup, but known to deb-systemd-helper (no systemd needed for that).
    EXPECT_FALSE(fs::exists(
        root / "/etc/systemd/system/multi-user.target.wants/decloud-node-agent.service"));

    // The binaries run there: every shared library they need came with the Depends.
    auto version = root.Run({"decloud-agent", "--version"});
    EXPECT_EQ(version.exit_code, 0) << Describe(version);
    version = root.Run({"decloud-orchestrator", "--version"});
    EXPECT_EQ(version.exit_code, 0) << Describe(version);

    // `decloud-agent setup` edits the conffile in place (keeping 0640 root:decloud), then stops
    // at the prerequisites: no libvirtd runs in a chroot.
    auto setup = root.Run({"decloud-agent", "setup", "--non-interactive", "--orchestrator-url",
                           "https://orchestrator.example.org", "--operator-wallet",
                           "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"});
    EXPECT_EQ(setup.exit_code, 4) << Describe(setup);
    EXPECT_NE(setup.err.find("FAIL  libvirt"), std::string::npos) << Describe(setup);
    EXPECT_NE(setup.out.find("ok    configuration"), std::string::npos) << Describe(setup);
    const auto configured = ReadAll(root / "/etc/decloud/agent.toml");
    EXPECT_NE(configured.find("url = \"https://orchestrator.example.org\""), std::string::npos);
    EXPECT_NE(configured.find(std::string("operator_wallet = \"") + kWallet + "\""),
              std::string::npos);
    auto info = Stat(root / "/etc/decloud/agent.toml");
    EXPECT_EQ(info.mode, 0640u);
    EXPECT_EQ(info.gid, gid);
    // The agent's own parser accepts what setup wrote.
    auto printed =
        root.Run({"decloud-agent", "--config", "/etc/decloud/agent.toml", "--print-config"});
    EXPECT_EQ(printed.exit_code, 0) << Describe(printed);
    // State the upgrade must keep.
    std::ofstream(root / "/var/lib/decloud/agent/node.key") << "kept across upgrades\n";
    std::ofstream(root / "/etc/decloud/orchestrator.toml", std::ios::app) << "# local edit\n";

    // --- Upgrade both to the newer build.
    auto upgraded =
        root.Run({"dpkg", "-i", in_root_newer(newer_->agent), in_root_newer(newer_->orchestrator)});
    ASSERT_EQ(upgraded.exit_code, 0) << Describe(upgraded);
    auto status =
        root.Run({"dpkg-query", "-W", "-f=${Version} ${db:Status-Abbrev}", "decloud-node-agent"});
    EXPECT_EQ(status.out, Field(newer_->agent, "Version") + " ii ");
    EXPECT_EQ(ReadAll(root / "/etc/decloud/agent.toml"), configured);
    EXPECT_NE(ReadAll(root / "/etc/decloud/orchestrator.toml").find("# local edit"),
              std::string::npos);
    EXPECT_FALSE(fs::exists(root / "/etc/decloud/agent.toml.dpkg-dist"));
    info = Stat(root / "/etc/decloud/agent.toml");
    EXPECT_EQ(info.mode, 0640u);
    EXPECT_EQ(info.gid, gid);
    EXPECT_EQ(ReadAll(root / "/var/lib/decloud/agent/node.key"), "kept across upgrades\n");
    EXPECT_EQ(root.Entry("/etc/passwd", "decloud").at(2), std::to_string(uid));

    // --- Remove the agent: its binary goes, config, state and the user stay.
    auto removed = root.Run({"dpkg", "-r", "decloud-node-agent"});
    ASSERT_EQ(removed.exit_code, 0) << Describe(removed);
    EXPECT_FALSE(fs::exists(root / "/usr/bin/decloud-agent"));
    EXPECT_FALSE(fs::exists(root / "/lib/systemd/system/decloud-node-agent.service"));
    EXPECT_EQ(ReadAll(root / "/etc/decloud/agent.toml"), configured);
    EXPECT_TRUE(fs::exists(root / "/var/lib/decloud/agent/node.key"));
    status = root.Run({"dpkg-query", "-W", "-f=${db:Status-Abbrev}", "decloud-node-agent"});
    EXPECT_EQ(status.out, "rc ");

    // --- Purge it: its config and state go; the orchestrator still needs the user.
    auto purged = root.Run({"dpkg", "-P", "decloud-node-agent"});
    ASSERT_EQ(purged.exit_code, 0) << Describe(purged);
    EXPECT_FALSE(fs::exists(root / "/etc/decloud/agent.toml"));
    EXPECT_FALSE(fs::exists(root / "/var/lib/decloud/agent"));
    EXPECT_FALSE(fs::exists(root / "/var/lib/decloud/vms"));
    EXPECT_TRUE(fs::exists(root / "/etc/decloud/orchestrator.toml"));
    EXPECT_TRUE(fs::exists(root / "/var/lib/decloud/orchestrator"));
    EXPECT_EQ(root.Entry("/etc/passwd", "decloud").size(), 7u);

    // --- Purge the orchestrator too: nothing of DeCloud is left.
    purged = root.Run({"dpkg", "-P", "decloud-orchestrator"});
    ASSERT_EQ(purged.exit_code, 0) << Describe(purged);
    EXPECT_FALSE(fs::exists(root / "/etc/decloud"));
    EXPECT_FALSE(fs::exists(root / "/var/lib/decloud"));
    EXPECT_FALSE(fs::exists(root / "/usr/share/decloud"));
    EXPECT_TRUE(root.Entry("/etc/passwd", "decloud").empty()) << "user decloud left behind";
    EXPECT_TRUE(root.Entry("/etc/group", "decloud").empty()) << "group decloud left behind";
    for (const char* group : {"libvirt", "kvm"})
        EXPECT_EQ(("," + root.Entry("/etc/group", group).at(3) + ",").find(",decloud,"),
                  std::string::npos);
    auto leftovers =
        RunCommand(testing::FindExecutable("grep"),
                   {"-rl", "decloud", root / "/var/lib/systemd", root / "/etc/systemd"});
    EXPECT_EQ(leftovers.out, "") << "systemd state left behind";
}

}  // namespace
}  // namespace decloud::packaging
