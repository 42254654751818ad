#pragma once

// Recursive Length Prefix encoding (Ethereum yellow paper, appendix B). Pure.

#include <cstdint>
#include <span>
#include <vector>

#include "decloud/chain/types.hpp"
#include "decloud/common/result.hpp"

namespace decloud::chain::rlp {

// A byte string.
Bytes EncodeBytes(std::span<const std::uint8_t> bytes);
// An unsigned integer: big-endian without leading zeros (zero is the empty string).
Bytes EncodeUint(std::uint64_t value);
Bytes EncodeUint(const U256& value);
// A list of already-encoded items.
Bytes EncodeList(const std::vector<Bytes>& encoded_items);

// A decoded item: a byte string or a list of items.
struct Item {
    bool is_list = false;
    Bytes bytes;              // when !is_list
    std::vector<Item> items;  // when is_list

    friend bool operator==(const Item&, const Item&) = default;
};

// Decodes exactly one item spanning all of `input`; rejects non-canonical encodings (a single
// byte below 0x80 wrapped in a prefix, long forms for short payloads, length with leading zeros),
// truncated input and trailing bytes. kInvalidArgument on any of these.
common::Result<Item> Decode(std::span<const std::uint8_t> input);

// Integer of a decoded byte string (canonical: no leading zeros).
common::Result<U256> ToUint(const Item& item);

}  // namespace decloud::chain::rlp
