#include "agent/domain/relay/tunnel_probe.hpp"

#include <gtest/gtest.h>

namespace decloud::agent::domain::relay {
namespace {

using std::chrono::microseconds;

TEST(TunnelProbe, ProbesRoundTripAndAnythingElseIsNotOne) {
    for (const std::uint64_t seq : {0ULL, 1ULL, 0x0102030405060708ULL, ~0ULL}) {
        const auto probe = EncodeProbe(seq);
        EXPECT_EQ(probe.size(), kProbeSize);
        EXPECT_EQ(DecodeProbe(probe), seq);
    }
    EXPECT_FALSE(DecodeProbe(""));
    EXPECT_FALSE(DecodeProbe("DCTP1"));
    EXPECT_FALSE(DecodeProbe(EncodeProbe(7) + "x"));
    auto wrong = EncodeProbe(7);
    wrong[0] = 'X';
    EXPECT_FALSE(DecodeProbe(wrong));
}

TEST(TunnelProbe, TheBookKeepsTheBestEchoAndCountsSilenceOnlyAfterAnAnswer) {
    LatencyBook book;
    book.Watch({"10.200.0.2", "10.200.0.6", ""});
    EXPECT_EQ(book.Watched(), (std::vector<std::string>{"10.200.0.2", "10.200.0.6"}));
    EXPECT_EQ(book.Latency("10.200.0.2"), PeerLatency{});
    EXPECT_FALSE(book.Latency("10.200.0.9"));

    // Never answered: silence is "not measured", not a broken path.
    book.RecordRound("10.200.0.6", {});
    book.RecordRound("10.200.0.6", {});
    EXPECT_EQ(book.Latency("10.200.0.6"), PeerLatency{});

    // The first answered round waited for the tunnel's handshake: it sets no round trip.
    book.RecordRound("10.200.0.2", {microseconds{800'000}, microseconds{790'000}});
    EXPECT_EQ(book.Latency("10.200.0.2"), PeerLatency{});
    book.RecordRound("10.200.0.2", {microseconds{900}, microseconds{450}, microseconds{700}});
    EXPECT_EQ(book.Latency("10.200.0.2")->rtt, microseconds{450});
    book.RecordRound("10.200.0.2", {});
    book.RecordRound("10.200.0.2", {});
    EXPECT_EQ(book.Latency("10.200.0.2")->unanswered_rounds, 2u);
    EXPECT_EQ(book.Latency("10.200.0.2")->rtt, microseconds{450}) << "the last measured value";
    // Back after silence: answering again clears the silence; the next round measures.
    book.RecordRound("10.200.0.2", {microseconds{300'000}});
    EXPECT_EQ(book.Latency("10.200.0.2"), (PeerLatency{microseconds{450}, 0}));
    book.RecordRound("10.200.0.2", {microseconds{800}});
    EXPECT_EQ(book.Latency("10.200.0.2"), (PeerLatency{microseconds{800}, 0}));

    // Watching again keeps what is known of peers still watched, forgets the others.
    book.Watch({"10.200.0.2", "10.200.0.10"});
    EXPECT_EQ(book.Latency("10.200.0.2")->rtt, microseconds{800});
    EXPECT_FALSE(book.Latency("10.200.0.6"));
    book.RecordRound("10.200.0.6", {microseconds{1}});  // no longer watched: ignored
    EXPECT_FALSE(book.Latency("10.200.0.6"));
}

TEST(TunnelProbe, TheProbeAddressIsTheFirstSingleHostIpv4) {
    EXPECT_EQ(ProbeAddressOf({"10.200.0.2/32"}), "10.200.0.2");
    EXPECT_EQ(ProbeAddressOf({"10.0.0.0/8", "fd00::1/128", "10.200.0.5/32"}), "10.200.0.5");
    EXPECT_EQ(ProbeAddressOf({}), "");
    EXPECT_EQ(ProbeAddressOf({"10.200.0.0/30"}), "");
}

}  // namespace
}  // namespace decloud::agent::domain::relay
