#include "decloud/chain/deposit_poll.hpp"

#include "decloud/chain/abi.hpp"

namespace decloud::chain {

using common::Result;

asio::awaitable<Result<ScanEvents>> PollDeposits(ChainClient& chain, DepositScanner& scanner) {
    auto head_op = chain.BlockNumber();
    auto head = co_await std::move(head_op);
    if (!head) co_return head.error();
    const auto step = scanner.Next(*head);
    if (!step) co_return ScanEvents{};
    auto headers_op = chain.GetBlockHeaders(step->from, step->to);
    auto headers = co_await std::move(headers_op);
    if (!headers) co_return headers.error();
    LogFilter filter;
    filter.address = scanner.config().token;
    filter.from_block = step->from;
    filter.to_block = step->to;
    filter.topics = {abi::TransferTopic(), std::nullopt,
                     abi::AddressTopic(scanner.config().deposit_address)};
    auto logs_op = chain.GetLogs(std::move(filter));
    auto logs = co_await std::move(logs_op);
    if (!logs) co_return logs.error();
    co_return scanner.Apply(*step, *headers, *logs);
}

}  // namespace decloud::chain
