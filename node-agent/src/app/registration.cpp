#include "agent/app/registration.hpp"

namespace decloud::agent::app {

SignedRequest BuildSignedRegistration(const crypto::Ed25519KeyPair& key, const NodeProfile& profile,
                                      const proto::NodeResources& resources,
                                      const proto::ComputeScore& compute,
                                      const std::string& agent_version, common::TimePoint now) {
    proto::RegisterNodeRequest req;
    req.node_public_key = key.PublicKeyBase64();
    req.operator_wallet = profile.operator_wallet;
    req.public_ip = profile.public_ip;
    req.region = profile.region;
    req.tags = profile.tags;
    req.resources = resources;
    req.compute = compute;
    req.agent_version = agent_version;
    req.behind_cgnat = profile.behind_cgnat;
    req.price_per_point_micro_usdc = profile.price_per_point_micro_usdc;
    req.timestamp = common::FormatRfc3339(now);
    SignedRequest out;
    out.body = proto::ToJson(req).dump();
    out.signature = key.SignBase64(out.body);
    return out;
}

}  // namespace decloud::agent::app
