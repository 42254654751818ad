#include "orchestrator/jobs/periodic_job.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "decloud/net/blocking.hpp"

namespace decloud::orchestrator::jobs {

namespace asio = boost::asio;

PeriodicJob::PeriodicJob(asio::any_io_executor executor, asio::thread_pool& pool, std::string name,
                         std::chrono::milliseconds interval, std::function<void()> tick)
    : executor_(executor),
      pool_(pool),
      name_(std::move(name)),
      interval_(interval),
      tick_(std::move(tick)),
      timer_(executor) {}

void PeriodicJob::Start() {
    running_ = true;
    asio::co_spawn(
        executor_,
        [self = shared_from_this()]() -> asio::awaitable<void> {
            while (!self->stopping_) {
                self->timer_.expires_after(self->interval_);
                co_await self->timer_.async_wait(asio::as_tuple(asio::use_awaitable));
                if (self->stopping_) break;
                try {
                    co_await net::RunBlocking(self->pool_, [&] { self->tick_(); });
                } catch (const std::exception& e) {
                    spdlog::error("job {}: {}", self->name_, e.what());
                }
            }
            self->running_ = false;
            if (self->on_done_) self->on_done_();
        },
        asio::detached);
}

void PeriodicJob::Stop(std::function<void()> done) {
    asio::post(executor_, [self = shared_from_this(), done = std::move(done)]() mutable {
        self->stopping_ = true;
        if (!self->running_) {
            if (done) done();
            return;
        }
        self->on_done_ = std::move(done);
        self->timer_.cancel();
    });
}

}  // namespace decloud::orchestrator::jobs
