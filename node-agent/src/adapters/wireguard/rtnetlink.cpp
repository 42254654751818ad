#include "agent/adapters/wireguard/rtnetlink.hpp"

#include <arpa/inet.h>
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <system_error>
#include <utility>

#include "netlink_socket.hpp"

namespace decloud::agent::adapters {

using common::Error;
using common::Result;
using common::Status;

namespace {

std::string ErrnoText(int err) { return std::error_code(err, std::generic_category()).message(); }

struct Prefix {
    int family = AF_INET;
    std::array<unsigned char, 16> bytes{};
    unsigned length = 0;
    std::size_t Size() const { return family == AF_INET ? 4 : 16; }
};

Result<Prefix> ParsePrefix(const std::string& cidr) {
    const auto slash = cidr.find('/');
    Prefix p;
    const std::string address = cidr.substr(0, slash);
    if (slash != std::string::npos && ::inet_pton(AF_INET, address.c_str(), p.bytes.data()) == 1) {
        p.family = AF_INET;
    } else if (slash != std::string::npos &&
               ::inet_pton(AF_INET6, address.c_str(), p.bytes.data()) == 1) {
        p.family = AF_INET6;
    } else {
        return Error::InvalidArgument("not an address with prefix: '" + cidr + "'");
    }
    const std::string len = cidr.substr(slash + 1);
    const auto [ptr, ec] = std::from_chars(len.data(), len.data() + len.size(), p.length);
    if (len.empty() || ec != std::errc{} || ptr != len.data() + len.size() ||
        p.length > (p.family == AF_INET ? 32u : 128u))
        return Error::InvalidArgument("not an address with prefix: '" + cidr + "'");
    return p;
}

LinkInfo ParseLink(const std::vector<char>& message) {
    const auto ifi = netlink::FixedPart<ifinfomsg>(message);
    LinkInfo link;
    link.index = ifi.ifi_index;
    link.flags = ifi.ifi_flags;
    for (const auto& a : netlink::MessageAttributes(message, sizeof(ifinfomsg))) {
        if (a.type == IFLA_IFNAME) link.name = a.String();
        if (a.type == IFLA_LINKINFO) {
            for (const auto& nested : netlink::Nested(a)) {
                if (nested.type == IFLA_INFO_KIND) link.kind = nested.String();
            }
        }
    }
    return link;
}

}  // namespace

bool LinkInfo::Up() const { return (flags & IFF_UP) != 0; }

Result<Rtnetlink> Rtnetlink::Open(const std::string& netns) {
    auto fd = netlink::OpenSocket(netns, NETLINK_ROUTE);
    if (!fd) return fd.error();
    return Rtnetlink(*fd);
}

Rtnetlink::Rtnetlink(Rtnetlink&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), seq_(other.seq_) {}

Rtnetlink& Rtnetlink::operator=(Rtnetlink&& other) noexcept {
    if (this != &other) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = std::exchange(other.fd_, -1);
        seq_ = other.seq_;
    }
    return *this;
}

Rtnetlink::~Rtnetlink() {
    if (fd_ >= 0) ::close(fd_);
}

Result<std::optional<LinkInfo>> Rtnetlink::GetLink(const std::string& name) {
    if (name.empty() || name.size() >= IFNAMSIZ)
        return Error::InvalidArgument("invalid interface name '" + name + "'");
    ifinfomsg info{};
    info.ifi_family = AF_UNSPEC;
    netlink::Request req(RTM_GETLINK, 0, info);
    req.Attr(IFLA_IFNAME, name);
    auto answer = netlink::Transact(fd_, seq_, req.Take(), false);
    if (!answer) return answer.error();
    if (answer->kernel_errno == ENODEV) return std::optional<LinkInfo>{};
    if (answer->kernel_errno != 0)
        return Error::Unavailable("netlink GETLINK " + name + ": " +
                                  ErrnoText(answer->kernel_errno));
    for (const auto& message : answer->messages) {
        if (netlink::MessageType(message) == RTM_NEWLINK)
            return std::optional<LinkInfo>(ParseLink(message));
    }
    return Error::Internal("netlink GETLINK " + name + " answered without a link");
}

Result<std::vector<LinkInfo>> Rtnetlink::ListLinks() {
    ifinfomsg info{};
    info.ifi_family = AF_UNSPEC;
    netlink::Request req(RTM_GETLINK, 0, info);
    auto answer = netlink::Transact(fd_, seq_, req.Take(), true);
    if (!answer) return answer.error();
    if (answer->kernel_errno != 0)
        return Error::Unavailable("netlink GETLINK dump: " + ErrnoText(answer->kernel_errno));
    std::vector<LinkInfo> links;
    for (const auto& message : answer->messages) {
        if (netlink::MessageType(message) == RTM_NEWLINK) links.push_back(ParseLink(message));
    }
    return links;
}

Status Rtnetlink::SetLinkUp(int index, bool up) {
    ifinfomsg info{};
    info.ifi_family = AF_UNSPEC;
    info.ifi_index = index;
    info.ifi_change = IFF_UP;
    info.ifi_flags = up ? IFF_UP : 0;
    netlink::Request req(RTM_NEWLINK, 0, info);
    auto answer = netlink::Transact(fd_, seq_, req.Take(), false);
    if (!answer) return answer.error();
    if (answer->kernel_errno != 0)
        return Error::Unavailable("cannot set link " + std::to_string(index) +
                                  (up ? " up: " : " down: ") + ErrnoText(answer->kernel_errno));
    return common::Ok();
}

Status Rtnetlink::CreateLink(const std::string& name, const std::string& kind) {
    if (name.empty() || name.size() >= IFNAMSIZ)
        return Error::InvalidArgument("invalid interface name '" + name + "'");
    ifinfomsg info{};
    info.ifi_family = AF_UNSPEC;
    netlink::Request req(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, info);
    req.Attr(IFLA_IFNAME, name);
    const auto nest = req.BeginNest(IFLA_LINKINFO);
    req.Attr(IFLA_INFO_KIND, kind.data(), kind.size());
    req.EndNest(nest);
    auto answer = netlink::Transact(fd_, seq_, req.Take(), false);
    if (!answer) return answer.error();
    if (answer->kernel_errno == EEXIST)
        return Error::Conflict("an interface named " + name + " exists");
    if (answer->kernel_errno != 0) {
        std::string why = ErrnoText(answer->kernel_errno);
        if (!answer->kernel_message.empty()) why += " (" + answer->kernel_message + ")";
        return Error::Unavailable("cannot create " + kind + " link " + name + ": " + why);
    }
    return common::Ok();
}

Status Rtnetlink::DeleteLink(int index) {
    ifinfomsg info{};
    info.ifi_family = AF_UNSPEC;
    info.ifi_index = index;
    netlink::Request req(RTM_DELLINK, 0, info);
    auto answer = netlink::Transact(fd_, seq_, req.Take(), false);
    if (!answer) return answer.error();
    if (answer->kernel_errno == ENODEV) return common::Ok();
    if (answer->kernel_errno != 0)
        return Error::Unavailable("cannot delete link " + std::to_string(index) + ": " +
                                  ErrnoText(answer->kernel_errno));
    return common::Ok();
}

Result<std::vector<std::string>> Rtnetlink::Addresses(int index) {
    ifaddrmsg addr{};
    addr.ifa_family = AF_UNSPEC;
    netlink::Request req(RTM_GETADDR, 0, addr);
    auto answer = netlink::Transact(fd_, seq_, req.Take(), true);
    if (!answer) return answer.error();
    if (answer->kernel_errno != 0)
        return Error::Unavailable("netlink GETADDR: " + ErrnoText(answer->kernel_errno));
    std::vector<std::string> v4;
    std::vector<std::string> v6;
    for (const auto& message : answer->messages) {
        if (netlink::MessageType(message) != RTM_NEWADDR) continue;
        const auto ifa = netlink::FixedPart<ifaddrmsg>(message);
        if (static_cast<int>(ifa.ifa_index) != index) continue;
        if (ifa.ifa_family == AF_INET6 && ifa.ifa_scope == RT_SCOPE_LINK) continue;
        const char* local = nullptr;
        const char* address = nullptr;
        for (const auto& a : netlink::MessageAttributes(message, sizeof(ifaddrmsg))) {
            if (a.type == IFA_LOCAL) local = a.data;
            if (a.type == IFA_ADDRESS) address = a.data;
        }
        const char* chosen = local != nullptr ? local : address;
        if (chosen == nullptr) continue;
        char text[INET6_ADDRSTRLEN] = {};
        if (::inet_ntop(ifa.ifa_family, chosen, text, sizeof text) == nullptr) continue;
        auto& out = ifa.ifa_family == AF_INET ? v4 : v6;
        out.push_back(std::string(text) + "/" + std::to_string(ifa.ifa_prefixlen));
    }
    v4.insert(v4.end(), v6.begin(), v6.end());
    return v4;
}

Status Rtnetlink::AddAddress(int index, const std::string& cidr) {
    auto prefix = ParsePrefix(cidr);
    if (!prefix) return prefix.error();
    ifaddrmsg addr{};
    addr.ifa_family = static_cast<unsigned char>(prefix->family);
    addr.ifa_prefixlen = static_cast<unsigned char>(prefix->length);
    addr.ifa_scope = RT_SCOPE_UNIVERSE;
    addr.ifa_index = static_cast<unsigned>(index);
    netlink::Request req(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, addr);
    // As `ip addr add` does without "peer": local and address are the same.
    req.Attr(IFA_LOCAL, prefix->bytes.data(), prefix->Size());
    req.Attr(IFA_ADDRESS, prefix->bytes.data(), prefix->Size());
    auto answer = netlink::Transact(fd_, seq_, req.Take(), false);
    if (!answer) return answer.error();
    if (answer->kernel_errno != 0 && answer->kernel_errno != EEXIST)
        return Error::Unavailable("cannot add address " + cidr + ": " +
                                  ErrnoText(answer->kernel_errno));
    return common::Ok();
}

Status Rtnetlink::DeleteAddress(int index, const std::string& cidr) {
    auto prefix = ParsePrefix(cidr);
    if (!prefix) return prefix.error();
    ifaddrmsg addr{};
    addr.ifa_family = static_cast<unsigned char>(prefix->family);
    addr.ifa_prefixlen = static_cast<unsigned char>(prefix->length);
    addr.ifa_index = static_cast<unsigned>(index);
    netlink::Request req(RTM_DELADDR, 0, addr);
    req.Attr(IFA_LOCAL, prefix->bytes.data(), prefix->Size());
    auto answer = netlink::Transact(fd_, seq_, req.Take(), false);
    if (!answer) return answer.error();
    if (answer->kernel_errno != 0 && answer->kernel_errno != EADDRNOTAVAIL &&
        answer->kernel_errno != ENODEV)
        return Error::Unavailable("cannot delete address " + cidr + ": " +
                                  ErrnoText(answer->kernel_errno));
    return common::Ok();
}

Status Rtnetlink::SetAddresses(int index, const std::vector<std::string>& cidrs) {
    auto actual = Addresses(index);
    if (!actual) return actual.error();
    for (const auto& address : *actual) {
        if (std::find(cidrs.begin(), cidrs.end(), address) == cidrs.end()) {
            if (auto deleted = DeleteAddress(index, address); !deleted) return deleted;
        }
    }
    for (const auto& address : cidrs) {
        if (std::find(actual->begin(), actual->end(), address) == actual->end()) {
            if (auto added = AddAddress(index, address); !added) return added;
        }
    }
    return common::Ok();
}

}  // namespace decloud::agent::adapters
