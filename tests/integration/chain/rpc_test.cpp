#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "chain_fixture.hpp"
#include "decloud/testing/process.hpp"

namespace decloud::chain::testing_support {
namespace {

using common::ErrorCode;

class RpcTest : public ChainFixture {};

TEST_F(RpcTest, ReadsChainIdAndBlocksAndBatches) {
    EXPECT_EQ(RunSync(io_, chain_->ChainId()).value(), 31337u);
    EXPECT_EQ(RunSync(io_, chain_->BlockNumber()).value(), 0u);
    anvil_->Rpc("anvil_mine", {"0x3"});
    EXPECT_EQ(RunSync(io_, chain_->BlockNumber()).value(), 3u);

    const auto headers = RunSync(io_, chain_->GetBlockHeaders(0, 3)).value();
    ASSERT_EQ(headers.size(), 4u);
    for (std::size_t i = 1; i < headers.size(); ++i) {
        EXPECT_EQ(headers[i].number, i);
        EXPECT_EQ(headers[i].parent_hash, headers[i - 1].hash);
    }
    auto missing = RunSync(io_, chain_->GetBlockHeaders(3, 4));
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);

    // One HTTP request for three calls; the unknown method fails alone.
    const auto before = rpc_->attempts();
    auto batch = RunSync(io_, rpc_->Batch({{"eth_chainId", json::array()},
                                           {"eth_blockNumber", json::array()},
                                           {"decloud_noSuchMethod", json::array()}}));
    ASSERT_TRUE(batch) << batch.error().message;
    EXPECT_EQ(rpc_->attempts(), before + 1);
    EXPECT_EQ((*batch)[0].value(), "0x7a69");
    EXPECT_EQ((*batch)[1].value(), "0x3");
    ASSERT_FALSE((*batch)[2]);

    // A node error is final: no retry.
    auto bad = RunSync(io_, rpc_->Call("eth_getBalance", json::array({"0x12"})));
    ASSERT_FALSE(bad);
    EXPECT_EQ(rpc_->attempts(), before + 2);
}

TEST_F(RpcTest, DeploysTheTokenAndTransfersWithASignedType2Transaction) {
    const auto deployer = Key(testing::kAnvilKey0);
    const auto payee = Key(testing::kAnvilKey1);
    const Address token = DeployToken(deployer);
    const U256 supply = U256(1'000'000'000'000'000);
    EXPECT_EQ(BalanceOf(token, deployer.address()), supply);
    EXPECT_EQ(BalanceOf(token, payee.address()), U256(0));

    const auto receipt = TransferToken(deployer, token, payee.address(), U256(1'500'000));
    ASSERT_TRUE(receipt.success);
    EXPECT_GT(receipt.gas_used, 21'000u);
    ASSERT_EQ(receipt.logs.size(), 1u);
    EXPECT_EQ(receipt.logs[0].address, token);
    auto event = abi::DecodeTransferLog(receipt.logs[0].topics, receipt.logs[0].data);
    ASSERT_TRUE(event);
    EXPECT_EQ(event->from, deployer.address());
    EXPECT_EQ(event->to, payee.address());
    EXPECT_EQ(event->value, U256(1'500'000));

    EXPECT_EQ(BalanceOf(token, payee.address()), U256(1'500'000));
    EXPECT_EQ(BalanceOf(token, deployer.address()), *supply.Sub(U256(1'500'000)));

    // The node saw the sender our signature names.
    const auto tx = anvil_->Rpc("eth_getTransactionByHash", {ToString(receipt.transaction_hash)});
    EXPECT_EQ(ParseAddress(tx.at("from").get<std::string>()).value(), deployer.address());
    EXPECT_EQ(tx.at("type").get<std::string>(), "0x2");

    // Gas estimation is in the range of what the transfer used (a fresh recipient, another amount).
    CallRequest call;
    call.from = deployer.address();
    call.to = token;
    call.data = abi::EncodeTransfer(Key(testing::kAnvilKey2).address(), U256(1));
    const auto estimate = RunSync(io_, chain_->EstimateGas(call)).value();
    EXPECT_GT(estimate, 40'000u);
    EXPECT_LT(estimate, 100'000u);

    // A transfer beyond the balance reverts: a receipt with status 0, balances untouched.
    const auto reverted = SendAndWait(
        payee, token, abi::EncodeTransfer(deployer.address(), U256(2'000'000)), 100'000);
    EXPECT_FALSE(reverted.success);
    EXPECT_EQ(BalanceOf(token, payee.address()), U256(1'500'000));
}

TEST(RpcTransportTest, RetriesARefusedConnectionABoundedNumberOfTimes) {
    asio::io_context io;
    const auto port = testing::FreeTcpPort();  // nothing listens there
    auto transport =
        HttpRpcTransport::Create(io.get_executor(), "http://127.0.0.1:" + std::to_string(port), {});
    ASSERT_TRUE(transport);
    JsonRpcClient rpc(io.get_executor(), std::move(*transport),
                      RetryPolicy{3, std::chrono::milliseconds{10}, std::chrono::milliseconds{20}});
    auto r = RunSync(io, rpc.Call("eth_chainId", json::array()));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
    EXPECT_EQ(rpc.attempts(), 3u);
}

TEST(RpcTransportTest, TimesOutAgainstANodeThatNeverAnswers) {
    // A listening socket nobody accepts from: the kernel completes the handshake, no reply.
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ASSERT_EQ(::listen(fd, 8), 0);
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    const auto port = ntohs(addr.sin_port);

    asio::io_context io;
    net::ClientOptions options;
    options.request_timeout = std::chrono::milliseconds{200};
    auto transport = HttpRpcTransport::Create(io.get_executor(),
                                              "http://127.0.0.1:" + std::to_string(port), options);
    ASSERT_TRUE(transport);
    JsonRpcClient rpc(io.get_executor(), std::move(*transport),
                      RetryPolicy{2, std::chrono::milliseconds{10}, std::chrono::milliseconds{10}});
    const auto start = std::chrono::steady_clock::now();
    auto r = RunSync(io, rpc.Call("eth_chainId", json::array()));
    const auto elapsed = std::chrono::steady_clock::now() - start;
    ::close(fd);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ErrorCode::kTimeout) << r.error().message;
    EXPECT_EQ(rpc.attempts(), 2u);
    EXPECT_LT(elapsed, std::chrono::seconds{3});
}

}  // namespace
}  // namespace decloud::chain::testing_support
