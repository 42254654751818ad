#pragma once

// Sign-In with Ethereum (EIP-4361) messages: strict parsing of the ABNF and the exact text form
// that wallets sign. Semantic checks (signature, domain binding, nonce, times) are the
// verifier's business; this only decides whether a message is well-formed.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "decloud/common/result.hpp"

namespace decloud::proto {

struct SiweMessage {
    std::string scheme;   // optional "https" of "https://example.com wants you ..."
    std::string domain;   // RFC 3986 authority
    std::string address;  // "0x" + 40 hex digits, as written (EIP-55 is checked by the verifier)
    std::optional<std::string> statement;
    std::string uri;
    std::string version = "1";
    std::uint64_t chain_id = 1;
    std::string nonce;
    std::string issued_at;  // RFC 3339, as written
    std::optional<std::string> expiration_time;
    std::optional<std::string> not_before;
    std::optional<std::string> request_id;
    std::optional<std::vector<std::string>> resources;  // present only with a "Resources:" line

    friend bool operator==(const SiweMessage&, const SiweMessage&) = default;
};

// Messages longer than this are refused before parsing.
inline constexpr std::size_t kMaxSiweMessageBytes = 8192;

// kInvalidArgument naming the first line or term that does not conform.
common::Result<SiweMessage> ParseSiweMessage(std::string_view text);
// The exact text a wallet signs for `message` (ParseSiweMessage(Format(m)) == m).
std::string FormatSiweMessage(const SiweMessage& message);

}  // namespace decloud::proto
