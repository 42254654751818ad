#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

namespace decloud::orchestrator::jobs {

// Runs a blocking `tick` on the thread pool every `interval` (measured from the end of the
// previous tick) until Stop(). A tick that throws is logged and the job goes on. Ticks never
// overlap. Cross-replica exclusion is the tick's business (advisory locks in the repository).
class PeriodicJob : public std::enable_shared_from_this<PeriodicJob> {
  public:
    PeriodicJob(boost::asio::any_io_executor executor, boost::asio::thread_pool& pool,
                std::string name, std::chrono::milliseconds interval, std::function<void()> tick);
    void Start();
    // Cancels the wait; a tick in progress finishes. `done` runs once the loop has ended.
    void Stop(std::function<void()> done = {});

  private:
    boost::asio::any_io_executor executor_;
    boost::asio::thread_pool& pool_;
    std::string name_;
    std::chrono::milliseconds interval_;
    std::function<void()> tick_;
    boost::asio::steady_timer timer_;
    std::atomic<bool> stopping_{false};
    std::function<void()> on_done_;
    bool running_ = false;
};

}  // namespace decloud::orchestrator::jobs
