#pragma once

#include <type_traits>
#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace decloud::net {

// Runs blocking work (libpqxx, file I/O) on `pool` and resumes the awaiting coroutine on its own
// executor with the result. An exception thrown by `f` is rethrown in the awaiting coroutine.
template <class F>
boost::asio::awaitable<std::invoke_result_t<F>> RunBlocking(boost::asio::thread_pool& pool, F f) {
    using R = std::invoke_result_t<F>;
    // Built before the co_await: g++ 12 destroys a non-trivial temporary inside a co_await
    // expression twice, which freed captured values under the work's feet.
    auto work = [f = std::move(f)]() mutable -> boost::asio::awaitable<R> { co_return f(); };
    auto op = boost::asio::co_spawn(pool, std::move(work), boost::asio::use_awaitable);
    co_return co_await std::move(op);
}

}  // namespace decloud::net
