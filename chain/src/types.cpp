#include "decloud/chain/types.hpp"

#include <algorithm>

#include "decloud/crypto/crypto.hpp"

namespace decloud::chain {

using common::Error;
using common::Result;

namespace {

__extension__ using U128 = unsigned __int128;

int HexDigit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

bool HasHexPrefix(std::string_view text) {
    return text.size() >= 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X');
}

}  // namespace

Result<Address> ParseAddress(std::string_view text) {
    auto normalized = crypto::NormalizeEthereumAddress(text);
    if (!normalized) return normalized.error();
    auto bytes = crypto::HexDecode(*normalized);
    if (!bytes || bytes->size() != 20) return Error::InvalidArgument("address: bad length");
    Address out{};
    std::copy(bytes->begin(), bytes->end(), out.begin());
    return out;
}

std::string ToString(const Address& address) { return crypto::ToChecksumAddress(address); }

Result<Hash> ParseHash(std::string_view text) {
    if (!HasHexPrefix(text) || text.size() != 66)
        return Error::InvalidArgument("hash: must be 0x followed by 64 hex digits");
    auto bytes = crypto::HexDecode(text);
    if (!bytes) return Error::InvalidArgument("hash: " + bytes.error().message);
    Hash out{};
    std::copy(bytes->begin(), bytes->end(), out.begin());
    return out;
}

std::string ToString(const Hash& hash) { return "0x" + crypto::HexEncode(hash); }

std::string ToHexData(std::span<const std::uint8_t> bytes) {
    return "0x" + crypto::HexEncode(bytes);
}

Result<Bytes> ParseHexData(std::string_view text) {
    if (!HasHexPrefix(text)) return Error::InvalidArgument("hex data: must start with 0x");
    auto bytes = crypto::HexDecode(text);
    if (!bytes) return Error::InvalidArgument("hex data: " + bytes.error().message);
    return std::move(*bytes);
}

Result<U256> U256::FromBigEndian(std::span<const std::uint8_t> bytes) {
    if (bytes.size() > 32) return Error::InvalidArgument("uint256: more than 32 bytes");
    U256 out;
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        const std::size_t bit = 8 * (bytes.size() - 1 - i);
        out.limbs_[bit / 64] |= static_cast<std::uint64_t>(bytes[i]) << (bit % 64);
    }
    return out;
}

Result<U256> U256::ParseDecimal(std::string_view text) {
    if (text.empty()) return Error::InvalidArgument("amount: empty");
    if (text.size() > 1 && text[0] == '0') return Error::InvalidArgument("amount: leading zero");
    U256 out;
    for (char c : text) {
        if (c < '0' || c > '9') return Error::InvalidArgument("amount: not a decimal integer");
        auto times_ten = out.Mul(10);
        if (!times_ten) return Error::InvalidArgument("amount: exceeds uint256");
        auto next = times_ten->Add(U256(static_cast<std::uint64_t>(c - '0')));
        if (!next) return Error::InvalidArgument("amount: exceeds uint256");
        out = *next;
    }
    return out;
}

Result<U256> U256::ParseQuantity(std::string_view text) {
    if (!HasHexPrefix(text)) return Error::InvalidArgument("quantity: must start with 0x");
    text.remove_prefix(2);
    if (text.empty()) return Error::InvalidArgument("quantity: no digits");
    if (text.size() > 1 && text[0] == '0') return Error::InvalidArgument("quantity: leading zero");
    if (text.size() > 64) return Error::InvalidArgument("quantity: exceeds uint256");
    U256 out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const int d = HexDigit(text[i]);
        if (d < 0) return Error::InvalidArgument("quantity: invalid hex digit");
        const std::size_t bit = 4 * (text.size() - 1 - i);
        out.limbs_[bit / 64] |= static_cast<std::uint64_t>(d) << (bit % 64);
    }
    return out;
}

std::array<std::uint8_t, 32> U256::ToBigEndian() const {
    std::array<std::uint8_t, 32> out{};
    for (std::size_t i = 0; i < 32; ++i) {
        const std::size_t bit = 8 * (31 - i);
        out[i] = static_cast<std::uint8_t>(limbs_[bit / 64] >> (bit % 64));
    }
    return out;
}

Bytes U256::ToMinimalBytes() const {
    const auto full = ToBigEndian();
    auto first = std::find_if(full.begin(), full.end(), [](std::uint8_t b) { return b != 0; });
    return Bytes(first, full.end());
}

std::string U256::ToDecimal() const {
    if (IsZero()) return "0";
    std::string out;
    U256 rest = *this;
    while (!rest.IsZero()) {
        auto [q, r] = rest.DivMod(10);
        out.push_back(static_cast<char>('0' + r));
        rest = q;
    }
    std::reverse(out.begin(), out.end());
    return out;
}

std::string U256::ToQuantity() const {
    const auto bytes = ToMinimalBytes();
    if (bytes.empty()) return "0x0";
    std::string hex = crypto::HexEncode(bytes);
    if (hex[0] == '0') hex.erase(0, 1);
    return "0x" + hex;
}

std::optional<std::uint64_t> U256::ToU64() const {
    if (limbs_[1] != 0 || limbs_[2] != 0 || limbs_[3] != 0) return std::nullopt;
    return limbs_[0];
}

std::optional<U256> U256::Add(const U256& other) const {
    U256 out;
    U128 carry = 0;
    for (std::size_t i = 0; i < 4; ++i) {
        const U128 sum = static_cast<U128>(limbs_[i]) + other.limbs_[i] + carry;
        out.limbs_[i] = static_cast<std::uint64_t>(sum);
        carry = sum >> 64;
    }
    if (carry != 0) return std::nullopt;
    return out;
}

std::optional<U256> U256::Sub(const U256& other) const {
    if (*this < other) return std::nullopt;
    U256 out;
    std::uint64_t borrow = 0;
    for (std::size_t i = 0; i < 4; ++i) {
        const std::uint64_t a = limbs_[i];
        const std::uint64_t b = other.limbs_[i];
        out.limbs_[i] = a - b - borrow;
        borrow = (a < b || (a == b && borrow != 0)) ? 1 : 0;
    }
    return out;
}

std::optional<U256> U256::Mul(std::uint64_t factor) const {
    U256 out;
    U128 carry = 0;
    for (std::size_t i = 0; i < 4; ++i) {
        const U128 product = static_cast<U128>(limbs_[i]) * factor + carry;
        out.limbs_[i] = static_cast<std::uint64_t>(product);
        carry = product >> 64;
    }
    if (carry != 0) return std::nullopt;
    return out;
}

std::pair<U256, std::uint64_t> U256::DivMod(std::uint64_t divisor) const {
    U256 quotient;
    U128 remainder = 0;
    for (std::size_t i = 4; i-- > 0;) {
        const U128 current = (remainder << 64) | limbs_[i];
        quotient.limbs_[i] = static_cast<std::uint64_t>(current / divisor);
        remainder = current % divisor;
    }
    return {quotient, static_cast<std::uint64_t>(remainder)};
}

std::strong_ordering operator<=>(const U256& a, const U256& b) {
    for (std::size_t i = 4; i-- > 0;) {
        if (a.limbs_[i] != b.limbs_[i]) return a.limbs_[i] <=> b.limbs_[i];
    }
    return std::strong_ordering::equal;
}

Result<std::uint64_t> ParseQuantityU64(std::string_view text) {
    auto value = U256::ParseQuantity(text);
    if (!value) return value.error();
    auto small = value->ToU64();
    if (!small) return Error::InvalidArgument("quantity: exceeds 64 bits");
    return *small;
}

std::string ToQuantity(std::uint64_t value) { return U256(value).ToQuantity(); }

}  // namespace decloud::chain
