#pragma once

// One round of deposit scanning against a chain: asks the scanner what to fetch, fetches the
// block headers (batched) and the token's Transfer logs to the deposit address, applies them.

#include <boost/asio/awaitable.hpp>

#include "decloud/chain/chain_client.hpp"
#include "decloud/chain/deposit_scanner.hpp"

namespace decloud::chain {

// Empty events when the scanner is caught up. Errors: the chain client's, or the scanner's
// (kUnavailable: retry later; kConflict: a reorganisation deeper than the confirmations).
asio::awaitable<common::Result<ScanEvents>> PollDeposits(ChainClient& chain,
                                                         DepositScanner& scanner);

}  // namespace decloud::chain
