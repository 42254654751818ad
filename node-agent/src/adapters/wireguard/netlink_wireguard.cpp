#include "agent/adapters/wireguard/netlink_wireguard.hpp"

#include <arpa/inet.h>
#include <linux/genetlink.h>
#include <linux/time_types.h>
#include <linux/wireguard.h>
#include <netinet/in.h>
#include <unistd.h>

#include <charconv>
#include <cstring>
#include <system_error>

#include "agent/adapters/wireguard/rtnetlink.hpp"
#include "agent/domain/relay/uapi.hpp"
#include "netlink_socket.hpp"

namespace decloud::agent::adapters {

using common::Error;
using common::Result;
using common::Status;
namespace relay = domain::relay;

namespace {

constexpr const char* kKind = "wireguard";

std::string ErrnoText(int err) { return std::error_code(err, std::generic_category()).message(); }

// A generic netlink socket with the "wireguard" family resolved.
class WireGuardGenl {
  public:
    static Result<WireGuardGenl> Open(const std::string& netns) {
        auto fd = netlink::OpenSocket(netns, NETLINK_GENERIC);
        if (!fd) return fd.error();
        WireGuardGenl genl(*fd);
        genlmsghdr get{};
        get.cmd = CTRL_CMD_GETFAMILY;
        get.version = 1;
        netlink::Request req(GENL_ID_CTRL, 0, get);
        req.Attr(CTRL_ATTR_FAMILY_NAME, std::string(WG_GENL_NAME));
        auto answer = netlink::Transact(genl.fd_, genl.seq_, req.Take(), false);
        if (!answer) return answer.error();
        if (answer->kernel_errno == ENOENT)
            return Error::Unavailable("this kernel has no WireGuard (generic netlink family '" +
                                      std::string(WG_GENL_NAME) + "' missing)");
        if (answer->kernel_errno != 0)
            return Error::Unavailable("cannot resolve the WireGuard netlink family: " +
                                      ErrnoText(answer->kernel_errno));
        for (const auto& message : answer->messages) {
            for (const auto& a : netlink::MessageAttributes(message, sizeof(genlmsghdr))) {
                if (a.type == CTRL_ATTR_FAMILY_ID) genl.family_ = a.As<std::uint16_t>();
            }
        }
        if (genl.family_ == 0) return Error::Internal("the WireGuard netlink family has no id");
        return genl;
    }

    WireGuardGenl(WireGuardGenl&& other) noexcept
        : fd_(std::exchange(other.fd_, -1)), seq_(other.seq_), family_(other.family_) {}
    WireGuardGenl& operator=(WireGuardGenl&&) = delete;
    WireGuardGenl(const WireGuardGenl&) = delete;
    WireGuardGenl& operator=(const WireGuardGenl&) = delete;
    ~WireGuardGenl() {
        if (fd_ >= 0) ::close(fd_);
    }

    Result<relay::UapiDevice> Get(const std::string& interface);
    Status Set(const std::string& interface, const relay::UapiSet& set);

  private:
    explicit WireGuardGenl(int fd) : fd_(fd) {}
    genlmsghdr Header(std::uint8_t cmd) const {
        genlmsghdr h{};
        h.cmd = cmd;
        h.version = WG_GENL_VERSION;
        return h;
    }

    int fd_ = -1;
    std::uint32_t seq_ = 0;
    std::uint16_t family_ = 0;
};

std::string FormatEndpoint(const netlink::Attribute& a) {
    sockaddr_storage ss{};
    std::memcpy(&ss, a.data, std::min(a.size, sizeof ss));
    char text[INET6_ADDRSTRLEN] = {};
    if (ss.ss_family == AF_INET && a.size >= sizeof(sockaddr_in)) {
        sockaddr_in in{};
        std::memcpy(&in, a.data, sizeof in);
        ::inet_ntop(AF_INET, &in.sin_addr, text, sizeof text);
        return std::string(text) + ":" + std::to_string(ntohs(in.sin_port));
    }
    if (ss.ss_family == AF_INET6 && a.size >= sizeof(sockaddr_in6)) {
        sockaddr_in6 in6{};
        std::memcpy(&in6, a.data, sizeof in6);
        ::inet_ntop(AF_INET6, &in6.sin6_addr, text, sizeof text);
        return "[" + std::string(text) + "]:" + std::to_string(ntohs(in6.sin6_port));
    }
    return "";
}

std::string FormatAllowedIp(const netlink::Attribute& nest) {
    std::uint16_t family = 0;
    std::uint8_t cidr = 0;
    const char* address = nullptr;
    for (const auto& a : netlink::Nested(nest)) {
        if (a.type == WGALLOWEDIP_A_FAMILY) family = a.As<std::uint16_t>();
        if (a.type == WGALLOWEDIP_A_CIDR_MASK) cidr = a.As<std::uint8_t>();
        if (a.type == WGALLOWEDIP_A_IPADDR) address = a.data;
    }
    char text[INET6_ADDRSTRLEN] = {};
    if (address == nullptr || (family != AF_INET && family != AF_INET6) ||
        ::inet_ntop(family, address, text, sizeof text) == nullptr)
        return "";
    return std::string(text) + "/" + std::to_string(cidr);
}

relay::WireGuardKey KeyFrom(const netlink::Attribute& a) {
    relay::WireGuardKey::Bytes bytes{};
    if (a.size == bytes.size()) std::memcpy(bytes.data(), a.data, bytes.size());
    return relay::WireGuardKey(bytes);
}

Result<relay::UapiDevice> WireGuardGenl::Get(const std::string& interface) {
    netlink::Request req(family_, 0, Header(WG_CMD_GET_DEVICE));
    req.Attr(WGDEVICE_A_IFNAME, interface);
    auto answer = netlink::Transact(fd_, seq_, req.Take(), true);
    if (!answer) return answer.error();
    if (answer->kernel_errno == ENODEV) return Error::NotFound("no WireGuard link " + interface);
    if (answer->kernel_errno != 0)
        return Error::Unavailable("WG_CMD_GET_DEVICE " + interface + ": " +
                                  ErrnoText(answer->kernel_errno));
    relay::UapiDevice device;
    // Large devices come in several messages; a peer may continue (more allowed IPs) in the
    // next one under the same public key.
    for (const auto& message : answer->messages) {
        for (const auto& a : netlink::MessageAttributes(message, sizeof(genlmsghdr))) {
            switch (a.type) {
                case WGDEVICE_A_PRIVATE_KEY: {
                    const auto key = KeyFrom(a);
                    if (!key.IsZero()) device.private_key = key;
                    break;
                }
                case WGDEVICE_A_LISTEN_PORT:
                    device.listen_port = a.As<std::uint16_t>();
                    break;
                case WGDEVICE_A_FWMARK:
                    device.fwmark = a.As<std::uint32_t>();
                    break;
                case WGDEVICE_A_PEERS:
                    for (const auto& peer_nest : netlink::Nested(a)) {
                        relay::UapiPeer peer;
                        for (const auto& p : netlink::Nested(peer_nest)) {
                            switch (p.type) {
                                case WGPEER_A_PUBLIC_KEY:
                                    peer.public_key = KeyFrom(p);
                                    break;
                                case WGPEER_A_PRESHARED_KEY:
                                    peer.has_preshared_key = !KeyFrom(p).IsZero();
                                    break;
                                case WGPEER_A_ENDPOINT:
                                    peer.endpoint = FormatEndpoint(p);
                                    break;
                                case WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL:
                                    peer.persistent_keepalive_interval = p.As<std::uint16_t>();
                                    break;
                                case WGPEER_A_LAST_HANDSHAKE_TIME: {
                                    const auto ts = p.As<__kernel_timespec>();
                                    peer.last_handshake_time_sec = ts.tv_sec;
                                    peer.last_handshake_time_nsec = ts.tv_nsec;
                                    break;
                                }
                                case WGPEER_A_RX_BYTES:
                                    peer.rx_bytes = p.As<std::uint64_t>();
                                    break;
                                case WGPEER_A_TX_BYTES:
                                    peer.tx_bytes = p.As<std::uint64_t>();
                                    break;
                                case WGPEER_A_PROTOCOL_VERSION:
                                    peer.protocol_version = p.As<std::uint32_t>();
                                    break;
                                case WGPEER_A_ALLOWEDIPS:
                                    for (const auto& ip : netlink::Nested(p)) {
                                        auto text = FormatAllowedIp(ip);
                                        if (!text.empty()) peer.allowed_ips.push_back(text);
                                    }
                                    break;
                                default:
                                    break;
                            }
                        }
                        if (!device.peers.empty() &&
                            device.peers.back().public_key == peer.public_key) {
                            auto& last = device.peers.back().allowed_ips;
                            last.insert(last.end(), peer.allowed_ips.begin(),
                                        peer.allowed_ips.end());
                        } else {
                            device.peers.push_back(std::move(peer));
                        }
                    }
                    break;
                default:
                    break;
            }
        }
    }
    return device;
}

Result<std::vector<char>> EndpointBytes(const std::string& endpoint) {
    const auto bad = [&] { return Error::InvalidArgument("bad endpoint '" + endpoint + "'"); };
    const bool v6 = endpoint.starts_with('[');
    const auto sep = v6 ? endpoint.find("]:") : endpoint.rfind(':');
    if (sep == std::string::npos) return bad();
    const std::string host = v6 ? endpoint.substr(1, sep - 1) : endpoint.substr(0, sep);
    const std::string port_text = endpoint.substr(sep + (v6 ? 2 : 1));
    std::uint16_t port = 0;
    const auto [ptr, ec] =
        std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc{} || ptr != port_text.data() + port_text.size()) return bad();
    if (v6) {
        sockaddr_in6 in6{};
        in6.sin6_family = AF_INET6;
        in6.sin6_port = htons(port);
        if (::inet_pton(AF_INET6, host.c_str(), &in6.sin6_addr) != 1) return bad();
        const auto* p = reinterpret_cast<const char*>(&in6);
        return std::vector<char>(p, p + sizeof in6);
    }
    sockaddr_in in{};
    in.sin_family = AF_INET;
    in.sin_port = htons(port);
    if (::inet_pton(AF_INET, host.c_str(), &in.sin_addr) != 1) return bad();
    const auto* p = reinterpret_cast<const char*>(&in);
    return std::vector<char>(p, p + sizeof in);
}

Status WireGuardGenl::Set(const std::string& interface, const relay::UapiSet& set) {
    netlink::Request req(family_, 0, Header(WG_CMD_SET_DEVICE));
    req.Attr(WGDEVICE_A_IFNAME, interface);
    if (set.private_key)
        req.Attr(WGDEVICE_A_PRIVATE_KEY, set.private_key->bytes().data(), WG_KEY_LEN);
    if (set.listen_port) req.Value<std::uint16_t>(WGDEVICE_A_LISTEN_PORT, *set.listen_port);
    if (set.replace_peers) req.Value<std::uint32_t>(WGDEVICE_A_FLAGS, WGDEVICE_F_REPLACE_PEERS);
    if (!set.peers.empty()) {
        const auto peers = req.BeginNest(WGDEVICE_A_PEERS);
        for (const auto& peer : set.peers) {
            const auto nest = req.BeginNest(0);
            req.Attr(WGPEER_A_PUBLIC_KEY, peer.public_key.bytes().data(), WG_KEY_LEN);
            std::uint32_t flags = 0;
            if (peer.remove) flags |= WGPEER_F_REMOVE_ME;
            if (!peer.remove && peer.replace_allowed_ips) flags |= WGPEER_F_REPLACE_ALLOWEDIPS;
            if (!peer.remove && peer.update_only) flags |= WGPEER_F_UPDATE_ONLY;
            if (flags != 0) req.Value<std::uint32_t>(WGPEER_A_FLAGS, flags);
            if (!peer.remove) {
                if (peer.endpoint) {
                    auto bytes = EndpointBytes(*peer.endpoint);
                    if (!bytes) return bytes.error();
                    req.Attr(WGPEER_A_ENDPOINT, bytes->data(), bytes->size());
                }
                if (peer.persistent_keepalive_interval)
                    req.Value<std::uint16_t>(
                        WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL,
                        static_cast<std::uint16_t>(*peer.persistent_keepalive_interval));
                if (!peer.allowed_ips.empty()) {
                    const auto ips = req.BeginNest(WGPEER_A_ALLOWEDIPS);
                    for (const auto& prefix : peer.allowed_ips) {
                        const auto slash = prefix.find('/');
                        const std::string address = prefix.substr(0, slash);
                        const int cidr = std::stoi(prefix.substr(slash + 1));
                        in6_addr bytes{};
                        const bool v4 = ::inet_pton(AF_INET, address.c_str(), &bytes) == 1;
                        if (!v4 && ::inet_pton(AF_INET6, address.c_str(), &bytes) != 1)
                            return Error::InvalidArgument("bad allowed IP '" + prefix + "'");
                        const auto ip = req.BeginNest(0);
                        req.Value<std::uint16_t>(WGALLOWEDIP_A_FAMILY, v4 ? AF_INET : AF_INET6);
                        req.Attr(WGALLOWEDIP_A_IPADDR, &bytes, v4 ? 4 : 16);
                        req.Value<std::uint8_t>(WGALLOWEDIP_A_CIDR_MASK,
                                                static_cast<std::uint8_t>(cidr));
                        req.EndNest(ip);
                    }
                    req.EndNest(ips);
                }
            }
            req.EndNest(nest);
        }
        req.EndNest(peers);
    }
    // The peer list is one attribute with a 16-bit length; `wg` splits larger changes over
    // several messages, this adapter does not (yet).
    if (req.Overflowed())
        return Error::InvalidArgument("the WireGuard change for " + interface +
                                      " does not fit one netlink message (too many peers)");
    auto answer = netlink::Transact(fd_, seq_, req.Take(), false);
    if (!answer) return answer.error();
    if (answer->kernel_errno != 0) {
        std::string why = ErrnoText(answer->kernel_errno);
        if (!answer->kernel_message.empty()) why += " (" + answer->kernel_message + ")";
        const auto message = "WG_CMD_SET_DEVICE " + interface + ": " + why;
        if (answer->kernel_errno == EADDRINUSE) return Error::Conflict(message);
        if (answer->kernel_errno == EINVAL) return Error::InvalidArgument(message);
        return Error::Unavailable(message);
    }
    return common::Ok();
}

}  // namespace

NetlinkWireGuard::NetlinkWireGuard(NetlinkWireGuardOptions options)
    : options_(std::move(options)) {}

Status NetlinkWireGuard::Probe(const std::string& netns) {
    auto nl = Rtnetlink::Open(netns);
    if (!nl) return nl.error();
    const std::string name = "dcwgp" + std::to_string(::getpid() % 10000000);
    if (auto created = nl->CreateLink(name, kKind); !created) return created;
    auto link = nl->GetLink(name);
    if (link && link->has_value()) {
        if (auto deleted = nl->DeleteLink((*link)->index); !deleted) return deleted;
    }
    auto genl = WireGuardGenl::Open(netns);
    if (!genl) return genl.error();
    return common::Ok();
}

Status NetlinkWireGuard::Ensure(const ports::WireGuardConfig& config) {
    if (auto valid = relay::ValidateConfig(config); !valid) return valid;
    const std::string& name = config.interface;
    std::lock_guard lock(mu_);
    auto nl = Rtnetlink::Open(options_.netns);
    if (!nl) return nl.error();
    auto link = nl->GetLink(name);
    if (!link) return link.error();
    if (link->has_value() && (*link)->kind != kKind)
        return Error::Conflict("interface " + name + " exists and is of kind '" + (*link)->kind +
                               "', not wireguard");
    if (!link->has_value()) {
        if (auto created = nl->CreateLink(name, kKind); !created) return created;
        link = nl->GetLink(name);
        if (!link) return link.error();
        if (!link->has_value())
            return Error::Unavailable("interface " + name + " vanished right after it was created");
    }
    auto genl = WireGuardGenl::Open(options_.netns);
    if (!genl) return genl.error();
    auto device = genl->Get(name);
    if (!device) return device.error();
    const auto plan = relay::PlanUapiSet(config, *device);
    if (!plan.Empty()) {
        if (auto set = genl->Set(name, plan); !set) return set;
    }
    std::vector<std::string> addresses;
    for (const auto& address : config.addresses)
        addresses.push_back(*relay::NormalizeCidr(address, false));
    if (auto set = nl->SetAddresses((*link)->index, addresses); !set) return set;
    if (!(*link)->Up()) {
        if (auto up = nl->SetLinkUp((*link)->index, true); !up) return up;
    }
    return common::Ok();
}

Status NetlinkWireGuard::Remove(const std::string& interface) {
    if (!relay::IsValidInterfaceName(interface))
        return Error::InvalidArgument("invalid interface name '" + interface + "'");
    std::lock_guard lock(mu_);
    auto nl = Rtnetlink::Open(options_.netns);
    if (!nl) return nl.error();
    auto link = nl->GetLink(interface);
    if (!link) return link.error();
    if (!link->has_value()) return common::Ok();
    if ((*link)->kind != kKind)
        return Error::Conflict("interface " + interface + " is not a WireGuard link");
    return nl->DeleteLink((*link)->index);
}

Result<ports::WireGuardState> NetlinkWireGuard::Read(const std::string& interface) {
    if (!relay::IsValidInterfaceName(interface))
        return Error::InvalidArgument("invalid interface name '" + interface + "'");
    std::lock_guard lock(mu_);
    auto nl = Rtnetlink::Open(options_.netns);
    if (!nl) return nl.error();
    auto link = nl->GetLink(interface);
    if (!link) return link.error();
    if (!link->has_value() || (*link)->kind != kKind)
        return Error::NotFound("no WireGuard link named " + interface);
    auto genl = WireGuardGenl::Open(options_.netns);
    if (!genl) return genl.error();
    auto device = genl->Get(interface);
    if (!device) return device.error();
    auto addresses = nl->Addresses((*link)->index);
    if (!addresses) return addresses.error();
    return relay::ToWireGuardState(interface, *device, (*link)->Up(), std::move(*addresses));
}

Result<std::vector<std::string>> NetlinkWireGuard::List() {
    std::lock_guard lock(mu_);
    auto nl = Rtnetlink::Open(options_.netns);
    if (!nl) return nl.error();
    auto links = nl->ListLinks();
    if (!links) return links.error();
    std::vector<std::string> names;
    for (const auto& link : *links) {
        if (link.kind == kKind && relay::IsRelayInterfaceName(link.name))
            names.push_back(link.name);
    }
    std::sort(names.begin(), names.end());
    return names;
}

}  // namespace decloud::agent::adapters
