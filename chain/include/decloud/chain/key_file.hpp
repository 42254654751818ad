#pragma once

#include <string>

#include "decloud/chain/transaction.hpp"
#include "decloud/common/result.hpp"

namespace decloud::chain {

// Reads a secp256k1 private key (64 hex digits, optional 0x, surrounding whitespace ignored)
// from a regular file owned by this user with mode exactly 0600. kPermissionDenied if the mode or
// owner is wrong, kNotFound if it is missing, kInvalidArgument if it holds no valid key. Error
// messages name the path, never the contents.
common::Result<PrivateKey> LoadPrivateKeyFile(const std::string& path);

}  // namespace decloud::chain
