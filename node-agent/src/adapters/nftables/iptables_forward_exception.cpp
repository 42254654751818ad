#include "agent/adapters/nftables/iptables_forward_exception.hpp"

#include <spdlog/spdlog.h>

#include "agent/adapters/wireguard/netns.hpp"
#include "agent/domain/relay/forward_exception.hpp"
#include "decloud/process/run_program.hpp"

namespace decloud::agent::adapters {

namespace relay = domain::relay;

IptablesForwardException::IptablesForwardException(IptablesForwardExceptionOptions options)
    : options_(std::move(options)) {}

common::Status IptablesForwardException::Ensure(bool wanted) {
    const std::lock_guard lock(mu_);
    const auto now = std::chrono::steady_clock::now();
    if (settled_ == wanted && now - checked_at_ < options_.recheck) return common::Ok();
    common::Status outcome = common::Ok();
    auto ran = RunInNetns(options_.netns, [&] { outcome = Converge(wanted); });
    if (!ran) return ran;
    if (!outcome) return outcome;
    settled_ = wanted;
    checked_at_ = now;
    return common::Ok();
}

common::Status IptablesForwardException::Converge(bool wanted) {
    // -w: wait for the xtables lock libvirt may hold.
    auto listing = process::RunProgramChecked({options_.iptables, "-w", "-S", "FORWARD"},
                                              options_.program_timeout);
    if (!listing) return listing.error();
    const auto step = relay::DecideForwardException(listing->out, wanted);
    const auto run = [&](std::vector<std::string> argv) -> common::Status {
        const auto rule = relay::ForwardExceptionRule();
        argv.insert(argv.end(), rule.begin(), rule.end());
        auto done = process::RunProgramChecked(argv, options_.program_timeout);
        if (!done) return done.error();
        return common::Ok();
    };
    switch (step) {
        case relay::ForwardExceptionStep::kNone:
            return common::Ok();
        case relay::ForwardExceptionStep::kRemove:
            spdlog::info("no CGNAT tunnel left: removing the FORWARD exception for tunnel DNAT");
            return run({options_.iptables, "-w", "-D", "FORWARD"});
        case relay::ForwardExceptionStep::kMoveToTop:
            if (auto st = run({options_.iptables, "-w", "-D", "FORWARD"}); !st) return st;
            [[fallthrough]];
        case relay::ForwardExceptionStep::kInsert:
            spdlog::info(
                "accepting DNATed connections from CGNAT tunnels ahead of libvirt's "
                "FORWARD rules");
            return run({options_.iptables, "-w", "-I", "FORWARD", "1"});
    }
    return common::Ok();
}

}  // namespace decloud::agent::adapters
