#pragma once

// A real anvil on loopback with the test token deployed by a signed type-2 transaction, and a
// JsonRpcChainClient talking to it over HTTP.

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <memory>
#include <thread>

#include "decloud/chain/abi.hpp"
#include "decloud/chain/chain_client.hpp"
#include "decloud/chain/transaction.hpp"
#include "decloud/testing/anvil.hpp"
#include "decloud/testing/run_sync.hpp"

namespace decloud::chain::testing_support {

using decloud::testing::RunSync;

class ChainFixture : public ::testing::Test {
  protected:
    void SetUp() override {
        anvil_ = std::make_unique<testing::Anvil>();
        Connect();
    }

    void Connect(RetryPolicy retry = {}) {
        net::ClientOptions options;
        options.connect_timeout = std::chrono::seconds{2};
        options.request_timeout = std::chrono::seconds{10};
        auto transport = HttpRpcTransport::Create(io_.get_executor(), anvil_->url(), options);
        ASSERT_TRUE(transport);
        chain_.reset();
        rpc_ = std::make_unique<JsonRpcClient>(io_.get_executor(), std::move(*transport), retry);
        chain_ = std::make_unique<JsonRpcChainClient>(*rpc_);
    }

    // Signs and sends a type-2 transaction from `key` with the chain's suggested fees, then
    // polls for its receipt (anvil mines one block per transaction).
    Receipt SendAndWait(const PrivateKey& key, std::optional<Address> to, Bytes data,
                        std::uint64_t gas_limit) {
        const auto nonce =
            RunSync(io_, chain_->GetTransactionCount(key.address(), BlockTag::kPending)).value();
        const auto fees = RunSync(io_, chain_->SuggestFees()).value();
        Eip1559Transaction tx;
        tx.chain_id = anvil_->chain_id();
        tx.nonce = nonce;
        tx.max_priority_fee_per_gas = fees.priority_fee;
        tx.max_fee_per_gas = *fees.base_fee.Mul(2)->Add(fees.priority_fee);
        tx.gas_limit = gas_limit;
        tx.to = to;
        tx.data = std::move(data);
        const auto signed_tx = Sign(tx, key);
        auto sent = RunSync(io_, chain_->SendRawTransaction(signed_tx.raw));
        EXPECT_TRUE(sent) << sent.error().message;
        if (sent) {
            EXPECT_EQ(*sent, signed_tx.hash);
        }
        for (int i = 0; i < 100; ++i) {
            auto receipt = RunSync(io_, chain_->GetTransactionReceipt(signed_tx.hash));
            if (receipt && *receipt) return **receipt;
            std::this_thread::sleep_for(std::chrono::milliseconds{20});
        }
        ADD_FAILURE() << "no receipt for " << ToString(signed_tx.hash);
        return {};
    }

    Address DeployToken(const PrivateKey& deployer) {
        const auto bytecode = ParseHexData(testing::CompileTestToken()).value();
        const auto nonce =
            RunSync(io_, chain_->GetTransactionCount(deployer.address(), BlockTag::kPending))
                .value();
        const auto receipt = SendAndWait(deployer, std::nullopt, bytecode, 2'000'000);
        EXPECT_TRUE(receipt.success);
        return ContractAddress(deployer.address(), nonce);
    }

    Receipt TransferToken(const PrivateKey& from, Address token, Address to, U256 amount) {
        return SendAndWait(from, token, abi::EncodeTransfer(to, amount), 100'000);
    }

    U256 BalanceOf(Address token, Address owner) {
        return RunSync(io_, Erc20BalanceOf(*chain_, token, owner)).value();
    }

    static PrivateKey Key(const char* hex) { return PrivateKey::FromHex(hex).value(); }

    asio::io_context io_;
    std::unique_ptr<testing::Anvil> anvil_;
    std::unique_ptr<JsonRpcClient> rpc_;
    std::unique_ptr<JsonRpcChainClient> chain_;
};

}  // namespace decloud::chain::testing_support
