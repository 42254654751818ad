#include "decloud/chain/chain_client.hpp"

#include <algorithm>

#include "decloud/chain/abi.hpp"

namespace decloud::chain {

using common::Error;
using common::Result;

namespace {

Error BadField(std::string_view what, std::string_view field, const Error& e) {
    return Error::Internal("rpc: " + std::string(what) + "." + std::string(field) + ": " +
                           e.message);
}

Result<std::string_view> StringField(const json& obj, std::string_view what,
                                     std::string_view field) {
    auto it = obj.find(field);
    if (it == obj.end() || !it->is_string())
        return Error::Internal("rpc: " + std::string(what) + "." + std::string(field) +
                               " missing or not a string");
    return std::string_view(it->get_ref<const std::string&>());
}

Result<std::uint64_t> U64Field(const json& obj, std::string_view what, std::string_view field) {
    auto text = StringField(obj, what, field);
    if (!text) return text.error();
    auto value = ParseQuantityU64(*text);
    if (!value) return BadField(what, field, value.error());
    return *value;
}

Result<Hash> HashField(const json& obj, std::string_view what, std::string_view field) {
    auto text = StringField(obj, what, field);
    if (!text) return text.error();
    auto value = ParseHash(*text);
    if (!value) return BadField(what, field, value.error());
    return *value;
}

Result<Address> AddressField(const json& obj, std::string_view what, std::string_view field) {
    auto text = StringField(obj, what, field);
    if (!text) return text.error();
    auto value = ParseAddress(*text);
    if (!value) return BadField(what, field, value.error());
    return *value;
}

Result<Bytes> DataField(const json& obj, std::string_view what, std::string_view field) {
    auto text = StringField(obj, what, field);
    if (!text) return text.error();
    auto value = ParseHexData(*text);
    if (!value) return BadField(what, field, value.error());
    return std::move(*value);
}

Result<std::uint64_t> QuantityResult(const Result<json>& r, std::string_view what) {
    if (!r) return r.error();
    if (!r->is_string()) return Error::Internal("rpc: " + std::string(what) + " is not a string");
    auto value = ParseQuantityU64(r->get_ref<const std::string&>());
    if (!value) return Error::Internal("rpc: " + std::string(what) + ": " + value.error().message);
    return *value;
}

json CallObject(const CallRequest& call) {
    return {
        {"from", ToString(call.from)}, {"to", ToString(call.to)}, {"data", ToHexData(call.data)}};
}

}  // namespace

Result<BlockHeader> ParseBlockHeader(const json& block) {
    if (!block.is_object()) return Error::Internal("rpc: block is not an object");
    BlockHeader out;
    auto number = U64Field(block, "block", "number");
    if (!number) return number.error();
    auto hash = HashField(block, "block", "hash");
    if (!hash) return hash.error();
    auto parent = HashField(block, "block", "parentHash");
    if (!parent) return parent.error();
    out.number = *number;
    out.hash = *hash;
    out.parent_hash = *parent;
    if (block.contains("baseFeePerGas")) {
        auto text = StringField(block, "block", "baseFeePerGas");
        if (!text) return text.error();
        auto fee = U256::ParseQuantity(*text);
        if (!fee) return BadField("block", "baseFeePerGas", fee.error());
        out.base_fee_per_gas = *fee;
    }
    return out;
}

Result<LogEntry> ParseLogEntry(const json& log) {
    if (!log.is_object()) return Error::Internal("rpc: log is not an object");
    LogEntry out;
    auto address = AddressField(log, "log", "address");
    if (!address) return address.error();
    out.address = *address;
    auto topics = log.find("topics");
    if (topics == log.end() || !topics->is_array())
        return Error::Internal("rpc: log.topics missing or not an array");
    for (const auto& t : *topics) {
        if (!t.is_string()) return Error::Internal("rpc: log.topics holds a non-string");
        auto topic = ParseHash(t.get_ref<const std::string&>());
        if (!topic) return BadField("log", "topics", topic.error());
        out.topics.push_back(*topic);
    }
    auto data = DataField(log, "log", "data");
    if (!data) return data.error();
    out.data = std::move(*data);
    auto number = U64Field(log, "log", "blockNumber");
    if (!number) return number.error();
    out.block_number = *number;
    auto block_hash = HashField(log, "log", "blockHash");
    if (!block_hash) return block_hash.error();
    out.block_hash = *block_hash;
    auto tx = HashField(log, "log", "transactionHash");
    if (!tx) return tx.error();
    out.transaction_hash = *tx;
    auto index = U64Field(log, "log", "logIndex");
    if (!index) return index.error();
    out.log_index = *index;
    if (log.contains("removed")) {
        if (!log["removed"].is_boolean()) return Error::Internal("rpc: log.removed not a boolean");
        out.removed = log["removed"].get<bool>();
    }
    return out;
}

Result<Receipt> ParseReceipt(const json& receipt) {
    if (!receipt.is_object()) return Error::Internal("rpc: receipt is not an object");
    Receipt out;
    auto tx = HashField(receipt, "receipt", "transactionHash");
    if (!tx) return tx.error();
    out.transaction_hash = *tx;
    auto number = U64Field(receipt, "receipt", "blockNumber");
    if (!number) return number.error();
    out.block_number = *number;
    auto block_hash = HashField(receipt, "receipt", "blockHash");
    if (!block_hash) return block_hash.error();
    out.block_hash = *block_hash;
    auto status = U64Field(receipt, "receipt", "status");
    if (!status) return status.error();
    if (*status > 1) return Error::Internal("rpc: receipt.status is neither 0x0 nor 0x1");
    out.success = *status == 1;
    auto gas = U64Field(receipt, "receipt", "gasUsed");
    if (!gas) return gas.error();
    out.gas_used = *gas;
    auto logs = receipt.find("logs");
    if (logs == receipt.end() || !logs->is_array())
        return Error::Internal("rpc: receipt.logs missing or not an array");
    for (const auto& l : *logs) {
        auto entry = ParseLogEntry(l);
        if (!entry) return entry.error();
        out.logs.push_back(std::move(*entry));
    }
    return out;
}

asio::awaitable<Result<std::uint64_t>> JsonRpcChainClient::ChainId() {
    auto op = rpc_.Call("eth_chainId", json::array());
    auto r = co_await std::move(op);
    co_return QuantityResult(r, "eth_chainId");
}

asio::awaitable<Result<std::uint64_t>> JsonRpcChainClient::BlockNumber() {
    auto op = rpc_.Call("eth_blockNumber", json::array());
    auto r = co_await std::move(op);
    co_return QuantityResult(r, "eth_blockNumber");
}

asio::awaitable<Result<std::vector<BlockHeader>>> JsonRpcChainClient::GetBlockHeaders(
    std::uint64_t from, std::uint64_t to) {
    std::vector<RpcCall> calls;
    for (std::uint64_t n = from; n <= to; ++n)
        calls.push_back({"eth_getBlockByNumber", json::array({ToQuantity(n), false})});
    auto op = rpc_.Batch(std::move(calls));
    auto replies = co_await std::move(op);
    if (!replies) co_return replies.error();
    std::vector<BlockHeader> out;
    for (std::size_t i = 0; i < replies->size(); ++i) {
        const auto& r = (*replies)[i];
        if (!r) co_return r.error();
        if (r->is_null())
            co_return Error::NotFound("block " + std::to_string(from + i) + " does not exist");
        auto header = ParseBlockHeader(*r);
        if (!header) co_return header.error();
        if (header->number != from + i)
            co_return Error::Internal("rpc: node answered a different block number");
        out.push_back(*header);
    }
    co_return out;
}

asio::awaitable<Result<std::vector<LogEntry>>> JsonRpcChainClient::GetLogs(LogFilter filter) {
    json topics = json::array();
    for (const auto& t : filter.topics) topics.push_back(t ? json(ToString(*t)) : json(nullptr));
    json params = json::array({{{"address", ToString(filter.address)},
                                {"fromBlock", ToQuantity(filter.from_block)},
                                {"toBlock", ToQuantity(filter.to_block)},
                                {"topics", topics}}});
    auto op = rpc_.Call("eth_getLogs", std::move(params));
    auto r = co_await std::move(op);
    if (!r) co_return r.error();
    if (!r->is_array()) co_return Error::Internal("rpc: eth_getLogs result is not an array");
    std::vector<LogEntry> out;
    for (const auto& l : *r) {
        auto entry = ParseLogEntry(l);
        if (!entry) co_return entry.error();
        out.push_back(std::move(*entry));
    }
    co_return out;
}

asio::awaitable<Result<std::uint64_t>> JsonRpcChainClient::GetTransactionCount(Address account,
                                                                               BlockTag tag) {
    auto op = rpc_.Call(
        "eth_getTransactionCount",
        json::array({ToString(account), tag == BlockTag::kPending ? "pending" : "latest"}));
    auto r = co_await std::move(op);
    co_return QuantityResult(r, "eth_getTransactionCount");
}

asio::awaitable<Result<std::uint64_t>> JsonRpcChainClient::EstimateGas(CallRequest call) {
    auto op = rpc_.Call("eth_estimateGas", json::array({CallObject(call)}));
    auto r = co_await std::move(op);
    co_return QuantityResult(r, "eth_estimateGas");
}

asio::awaitable<Result<FeeSuggestion>> JsonRpcChainClient::SuggestFees() {
    auto op = rpc_.Call("eth_feeHistory", json::array({"0x5", "latest", json::array({50})}));
    auto r = co_await std::move(op);
    if (!r) co_return r.error();
    if (!r->is_object() || !r->contains("baseFeePerGas") || !(*r)["baseFeePerGas"].is_array() ||
        (*r)["baseFeePerGas"].empty())
        co_return Error::Internal("rpc: eth_feeHistory lacks baseFeePerGas");
    FeeSuggestion out;
    // The last entry is the base fee of the block after the newest one: the next block's.
    const auto& last = (*r)["baseFeePerGas"].back();
    if (!last.is_string()) co_return Error::Internal("rpc: baseFeePerGas holds a non-string");
    auto base = U256::ParseQuantity(last.get_ref<const std::string&>());
    if (!base) co_return Error::Internal("rpc: baseFeePerGas: " + base.error().message);
    out.base_fee = *base;
    std::vector<U256> rewards;
    if (r->contains("reward") && (*r)["reward"].is_array()) {
        for (const auto& block : (*r)["reward"]) {
            if (!block.is_array() || block.size() != 1 || !block[0].is_string())
                co_return Error::Internal("rpc: eth_feeHistory reward is malformed");
            auto v = U256::ParseQuantity(block[0].get_ref<const std::string&>());
            if (!v) co_return Error::Internal("rpc: reward: " + v.error().message);
            rewards.push_back(*v);
        }
    }
    if (!rewards.empty()) {
        std::sort(rewards.begin(), rewards.end());
        out.priority_fee = rewards[rewards.size() / 2];
        co_return out;
    }
    auto tip_op = rpc_.Call("eth_maxPriorityFeePerGas", json::array());
    auto tip = co_await std::move(tip_op);
    if (!tip) co_return tip.error();
    if (!tip->is_string()) co_return Error::Internal("rpc: eth_maxPriorityFeePerGas not a string");
    auto value = U256::ParseQuantity(tip->get_ref<const std::string&>());
    if (!value)
        co_return Error::Internal("rpc: eth_maxPriorityFeePerGas: " + value.error().message);
    out.priority_fee = *value;
    co_return out;
}

asio::awaitable<Result<Bytes>> JsonRpcChainClient::Call(CallRequest call) {
    auto op = rpc_.Call("eth_call", json::array({CallObject(call), "latest"}));
    auto r = co_await std::move(op);
    if (!r) co_return r.error();
    if (!r->is_string()) co_return Error::Internal("rpc: eth_call result is not a string");
    auto data = ParseHexData(r->get_ref<const std::string&>());
    if (!data) co_return Error::Internal("rpc: eth_call: " + data.error().message);
    co_return std::move(*data);
}

asio::awaitable<Result<Hash>> JsonRpcChainClient::SendRawTransaction(Bytes raw) {
    auto op = rpc_.Call("eth_sendRawTransaction", json::array({ToHexData(raw)}));
    auto r = co_await std::move(op);
    if (!r) co_return r.error();
    if (!r->is_string()) co_return Error::Internal("rpc: eth_sendRawTransaction not a string");
    auto hash = ParseHash(r->get_ref<const std::string&>());
    if (!hash) co_return Error::Internal("rpc: eth_sendRawTransaction: " + hash.error().message);
    co_return *hash;
}

asio::awaitable<Result<std::optional<Receipt>>> JsonRpcChainClient::GetTransactionReceipt(
    Hash hash) {
    auto op = rpc_.Call("eth_getTransactionReceipt", json::array({ToString(hash)}));
    auto r = co_await std::move(op);
    if (!r) co_return r.error();
    if (r->is_null()) co_return std::optional<Receipt>{};
    auto receipt = ParseReceipt(*r);
    if (!receipt) co_return receipt.error();
    co_return std::optional<Receipt>(std::move(*receipt));
}

asio::awaitable<Result<bool>> JsonRpcChainClient::TransactionKnown(Hash hash) {
    auto op = rpc_.Call("eth_getTransactionByHash", json::array({ToString(hash)}));
    auto r = co_await std::move(op);
    if (!r) co_return r.error();
    if (r->is_null()) co_return false;
    if (!r->is_object()) co_return Error::Internal("rpc: eth_getTransactionByHash not an object");
    co_return true;
}

asio::awaitable<Result<U256>> Erc20BalanceOf(ChainClient& chain, Address token, Address owner) {
    CallRequest call;
    call.from = owner;
    call.to = token;
    call.data = abi::EncodeBalanceOf(owner);
    auto op = chain.Call(std::move(call));
    auto r = co_await std::move(op);
    if (!r) co_return r.error();
    co_return abi::DecodeUint256(*r);
}

}  // namespace decloud::chain
