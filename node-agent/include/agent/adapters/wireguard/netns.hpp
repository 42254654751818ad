#pragma once

#include <functional>
#include <string>

#include "decloud/common/result.hpp"

namespace decloud::agent::adapters {

// Network namespaces by name, as `ip netns` keeps them (/run/netns/<name>). The relay role may
// live in a namespace of its own; the adapters take its name and do their netlink, nftables and
// process work there, while the agent itself stays where it is.

// The path of a named namespace.
std::string NetnsPath(const std::string& netns);

// Runs `fn` on a short-lived thread that has joined `netns` (setns affects only the calling
// thread for network namespaces), or inline on the caller's thread when `netns` is empty.
// Sockets `fn` creates stay in that namespace after the thread ends. kNotFound if there is no
// such namespace, kPermissionDenied without CAP_SYS_ADMIN. An exception from `fn` is rethrown
// on the caller's thread.
common::Status RunInNetns(const std::string& netns, const std::function<void()>& fn);

}  // namespace decloud::agent::adapters
