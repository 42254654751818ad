#pragma once

#include <cstdint>
#include <string>

namespace decloud::testing {

// A throwaway PostgreSQL 15 cluster for one test binary: initdb into a fresh directory under
// /tmp, pg_ctl start on 127.0.0.1 and a free port (run as user postgres when we are root, since
// initdb refuses root), fsync off for speed. The destructor stops it (immediate mode) and
// removes the directory, also when a test failed. Throws std::runtime_error if it cannot start.
class TempPgCluster {
  public:
    TempPgCluster();
    ~TempPgCluster();
    TempPgCluster(const TempPgCluster&) = delete;
    TempPgCluster& operator=(const TempPgCluster&) = delete;

    // libpq conninfo for a database of this cluster.
    std::string ConnectionString(const std::string& database = "postgres") const;
    // Creates a fresh database (name: letters, digits, '_') and returns its conninfo.
    std::string CreateDatabase(const std::string& name);
    void Stop();
    void Start();
    std::uint16_t port() const { return port_; }
    const std::string& directory() const { return dir_; }

  private:
    void Run(const std::string& command) const;

    std::string dir_;
    std::uint16_t port_ = 0;
    bool running_ = false;
};

}  // namespace decloud::testing
