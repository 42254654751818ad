#pragma once

// The chain as the billing code sees it: typed reads and a raw-transaction submit. Results are
// parsed strictly (hex quantities, 32-byte hashes, 20-byte addresses); anything else is
// kInternal naming the field.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "decloud/chain/json_rpc.hpp"
#include "decloud/chain/types.hpp"
#include "decloud/common/result.hpp"

namespace decloud::chain {

struct BlockHeader {
    std::uint64_t number = 0;
    Hash hash{};
    Hash parent_hash{};
    std::optional<U256> base_fee_per_gas;
    friend bool operator==(const BlockHeader&, const BlockHeader&) = default;
};

struct LogEntry {
    Address address{};
    std::vector<Hash> topics;
    Bytes data;
    std::uint64_t block_number = 0;
    Hash block_hash{};
    Hash transaction_hash{};
    std::uint64_t log_index = 0;
    bool removed = false;
};

// eth_getLogs over [from_block, to_block] of one contract; topics[i] empty matches anything.
struct LogFilter {
    Address address{};
    std::uint64_t from_block = 0;
    std::uint64_t to_block = 0;
    std::vector<std::optional<Hash>> topics;
};

struct Receipt {
    Hash transaction_hash{};
    std::uint64_t block_number = 0;
    Hash block_hash{};
    bool success = false;
    std::uint64_t gas_used = 0;
    std::vector<LogEntry> logs;
};

struct CallRequest {
    Address from{};
    Address to{};
    Bytes data;
};

// Fees for the next block, from eth_feeHistory: the base fee of the pending block and the
// given reward percentile over recent blocks (or eth_maxPriorityFeePerGas when none).
struct FeeSuggestion {
    U256 base_fee;
    U256 priority_fee;
};

enum class BlockTag { kLatest, kPending };

class ChainClient {
  public:
    virtual ~ChainClient() = default;
    virtual asio::awaitable<common::Result<std::uint64_t>> ChainId() = 0;
    virtual asio::awaitable<common::Result<std::uint64_t>> BlockNumber() = 0;
    // Headers of blocks [from, to] (one batched request); kNotFound if one does not exist.
    virtual asio::awaitable<common::Result<std::vector<BlockHeader>>> GetBlockHeaders(
        std::uint64_t from, std::uint64_t to) = 0;
    virtual asio::awaitable<common::Result<std::vector<LogEntry>>> GetLogs(LogFilter filter) = 0;
    virtual asio::awaitable<common::Result<std::uint64_t>> GetTransactionCount(Address account,
                                                                               BlockTag tag) = 0;
    virtual asio::awaitable<common::Result<std::uint64_t>> EstimateGas(CallRequest call) = 0;
    virtual asio::awaitable<common::Result<FeeSuggestion>> SuggestFees() = 0;
    virtual asio::awaitable<common::Result<Bytes>> Call(CallRequest call) = 0;
    // The node's transaction hash for the raw bytes.
    virtual asio::awaitable<common::Result<Hash>> SendRawTransaction(Bytes raw) = 0;
    // Empty while the transaction is not mined (or unknown).
    virtual asio::awaitable<common::Result<std::optional<Receipt>>> GetTransactionReceipt(
        Hash hash) = 0;
    // Whether the node knows the transaction at all (pending or mined).
    virtual asio::awaitable<common::Result<bool>> TransactionKnown(Hash hash) = 0;
};

// ChainClient over a JsonRpcClient. Same threading contract as JsonRpcClient.
class JsonRpcChainClient final : public ChainClient {
  public:
    explicit JsonRpcChainClient(JsonRpcClient& rpc) : rpc_(rpc) {}

    // ports::ChainClient
    asio::awaitable<common::Result<std::uint64_t>> ChainId() override;
    asio::awaitable<common::Result<std::uint64_t>> BlockNumber() override;
    asio::awaitable<common::Result<std::vector<BlockHeader>>> GetBlockHeaders(
        std::uint64_t from, std::uint64_t to) override;
    asio::awaitable<common::Result<std::vector<LogEntry>>> GetLogs(LogFilter filter) override;
    asio::awaitable<common::Result<std::uint64_t>> GetTransactionCount(Address account,
                                                                       BlockTag tag) override;
    asio::awaitable<common::Result<std::uint64_t>> EstimateGas(CallRequest call) override;
    asio::awaitable<common::Result<FeeSuggestion>> SuggestFees() override;
    asio::awaitable<common::Result<Bytes>> Call(CallRequest call) override;
    asio::awaitable<common::Result<Hash>> SendRawTransaction(Bytes raw) override;
    asio::awaitable<common::Result<std::optional<Receipt>>> GetTransactionReceipt(
        Hash hash) override;
    asio::awaitable<common::Result<bool>> TransactionKnown(Hash hash) override;

  private:
    JsonRpcClient& rpc_;
};

// Strict parsers of JSON-RPC result objects (exposed for unit tests).
common::Result<BlockHeader> ParseBlockHeader(const json& block);
common::Result<LogEntry> ParseLogEntry(const json& log);
common::Result<Receipt> ParseReceipt(const json& receipt);

// ERC-20 balanceOf via eth_call.
asio::awaitable<common::Result<U256>> Erc20BalanceOf(ChainClient& chain, Address token,
                                                     Address owner);

}  // namespace decloud::chain
