#pragma once

// Runs one coroutine to completion on a test's io_context and returns its value; an exception
// from the coroutine is rethrown here.

#include <exception>
#include <optional>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

namespace decloud::testing {

template <class T>
T RunSync(boost::asio::io_context& io, boost::asio::awaitable<T> op) {
    std::optional<T> out;
    std::exception_ptr error;
    boost::asio::co_spawn(io, std::move(op), [&](std::exception_ptr e, T value) {
        if (e) {
            error = e;
            return;
        }
        out.emplace(std::move(value));
    });
    io.restart();
    io.run();
    if (error) std::rethrow_exception(error);
    return std::move(*out);
}

}  // namespace decloud::testing
