#pragma once

// Transactions: EIP-1559 (type 2, EIP-2718 envelope) and legacy EIP-155, their signing hashes,
// secp256k1 signing (RFC 6979, libsecp256k1) and sender recovery. Pure; no I/O.

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "decloud/chain/types.hpp"
#include "decloud/common/result.hpp"

namespace decloud::chain {

// EIP-1559 dynamic-fee transaction; the access list is always empty here.
struct Eip1559Transaction {
    std::uint64_t chain_id = 0;
    std::uint64_t nonce = 0;
    U256 max_priority_fee_per_gas;
    U256 max_fee_per_gas;
    std::uint64_t gas_limit = 0;
    std::optional<Address> to;  // empty: contract creation
    U256 value;
    Bytes data;

    friend bool operator==(const Eip1559Transaction&, const Eip1559Transaction&) = default;
};

// Pre-EIP-2718 transaction signed with EIP-155 replay protection (v = chain_id * 2 + 35 + y).
struct LegacyTransaction {
    std::uint64_t chain_id = 0;
    std::uint64_t nonce = 0;
    U256 gas_price;
    std::uint64_t gas_limit = 0;
    std::optional<Address> to;
    U256 value;
    Bytes data;
};

struct Signature {
    Hash r{};
    Hash s{};
    std::uint8_t y_parity = 0;  // 0 or 1
};

struct SignedTransaction {
    Bytes raw;  // what eth_sendRawTransaction takes
    Hash hash;  // Keccak-256 of raw: the transaction hash
};

// Keccak-256 of 0x02 || rlp([chain_id, nonce, tip, max_fee, gas, to, value, data, []]).
Hash SigningHash(const Eip1559Transaction& tx);
// Keccak-256 of rlp([nonce, gas_price, gas, to, value, data, chain_id, 0, 0]).
Hash SigningHash(const LegacyTransaction& tx);

Bytes EncodeSigned(const Eip1559Transaction& tx, const Signature& sig);
Bytes EncodeSigned(const LegacyTransaction& tx, const Signature& sig);

// A secp256k1 private key for signing transactions. Move-only; the secret is wiped on
// destruction and never printed. Thread-safe for concurrent signing.
class PrivateKey {
  public:
    // kInvalidArgument unless 32 bytes forming a valid secp256k1 scalar.
    static common::Result<PrivateKey> FromBytes(std::span<const std::uint8_t> secret);
    // 64 hex digits, optional 0x, surrounding whitespace ignored.
    static common::Result<PrivateKey> FromHex(std::string_view hex);
    ~PrivateKey();
    PrivateKey(PrivateKey&& other) noexcept;
    PrivateKey& operator=(PrivateKey&& other) noexcept;
    PrivateKey(const PrivateKey&) = delete;
    PrivateKey& operator=(const PrivateKey&) = delete;

    const Address& address() const { return address_; }
    // Deterministic (RFC 6979) signature of a 32-byte digest, low-s normalised.
    Signature SignHash(const Hash& digest) const;

  private:
    PrivateKey() = default;
    std::array<std::uint8_t, 32> secret_{};
    Address address_{};
};

SignedTransaction Sign(const Eip1559Transaction& tx, const PrivateKey& key);
SignedTransaction Sign(const LegacyTransaction& tx, const PrivateKey& key);

// The signer of a digest; kInvalidArgument for a malformed signature, kUnauthenticated when no
// key recovers from it.
common::Result<Address> RecoverAddress(const Hash& digest, const Signature& sig);

// The address of a contract created by `sender` with `nonce` (Keccak-256 of rlp([sender, nonce]),
// last 20 bytes).
Address ContractAddress(const Address& sender, std::uint64_t nonce);

// Decodes a raw signed type-2 transaction (0x02 || rlp(...)); strict.
struct DecodedEip1559 {
    Eip1559Transaction tx;
    Signature signature;
    Address sender{};
    Hash hash{};
};
common::Result<DecodedEip1559> DecodeSignedEip1559(std::span<const std::uint8_t> raw);

}  // namespace decloud::chain
