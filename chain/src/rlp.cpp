#include "decloud/chain/rlp.hpp"

namespace decloud::chain::rlp {

using common::Error;
using common::Result;

namespace {

Bytes BigEndianLength(std::size_t length) {
    Bytes out;
    while (length > 0) {
        out.insert(out.begin(), static_cast<std::uint8_t>(length & 0xff));
        length >>= 8;
    }
    return out;
}

Bytes Header(std::uint8_t short_base, std::uint8_t long_base, std::size_t length) {
    if (length <= 55) return {static_cast<std::uint8_t>(short_base + length)};
    Bytes len = BigEndianLength(length);
    Bytes out{static_cast<std::uint8_t>(long_base + len.size())};
    out.insert(out.end(), len.begin(), len.end());
    return out;
}

// Decodes the item starting at input[pos]; advances pos past it.
Result<Item> DecodeAt(std::span<const std::uint8_t> input, std::size_t& pos, int depth) {
    if (depth > 64) return Error::InvalidArgument("rlp: nesting too deep");
    if (pos >= input.size()) return Error::InvalidArgument("rlp: truncated");
    const std::uint8_t prefix = input[pos++];
    Item item;
    if (prefix < 0x80) {
        item.bytes = {prefix};
        return item;
    }
    const bool is_list = prefix >= 0xc0;
    const std::uint8_t base = is_list ? 0xc0 : 0x80;
    std::size_t length = 0;
    if (prefix - base <= 55) {
        length = static_cast<std::size_t>(prefix - base);
    } else {
        const std::size_t len_of_len = static_cast<std::size_t>(prefix - base - 55);
        if (len_of_len > 8 || input.size() - pos < len_of_len)
            return Error::InvalidArgument("rlp: truncated length");
        if (input[pos] == 0) return Error::InvalidArgument("rlp: length with leading zero");
        for (std::size_t i = 0; i < len_of_len; ++i) length = length << 8 | input[pos + i];
        pos += len_of_len;
        if (length <= 55) return Error::InvalidArgument("rlp: long form for a short payload");
    }
    if (input.size() - pos < length) return Error::InvalidArgument("rlp: truncated payload");
    const std::size_t end = pos + length;
    if (!is_list) {
        if (length == 1 && input[pos] < 0x80)
            return Error::InvalidArgument("rlp: single byte below 0x80 must not be prefixed");
        item.bytes.assign(input.begin() + static_cast<std::ptrdiff_t>(pos),
                          input.begin() + static_cast<std::ptrdiff_t>(end));
        pos = end;
        return item;
    }
    item.is_list = true;
    while (pos < end) {
        auto child = DecodeAt(input.first(end), pos, depth + 1);
        if (!child) return child.error();
        item.items.push_back(std::move(*child));
    }
    return item;
}

}  // namespace

Bytes EncodeBytes(std::span<const std::uint8_t> bytes) {
    if (bytes.size() == 1 && bytes[0] < 0x80) return {bytes[0]};
    Bytes out = Header(0x80, 0xb7, bytes.size());
    out.insert(out.end(), bytes.begin(), bytes.end());
    return out;
}

Bytes EncodeUint(std::uint64_t value) { return EncodeUint(U256(value)); }

Bytes EncodeUint(const U256& value) { return EncodeBytes(value.ToMinimalBytes()); }

Bytes EncodeList(const std::vector<Bytes>& encoded_items) {
    std::size_t total = 0;
    for (const auto& item : encoded_items) total += item.size();
    Bytes out = Header(0xc0, 0xf7, total);
    out.reserve(out.size() + total);
    for (const auto& item : encoded_items) out.insert(out.end(), item.begin(), item.end());
    return out;
}

Result<Item> Decode(std::span<const std::uint8_t> input) {
    std::size_t pos = 0;
    auto item = DecodeAt(input, pos, 0);
    if (!item) return item.error();
    if (pos != input.size()) return Error::InvalidArgument("rlp: trailing bytes");
    return item;
}

Result<U256> ToUint(const Item& item) {
    if (item.is_list) return Error::InvalidArgument("rlp: expected an integer, got a list");
    if (!item.bytes.empty() && item.bytes[0] == 0)
        return Error::InvalidArgument("rlp: integer with leading zero");
    return U256::FromBigEndian(item.bytes);
}

}  // namespace decloud::chain::rlp
