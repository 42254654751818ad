#include "decloud/proto/relay_messages.hpp"

#include "decloud/proto/field_reader.hpp"

namespace decloud::proto {

using common::Error;
using common::Result;
using nlohmann::json;

#define DECLOUD_TRY(expr)                                \
    do {                                                 \
        if (auto _st = (expr); !_st) return _st.error(); \
    } while (0)

namespace {

json PeerSpecJson(const RelayPeerSpec& v) {
    return json{{"publicKey", v.public_key},
                {"endpoint", v.endpoint},
                {"allowedIps", v.allowed_ips},
                {"keepaliveSeconds", v.keepalive_seconds},
                {"replaces", v.replaces}};
}

json InterfaceSpecJson(const RelayInterfaceSpec& v) {
    json peers = json::array();
    for (const auto& p : v.peers) peers.push_back(PeerSpecJson(p));
    return json{{"interface", v.interface},
                {"listenPort", v.listen_port},
                {"addresses", v.addresses},
                {"peers", std::move(peers)}};
}

Result<RelayPeerSpec> DecodePeerSpec(const json& j) {
    FieldReader r(j, "");
    DECLOUD_TRY(r.Object());
    RelayPeerSpec v;
    DECLOUD_TRY(r.String("publicKey", v.public_key));
    DECLOUD_TRY(r.String("endpoint", v.endpoint, false));
    DECLOUD_TRY(r.StringArray("allowedIps", v.allowed_ips, false));
    DECLOUD_TRY(r.Unsigned("keepaliveSeconds", v.keepalive_seconds, false));
    DECLOUD_TRY(r.String("replaces", v.replaces, false));
    return v;
}

Result<RelayInterfaceSpec> DecodeInterfaceSpec(const json& j) {
    FieldReader r(j, "");
    DECLOUD_TRY(r.Object());
    RelayInterfaceSpec v;
    DECLOUD_TRY(r.String("interface", v.interface));
    DECLOUD_TRY(r.Unsigned("listenPort", v.listen_port, false));
    DECLOUD_TRY(r.StringArray("addresses", v.addresses, false));
    DECLOUD_TRY(r.Array("peers", v.peers, DecodePeerSpec));
    return v;
}

Result<RelayPeerReport> DecodePeerReport(const json& j) {
    FieldReader r(j, "");
    DECLOUD_TRY(r.Object());
    RelayPeerReport v;
    DECLOUD_TRY(r.String("publicKey", v.public_key));
    DECLOUD_TRY(r.String("endpoint", v.endpoint, false));
    DECLOUD_TRY(r.Unsigned("latestHandshake", v.latest_handshake_unix, false));
    DECLOUD_TRY(r.Unsigned("rxBytes", v.rx_bytes, false));
    DECLOUD_TRY(r.Unsigned("txBytes", v.tx_bytes, false));
    if (j.contains("rttMicros")) {
        std::uint32_t rtt = 0;
        DECLOUD_TRY(r.Unsigned("rttMicros", rtt));
        v.rtt_us = rtt;
    }
    DECLOUD_TRY(r.Unsigned("unansweredProbeRounds", v.unanswered_probe_rounds, false));
    return v;
}

Result<RelayInterfaceReport> DecodeInterfaceReport(const json& j) {
    FieldReader r(j, "");
    DECLOUD_TRY(r.Object());
    RelayInterfaceReport v;
    DECLOUD_TRY(r.String("interface", v.interface));
    DECLOUD_TRY(r.Bool("up", v.up, false));
    DECLOUD_TRY(r.Unsigned("listenPort", v.listen_port, false));
    DECLOUD_TRY(r.Array("peers", v.peers, DecodePeerReport));
    DECLOUD_TRY(r.Unsigned("forwards", v.forwards, false));
    DECLOUD_TRY(r.String("error", v.error, false));
    return v;
}

}  // namespace

json ToJson(const RelayForward& v) {
    return json{{"interface", v.interface},
                {"publicPort", v.public_port},
                {"protocol", v.protocol},
                {"targetAddress", v.target_address},
                {"targetPort", v.target_port}};
}

json ToJson(const RelayDesiredState& v) {
    json interfaces = json::array();
    for (const auto& i : v.interfaces) interfaces.push_back(InterfaceSpecJson(i));
    json forwards = json::array();
    for (const auto& f : v.forwards) forwards.push_back(ToJson(f));
    return json{{"interfaces", std::move(interfaces)},
                {"forwards", std::move(forwards)},
                {"keyRotation", v.key_rotation},
                {"nextPublicKey", v.next_public_key}};
}

json ToJson(const RelayReport& v) {
    json interfaces = json::array();
    for (const auto& i : v.interfaces) {
        json peers = json::array();
        for (const auto& p : i.peers) {
            json peer{{"publicKey", p.public_key},
                      {"endpoint", p.endpoint},
                      {"latestHandshake", p.latest_handshake_unix},
                      {"rxBytes", p.rx_bytes},
                      {"txBytes", p.tx_bytes},
                      {"unansweredProbeRounds", p.unanswered_probe_rounds}};
            if (p.rtt_us) peer["rttMicros"] = *p.rtt_us;
            peers.push_back(std::move(peer));
        }
        interfaces.push_back(json{{"interface", i.interface},
                                  {"up", i.up},
                                  {"listenPort", i.listen_port},
                                  {"peers", std::move(peers)},
                                  {"forwards", i.forwards},
                                  {"error", i.error}});
    }
    return json{{"publicKey", v.public_key},
                {"nextPublicKey", v.next_public_key},
                {"interfaces", std::move(interfaces)}};
}

Result<RelayForward> DecodeRelayForward(const json& j) {
    FieldReader r(j, "");
    DECLOUD_TRY(r.Object());
    RelayForward v;
    DECLOUD_TRY(r.String("interface", v.interface));
    DECLOUD_TRY(r.Unsigned("publicPort", v.public_port));
    DECLOUD_TRY(r.String("protocol", v.protocol));
    if (v.protocol != "tcp" && v.protocol != "udp")
        return Error::InvalidArgument("protocol: must be tcp or udp");
    DECLOUD_TRY(r.String("targetAddress", v.target_address));
    DECLOUD_TRY(r.Unsigned("targetPort", v.target_port));
    return v;
}

Result<RelayDesiredState> DecodeRelayDesiredState(const json& j) {
    FieldReader r(j, "");
    DECLOUD_TRY(r.Object());
    RelayDesiredState v;
    DECLOUD_TRY(r.Array("interfaces", v.interfaces, DecodeInterfaceSpec));
    DECLOUD_TRY(r.Array("forwards", v.forwards, DecodeRelayForward));
    DECLOUD_TRY(r.String("keyRotation", v.key_rotation, false));
    if (!v.key_rotation.empty() && v.key_rotation != "stage" && v.key_rotation != "commit")
        return Error::InvalidArgument("keyRotation: must be empty, stage or commit");
    DECLOUD_TRY(r.String("nextPublicKey", v.next_public_key, false));
    if (v.key_rotation == "commit" && v.next_public_key.empty())
        return Error::InvalidArgument("nextPublicKey: required to commit a key rotation");
    return v;
}

Result<RelayReport> DecodeRelayReport(const json& j) {
    FieldReader r(j, "");
    DECLOUD_TRY(r.Object());
    RelayReport v;
    DECLOUD_TRY(r.String("publicKey", v.public_key, false));
    DECLOUD_TRY(r.String("nextPublicKey", v.next_public_key, false));
    DECLOUD_TRY(r.Array("interfaces", v.interfaces, DecodeInterfaceReport));
    return v;
}

}  // namespace decloud::proto
