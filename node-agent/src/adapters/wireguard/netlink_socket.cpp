#include "netlink_socket.hpp"

#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <system_error>

#include "agent/adapters/wireguard/netns.hpp"

namespace decloud::agent::adapters::netlink {

using common::Error;
using common::Result;

namespace {

std::string ErrnoText(int err) { return std::error_code(err, std::generic_category()).message(); }

constexpr std::size_t kAttrHeader = NLA_ALIGN(sizeof(nlattr));

}  // namespace

Result<int> OpenSocket(const std::string& netns, int protocol) {
    int fd = -1;
    int err = 0;
    auto entered = RunInNetns(netns, [&] {
        fd = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
        err = errno;
    });
    if (!entered) return entered.error();
    if (fd < 0) return Error::Unavailable("cannot open a netlink socket: " + ErrnoText(err));
    const timeval timeout{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    const int one = 1;
    // Extended acks carry the kernel's reason ("Unknown device type") with the errno.
    ::setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
    sockaddr_nl local{};
    local.nl_family = AF_NETLINK;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) {
        err = errno;
        ::close(fd);
        return Error::Unavailable("cannot bind a netlink socket: " + ErrnoText(err));
    }
    return fd;
}

Result<Answer> Transact(int fd, std::uint32_t& seq, std::vector<char> request, bool dump) {
    nlmsghdr header{};
    std::memcpy(&header, request.data(), sizeof header);
    header.nlmsg_seq = ++seq;
    header.nlmsg_flags |= NLM_F_REQUEST | (dump ? NLM_F_DUMP : NLM_F_ACK);
    std::memcpy(request.data(), &header, sizeof header);
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    if (::sendto(fd, request.data(), header.nlmsg_len, 0, reinterpret_cast<sockaddr*>(&kernel),
                 sizeof kernel) < 0)
        return Error::Unavailable("netlink send failed: " + ErrnoText(errno));
    Answer answer;
    std::vector<char> buf(64 * 1024);
    for (;;) {
        const auto n = ::recv(fd, buf.data(), buf.size(), 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            return Error::Unavailable("netlink receive failed: " + ErrnoText(errno));
        }
        std::size_t at = 0;
        const auto total = static_cast<std::size_t>(n);
        while (at + sizeof(nlmsghdr) <= total) {
            nlmsghdr msg{};
            std::memcpy(&msg, buf.data() + at, sizeof msg);
            if (msg.nlmsg_len < sizeof(nlmsghdr) || at + msg.nlmsg_len > total) break;
            const char* body = buf.data() + at + NLMSG_ALIGN(sizeof(nlmsghdr));
            const std::size_t next = at + NLMSG_ALIGN(msg.nlmsg_len);
            if (msg.nlmsg_seq != seq) {  // a late answer to an earlier request
                at = next;
                continue;
            }
            if (msg.nlmsg_type == NLMSG_DONE) return answer;
            if (msg.nlmsg_type == NLMSG_ERROR) {
                nlmsgerr err{};
                std::memcpy(&err, body, std::min(sizeof err, std::size_t{msg.nlmsg_len}));
                answer.kernel_errno = -err.error;
                // With NETLINK_EXT_ACK, TLVs follow the (maybe capped) echo of the request.
                if ((msg.nlmsg_flags & NLM_F_ACK_TLVS) != 0) {
                    std::size_t tlv = NLMSG_ALIGN(sizeof(nlmsghdr)) + sizeof(nlmsgerr);
                    if ((msg.nlmsg_flags & NLM_F_CAPPED) == 0)
                        tlv += err.msg.nlmsg_len - NLMSG_ALIGN(sizeof(nlmsghdr));
                    tlv = NLMSG_ALIGN(tlv);
                    if (tlv < msg.nlmsg_len) {
                        for (const auto& a :
                             Attributes(buf.data() + at + tlv, msg.nlmsg_len - tlv)) {
                            if (a.type == NLMSGERR_ATTR_MSG) answer.kernel_message = a.String();
                        }
                    }
                }
                return answer;  // the ack (error 0) or the error ends a non-dump request
            }
            answer.messages.emplace_back(buf.data() + at, buf.data() + at + msg.nlmsg_len);
            at = next;
        }
    }
}

void Request::Attr(std::uint16_t type, const void* data, std::size_t len) {
    const std::size_t at = NLMSG_ALIGN(Size());
    if (kAttrHeader + len > 0xffff) overflowed_ = true;
    buf_.resize(at + NLA_ALIGN(kAttrHeader + len));
    nlattr attr{};
    attr.nla_type = type;
    attr.nla_len = static_cast<std::uint16_t>(kAttrHeader + len);
    std::memcpy(buf_.data() + at, &attr, sizeof attr);
    if (len != 0) std::memcpy(buf_.data() + at + kAttrHeader, data, len);
    SetLength(at + NLA_ALIGN(kAttrHeader + len));
}

std::size_t Request::BeginNest(std::uint16_t type) {
    const std::size_t at = NLMSG_ALIGN(Size());
    Attr(static_cast<std::uint16_t>(type | NLA_F_NESTED), nullptr, 0);
    return at;
}

void Request::EndNest(std::size_t at) {
    nlattr attr{};
    std::memcpy(&attr, buf_.data() + at, sizeof attr);
    if (Size() - at > 0xffff) overflowed_ = true;
    attr.nla_len = static_cast<std::uint16_t>(Size() - at);
    std::memcpy(buf_.data() + at, &attr, sizeof attr);
}

void Request::SetLength(std::size_t len) {
    nlmsghdr h = Header();
    h.nlmsg_len = static_cast<std::uint32_t>(len);
    std::memcpy(buf_.data(), &h, sizeof h);
}

std::string Attribute::String() const {
    const auto* end = std::find(data, data + size, '\0');
    return std::string(data, end);
}

std::vector<Attribute> Attributes(const char* data, std::size_t size) {
    std::vector<Attribute> out;
    std::size_t at = 0;
    while (at + sizeof(nlattr) <= size) {
        nlattr attr{};
        std::memcpy(&attr, data + at, sizeof attr);
        if (attr.nla_len < sizeof(nlattr) || at + attr.nla_len > size) break;
        Attribute a;
        a.type = static_cast<std::uint16_t>(attr.nla_type & NLA_TYPE_MASK);
        a.data = data + at + kAttrHeader;
        a.size = attr.nla_len - kAttrHeader;
        out.push_back(a);
        at += NLA_ALIGN(attr.nla_len);
    }
    return out;
}

std::vector<Attribute> MessageAttributes(const std::vector<char>& message, std::size_t fixed_size) {
    const std::size_t start = NLMSG_ALIGN(sizeof(nlmsghdr)) + NLMSG_ALIGN(fixed_size);
    nlmsghdr h{};
    std::memcpy(&h, message.data(), sizeof h);
    if (h.nlmsg_len <= start) return {};
    return Attributes(message.data() + start, h.nlmsg_len - start);
}

}  // namespace decloud::agent::adapters::netlink
