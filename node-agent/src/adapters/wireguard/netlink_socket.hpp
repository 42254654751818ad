#pragma once

// Netlink plumbing shared by Rtnetlink and NetlinkWireGuard (internal header): building requests
// with attributes, walking attributes, and one request/answer exchange on a socket.

#include <linux/netlink.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "decloud/common/result.hpp"

namespace decloud::agent::adapters::netlink {

// A netlink socket of `protocol` (NETLINK_ROUTE, NETLINK_GENERIC) opened in `netns` ("" = the
// caller's), bound, with a 5 s receive timeout and extended acks. The caller closes it.
common::Result<int> OpenSocket(const std::string& netns, int protocol);

// What the kernel answered to one request: the reply messages (for a dump, all of them until
// NLMSG_DONE), and the errno of the ack or error (0 = success) with the extended-ack text.
struct Answer {
    std::vector<std::vector<char>> messages;
    int kernel_errno = 0;
    std::string kernel_message;
};

// Sends `request` (its sequence number and NLM_F_REQUEST plus NLM_F_DUMP or NLM_F_ACK are set
// here) and collects the answer.
common::Result<Answer> Transact(int fd, std::uint32_t& seq, std::vector<char> request, bool dump);

// A request under construction: header, fixed part, then attributes, all 4-byte aligned.
class Request {
  public:
    template <class Fixed>
    Request(std::uint16_t type, std::uint16_t flags, const Fixed& fixed) {
        buf_.resize(NLMSG_ALIGN(sizeof(nlmsghdr)) + NLMSG_ALIGN(sizeof(Fixed)));
        nlmsghdr header{};
        header.nlmsg_type = type;
        header.nlmsg_flags = flags;
        header.nlmsg_len =
            static_cast<std::uint32_t>(NLMSG_ALIGN(sizeof(nlmsghdr)) + sizeof(Fixed));
        std::memcpy(buf_.data(), &header, sizeof header);
        std::memcpy(buf_.data() + NLMSG_ALIGN(sizeof(nlmsghdr)), &fixed, sizeof(Fixed));
    }
    void Attr(std::uint16_t type, const void* data, std::size_t len);
    void Attr(std::uint16_t type, const std::string& text) {
        Attr(type, text.c_str(), text.size() + 1);
    }
    template <class T>
    void Value(std::uint16_t type, T value) {
        Attr(type, &value, sizeof value);
    }
    // Starts a nested attribute (flagged NLA_F_NESTED); EndNest fixes its length.
    std::size_t BeginNest(std::uint16_t type);
    void EndNest(std::size_t at);
    // True if an attribute outgrew the 65535 bytes its 16-bit length can say.
    bool Overflowed() const { return overflowed_; }
    std::size_t Size() const { return Header().nlmsg_len; }
    std::vector<char> Take() { return std::move(buf_); }

  private:
    nlmsghdr Header() const {
        nlmsghdr h{};
        std::memcpy(&h, buf_.data(), sizeof h);
        return h;
    }
    void SetLength(std::size_t len);
    std::vector<char> buf_;
    bool overflowed_ = false;
};

// One attribute: type (without the nested/byte-order flags) and payload.
struct Attribute {
    std::uint16_t type = 0;
    const char* data = nullptr;
    std::size_t size = 0;

    std::string String() const;  // up to the first NUL
    template <class T>
    T As() const {
        T value{};
        std::memcpy(&value, data, std::min(sizeof value, size));
        return value;
    }
};

// The attributes in [data, data + size).
std::vector<Attribute> Attributes(const char* data, std::size_t size);
// The attributes of a message after its header and a fixed part of `fixed_size` bytes.
std::vector<Attribute> MessageAttributes(const std::vector<char>& message, std::size_t fixed_size);
// The attributes nested in `parent`.
inline std::vector<Attribute> Nested(const Attribute& parent) {
    return Attributes(parent.data, parent.size);
}
// The fixed part of a message (right after the header).
template <class Fixed>
Fixed FixedPart(const std::vector<char>& message) {
    Fixed fixed{};
    const std::size_t at = NLMSG_ALIGN(sizeof(nlmsghdr));
    if (message.size() >= at + sizeof(Fixed))
        std::memcpy(&fixed, message.data() + at, sizeof fixed);
    return fixed;
}
inline std::uint16_t MessageType(const std::vector<char>& message) {
    nlmsghdr h{};
    std::memcpy(&h, message.data(), sizeof h);
    return h.nlmsg_type;
}

}  // namespace decloud::agent::adapters::netlink
