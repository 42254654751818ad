#include "decloud/testing/sign_in.hpp"

#include <nlohmann/json.hpp>

#include "decloud/common/clock.hpp"
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

}  // namespace decloud::testing
