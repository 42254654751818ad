#include <gtest/gtest.h>

#include <deque>

#include "decloud/chain/chain_client.hpp"
#include "decloud/chain/json_rpc.hpp"
#include "decloud/testing/run_sync.hpp"

namespace decloud::chain {
namespace {

using common::Error;
using common::ErrorCode;
using common::Result;
using testing::RunSync;

// Answers with scripted replies and records the request bodies (a transport double: the
// client's envelope handling is what is under test here; the HTTP path runs against anvil).
class ScriptedTransport final : public RpcTransport {
  public:
    ScriptedTransport(std::deque<Result<std::string>> replies, std::vector<std::string>& seen)
        : replies_(std::move(replies)), seen_(seen) {}
    asio::awaitable<Result<std::string>> Post(std::string body) override {
        seen_.push_back(std::move(body));
        if (replies_.empty()) co_return Error::Unavailable("script exhausted");
        auto next = std::move(replies_.front());
        replies_.pop_front();
        co_return next;
    }

  private:
    std::deque<Result<std::string>> replies_;
    std::vector<std::string>& seen_;
};

class JsonRpcClientTest : public ::testing::Test {
  protected:
    JsonRpcClient Client(std::deque<Result<std::string>> replies, int attempts = 3) {
        return JsonRpcClient(
            io_.get_executor(), std::make_unique<ScriptedTransport>(std::move(replies), seen_),
            RetryPolicy{attempts, std::chrono::milliseconds{1}, std::chrono::milliseconds{4}});
    }
    asio::io_context io_;
    std::vector<std::string> seen_;
};

TEST_F(JsonRpcClientTest, RetriesTransportFailuresOnlyAndBoundsThem) {
    auto client = Client({Error::Unavailable("refused"), Error::Timeout("slow"),
                          std::string(R"({"jsonrpc":"2.0","id":1,"result":"0x7a69"})")});
    auto r = RunSync(io_, client.Call("eth_chainId", json::array()));
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(*r, "0x7a69");
    EXPECT_EQ(client.attempts(), 3u);
    // All attempts carried the same request.
    ASSERT_EQ(seen_.size(), 3u);
    EXPECT_EQ(seen_[0], seen_[2]);

    auto exhausted = Client({Error::Unavailable("a"), Error::Unavailable("b"),
                             Error::Unavailable("c"), Error::Unavailable("d")});
    auto e = RunSync(io_, exhausted.Call("eth_chainId", json::array()));
    ASSERT_FALSE(e);
    EXPECT_EQ(e.error().code, ErrorCode::kUnavailable);
    EXPECT_EQ(exhausted.attempts(), 3u);
}

TEST_F(JsonRpcClientTest, NodeErrorsAreNotRetried) {
    auto client = Client({std::string(
        R"({"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"nonce too low"}})")});
    auto r = RunSync(io_, client.Call("eth_sendRawTransaction", json::array({"0x00"})));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ErrorCode::kUnprocessable);
    EXPECT_EQ(r.error().message, "rpc error -32000: nonce too low");
    EXPECT_EQ(client.attempts(), 1u);
}

TEST_F(JsonRpcClientTest, RejectsMalformedEnvelopes) {
    auto client =
        Client({std::string("not json"), std::string(R"({"jsonrpc":"2.0","id":99,"result":"0x1"})"),
                std::string(R"({"jsonrpc":"2.0","id":3,"result":"0x1","error":{}})"),
                std::string(R"({"id":4,"result":"0x1"})")});
    for (int i = 0; i < 4; ++i) {
        auto r = RunSync(io_, client.Call("eth_blockNumber", json::array()));
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error().code, ErrorCode::kInternal) << r.error().message;
    }
}

TEST_F(JsonRpcClientTest, BatchMatchesAnswersById) {
    auto client = Client({std::string(R"([
        {"jsonrpc":"2.0","id":3,"error":{"code":-32601,"message":"no such method"}},
        {"jsonrpc":"2.0","id":1,"result":"0x1"},
        {"jsonrpc":"2.0","id":2,"result":"0x2"}])")});
    auto r = RunSync(
        io_, client.Batch({{"a", json::array()}, {"b", json::array()}, {"c", json::array()}}));
    ASSERT_TRUE(r) << r.error().message;
    ASSERT_EQ(r->size(), 3u);
    EXPECT_EQ((*r)[0].value(), "0x1");
    EXPECT_EQ((*r)[1].value(), "0x2");
    EXPECT_EQ((*r)[2].error().code, ErrorCode::kNotFound);
    const auto sent = json::parse(seen_.at(0));
    ASSERT_TRUE(sent.is_array());
    EXPECT_EQ(sent.size(), 3u);

    auto missing = Client({std::string(R"([{"jsonrpc":"2.0","id":1,"result":"0x1"}])")});
    auto m = RunSync(io_, missing.Batch({{"a", json::array()}, {"b", json::array()}}));
    ASSERT_FALSE(m);
    EXPECT_EQ(m.error().code, ErrorCode::kInternal);

    auto duplicated = Client({std::string(
        R"([{"jsonrpc":"2.0","id":1,"result":"0x1"},{"jsonrpc":"2.0","id":1,"result":"0x1"}])")});
    EXPECT_FALSE(RunSync(io_, duplicated.Batch({{"a", json::array()}, {"b", json::array()}})));
}

TEST(ChainParsingTest, LogsAndBlocksAreParsedStrictly) {
    const json log = {
        {"address", "0x5fbdb2315678afecb367f032d93f642f64180aa3"},
        {"topics", {"0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"}},
        {"data", "0x"},
        {"blockNumber", "0x10"},
        {"blockHash", "0x" + std::string(64, 'a')},
        {"transactionHash", "0x" + std::string(64, 'b')},
        {"logIndex", "0x0"},
        {"removed", false}};
    auto parsed = ParseLogEntry(log);
    ASSERT_TRUE(parsed) << parsed.error().message;
    EXPECT_EQ(parsed->block_number, 16u);
    for (const char* field : {"blockNumber", "logIndex", "blockHash", "data"}) {
        json broken = log;
        broken[field] = "0x01x";
        EXPECT_FALSE(ParseLogEntry(broken)) << field;
        broken.erase(field);
        EXPECT_FALSE(ParseLogEntry(broken)) << field;
    }
    json numeric = log;
    numeric["logIndex"] = 0;
    EXPECT_FALSE(ParseLogEntry(numeric));

    json block = {{"number", "0x1"},
                  {"hash", "0x" + std::string(64, 'c')},
                  {"parentHash", "0x" + std::string(64, 'd')},
                  {"baseFeePerGas", "0x3b9aca00"}};
    auto header = ParseBlockHeader(block);
    ASSERT_TRUE(header);
    EXPECT_EQ(header->base_fee_per_gas.value(), U256(1'000'000'000));
    block["parentHash"] = "0x1234";
    EXPECT_FALSE(ParseBlockHeader(block));
}

}  // namespace
}  // namespace decloud::chain
