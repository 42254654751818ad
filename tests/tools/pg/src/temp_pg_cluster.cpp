#include "decloud/testing/temp_pg_cluster.hpp"

#include <pwd.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>

#include "decloud/testing/process.hpp"

namespace decloud::testing {

namespace {

constexpr const char* kBin = "/usr/lib/postgresql/15/bin";

// As root, PostgreSQL's tools must run as the unprivileged postgres user.
std::string AsPostgres(const std::string& command) {
    if (::geteuid() != 0) return command;
    return "runuser -u postgres -- " + command;
}

}  // namespace

TempPgCluster::TempPgCluster() {
    std::string tmpl = "/tmp/decloud-pg-XXXXXX";
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    if (::geteuid() == 0) {
        const passwd* pw = ::getpwnam("postgres");
        if (!pw) throw std::runtime_error("user 'postgres' is missing: install postgresql-15");
        if (::chown(dir_.c_str(), pw->pw_uid, pw->pw_gid) != 0)
            throw std::runtime_error("chown failed");
    }
    port_ = FreeTcpPort();
    Run(AsPostgres(std::string(kBin) + "/initdb -D " + dir_ +
                   "/data -U postgres -A trust -E UTF8 --locale=C " + "--no-sync >" + dir_ +
                   "/initdb.log 2>&1"));
    Start();
}

TempPgCluster::~TempPgCluster() {
    if (running_) {
        const auto cmd = AsPostgres(std::string(kBin) + "/pg_ctl -D " + dir_ +
                                    "/data -m immediate -w stop >/dev/null 2>&1");
        [[maybe_unused]] const int rc = std::system(cmd.c_str());
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
}

void TempPgCluster::Run(const std::string& command) const {
    const int rc = std::system(command.c_str());
    if (rc != 0)
        throw std::runtime_error("command failed (" + std::to_string(rc) + "): " + command);
}

void TempPgCluster::Start() {
    const std::string options =
        "-p " + std::to_string(port_) + " -k " + dir_ +
        " -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off"
        " -c full_page_writes=off -c max_connections=200";
    Run(AsPostgres(std::string(kBin) + "/pg_ctl -D " + dir_ + "/data -l " + dir_ +
                   "/server.log -o '" + options + "' -w -t 60 start >/dev/null"));
    running_ = true;
}

void TempPgCluster::Stop() {
    Run(AsPostgres(std::string(kBin) + "/pg_ctl -D " + dir_ + "/data -m fast -w stop >/dev/null"));
    running_ = false;
}

std::string TempPgCluster::ConnectionString(const std::string& database) const {
    return "host=127.0.0.1 port=" + std::to_string(port_) + " user=postgres dbname=" + database;
}

std::string TempPgCluster::CreateDatabase(const std::string& name) {
    for (char c : name) {
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_')
            throw std::runtime_error("database name must be letters, digits and '_': " + name);
    }
    std::string lower;
    for (char c : name)
        lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    Run(std::string(kBin) + "/createdb -h 127.0.0.1 -p " + std::to_string(port_) + " -U postgres " +
        lower);
    return ConnectionString(lower);
}

}  // namespace decloud::testing
