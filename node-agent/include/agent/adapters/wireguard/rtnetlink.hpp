#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "decloud/common/result.hpp"

namespace decloud::agent::adapters {

struct LinkInfo {
    int index = 0;
    std::string name;
    unsigned flags = 0;  // IFF_*
    std::string kind;    // IFLA_INFO_KIND: "tun", "wireguard", "veth"...; empty if none
    bool Up() const;
};

// A route netlink (rtnetlink) socket in one network namespace, for the few link and address
// operations the relay interfaces need, so the agent does not shell out to `ip`. Every request
// waits for the kernel's answer (ack or error), with a 5 s receive timeout. Not thread-safe:
// one per operation or per thread.
class Rtnetlink {
  public:
    // Opens the socket in `netns` ("" = the caller's namespace).
    static common::Result<Rtnetlink> Open(const std::string& netns);
    Rtnetlink(Rtnetlink&& other) noexcept;
    Rtnetlink& operator=(Rtnetlink&& other) noexcept;
    Rtnetlink(const Rtnetlink&) = delete;
    Rtnetlink& operator=(const Rtnetlink&) = delete;
    ~Rtnetlink();

    // nullopt if there is no link of that name.
    common::Result<std::optional<LinkInfo>> GetLink(const std::string& name);
    // Every link in the namespace.
    common::Result<std::vector<LinkInfo>> ListLinks();
    common::Status SetLinkUp(int index, bool up);
    // Creates a link of `kind` (e.g. "wireguard"); kConflict if the name is taken,
    // kUnavailable (with the kernel's reason) if the kind is not supported.
    common::Status CreateLink(const std::string& name, const std::string& kind);
    // Deleting a link that is gone is a success.
    common::Status DeleteLink(int index);

    // The link's addresses as "addr/prefix" (host bits kept), IPv4 then IPv6, without IPv6
    // link-local ones (the kernel manages those).
    common::Result<std::vector<std::string>> Addresses(int index);
    // Adding an address that is there already is a success; so is deleting one that is not.
    common::Status AddAddress(int index, const std::string& cidr);
    common::Status DeleteAddress(int index, const std::string& cidr);
    // Makes the link's addresses exactly `cidrs` (canonical "addr/prefix"): deletes the others
    // (IPv6 link-local ones excepted), adds the missing.
    common::Status SetAddresses(int index, const std::vector<std::string>& cidrs);

  private:
    explicit Rtnetlink(int fd) : fd_(fd) {}

    int fd_ = -1;
    std::uint32_t seq_ = 0;
};

}  // namespace decloud::agent::adapters
