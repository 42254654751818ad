#include "decloud/testing/sign_in.hpp"

#include <nlohmann/json.hpp>

#include "decloud/common/clock.hpp"
#include "decloud/proto/node_messages.hpp"
#include "decloud/proto/siwe.hpp"
#include "decloud/testing/process.hpp"

namespace decloud::testing {

using common::Error;
using nlohmann::json;

common::Result<Session> SignIn(std::uint16_t port, const crypto::EthereumKey& key) {
    auto nonce = HttpRequest(port, "GET", "/api/auth/nonce");
    if (!nonce || nonce->status != 200)
        return Error::Unavailable("nonce: " + (nonce ? nonce->body : std::string("no answer")));
    const auto origin = "127.0.0.1:" + std::to_string(port);
    proto::SiweMessage m;
    m.scheme = "http";
    m.domain = origin;
    m.address = key.Address();
    m.statement = "Sign in to DeCloud.";
    m.uri = "http://" + origin;
    m.chain_id = 31337;
    m.nonce = json::parse(nonce->body)["nonce"].get<std::string>();
    m.issued_at = common::FormatRfc3339(std::chrono::system_clock::now());
    const auto text = proto::FormatSiweMessage(m);
    auto r =
        HttpRequest(port, "POST", "/api/auth/verify",
                    json{{"message", text}, {"signature", key.SignPersonalMessage(text)}}.dump());
    if (!r || r->status != 200)
        return Error::Unauthenticated("verify: " + (r ? r->body : std::string("no answer")));
    const auto j = json::parse(r->body);
    return Session{j["token"], j["refreshToken"], j["walletAddress"]};
}

SignedRegistration SignRegistration(const crypto::Ed25519KeyPair& node_key,
                                    const std::string& operator_wallet) {
    proto::RegisterNodeRequest r;
    r.node_public_key = node_key.PublicKeyBase64();
    r.operator_wallet = operator_wallet;
    r.region = "eu-west";
    r.resources.cpu_model = "CPU";
    r.resources.cpu_cores = 2;
    r.resources.cpu_threads = 4;
    r.resources.memory_bytes = 8ull << 30;
    r.resources.storage_total_bytes = 10ull << 30;
    r.resources.storage_free_bytes = 5ull << 30;
    r.compute = {200, 2000, 4};
    r.timestamp = common::FormatRfc3339(std::chrono::system_clock::now());
    SignedRegistration out;
    out.body = proto::ToJson(r).dump();
    out.signature = node_key.SignBase64(out.body);
    return out;
}

common::Result<RegisteredNode> RegisterNode(std::uint16_t port,
                                            const crypto::Ed25519KeyPair& node_key,
                                            const std::string& operator_wallet) {
    const auto reg = SignRegistration(node_key, operator_wallet);
    auto r = HttpRequest(port, "POST", "/api/nodes/register", reg.body,
                         {{"X-DeCloud-Signature", reg.signature}});
    if (!r || r->status != 200)
        return Error::Unavailable("register: " + (r ? r->body : std::string("no answer")));
    const auto j = json::parse(r->body);
    return RegisteredNode{j["nodeId"], j["nodeToken"]};
}

}  // namespace decloud::testing
