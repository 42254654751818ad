#include "agent/adapters/wireguard/udp_tunnel_prober.hpp"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <map>

#include "agent/domain/relay/wireguard.hpp"

namespace decloud::agent::adapters {

namespace relay = domain::relay;
using Clock = std::chrono::steady_clock;

namespace {

constexpr auto kStopCheck = std::chrono::milliseconds{200};

process::UniqueFd UdpSocket(std::uint16_t port, std::string& error) {
    process::UniqueFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (fd.Get() < 0) {
        error = std::strerror(errno);
        return fd;
    }
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_ANY);
    // NOLINTNEXTLINE: the sockets API takes a generic address.
    if (::bind(fd.Get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
        error = std::strerror(errno);
        fd.Reset();
    }
    return fd;
}

bool WaitReadable(int fd, std::chrono::milliseconds timeout) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, static_cast<int>(timeout.count())) > 0 && (p.revents & POLLIN) != 0;
}

}  // namespace

UdpTunnelProber::UdpTunnelProber(UdpTunnelProberOptions options) : options_(std::move(options)) {
    if (!options_.answer_on) {
        options_.answer_on = [](std::string_view name) {
            return relay::RelayInterfaceRole(name).has_value();
        };
    }
    std::string error;
    echo_fd_ = UdpSocket(options_.port, error);
    if (echo_fd_.Get() >= 0) {
        sockaddr_in bound{};
        socklen_t length = sizeof bound;
        // NOLINTNEXTLINE: the sockets API takes a generic address.
        if (::getsockname(echo_fd_.Get(), reinterpret_cast<sockaddr*>(&bound), &length) == 0)
            options_.port = ntohs(bound.sin_port);
        const int on = 1;
        ::setsockopt(echo_fd_.Get(), IPPROTO_IP, IP_PKTINFO, &on, sizeof on);
        echo_thread_ = std::jthread([this](std::stop_token stop) { EchoLoop(stop); });
    } else {
        spdlog::warn(
            "tunnel latency: cannot listen on UDP port {} ({}); peers cannot measure "
            "their latency to this node",
            options_.port, error);
    }
    probe_fd_ = UdpSocket(0, error);
    if (probe_fd_.Get() < 0) {
        spdlog::warn("tunnel latency: no probe socket ({}); latency is not measured", error);
        return;
    }
    probe_thread_ = std::jthread([this](std::stop_token stop) { ProbeLoop(stop); });
}

void UdpTunnelProber::Watch(const std::vector<std::string>& addresses) {
    std::lock_guard lock(mu_);
    book_.Watch(addresses);
}

std::optional<relay::PeerLatency> UdpTunnelProber::Latency(const std::string& address) const {
    std::lock_guard lock(mu_);
    return book_.Latency(address);
}

void UdpTunnelProber::EchoLoop(std::stop_token stop) {
    std::array<char, 64> buffer{};
    alignas(cmsghdr) std::array<char, CMSG_SPACE(sizeof(in_pktinfo))> control{};
    while (!stop.stop_requested()) {
        if (!WaitReadable(echo_fd_.Get(), kStopCheck)) continue;
        for (;;) {
            sockaddr_in from{};
            iovec iov{buffer.data(), buffer.size()};
            msghdr msg{};
            msg.msg_name = &from;
            msg.msg_namelen = sizeof from;
            msg.msg_iov = &iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control.data();
            msg.msg_controllen = control.size();
            const auto n = ::recvmsg(echo_fd_.Get(), &msg, 0);
            if (n < 0) break;  // EAGAIN: drained
            const std::string_view datagram(buffer.data(), static_cast<std::size_t>(n));
            if (!relay::DecodeProbe(datagram) || (msg.msg_flags & MSG_TRUNC) != 0) continue;
            const in_pktinfo* info = nullptr;
            for (auto* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c))
                if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO)
                    info = reinterpret_cast<const in_pktinfo*>(CMSG_DATA(c));  // NOLINT
            if (info == nullptr) continue;
            std::array<char, IF_NAMESIZE> name{};
            if (::if_indextoname(static_cast<unsigned>(info->ipi_ifindex), name.data()) ==
                    nullptr ||
                !options_.answer_on(name.data()))
                continue;
            // Answer from the address the probe was sent to.
            in_pktinfo reply_info{};
            reply_info.ipi_spec_dst = info->ipi_addr;
            alignas(cmsghdr) std::array<char, CMSG_SPACE(sizeof(in_pktinfo))> reply_control{};
            msghdr reply{};
            reply.msg_name = &from;
            reply.msg_namelen = sizeof from;
            iovec out{buffer.data(), static_cast<std::size_t>(n)};
            reply.msg_iov = &out;
            reply.msg_iovlen = 1;
            reply.msg_control = reply_control.data();
            reply.msg_controllen = reply_control.size();
            auto* c = CMSG_FIRSTHDR(&reply);
            c->cmsg_level = IPPROTO_IP;
            c->cmsg_type = IP_PKTINFO;
            c->cmsg_len = CMSG_LEN(sizeof(in_pktinfo));
            std::memcpy(CMSG_DATA(c), &reply_info, sizeof reply_info);
            ::sendmsg(echo_fd_.Get(), &reply, MSG_DONTWAIT);
        }
    }
}

void UdpTunnelProber::ProbeOnce() {
    const std::lock_guard round(round_mu_);
    std::vector<std::string> addresses;
    {
        std::lock_guard lock(mu_);
        addresses = book_.Watched();
    }
    if (addresses.empty()) return;
    std::array<char, 64> buffer{};
    // Late echoes of an earlier round are not this round's.
    while (::recv(probe_fd_.Get(), buffer.data(), buffer.size(), 0) >= 0) {
    }
    struct Sent {
        std::string address;
        Clock::time_point at;
    };
    std::map<std::uint64_t, Sent> sent;
    std::map<std::string, std::vector<std::chrono::microseconds>> echoes;
    for (const auto& address : addresses) {
        echoes[address];
        sockaddr_in to{};
        to.sin_family = AF_INET;
        to.sin_port = htons(options_.port);
        if (::inet_pton(AF_INET, address.c_str(), &to.sin_addr) != 1) continue;
        for (unsigned i = 0; i < options_.probes_per_round; ++i) {
            const auto sequence = next_sequence_++;
            const auto probe = relay::EncodeProbe(sequence);
            const auto at = Clock::now();
            // NOLINTNEXTLINE: the sockets API takes a generic address.
            if (::sendto(probe_fd_.Get(), probe.data(), probe.size(), MSG_DONTWAIT,
                         reinterpret_cast<const sockaddr*>(&to),
                         sizeof to) == static_cast<ssize_t>(probe.size()))
                sent.emplace(sequence, Sent{address, at});
        }
    }
    const auto deadline = Clock::now() + options_.timeout;
    while (!sent.empty()) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        if (left.count() <= 0 || !WaitReadable(probe_fd_.Get(), left)) break;
        for (;;) {
            const auto n = ::recv(probe_fd_.Get(), buffer.data(), buffer.size(), 0);
            if (n < 0) break;
            const auto arrived = Clock::now();
            const auto sequence =
                relay::DecodeProbe(std::string_view(buffer.data(), static_cast<std::size_t>(n)));
            if (!sequence) continue;
            const auto it = sent.find(*sequence);
            if (it == sent.end()) continue;
            echoes[it->second.address].push_back(
                std::chrono::duration_cast<std::chrono::microseconds>(arrived - it->second.at));
            sent.erase(it);
        }
    }
    std::lock_guard lock(mu_);
    for (const auto& [address, times] : echoes) book_.RecordRound(address, times);
}

void UdpTunnelProber::ProbeLoop(std::stop_token stop) {
    std::mutex wait_mu;
    // The first round after one interval: the peers are not watched before the first Apply.
    for (;;) {
        {
            std::unique_lock lock(wait_mu);
            wake_.wait_for(lock, stop, options_.interval, [] { return false; });
        }
        if (stop.stop_requested()) return;
        ProbeOnce();
    }
}

}  // namespace decloud::agent::adapters
