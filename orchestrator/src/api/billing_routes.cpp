// /api/billing: a user's balance (with deposits seen on chain but not confirmed yet), ledger
// transactions and where to deposit; an operator's earnings and payouts; the ledger's
// invariants for admins. Amounts travel as decimal strings with 6 decimals ("12.345678").

#include "api_support.hpp"
#include "decloud/net/blocking.hpp"
#include "orchestrator/api/routes.hpp"

namespace decloud::orchestrator::api {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using common::Error;
using nlohmann::json;

namespace {

json EventToJson(const ports::AccountEvent& e) {
    return json{
        {"id", e.id}, {"kind", e.kind}, {"at", common::FormatRfc3339(e.at)}, {"detail", e.detail}};
}

// A transaction as its owner sees it: the net change of their own accounts, not the
// counterparties' (other users and operators stay private).
json TransactionToJson(const ports::PostedTransaction& p, const std::string& wallet) {
    const auto& t = p.transaction;
    json entries = json::array();
    domain::Amount net;
    for (const auto& e : t.entries) {
        if (e.account.owner != wallet) continue;
        entries.push_back(
            json{{"account", std::string(domain::ToString(e.account.kind))},
                 {"direction", e.amount.IsNegative() ? "debit" : "credit"},
                 {"amount", domain::FormatAmount(domain::Amount::Micros(
                                e.amount.IsNegative() ? -e.amount.micros() : e.amount.micros()))}});
        if (e.account.kind == domain::AccountKind::kUserBalance) net = e.amount;
    }
    json details = json::object();
    for (const char* key : {"vmId", "hourStart", "runningSeconds", "hourlyRate", "cost", "charged",
                            "uncovered", "chainId", "txHash", "logIndex", "payoutId"})
        if (const auto it = t.metadata.find(key); it != t.metadata.end()) details[key] = *it;
    return json{{"id", std::to_string(p.id)},
                {"kind", std::string(domain::ToString(t.kind))},
                {"createdAt", common::FormatRfc3339(t.created_at)},
                {"currency", t.currency},
                {"balanceChange", domain::FormatAmount(net)},
                {"entries", std::move(entries)},
                {"details", std::move(details)}};
}

// Micro-units as a 6-decimal string, also beyond int64 (an unconfirmed deposit is any U256).
std::string FormatUnits(const chain::U256& units) {
    std::string digits = units.ToDecimal();
    const auto decimals = static_cast<std::size_t>(domain::kUsdcDecimals);
    if (digits.size() <= decimals) digits.insert(0, decimals + 1 - digits.size(), '0');
    digits.insert(digits.size() - decimals, ".");
    return digits;
}

json PendingToJson(const ports::PendingDeposit& d) {
    return json{{"txHash", d.tx_hash},
                {"logIndex", d.log_index},
                {"blockNumber", d.block_number},
                {"amount", FormatUnits(d.amount)},
                {"state", "pending"}};
}

json PayoutToJson(const ports::PayoutView& p) {
    return json{{"id", p.payout_id},
                {"amount", domain::FormatAmount(p.amount)},
                {"state", p.state},
                {"chainStatus", p.chain_status.empty() ? json(nullptr) : json(p.chain_status)},
                {"txHash", p.tx_hash.empty() ? json(nullptr) : json(p.tx_hash)},
                {"reservedAt", common::FormatRfc3339(p.reserved_at)}};
}

}  // namespace

void AddBillingRoutes(net::Router& router, std::shared_ptr<ApiContext> api) {
    router.Add(
        http::verb::get, "/api/billing/balance",
        ForUser(api,
                [api](net::RequestContext& ctx,
                      const app::Principal& who) -> asio::awaitable<net::Response> {
                    auto view = co_await net::RunBlocking(
                        *api->blocking, [&] { return api->billing->Balance(who.wallet_address); });
                    if (!view) co_return ErrorResponse(ctx, view.error());
                    json events = json::array();
                    for (const auto& e : view->events) events.push_back(EventToJson(e));
                    json pending = json::array();
                    if (api->chain_accounts != nullptr) {
                        auto seen = co_await net::RunBlocking(*api->blocking, [&] {
                            return api->chain_accounts->PendingDeposits(who.wallet_address);
                        });
                        if (!seen) co_return ErrorResponse(ctx, seen.error());
                        for (const auto& d : *seen) pending.push_back(PendingToJson(d));
                    }
                    co_return net::MakeJson(
                        ctx.request, http::status::ok,
                        json{{"currency", std::string(domain::kUsdc)},
                             {"balance", domain::FormatAmount(view->balance)},
                             {"runningHourlyCost", domain::FormatAmount(view->running_hourly)},
                             {"lowBalance", view->low},
                             {"nodeEarnings", domain::FormatAmount(view->node_earnings)},
                             {"relayEarnings", domain::FormatAmount(view->relay_earnings)},
                             {"payoutsInFlight", domain::FormatAmount(view->payouts_in_flight)},
                             {"pendingDeposits", std::move(pending)},
                             {"events", std::move(events)}});
                }));

    router.Add(
        http::verb::get, "/api/billing/transactions",
        ForUser(api,
                [api](net::RequestContext& ctx,
                      const app::Principal& who) -> asio::awaitable<net::Response> {
                    const std::string_view target = ctx.request.target();
                    const auto limit = PageLimit(target, 50, 500);
                    if (!limit) co_return ErrorResponse(ctx, limit.error());
                    const auto cursor = QueryParam(target, "cursor");
                    auto page = co_await net::RunBlocking(*api->blocking, [&] {
                        return api->billing->Transactions(who.wallet_address, *limit, cursor);
                    });
                    if (!page) co_return ErrorResponse(ctx, page.error());
                    const auto wallet = domain::NormalizeWallet(who.wallet_address);
                    json items = json::array();
                    for (const auto& t : page->transactions)
                        items.push_back(TransactionToJson(t, wallet ? *wallet : std::string()));
                    co_return net::MakeJson(
                        ctx.request, http::status::ok,
                        json{{"transactions", std::move(items)},
                             {"nextCursor", page->next_cursor.empty() ? json(nullptr)
                                                                      : json(page->next_cursor)}});
                }));

    router.Add(http::verb::get, "/api/billing/deposit-info",
               ForUser(api,
                       [api](net::RequestContext& ctx,
                             const app::Principal&) -> asio::awaitable<net::Response> {
                           const auto& d = api->billing->options().deposit;
                           co_return net::MakeJson(ctx.request, http::status::ok,
                                                   json{{"currency", std::string(domain::kUsdc)},
                                                        {"decimals", domain::kUsdcDecimals},
                                                        {"chainId", d.chain_id},
                                                        {"tokenAddress", d.token_address},
                                                        {"depositAddress", d.deposit_address},
                                                        {"confirmations", d.confirmations}});
                       }));

    router.Add(http::verb::get, "/api/billing/earnings",
               ForUser(api,
                       [api](net::RequestContext& ctx,
                             const app::Principal& who) -> asio::awaitable<net::Response> {
                           if (api->chain_accounts == nullptr)
                               co_return ErrorResponse(ctx,
                                                       Error::Unavailable("payouts are not wired"));
                           auto view = co_await net::RunBlocking(*api->blocking, [&] {
                               return api->chain_accounts->Earnings(who.wallet_address);
                           });
                           if (!view) co_return ErrorResponse(ctx, view.error());
                           co_return net::MakeJson(
                               ctx.request, http::status::ok,
                               json{{"currency", std::string(domain::kUsdc)},
                                    {"nodeEarnings", domain::FormatAmount(view->node_earnings)},
                                    {"relayEarnings", domain::FormatAmount(view->relay_earnings)},
                                    {"inFlight", domain::FormatAmount(view->in_flight)},
                                    {"paid", domain::FormatAmount(view->paid)}});
                       }));

    router.Add(http::verb::get, "/api/billing/payouts",
               ForUser(api,
                       [api](net::RequestContext& ctx,
                             const app::Principal& who) -> asio::awaitable<net::Response> {
                           if (api->chain_accounts == nullptr)
                               co_return ErrorResponse(ctx,
                                                       Error::Unavailable("payouts are not wired"));
                           const auto limit = PageLimit(ctx.request.target(), 50, 500);
                           if (!limit) co_return ErrorResponse(ctx, limit.error());
                           auto payouts = co_await net::RunBlocking(*api->blocking, [&] {
                               return api->chain_accounts->Payouts(who.wallet_address, *limit);
                           });
                           if (!payouts) co_return ErrorResponse(ctx, payouts.error());
                           json items = json::array();
                           for (const auto& p : *payouts) items.push_back(PayoutToJson(p));
                           co_return net::MakeJson(ctx.request, http::status::ok,
                                                   json{{"payouts", std::move(items)}});
                       }));

    router.Add(
        http::verb::get, "/api/admin/billing/invariants",
        ForUser(api,
                [api](net::RequestContext& ctx,
                      const app::Principal& who) -> asio::awaitable<net::Response> {
                    if (!who.admin)
                        co_return ErrorResponse(
                            ctx, Error::PermissionDenied(
                                     "this operation needs an admin wallet (auth.admin_wallets)"));
                    auto report = co_await net::RunBlocking(
                        *api->blocking, [&] { return api->billing->Invariants(); });
                    if (!report) co_return ErrorResponse(ctx, report.error());
                    co_return net::MakeJson(ctx.request, http::status::ok,
                                            json{{"ok", report->ok()},
                                                 {"transactions", report->transactions},
                                                 {"entries", report->entries},
                                                 {"violations", report->violations}});
                }));
}

}  // namespace decloud::orchestrator::api
