#include "decloud/chain/transaction.hpp"

#include <secp256k1.h>
#include <secp256k1_recovery.h>

#include <algorithm>
#include <stdexcept>

#include "decloud/chain/rlp.hpp"
#include "decloud/crypto/crypto.hpp"
#include "decloud/crypto/ethereum.hpp"

namespace decloud::chain {

using common::Error;
using common::Result;

namespace {

const secp256k1_context* Context() {
    // libsecp256k1 contexts are safe for concurrent read-only use.
    static secp256k1_context* ctx = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
    return ctx;
}

Bytes EncodeTo(const std::optional<Address>& to) {
    if (!to) return rlp::EncodeBytes({});
    return rlp::EncodeBytes(*to);
}

// Integers of r and s drop leading zero bytes.
Bytes EncodeScalar(const Hash& value) {
    auto u = U256::FromBigEndian(value);
    return rlp::EncodeUint(*u);
}

std::vector<Bytes> Eip1559Fields(const Eip1559Transaction& tx) {
    return {rlp::EncodeUint(tx.chain_id),
            rlp::EncodeUint(tx.nonce),
            rlp::EncodeUint(tx.max_priority_fee_per_gas),
            rlp::EncodeUint(tx.max_fee_per_gas),
            rlp::EncodeUint(tx.gas_limit),
            EncodeTo(tx.to),
            rlp::EncodeUint(tx.value),
            rlp::EncodeBytes(tx.data),
            rlp::EncodeList({})};
}

std::vector<Bytes> LegacyFields(const LegacyTransaction& tx) {
    return {rlp::EncodeUint(tx.nonce), rlp::EncodeUint(tx.gas_price), rlp::EncodeUint(tx.gas_limit),
            EncodeTo(tx.to),           rlp::EncodeUint(tx.value),     rlp::EncodeBytes(tx.data)};
}

Hash KeccakOf(const Bytes& bytes) {
    return crypto::Keccak256(std::span<const std::uint8_t>(bytes));
}

Result<std::uint64_t> ItemU64(const rlp::Item& item) {
    auto value = rlp::ToUint(item);
    if (!value) return value.error();
    auto small = value->ToU64();
    if (!small) return Error::InvalidArgument("transaction: field exceeds 64 bits");
    return *small;
}

Result<Hash> ItemScalar(const rlp::Item& item) {
    auto value = rlp::ToUint(item);
    if (!value) return value.error();
    return value->ToBigEndian();
}

}  // namespace

Hash SigningHash(const Eip1559Transaction& tx) {
    Bytes payload{0x02};
    const Bytes body = rlp::EncodeList(Eip1559Fields(tx));
    payload.insert(payload.end(), body.begin(), body.end());
    return KeccakOf(payload);
}

Hash SigningHash(const LegacyTransaction& tx) {
    auto fields = LegacyFields(tx);
    fields.push_back(rlp::EncodeUint(tx.chain_id));
    fields.push_back(rlp::EncodeUint(std::uint64_t{0}));
    fields.push_back(rlp::EncodeUint(std::uint64_t{0}));
    return KeccakOf(rlp::EncodeList(fields));
}

Bytes EncodeSigned(const Eip1559Transaction& tx, const Signature& sig) {
    auto fields = Eip1559Fields(tx);
    fields.push_back(rlp::EncodeUint(std::uint64_t{sig.y_parity}));
    fields.push_back(EncodeScalar(sig.r));
    fields.push_back(EncodeScalar(sig.s));
    Bytes out{0x02};
    const Bytes body = rlp::EncodeList(fields);
    out.insert(out.end(), body.begin(), body.end());
    return out;
}

Bytes EncodeSigned(const LegacyTransaction& tx, const Signature& sig) {
    auto fields = LegacyFields(tx);
    const U256 v = *U256(tx.chain_id).Mul(2)->Add(U256(35u + sig.y_parity));
    fields.push_back(rlp::EncodeUint(v));
    fields.push_back(EncodeScalar(sig.r));
    fields.push_back(EncodeScalar(sig.s));
    return rlp::EncodeList(fields);
}

Result<PrivateKey> PrivateKey::FromBytes(std::span<const std::uint8_t> secret) {
    if (secret.size() != 32) return Error::InvalidArgument("private key must be 32 bytes");
    if (!secp256k1_ec_seckey_verify(Context(), secret.data()))
        return Error::InvalidArgument("private key is not a valid secp256k1 scalar");
    PrivateKey key;
    std::copy(secret.begin(), secret.end(), key.secret_.begin());
    secp256k1_pubkey pubkey;
    if (!secp256k1_ec_pubkey_create(Context(), &pubkey, key.secret_.data()))
        return Error::Internal("secp256k1 public key derivation failed");
    std::array<std::uint8_t, 65> uncompressed{};
    std::size_t len = uncompressed.size();
    secp256k1_ec_pubkey_serialize(Context(), uncompressed.data(), &len, &pubkey,
                                  SECP256K1_EC_UNCOMPRESSED);
    const auto hash = crypto::Keccak256(std::span<const std::uint8_t>(uncompressed).subspan(1));
    std::copy(hash.begin() + 12, hash.end(), key.address_.begin());
    return key;
}

Result<PrivateKey> PrivateKey::FromHex(std::string_view hex) {
    while (!hex.empty() && std::isspace(static_cast<unsigned char>(hex.front())))
        hex.remove_prefix(1);
    while (!hex.empty() && std::isspace(static_cast<unsigned char>(hex.back())))
        hex.remove_suffix(1);
    if (hex.starts_with("0x") || hex.starts_with("0X")) hex.remove_prefix(2);
    if (hex.size() != 64) return Error::InvalidArgument("private key must be 64 hex digits");
    auto bytes = crypto::HexDecode(hex);
    if (!bytes) return Error::InvalidArgument("private key is not hex");
    auto key = FromBytes(*bytes);
    std::fill(bytes->begin(), bytes->end(), std::uint8_t{0});
    return key;
}

PrivateKey::~PrivateKey() {
    // A volatile write the optimiser cannot drop.
    volatile std::uint8_t* p = secret_.data();
    for (std::size_t i = 0; i < secret_.size(); ++i) p[i] = 0;
}

PrivateKey::PrivateKey(PrivateKey&& other) noexcept
    : secret_(other.secret_), address_(other.address_) {
    other.secret_.fill(0);
}

PrivateKey& PrivateKey::operator=(PrivateKey&& other) noexcept {
    if (this != &other) {
        secret_ = other.secret_;
        address_ = other.address_;
        other.secret_.fill(0);
    }
    return *this;
}

Signature PrivateKey::SignHash(const Hash& digest) const {
    secp256k1_ecdsa_recoverable_signature sig;
    if (!secp256k1_ecdsa_sign_recoverable(Context(), &sig, digest.data(), secret_.data(), nullptr,
                                          nullptr))
        throw std::runtime_error("secp256k1 signing failed");
    std::array<std::uint8_t, 64> compact{};
    int recid = 0;
    secp256k1_ecdsa_recoverable_signature_serialize_compact(Context(), compact.data(), &recid,
                                                            &sig);
    Signature out;
    std::copy(compact.begin(), compact.begin() + 32, out.r.begin());
    std::copy(compact.begin() + 32, compact.end(), out.s.begin());
    out.y_parity = static_cast<std::uint8_t>(recid);
    return out;
}

SignedTransaction Sign(const Eip1559Transaction& tx, const PrivateKey& key) {
    SignedTransaction out;
    out.raw = EncodeSigned(tx, key.SignHash(SigningHash(tx)));
    out.hash = KeccakOf(out.raw);
    return out;
}

SignedTransaction Sign(const LegacyTransaction& tx, const PrivateKey& key) {
    SignedTransaction out;
    out.raw = EncodeSigned(tx, key.SignHash(SigningHash(tx)));
    out.hash = KeccakOf(out.raw);
    return out;
}

Result<Address> RecoverAddress(const Hash& digest, const Signature& sig) {
    if (sig.y_parity > 1) return Error::InvalidArgument("signature: y parity must be 0 or 1");
    std::array<std::uint8_t, 64> compact{};
    std::copy(sig.r.begin(), sig.r.end(), compact.begin());
    std::copy(sig.s.begin(), sig.s.end(), compact.begin() + 32);
    secp256k1_ecdsa_recoverable_signature recoverable;
    if (!secp256k1_ecdsa_recoverable_signature_parse_compact(Context(), &recoverable,
                                                             compact.data(), sig.y_parity))
        return Error::InvalidArgument("signature: r or s out of range");
    secp256k1_pubkey pubkey;
    if (!secp256k1_ecdsa_recover(Context(), &pubkey, &recoverable, digest.data()))
        return Error::Unauthenticated("signature: no public key recovers from it");
    std::array<std::uint8_t, 65> uncompressed{};
    std::size_t len = uncompressed.size();
    secp256k1_ec_pubkey_serialize(Context(), uncompressed.data(), &len, &pubkey,
                                  SECP256K1_EC_UNCOMPRESSED);
    const auto hash = crypto::Keccak256(std::span<const std::uint8_t>(uncompressed).subspan(1));
    Address out{};
    std::copy(hash.begin() + 12, hash.end(), out.begin());
    return out;
}

Address ContractAddress(const Address& sender, std::uint64_t nonce) {
    const auto hash = KeccakOf(rlp::EncodeList({rlp::EncodeBytes(sender), rlp::EncodeUint(nonce)}));
    Address out{};
    std::copy(hash.begin() + 12, hash.end(), out.begin());
    return out;
}

Result<DecodedEip1559> DecodeSignedEip1559(std::span<const std::uint8_t> raw) {
    if (raw.empty() || raw[0] != 0x02)
        return Error::InvalidArgument("transaction: not an EIP-1559 (type 2) envelope");
    auto item = rlp::Decode(raw.subspan(1));
    if (!item) return item.error();
    if (!item->is_list || item->items.size() != 12)
        return Error::InvalidArgument("transaction: type 2 wants a list of 12 fields");
    const auto& f = item->items;
    DecodedEip1559 out;
    auto chain_id = ItemU64(f[0]);
    auto nonce = ItemU64(f[1]);
    auto tip = rlp::ToUint(f[2]);
    auto max_fee = rlp::ToUint(f[3]);
    auto gas = ItemU64(f[4]);
    auto value = rlp::ToUint(f[6]);
    auto parity = ItemU64(f[9]);
    auto r = ItemScalar(f[10]);
    auto s = ItemScalar(f[11]);
    if (!chain_id || !nonce || !tip || !max_fee || !gas || !value || !parity || !r || !s)
        return Error::InvalidArgument("transaction: malformed integer field");
    if (f[5].is_list || (f[5].bytes.size() != 0 && f[5].bytes.size() != 20))
        return Error::InvalidArgument("transaction: malformed to");
    if (f[7].is_list) return Error::InvalidArgument("transaction: malformed data");
    if (!f[8].is_list || !f[8].items.empty())
        return Error::InvalidArgument("transaction: access lists are not supported");
    if (*parity > 1) return Error::InvalidArgument("transaction: y parity must be 0 or 1");
    out.tx.chain_id = *chain_id;
    out.tx.nonce = *nonce;
    out.tx.max_priority_fee_per_gas = *tip;
    out.tx.max_fee_per_gas = *max_fee;
    out.tx.gas_limit = *gas;
    if (f[5].bytes.size() == 20) {
        Address to{};
        std::copy(f[5].bytes.begin(), f[5].bytes.end(), to.begin());
        out.tx.to = to;
    }
    out.tx.value = *value;
    out.tx.data = f[7].bytes;
    out.signature.y_parity = static_cast<std::uint8_t>(*parity);
    out.signature.r = *r;
    out.signature.s = *s;
    auto sender = RecoverAddress(SigningHash(out.tx), out.signature);
    if (!sender) return sender.error();
    out.sender = *sender;
    out.hash = crypto::Keccak256(raw);
    return out;
}

}  // namespace decloud::chain
