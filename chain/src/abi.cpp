#include "decloud/chain/abi.hpp"

#include <algorithm>

#include "decloud/crypto/crypto.hpp"

namespace decloud::chain::abi {

using common::Error;
using common::Result;

namespace {

void AppendWord(Bytes& out, const Hash& word) { out.insert(out.end(), word.begin(), word.end()); }

Result<Address> AddressFromTopic(const Hash& topic) {
    if (!std::all_of(topic.begin(), topic.begin() + 12, [](std::uint8_t b) { return b == 0; }))
        return Error::InvalidArgument("abi: address word has non-zero padding");
    Address out{};
    std::copy(topic.begin() + 12, topic.end(), out.begin());
    return out;
}

}  // namespace

Bytes EncodeTransfer(const Address& to, const U256& amount) {
    Bytes out(kTransferSelector.begin(), kTransferSelector.end());
    AppendWord(out, AddressTopic(to));
    AppendWord(out, amount.ToBigEndian());
    return out;
}

Bytes EncodeBalanceOf(const Address& owner) {
    Bytes out(kBalanceOfSelector.begin(), kBalanceOfSelector.end());
    AppendWord(out, AddressTopic(owner));
    return out;
}

std::array<std::uint8_t, 4> Selector(std::string_view signature) {
    const auto hash = crypto::Keccak256(signature);
    return {hash[0], hash[1], hash[2], hash[3]};
}

Result<U256> DecodeUint256(std::span<const std::uint8_t> data) {
    if (data.size() != 32) return Error::InvalidArgument("abi: uint256 wants exactly 32 bytes");
    return U256::FromBigEndian(data);
}

Hash TransferTopic() {
    return crypto::Keccak256(std::string_view("Transfer(address,address,uint256)"));
}

Hash AddressTopic(const Address& address) {
    Hash out{};
    std::copy(address.begin(), address.end(), out.begin() + 12);
    return out;
}

Result<TransferEvent> DecodeTransferLog(const std::vector<Hash>& topics,
                                        std::span<const std::uint8_t> data) {
    if (topics.size() != 3) return Error::InvalidArgument("Transfer log: wants 3 topics");
    if (topics[0] != TransferTopic()) return Error::InvalidArgument("Transfer log: wrong topic 0");
    auto from = AddressFromTopic(topics[1]);
    if (!from) return from.error();
    auto to = AddressFromTopic(topics[2]);
    if (!to) return to.error();
    auto value = DecodeUint256(data);
    if (!value) return value.error();
    return TransferEvent{*from, *to, *value};
}

}  // namespace decloud::chain::abi
