#pragma once

// The slice of the Solidity ABI an ERC-20 payment needs. Pure.

#include <vector>

#include "decloud/chain/types.hpp"
#include "decloud/common/result.hpp"

namespace decloud::chain::abi {

// Selector of transfer(address,uint256): 0xa9059cbb.
inline constexpr std::array<std::uint8_t, 4> kTransferSelector{0xa9, 0x05, 0x9c, 0xbb};
// Selector of balanceOf(address): 0x70a08231.
inline constexpr std::array<std::uint8_t, 4> kBalanceOfSelector{0x70, 0xa0, 0x82, 0x31};

// Calldata of transfer(to, amount) and balanceOf(owner).
Bytes EncodeTransfer(const Address& to, const U256& amount);
Bytes EncodeBalanceOf(const Address& owner);
// The first 4 bytes of Keccak-256 of a canonical signature such as "transfer(address,uint256)".
std::array<std::uint8_t, 4> Selector(std::string_view signature);

// A single uint256 return value (exactly 32 bytes).
common::Result<U256> DecodeUint256(std::span<const std::uint8_t> data);

// Topic 0 of Transfer(address indexed from, address indexed to, uint256 value).
Hash TransferTopic();
// An address as an indexed topic (left-padded to 32 bytes).
Hash AddressTopic(const Address& address);

struct TransferEvent {
    Address from{};
    Address to{};
    U256 value;
};
// A Transfer log: exactly 3 topics (signature, from, to) whose address topics have zero padding,
// and 32 bytes of data. kInvalidArgument otherwise (e.g. an ERC-721 Transfer with 4 topics).
common::Result<TransferEvent> DecodeTransferLog(const std::vector<Hash>& topics,
                                                std::span<const std::uint8_t> data);

}  // namespace decloud::chain::abi
