#include "agent/domain/relay/tunnel_probe.hpp"

#include <algorithm>

namespace decloud::agent::domain::relay {

std::string EncodeProbe(std::uint64_t sequence) {
    std::string out(kProbeMagic);
    for (int shift = 56; shift >= 0; shift -= 8)
        out.push_back(static_cast<char>((sequence >> shift) & 0xFF));
    return out;
}

std::optional<std::uint64_t> DecodeProbe(std::string_view datagram) {
    if (datagram.size() != kProbeSize || !datagram.starts_with(kProbeMagic)) return std::nullopt;
    std::uint64_t sequence = 0;
    for (const char c : datagram.substr(kProbeMagic.size()))
        sequence = (sequence << 8) | static_cast<unsigned char>(c);
    return sequence;
}

void LatencyBook::Watch(const std::vector<std::string>& addresses) {
    std::map<std::string, Entry> next;
    for (const auto& a : addresses) {
        if (a.empty()) continue;
        auto it = peers_.find(a);
        next[a] = it != peers_.end() ? it->second : Entry{};
    }
    peers_ = std::move(next);
}

std::vector<std::string> LatencyBook::Watched() const {
    std::vector<std::string> out;
    for (const auto& [address, entry] : peers_) out.push_back(address);
    return out;
}

void LatencyBook::RecordRound(const std::string& address,
                              const std::vector<std::chrono::microseconds>& echoes) {
    const auto it = peers_.find(address);
    if (it == peers_.end()) return;  // no longer watched
    auto& entry = it->second;
    if (echoes.empty()) {
        if (entry.answered_once) ++entry.latency.unanswered_rounds;
        return;
    }
    // The first round answered after silence (a new tunnel, or one coming back) usually waited
    // for the WireGuard handshake that its own probes started: its times measure the handshake
    // (hundreds of ms), not the path. It proves the path works but sets no round trip.
    const bool after_silence = !entry.answered_once || entry.latency.unanswered_rounds > 0;
    entry.latency.unanswered_rounds = 0;
    entry.answered_once = true;
    if (after_silence) return;
    // The fastest echo is the path's latency; slower ones waited in some queue.
    entry.latency.rtt = *std::min_element(echoes.begin(), echoes.end());
}

std::optional<PeerLatency> LatencyBook::Latency(const std::string& address) const {
    const auto it = peers_.find(address);
    if (it == peers_.end()) return std::nullopt;
    return it->second.latency;
}

std::string ProbeAddressOf(const std::vector<std::string>& allowed_ips) {
    for (const auto& ip : allowed_ips) {
        if (!ip.ends_with("/32")) continue;
        const auto address = ip.substr(0, ip.size() - 3);
        if (!address.empty() && address.find(':') == std::string::npos) return address;
    }
    return {};
}

}  // namespace decloud::agent::domain::relay
