#include "decloud/proto/siwe.hpp"

#include <gtest/gtest.h>

namespace decloud::proto {
namespace {

// The example of EIP-4361.
constexpr std::string_view kExample =
    "service.org wants you to sign in with your Ethereum account:\n"
    "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2\n"
    "\n"
    "I accept the ServiceOrg Terms of Service: https://service.org/tos\n"
    "\n"
    "URI: https://service.org/login\n"
    "Version: 1\n"
    "Chain ID: 1\n"
    "Nonce: 32891756\n"
    "Issued At: 2021-09-30T16:25:24Z\n"
    "Resources:\n"
    "- ipfs://bafybeiemxf5abjwjbikoz4mc3a3dla6ual3jsgpdr4cjr3oz3evfyavhwq/\n"
    "- https://example.com/my-web2-claim.json";

TEST(Siwe, ParsesTheEipExample) {
    auto m = ParseSiweMessage(kExample);
    ASSERT_TRUE(m) << m.error().message;
    EXPECT_EQ(m->scheme, "");
    EXPECT_EQ(m->domain, "service.org");
    EXPECT_EQ(m->address, "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2");
    EXPECT_EQ(m->statement, "I accept the ServiceOrg Terms of Service: https://service.org/tos");
    EXPECT_EQ(m->uri, "https://service.org/login");
    EXPECT_EQ(m->chain_id, 1u);
    EXPECT_EQ(m->nonce, "32891756");
    EXPECT_EQ(m->issued_at, "2021-09-30T16:25:24Z");
    ASSERT_TRUE(m->resources);
    EXPECT_EQ(m->resources->size(), 2u);
    EXPECT_FALSE(m->expiration_time);
    EXPECT_EQ(FormatSiweMessage(*m), kExample) << "round trip is byte-exact";
}

TEST(Siwe, AllOptionalFieldsAndScheme) {
    SiweMessage m;
    m.scheme = "https";
    m.domain = "orchestrator.example:8443";
    m.address = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";
    m.uri = "https://orchestrator.example:8443/api/auth";
    m.chain_id = 137;
    m.nonce = "Ab3dEf78Gh";
    m.issued_at = "2026-11-24T21:07:31.000Z";
    m.expiration_time = "2026-11-24T21:17:31.000Z";
    m.not_before = "2026-11-24T21:07:00Z";
    m.request_id = "req-42:a@b";
    m.resources = std::vector<std::string>{};
    const auto text = FormatSiweMessage(m);
    auto back = ParseSiweMessage(text);
    ASSERT_TRUE(back) << back.error().message << "\n" << text;
    EXPECT_EQ(*back, m);
    EXPECT_NE(text.find("\n\n\nURI: "), std::string::npos) << "no statement: two blank lines";
}

TEST(Siwe, MalformedVariantsAreRefused) {
    const std::string good(kExample);
    auto replace = [&](std::string_view from, std::string_view to) {
        std::string s = good;
        const auto at = s.find(from);
        EXPECT_NE(at, std::string::npos) << from;
        s.replace(at, from.size(), to);
        return s;
    };
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"empty", ""},
        {"header text", replace("wants you to sign in", "wants you to log in")},
        {"no domain", replace("service.org wants", " wants")},
        {"domain with path", replace("service.org wants", "service.org/x wants")},
        {"bad scheme", replace("service.org wants", "1http://service.org wants")},
        {"short address", replace("0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2",
                                  "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc")},
        {"address not hex", replace("0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2",
                                    "0xZ02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2")},
        {"address without 0x", replace("0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2",
                                       "C02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2xx")},
        {"missing blank after address", replace("Cc2\n\nI accept", "Cc2\nI accept")},
        {"missing blank after statement", replace("tos\n\nURI", "tos\nURI")},
        {"statement with a quote", replace("I accept", "I \"accept\"")},
        {"uri not a uri", replace("URI: https://service.org/login", "URI: service org login")},
        {"uri label case", replace("URI: ", "Uri: ")},
        {"version 2", replace("Version: 1", "Version: 2")},
        {"chain id letters", replace("Chain ID: 1", "Chain ID: one")},
        {"chain id negative", replace("Chain ID: 1", "Chain ID: -1")},
        {"chain id huge", replace("Chain ID: 1", "Chain ID: 99999999999999999999999")},
        {"short nonce", replace("Nonce: 32891756", "Nonce: 1234567")},
        {"nonce symbols", replace("Nonce: 32891756", "Nonce: 3289-1756")},
        {"bad issued at", replace("2021-09-30T16:25:24Z", "yesterday")},
        {"fields out of order", replace("Version: 1\nChain ID: 1", "Chain ID: 1\nVersion: 1")},
        {"crlf", replace("Version: 1\n", "Version: 1\r\n")},
        {"trailing newline", good + "\n"},
        {"unknown trailing line", good + "\nHello: world"},
        {"bad resource", replace("- https://example.com/my-web2-claim.json", "- not a uri")},
        {"bad expiration", replace("Issued At: 2021-09-30T16:25:24Z",
                                   "Issued At: 2021-09-30T16:25:24Z\nExpiration Time: soon")},
        {"bad request id", replace("Issued At: 2021-09-30T16:25:24Z",
                                   "Issued At: 2021-09-30T16:25:24Z\nRequest ID: a b")},
        {"oversized", good + std::string(9000, 'a')},
    };
    for (const auto& [what, text] : cases) {
        auto m = ParseSiweMessage(text);
        EXPECT_FALSE(m) << what;
        if (!m) {
            EXPECT_EQ(m.error().code, common::ErrorCode::kInvalidArgument) << what;
        }
    }
}

}  // namespace
}  // namespace decloud::proto
