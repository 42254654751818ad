#include "agent/adapters/benchmark.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>
#include <vector>

#include "agent/domain/compute_points.hpp"

namespace decloud::agent::adapters {

using common::Error;
using common::Result;
using nlohmann::json;

namespace {

// Runs argv (no shell), capturing stdout+stderr; kills it after `limit`.
Result<std::string> RunCapture(std::vector<std::string> argv, std::chrono::seconds limit) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return Error::Internal("pipe failed");
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    const pid_t pid = ::fork();
    if (pid < 0) {
        ::close(fds[0]);
        ::close(fds[1]);
        return Error::Internal("fork failed");
    }
    if (pid == 0) {
        ::dup2(fds[1], STDOUT_FILENO);
        ::dup2(fds[1], STDERR_FILENO);
        ::execvp(args[0], args.data());
        ::_exit(127);
    }
    ::close(fds[1]);
    std::string out;
    const auto deadline = std::chrono::steady_clock::now() + limit;
    bool killed = false;
    char buf[4096];
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            ::kill(pid, SIGKILL);
            killed = true;
            break;
        }
        pollfd p{fds[0], POLLIN, 0};
        const int ready = ::poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), 1000)));
        if (ready < 0 && errno != EINTR) break;
        if (ready <= 0) continue;
        const auto n = ::read(fds[0], buf, sizeof buf);
        if (n <= 0) break;
        out.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fds[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (killed) return Error::Timeout(argv[0] + " did not finish in time");
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
        return Error::Unavailable(argv[0] +
                                  " could not be run: install sysbench (apt-get install sysbench)");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return Error::Unavailable(argv[0] + " failed: " + out.substr(0, 500));
    return out;
}

std::uint32_t Threads(const BenchmarkOptions& options, const proto::NodeResources& resources) {
    if (options.threads > 0) return options.threads;
    return std::max<std::uint32_t>(1, resources.cpu_threads);
}

}  // namespace

Result<proto::ComputeScore> RunOrLoadBenchmark(const BenchmarkOptions& options,
                                               const proto::NodeResources& resources,
                                               double baseline_events_per_second_per_core,
                                               double points_per_baseline_core,
                                               common::TimePoint now) {
    const auto threads = Threads(options, resources);
    auto score = [&](double events_per_second) {
        proto::ComputeScore s;
        s.events_per_second = events_per_second;
        s.benchmark_threads = threads;
        s.points =
            domain::ComputePoints(events_per_second, threads, resources.cpu_cores,
                                  baseline_events_per_second_per_core, points_per_baseline_core);
        return s;
    };

    if (!options.cache_file.empty()) {
        std::ifstream in(options.cache_file);
        if (in) {
            const auto cached = json::parse(in, nullptr, false);
            common::TimePoint measured_at;
            if (cached.is_object() && cached.value("cpuModel", "") == resources.cpu_model &&
                cached.value("threads", 0u) == threads &&
                cached.value("seconds", 0u) == options.seconds &&
                cached.value("eventsPerSecond", 0.0) > 0 &&
                common::ParseRfc3339(cached.value("measuredAt", ""), measured_at) &&
                measured_at <= now && now - measured_at < options.max_age) {
                spdlog::info("CPU benchmark from cache ({})", options.cache_file);
                return score(cached["eventsPerSecond"].get<double>());
            }
        }
    }

    spdlog::info("running the CPU benchmark: {} cpu --threads={} --time={} run", options.sysbench,
                 threads, options.seconds);
    auto output = RunCapture({options.sysbench, "cpu", "--threads=" + std::to_string(threads),
                              "--time=" + std::to_string(options.seconds), "run"},
                             std::chrono::seconds{options.seconds + 30});
    if (!output) return output.error();
    auto eps = domain::ParseSysbenchEventsPerSecond(*output);
    if (!eps) return eps.error();

    if (!options.cache_file.empty()) {
        const json cached{{"cpuModel", resources.cpu_model},
                          {"threads", threads},
                          {"seconds", options.seconds},
                          {"eventsPerSecond", *eps},
                          {"measuredAt", common::FormatRfc3339(now)}};
        const auto tmp = options.cache_file + ".tmp";
        std::error_code ec;
        std::filesystem::create_directories(std::filesystem::path(options.cache_file).parent_path(),
                                            ec);
        {
            std::ofstream out(tmp, std::ios::trunc);
            out << cached.dump(2) << "\n";
        }
        std::filesystem::rename(tmp, options.cache_file, ec);
        if (ec)
            spdlog::warn("cannot cache the benchmark in {}: {}", options.cache_file, ec.message());
    }
    return score(*eps);
}

}  // namespace decloud::agent::adapters
