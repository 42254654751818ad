#include "agent/adapters/nftables/nft_port_forwarder.hpp"

#include <nftables/libnftables.h>

#include <fstream>
#include <memory>
#include <stdexcept>

#include "agent/adapters/wireguard/netns.hpp"
#include "agent/domain/relay/wireguard.hpp"

namespace decloud::agent::adapters {

using common::Error;
using common::Result;
using common::Status;
namespace relay = domain::relay;

namespace {

// libnftables keeps some process-wide state (symbol tables, the parser's scanner); one call at a
// time.
std::mutex& LibnftablesMutex() {
    static std::mutex mu;
    return mu;
}

std::string Trim(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    if (s.size() > 2000) s = s.substr(0, 2000) + "...";
    return s;
}

Status EnableIpForwarding(const std::string& netns) {
    bool ok = false;
    auto entered = RunInNetns(netns, [&] {
        // /proc/sys/net is per network namespace, resolved for the thread that opens it.
        std::ofstream out("/proc/sys/net/ipv4/ip_forward");
        out << "1\n";
        out.flush();
        ok = static_cast<bool>(out);
    });
    if (!entered) return entered.error();
    if (!ok) return Error::Unavailable("cannot enable net.ipv4.ip_forward");
    return common::Ok();
}

}  // namespace

void NftPortForwarder::CtxFree::operator()(nft_ctx* ctx) const noexcept { nft_ctx_free(ctx); }

// One nft_run_cmd_from_buffer in the namespace: all commands of the buffer form one transaction.
// The context (and its netlink socket) lives as long as this object: closing an nftables socket
// right after a deletion waits for the kernel to release the deleted elements (an RCU grace
// period, 5-20 ms), which would dominate the cost of removing one mapping. It is made and used
// on threads inside the namespace, so its socket is there wherever libnftables opens it.
Result<NftPortForwarder::NftOutcome> NftPortForwarder::RunNftLocked(const std::string& commands,
                                                                    bool json) {
    NftOutcome outcome;
    std::lock_guard lock(LibnftablesMutex());
    auto entered = RunInNetns(options_.netns, [&] {
        if (!ctx_) ctx_.reset(nft_ctx_new(NFT_CTX_DEFAULT));
        if (!ctx_) return;
        nft_ctx_output_set_flags(ctx_.get(), json ? NFT_CTX_OUTPUT_JSON : 0);
        // Fresh buffers, so nothing of an earlier call is mistaken for this one's output.
        nft_ctx_unbuffer_output(ctx_.get());
        nft_ctx_unbuffer_error(ctx_.get());
        nft_ctx_buffer_output(ctx_.get());
        nft_ctx_buffer_error(ctx_.get());
        outcome.rc = nft_run_cmd_from_buffer(ctx_.get(), commands.c_str());
        if (const char* out = nft_ctx_get_output_buffer(ctx_.get())) outcome.output = out;
        if (const char* err = nft_ctx_get_error_buffer(ctx_.get())) outcome.error = err;
    });
    if (!entered) return entered.error();
    if (!ctx_) return Error::Unavailable("libnftables could not create a context");
    // After a failure start over with a new context (and socket), in case the old one is what
    // went wrong.
    if (outcome.rc != 0) ctx_.reset();
    return outcome;
}

NftPortForwarder::~NftPortForwarder() {
    std::lock_guard lock(LibnftablesMutex());
    ctx_.reset();
}

NftPortForwarder::NftPortForwarder(NftPortForwarderOptions options) : options_(std::move(options)) {
    if (!relay::IsValidNftName(options_.table))
        throw std::invalid_argument("invalid nftables table name '" + options_.table + "'");
}

std::uint64_t NftPortForwarder::Transactions() {
    std::lock_guard lock(mu_);
    return transactions_;
}

Result<relay::NftTableState> NftPortForwarder::ReadTableLocked() {
    auto outcome = RunNftLocked("list table inet " + options_.table, true);
    if (!outcome) return outcome.error();
    if (outcome->rc != 0) {
        if (outcome->error.find("No such file or directory") != std::string::npos)
            return relay::NftTableState{};
        return Error::Unavailable("nft list table inet " + options_.table + ": " +
                                  Trim(outcome->error));
    }
    return relay::ParseNftTableJson(outcome->output);
}

Status NftPortForwarder::RunLocked(const std::string& commands) {
    auto outcome = RunNftLocked(commands, false);
    if (!outcome) return outcome.error();
    if (outcome->rc != 0)
        return Error::Unavailable("nft transaction failed: " + Trim(outcome->error));
    ++transactions_;
    return common::Ok();
}

template <class DiffFor>
Status NftPortForwarder::ChangeLocked(const std::string& interface, DiffFor diff_for) {
    if (options_.enable_ip_forwarding && !forwarding_enabled_) {
        if (auto enabled = EnableIpForwarding(options_.netns); !enabled) return enabled;
        forwarding_enabled_ = true;
    }
    for (int attempt = 0;; ++attempt) {
        const bool fresh = !cache_.has_value();
        if (fresh) {
            auto state = ReadTableLocked();
            if (!state) return state.error();
            skeleton_ok_ = relay::SkeletonIntact(*state);
            cache_ = std::move(*state);
        }
        Result<relay::MappingDiff> diff = diff_for(*cache_);
        if (!diff) return diff.error();
        std::string commands;
        if (!skeleton_ok_) commands += relay::RenderSkeleton(options_.table);
        commands += relay::RenderDiff(options_.table, interface, *diff);
        if (commands.empty()) return common::Ok();
        auto ran = RunLocked(commands);
        if (ran) {
            skeleton_ok_ = true;
            relay::ApplyDiff(*cache_, interface, *diff);
            return common::Ok();
        }
        // What we knew was stale (someone changed the table): read it and try once more.
        cache_.reset();
        skeleton_ok_ = false;
        if (fresh || attempt > 0) return ran;
    }
}

Status NftPortForwarder::SetMappings(const std::string& interface,
                                     const std::vector<ports::PortMapping>& mappings,
                                     relay::HeldElsewhere held_elsewhere, bool read_first) {
    if (!relay::IsValidInterfaceName(interface))
        return Error::InvalidArgument("invalid interface name '" + interface + "'");
    if (auto valid = relay::ValidateMappings(mappings); !valid) return valid;
    std::lock_guard lock(mu_);
    if (read_first) cache_.reset();
    return ChangeLocked(interface, [&](const relay::NftTableState& state) {
        return relay::DiffMappings(interface, mappings, state, held_elsewhere);
    });
}

Status NftPortForwarder::Apply(const std::string& interface,
                               const std::vector<ports::PortMapping>& mappings) {
    return SetMappings(interface, mappings, relay::HeldElsewhere::kConflict, false);
}

Status NftPortForwarder::Claim(const std::string& interface,
                               const std::vector<ports::PortMapping>& mappings) {
    return SetMappings(interface, mappings, relay::HeldElsewhere::kTakeOver, false);
}

Status NftPortForwarder::Reconcile(const std::string& interface,
                                   const std::vector<ports::PortMapping>& mappings) {
    return SetMappings(interface, mappings, relay::HeldElsewhere::kConflict, true);
}

Result<std::vector<ports::PortMapping>> NftPortForwarder::Read(const std::string& interface) {
    std::lock_guard lock(mu_);
    auto state = ReadTableLocked();
    if (!state) return state.error();
    skeleton_ok_ = relay::SkeletonIntact(*state);
    cache_ = *state;
    const auto it = state->mappings.find(interface);
    if (it == state->mappings.end()) return std::vector<ports::PortMapping>{};
    return it->second;
}

Status NftPortForwarder::Remove(const std::string& interface) {
    if (!relay::IsValidInterfaceName(interface))
        return Error::InvalidArgument("invalid interface name '" + interface + "'");
    std::lock_guard lock(mu_);
    if (cache_ && !cache_->exists) return common::Ok();
    return ChangeLocked(interface, [&](const relay::NftTableState& state) {
        return Result<relay::MappingDiff>(relay::RemovalDiff(interface, state));
    });
}

Status NftPortForwarder::RemoveAll() {
    std::lock_guard lock(mu_);
    // "add" first makes the delete succeed when the table is already gone; still one transaction.
    const std::string t = "inet " + options_.table;
    auto ran = RunLocked("add table " + t + "\ndelete table " + t + "\n");
    cache_.reset();
    skeleton_ok_ = false;
    if (ran) cache_ = relay::NftTableState{};
    return ran;
}

}  // namespace decloud::agent::adapters
