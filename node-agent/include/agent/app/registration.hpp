#pragma once

#include <optional>
#include <string>
#include <vector>

#include "decloud/common/clock.hpp"
#include "decloud/crypto/crypto.hpp"
#include "decloud/proto/node_messages.hpp"

namespace decloud::agent::app {

// What the operator configured about this node.
struct NodeProfile {
    std::string operator_wallet;
    std::string public_ip;  // empty: let the orchestrator use the address it sees
    std::string region;
    std::vector<std::string> tags;
    std::optional<bool> behind_cgnat;              // empty: detect
    std::uint64_t price_per_point_micro_usdc = 0;  // 0: the platform's default
};

struct SignedRequest {
    std::string body;
    std::string signature;  // base64 Ed25519 over `body`, sent in proto::kSignatureHeader
};

// A registration request signed with the node key, stamped with `now`.
SignedRequest BuildSignedRegistration(const crypto::Ed25519KeyPair& key, const NodeProfile& profile,
                                      const proto::NodeResources& resources,
                                      const proto::ComputeScore& compute,
                                      const std::string& agent_version, common::TimePoint now);

}  // namespace decloud::agent::app
