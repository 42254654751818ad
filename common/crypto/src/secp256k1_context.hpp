#pragma once

#include <secp256k1.h>

namespace decloud::crypto {

// One context for the process: libsecp256k1 contexts are safe for concurrent read-only use.
inline const secp256k1_context* Secp256k1Context() {
    static secp256k1_context* ctx = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
    return ctx;
}

}  // namespace decloud::crypto
