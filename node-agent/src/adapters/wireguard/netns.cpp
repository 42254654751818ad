#include "agent/adapters/wireguard/netns.hpp"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <exception>
#include <system_error>
#include <thread>

namespace decloud::agent::adapters {

using common::Error;
using common::Status;

std::string NetnsPath(const std::string& netns) { return "/run/netns/" + netns; }

Status RunInNetns(const std::string& netns, const std::function<void()>& fn) {
    if (netns.empty()) {
        fn();
        return common::Ok();
    }
    if (netns.find('/') != std::string::npos || netns == "." || netns == "..")
        return Error::InvalidArgument("invalid network namespace name '" + netns + "'");
    const int fd = ::open(NetnsPath(netns).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        const int err = errno;
        if (err == ENOENT) return Error::NotFound("no network namespace named " + netns);
        return Error::Unavailable("cannot open network namespace " + netns + ": " +
                                  std::error_code(err, std::generic_category()).message());
    }
    int setns_errno = 0;
    std::exception_ptr failure;
    // A thread of its own: the caller's thread (maybe an io_context thread) never changes
    // namespace, and this one ends right after.
    std::thread worker([&] {
        if (::setns(fd, CLONE_NEWNET) != 0) {
            setns_errno = errno;
            return;
        }
        try {
            fn();
        } catch (...) {
            failure = std::current_exception();
        }
    });
    worker.join();
    ::close(fd);
    if (setns_errno != 0) {
        const auto message = "cannot enter network namespace " + netns + ": " +
                             std::error_code(setns_errno, std::generic_category()).message();
        if (setns_errno == EPERM) return Error::PermissionDenied(message);
        return Error::Unavailable(message);
    }
    if (failure) std::rethrow_exception(failure);
    return common::Ok();
}

}  // namespace decloud::agent::adapters
