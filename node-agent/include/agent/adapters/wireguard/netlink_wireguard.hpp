#pragma once

#include <mutex>
#include <string>
#include <vector>

#include "agent/ports/wireguard_control.hpp"
#include "decloud/common/result.hpp"

namespace decloud::agent::adapters {

struct NetlinkWireGuardOptions {
    std::string netns;  // `ip netns` name of the interfaces; "" = the agent's own namespace
};

// ports::WireGuardControl on the kernel's WireGuard: links of kind "wireguard" created and
// configured over netlink (rtnetlink for the link and its addresses, generic netlink family
// "wireguard" for keys and peers: WG_CMD_GET_DEVICE / WG_CMD_SET_DEVICE). The same planning as
// UapiWireGuard (domain::relay::PlanUapiSet), so both back ends reconcile alike; no process to
// own, and the interface survives agent restarts by nature. One SET_DEVICE message carries the
// whole change (no splitting, so some hundreds of peers at most). A link with that name of
// another kind is kConflict. Thread-safe (operations are serialised).
class NetlinkWireGuard final : public ports::WireGuardControl {
  public:
    explicit NetlinkWireGuard(NetlinkWireGuardOptions options = {});

    // Ok if WireGuard links can be created in `netns` (tries one and deletes it); kUnavailable
    // with the kernel's reason otherwise (no module: "Unknown device type").
    static common::Status Probe(const std::string& netns);

    // ports::WireGuardControl
    common::Status Ensure(const ports::WireGuardConfig& config) override;
    common::Status Remove(const std::string& interface) override;
    common::Result<ports::WireGuardState> Read(const std::string& interface) override;
    common::Result<std::vector<std::string>> List() override;

  private:
    NetlinkWireGuardOptions options_;
    std::mutex mu_;
};

}  // namespace decloud::agent::adapters
