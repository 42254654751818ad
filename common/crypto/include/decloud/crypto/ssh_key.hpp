#pragma once

#include <string>
#include <string_view>

#include "decloud/common/result.hpp"

namespace decloud::crypto {

// An OpenSSH public key line as users paste it ("ssh-ed25519 AAAA... comment"), checked.
struct SshPublicKey {
    std::string type;         // the wire name, e.g. "ssh-ed25519", "ecdsa-sha2-nistp256"
    std::string algorithm;    // short family: ed25519, ecdsa, rsa, ed25519-sk, ecdsa-sk
    int bits = 0;             // key size: 256 for ed25519, the curve size, the RSA modulus size
    std::string fingerprint;  // "SHA256:" + unpadded base64 of SHA-256(blob), as ssh-keygen -l
    std::string comment;
    std::string authorized_key;  // canonical "type base64 [comment]" to put in authorized_keys
};

inline constexpr int kMinimumRsaBits = 3072;

// Accepts Ed25519, ECDSA (P-256/384/521, point validated), RSA with a modulus of at least
// 3072 bits, and their FIDO security-key variants. Refuses DSA, short RSA, authorized_keys
// options, a blob whose inner type differs from the declared one, and trailing bytes.
common::Result<SshPublicKey> ParseSshPublicKey(std::string_view line);

}  // namespace decloud::crypto
