#include "decloud/crypto/ssh_key.hpp"

#include <cryptopp/eccrypto.h>
#include <cryptopp/oids.h>

#include <cstdint>
#include <optional>
#include <span>

#include "decloud/crypto/crypto.hpp"

namespace decloud::crypto {

using common::Error;
using common::Result;

namespace {

constexpr std::size_t kMaxLine = 16 * 1024;
constexpr std::size_t kMaxComment = 256;

// Reads the RFC 4251 wire encoding: uint32 big-endian length + bytes.
class WireReader {
  public:
    explicit WireReader(std::span<const std::uint8_t> data) : data_(data) {}

    std::optional<std::span<const std::uint8_t>> String() {
        if (data_.size() < 4) return std::nullopt;
        const std::uint32_t len = (std::uint32_t{data_[0]} << 24) |
                                  (std::uint32_t{data_[1]} << 16) | (std::uint32_t{data_[2]} << 8) |
                                  std::uint32_t{data_[3]};
        if (len > data_.size() - 4) return std::nullopt;
        auto out = data_.subspan(4, len);
        data_ = data_.subspan(4 + len);
        return out;
    }
    bool AtEnd() const { return data_.empty(); }

  private:
    std::span<const std::uint8_t> data_;
};

std::string_view AsText(std::span<const std::uint8_t> s) {
    return {reinterpret_cast<const char*>(s.data()), s.size()};
}

Error Invalid(std::string why) { return Error::InvalidArgument("SSH public key: " + why); }

// Significant bits of a positive mpint (leading zero bytes allowed).
int MpintBits(std::span<const std::uint8_t> v) {
    std::size_t i = 0;
    while (i < v.size() && v[i] == 0) ++i;
    if (i == v.size()) return 0;
    int bits = static_cast<int>((v.size() - i - 1) * 8);
    for (std::uint8_t top = v[i]; top != 0; top >>= 1) ++bits;
    return bits;
}

struct Curve {
    std::string_view name;
    int bits;
    CryptoPP::OID (*oid)();
};

std::optional<Curve> CurveByName(std::string_view name) {
    if (name == "nistp256") return Curve{name, 256, &CryptoPP::ASN1::secp256r1};
    if (name == "nistp384") return Curve{name, 384, &CryptoPP::ASN1::secp384r1};
    if (name == "nistp521") return Curve{name, 521, &CryptoPP::ASN1::secp521r1};
    return std::nullopt;
}

bool ValidPoint(const Curve& curve, std::span<const std::uint8_t> q) {
    // OpenSSH sends uncompressed points only.
    if (q.empty() || q[0] != 0x04) return false;
    CryptoPP::DL_GroupParameters_EC<CryptoPP::ECP> params(curve.oid());
    CryptoPP::ECP::Point point;
    if (!params.GetCurve().DecodePoint(point, q.data(), q.size())) return false;
    return params.ValidateElement(3, point, nullptr);
}

// Checks the key-specific fields after the type; returns the key size in bits.
Result<int> CheckBody(std::string_view type, WireReader& r) {
    if (type == "ssh-ed25519" || type == "sk-ssh-ed25519@openssh.com") {
        auto pk = r.String();
        if (!pk || pk->size() != 32) return Invalid("an Ed25519 key must be 32 bytes");
        if (type.starts_with("sk-") && !r.String())
            return Invalid("a security-key entry needs its application string");
        return 256;
    }
    if (type.starts_with("ecdsa-sha2-") || type == "sk-ecdsa-sha2-nistp256@openssh.com") {
        const auto declared = type.starts_with("sk-")
                                  ? std::string_view("nistp256")
                                  : type.substr(std::string_view("ecdsa-sha2-").size());
        auto curve_name = r.String();
        if (!curve_name || AsText(*curve_name) != declared)
            return Invalid("the curve inside the key does not match '" + std::string(type) + "'");
        const auto curve = CurveByName(declared);
        if (!curve) return Invalid("unsupported curve " + std::string(declared));
        auto q = r.String();
        if (!q || !ValidPoint(*curve, *q))
            return Invalid("the ECDSA point is not on " + std::string(declared));
        if (type.starts_with("sk-") && !r.String())
            return Invalid("a security-key entry needs its application string");
        return curve->bits;
    }
    if (type == "ssh-rsa") {
        auto e = r.String();
        auto n = r.String();
        if (!e || !n || MpintBits(*e) < 2 || MpintBits(*n) == 0)
            return Invalid("malformed RSA exponent or modulus");
        const int bits = MpintBits(*n);
        if (bits < kMinimumRsaBits)
            return Invalid("RSA keys must have at least " + std::to_string(kMinimumRsaBits) +
                           " bits; this one has " + std::to_string(bits));
        return bits;
    }
    return Invalid("unreachable key type");
}

std::string_view AlgorithmOf(std::string_view type) {
    if (type == "ssh-ed25519") return "ed25519";
    if (type == "sk-ssh-ed25519@openssh.com") return "ed25519-sk";
    if (type == "sk-ecdsa-sha2-nistp256@openssh.com") return "ecdsa-sk";
    if (type.starts_with("ecdsa-sha2-nistp")) return "ecdsa";
    if (type == "ssh-rsa") return "rsa";
    return {};
}

std::string_view Trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() &&
           (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
        s.remove_suffix(1);
    return s;
}

}  // namespace

Result<SshPublicKey> ParseSshPublicKey(std::string_view line) {
    if (line.size() > kMaxLine) return Invalid("longer than 16 KiB");
    line = Trim(line);
    if (line.empty()) return Invalid("empty");
    for (char c : line)
        if (c == '\n' || c == '\r' || c == '\0') return Invalid("must be a single line");

    const auto sp = line.find_first_of(" \t");
    if (sp == std::string_view::npos) return Invalid("expected '<type> <base64> [comment]'");
    const std::string_view type = line.substr(0, sp);
    std::string_view rest = Trim(line.substr(sp + 1));
    if (type == "ssh-dss") return Invalid("DSA keys are not accepted; use Ed25519");
    if (AlgorithmOf(type).empty())
        return Invalid("unsupported key type '" + std::string(type.substr(0, 64)) +
                       "' (use ssh-ed25519, ecdsa-sha2-nistp256/384/521 or ssh-rsa of 3072+ "
                       "bits; authorized_keys options are not accepted)");
    const auto sp2 = rest.find_first_of(" \t");
    const std::string_view b64 = rest.substr(0, sp2);
    const std::string_view comment =
        sp2 == std::string_view::npos ? std::string_view{} : Trim(rest.substr(sp2 + 1));
    if (comment.size() > kMaxComment) return Invalid("comment longer than 256 characters");
    for (unsigned char c : comment)
        if (c < 0x20 || c == 0x7f) return Invalid("comment contains control characters");

    auto blob = Base64Decode(b64);
    if (!blob || blob->empty()) return Invalid("the key data is not valid base64");
    WireReader reader(*blob);
    auto inner_type = reader.String();
    if (!inner_type || AsText(*inner_type) != type)
        return Invalid("the key data is not a '" + std::string(type) + "' key");
    auto bits = CheckBody(type, reader);
    if (!bits) return bits.error();
    if (!reader.AtEnd()) return Invalid("trailing bytes after the key");

    SshPublicKey key;
    key.type = std::string(type);
    key.algorithm = std::string(AlgorithmOf(type));
    key.bits = *bits;
    const auto digest = Sha256(AsText(*blob));
    std::string fp = Base64Encode(digest);
    while (!fp.empty() && fp.back() == '=') fp.pop_back();
    key.fingerprint = "SHA256:" + fp;
    key.comment = std::string(comment);
    key.authorized_key = key.type + " " + Base64Encode(*blob);
    if (!key.comment.empty()) key.authorized_key += " " + key.comment;
    return key;
}

}  // namespace decloud::crypto
