#include "decloud/crypto/crypto.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <cryptopp/keccak.h>

#include <fstream>
#include <memory>
#include <stdexcept>
#include <vector>

namespace decloud::crypto {

using common::Error;
using common::Result;

namespace {

struct PkeyDeleter {
    void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct MdCtxDeleter {
    void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxDeleter>;

constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int HexValue(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int Base64Value(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
}

const std::uint8_t* AsBytes(std::string_view s) {
    return reinterpret_cast<const std::uint8_t*>(s.data());
}

}  // namespace

Bytes RandomBytes(std::size_t n) {
    Bytes out(n);
    if (n > 0 && RAND_bytes(out.data(), static_cast<int>(n)) != 1)
        throw std::runtime_error("RAND_bytes failed");
    return out;
}

std::string RandomToken(std::size_t n) {
    auto bytes = RandomBytes(n);
    auto text = Base64Encode(bytes);
    // base64url without padding: safe in headers, URLs and file names.
    for (auto& c : text) {
        if (c == '+') c = '-';
        if (c == '/') c = '_';
    }
    while (!text.empty() && text.back() == '=') text.pop_back();
    return text;
}

Hash256 Sha256(std::string_view data) {
    Hash256 out{};
    SHA256(AsBytes(data), data.size(), out.data());
    return out;
}

common::Result<Hash256> Sha256File(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return common::Error::NotFound("cannot open " + path);
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1)
        return common::Error::Internal("SHA-256 unavailable");
    std::vector<char> chunk(1 << 20);
    while (in) {
        in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
        if (in.gcount() > 0 &&
            EVP_DigestUpdate(ctx.get(), chunk.data(), static_cast<std::size_t>(in.gcount())) != 1)
            return common::Error::Internal("SHA-256 update failed");
    }
    if (in.bad()) return common::Error::Internal("reading " + path + " failed");
    Hash256 out{};
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(ctx.get(), out.data(), &len) != 1 || len != out.size())
        return common::Error::Internal("SHA-256 final failed");
    return out;
}

Hash256 Keccak256(std::span<const std::uint8_t> data) {
    Hash256 out{};
    CryptoPP::Keccak_256 keccak;
    keccak.Update(data.data(), data.size());
    keccak.Final(out.data());
    return out;
}

Hash256 Keccak256(std::string_view data) {
    return Keccak256(std::span<const std::uint8_t>(AsBytes(data), data.size()));
}

std::string HexEncode(std::span<const std::uint8_t> data) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(data.size() * 2);
    for (auto b : data) {
        out.push_back(kHex[b >> 4]);
        out.push_back(kHex[b & 0x0f]);
    }
    return out;
}

Result<Bytes> HexDecode(std::string_view hex) {
    if (hex.starts_with("0x") || hex.starts_with("0X")) hex.remove_prefix(2);
    if (hex.size() % 2 != 0) return Error::InvalidArgument("hex string has odd length");
    Bytes out(hex.size() / 2);
    for (std::size_t i = 0; i < out.size(); ++i) {
        const int hi = HexValue(hex[2 * i]);
        const int lo = HexValue(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) return Error::InvalidArgument("invalid hex digit");
        out[i] = static_cast<std::uint8_t>(hi << 4 | lo);
    }
    return out;
}

std::string Base64Encode(std::span<const std::uint8_t> data) {
    std::string out;
    out.reserve((data.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 2 < data.size(); i += 3) {
        const std::uint32_t v = static_cast<std::uint32_t>(data[i]) << 16 |
                                static_cast<std::uint32_t>(data[i + 1]) << 8 | data[i + 2];
        out.push_back(kB64[v >> 18 & 63]);
        out.push_back(kB64[v >> 12 & 63]);
        out.push_back(kB64[v >> 6 & 63]);
        out.push_back(kB64[v & 63]);
    }
    if (i + 1 == data.size()) {
        const std::uint32_t v = static_cast<std::uint32_t>(data[i]) << 16;
        out.push_back(kB64[v >> 18 & 63]);
        out.push_back(kB64[v >> 12 & 63]);
        out += "==";
    } else if (i + 2 == data.size()) {
        const std::uint32_t v = static_cast<std::uint32_t>(data[i]) << 16 |
                                static_cast<std::uint32_t>(data[i + 1]) << 8;
        out.push_back(kB64[v >> 18 & 63]);
        out.push_back(kB64[v >> 12 & 63]);
        out.push_back(kB64[v >> 6 & 63]);
        out.push_back('=');
    }
    return out;
}

// Accepts standard and URL-safe alphabets, with or without padding; rejects anything else.
Result<Bytes> Base64Decode(std::string_view text) {
    while (!text.empty() && text.back() == '=') text.remove_suffix(1);
    if (text.size() % 4 == 1) return Error::InvalidArgument("invalid base64 length");
    Bytes out;
    out.reserve(text.size() * 3 / 4);
    std::uint32_t acc = 0;
    int bits = 0;
    for (char c : text) {
        const int v = Base64Value(c);
        if (v < 0) return Error::InvalidArgument("invalid base64 character");
        acc = acc << 6 | static_cast<std::uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<std::uint8_t>(acc >> bits & 0xff));
        }
    }
    if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
        return Error::InvalidArgument("non-canonical base64 padding bits");
    return out;
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string ToChecksumAddress(std::span<const std::uint8_t, 20> address) {
    const auto lower = HexEncode(address);
    const auto hash = Keccak256(std::string_view(lower));
    std::string out = "0x";
    for (std::size_t i = 0; i < lower.size(); ++i) {
        const char c = lower[i];
        const int nibble = (i % 2 == 0) ? hash[i / 2] >> 4 : hash[i / 2] & 0x0f;
        out.push_back((c >= 'a' && nibble >= 8) ? static_cast<char>(c - 'a' + 'A') : c);
    }
    return out;
}

Result<std::string> NormalizeEthereumAddress(std::string_view address) {
    if (!address.starts_with("0x"))
        return Error::InvalidArgument("wallet address must start with 0x");
    const auto hex = address.substr(2);
    if (hex.size() != 40) return Error::InvalidArgument("wallet address must have 40 hex digits");
    bool has_lower = false, has_upper = false;
    for (char c : hex) {
        if (HexValue(c) < 0)
            return Error::InvalidArgument("wallet address has a non-hex character");
        has_lower |= (c >= 'a' && c <= 'f');
        has_upper |= (c >= 'A' && c <= 'F');
    }
    auto bytes = HexDecode(hex);
    if (!bytes) return bytes.error();
    std::array<std::uint8_t, 20> raw{};
    std::copy(bytes->begin(), bytes->end(), raw.begin());
    auto checksummed = ToChecksumAddress(raw);
    if (has_lower && has_upper && checksummed.substr(2) != hex)
        return Error::InvalidArgument("wallet address fails its EIP-55 checksum");
    return checksummed;
}

Ed25519KeyPair Ed25519KeyPair::Generate() {
    const auto seed = RandomBytes(32);
    auto kp = FromPrivateKey(seed);
    if (!kp) throw std::runtime_error("Ed25519 key generation failed: " + kp.error().message);
    return *kp;
}

Result<Ed25519KeyPair> Ed25519KeyPair::FromPrivateKey(std::span<const std::uint8_t> seed32) {
    if (seed32.size() != 32) return Error::InvalidArgument("Ed25519 private key must be 32 bytes");
    PkeyPtr key(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed32.data(), 32));
    if (!key) return Error::InvalidArgument("Ed25519 private key rejected");
    Ed25519KeyPair kp;
    std::copy(seed32.begin(), seed32.end(), kp.seed_.begin());
    std::size_t len = kp.public_key_.size();
    if (EVP_PKEY_get_raw_public_key(key.get(), kp.public_key_.data(), &len) != 1 || len != 32)
        return Error::Internal("Ed25519 public key derivation failed");
    return kp;
}

std::string Ed25519KeyPair::PublicKeyBase64() const { return Base64Encode(public_key_); }

std::string Ed25519KeyPair::SignBase64(std::string_view message) const {
    PkeyPtr key(
        EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed_.data(), seed_.size()));
    MdCtxPtr ctx(EVP_MD_CTX_new());
    std::array<std::uint8_t, 64> sig{};
    std::size_t sig_len = sig.size();
    if (!key || !ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) != 1 ||
        EVP_DigestSign(ctx.get(), sig.data(), &sig_len, AsBytes(message), message.size()) != 1)
        throw std::runtime_error("Ed25519 signing failed");
    return Base64Encode(sig);
}

bool VerifyEd25519(std::string_view public_key_base64, std::string_view message,
                   std::string_view signature_base64) {
    const auto pub = Base64Decode(public_key_base64);
    const auto sig = Base64Decode(signature_base64);
    if (!pub || !sig || pub->size() != 32 || sig->size() != 64) return false;
    PkeyPtr key(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, pub->data(), pub->size()));
    MdCtxPtr ctx(EVP_MD_CTX_new());
    if (!key || !ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) != 1)
        return false;
    return EVP_DigestVerify(ctx.get(), sig->data(), sig->size(), AsBytes(message),
                            message.size()) == 1;
}

}  // namespace decloud::crypto
