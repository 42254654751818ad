#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace decloud::agent::domain::relay {

// Round-trip latency over a tunnel is measured with small UDP datagrams sent to the peer's
// tunnel address, which the peer's agent echoes back unchanged. A probe is the magic followed by
// a 64-bit sequence number (big-endian); anything else is not a probe and is not answered.
inline constexpr std::string_view kProbeMagic = "DCTP1";
inline constexpr std::size_t kProbeSize = kProbeMagic.size() + 8;
std::string EncodeProbe(std::uint64_t sequence);
std::optional<std::uint64_t> DecodeProbe(std::string_view datagram);

// What is known of one peer's latency, as reported to the orchestrator.
struct PeerLatency {
    // The best echo of the last round that got any, except a first round after silence (see
    // LatencyBook::RecordRound).
    std::optional<std::chrono::microseconds> rtt;
    // Rounds in a row without any echo since the last one that had one. Counted only once the
    // peer has answered at least once, so that a peer whose firewall drops probes (never
    // answering) is "not measured", not "broken".
    std::uint32_t unanswered_rounds = 0;
    friend bool operator==(const PeerLatency&, const PeerLatency&) = default;
};

// The latencies of the watched peers, round after round. Pure: the adapter sends and times.
class LatencyBook {
  public:
    // The addresses to probe from now on; others are forgotten.
    void Watch(const std::vector<std::string>& addresses);
    std::vector<std::string> Watched() const;
    // One round for `address`: the round-trip times of the echoes that came back (maybe none).
    void RecordRound(const std::string& address,
                     const std::vector<std::chrono::microseconds>& echoes);
    std::optional<PeerLatency> Latency(const std::string& address) const;

  private:
    struct Entry {
        PeerLatency latency;
        bool answered_once = false;
    };
    std::map<std::string, Entry> peers_;
};

// The tunnel address in a peer's allowed IPs ("10.200.0.2/32" -> "10.200.0.2"): the first
// single-host IPv4 entry, or empty when there is none (a successor peer waiting for its first
// handshake has no allowed IPs at all).
std::string ProbeAddressOf(const std::vector<std::string>& allowed_ips);

}  // namespace decloud::agent::domain::relay
