#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "agent/domain/relay/port_forwarding.hpp"
#include "agent/ports/port_forwarder.hpp"
#include "decloud/common/result.hpp"

struct nft_ctx;  // libnftables

namespace decloud::agent::adapters {

struct NftPortForwarderOptions {
    std::string table = "decloud_relay";  // the agent's table, family inet
    std::string netns;                    // `ip netns` name; "" = the agent's own namespace
    // Sets net.ipv4.ip_forward=1 in that namespace before the first change (forwarding through
    // the tunnel needs it).
    bool enable_ip_forwarding = true;
};

// ports::PortForwarder on nftables through libnftables (no `nft` process): the table described
// in domain/relay/port_forwarding.hpp, one element per mapping in one map.
//
// One libnftables context (and netlink socket) per object, kept open.
// Every call that changes something is exactly one nft transaction (one buffer given to
// nft_run_cmd_from_buffer: atomic, one ruleset generation). Apply diffs against the state this
// object last applied, so adding or removing one mapping costs one small transaction whatever
// the number of mappings; the table is read (JSON listing, O(mappings)) only on the first call,
// by Reconcile and Read, and after a failed transaction, after which the change is retried once
// against what was read. Reading also checks the chains and rewrites them (flush + add, in the
// same transaction as the element changes) if they are not what they should be.
// Thread-safe: calls are serialised, and libnftables use is serialised process-wide.
class NftPortForwarder final : public ports::PortForwarder {
  public:
    // Throws std::invalid_argument for a table name nft would not accept unquoted.
    explicit NftPortForwarder(NftPortForwarderOptions options = {});
    ~NftPortForwarder() override;
    NftPortForwarder(const NftPortForwarder&) = delete;
    NftPortForwarder& operator=(const NftPortForwarder&) = delete;

    // ports::PortForwarder
    common::Status Apply(const std::string& interface,
                         const std::vector<ports::PortMapping>& mappings) override;
    common::Status Claim(const std::string& interface,
                         const std::vector<ports::PortMapping>& mappings) override;
    common::Status Reconcile(const std::string& interface,
                             const std::vector<ports::PortMapping>& mappings) override;
    common::Result<std::vector<ports::PortMapping>> Read(const std::string& interface) override;
    common::Status Remove(const std::string& interface) override;
    common::Status RemoveAll() override;

    // Successful transactions this object committed (for tests and metrics).
    std::uint64_t Transactions();

  private:
    struct CtxFree {
        void operator()(nft_ctx* ctx) const noexcept;
    };
    struct NftOutcome {
        int rc = -1;
        std::string output;
        std::string error;
    };
    common::Result<NftOutcome> RunNftLocked(const std::string& commands, bool json);
    common::Result<domain::relay::NftTableState> ReadTableLocked();
    common::Status RunLocked(const std::string& commands);
    // Apply, Claim and Reconcile: validates, then ChangeLocked with DiffMappings (after reading
    // the table again when `read_first`).
    common::Status SetMappings(const std::string& interface,
                               const std::vector<ports::PortMapping>& mappings,
                               domain::relay::HeldElsewhere held_elsewhere, bool read_first);
    // Computes and applies a diff against the cached state; `diff_for` is DiffMappings or
    // RemovalDiff bound to the interface.
    template <class DiffFor>
    common::Status ChangeLocked(const std::string& interface, DiffFor diff_for);

    NftPortForwarderOptions options_;
    std::mutex mu_;
    std::optional<domain::relay::NftTableState> cache_;  // what the kernel holds, as we know it
    bool skeleton_ok_ = false;
    bool forwarding_enabled_ = false;
    std::uint64_t transactions_ = 0;
    std::unique_ptr<nft_ctx, CtxFree> ctx_;  // kept: see RunNftLocked
};

}  // namespace decloud::agent::adapters
