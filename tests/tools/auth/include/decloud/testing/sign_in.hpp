#pragma once

#include <cstdint>
#include <string>

#include "decloud/common/result.hpp"
#include "decloud/crypto/crypto.hpp"
#include "decloud/crypto/ethereum.hpp"

namespace decloud::testing {

struct Session {
    std::string token;
    std::string refresh_token;
    std::string wallet_address;
    // "Authorization: Bearer <token>" as a header pair for HttpRequest.
    std::pair<std::string, std::string> Header() const {
        return {"Authorization", "Bearer " + token};
    }
};

// The whole wallet sign-in against an orchestrator on 127.0.0.1:port whose auth.domain is
// "127.0.0.1:<port>" and whose auth.uri is "http://127.0.0.1:<port>", on chain 31337.
common::Result<Session> SignIn(std::uint16_t port, const crypto::EthereumKey& key);

// A node registration as an agent sends it: the JSON body and its X-DeCloud-Signature.
struct SignedRegistration {
    std::string body;
    std::string signature;
};
SignedRegistration SignRegistration(const crypto::Ed25519KeyPair& node_key,
                                    const std::string& operator_wallet);

struct RegisteredNode {
    std::string id;
    std::string token;
};
// Registers a node with the orchestrator on 127.0.0.1:port.
common::Result<RegisteredNode> RegisterNode(std::uint16_t port,
                                            const crypto::Ed25519KeyPair& node_key,
                                            const std::string& operator_wallet);

}  // namespace decloud::testing
