#include "agent/domain/relay/forward_exception.hpp"

#include <optional>
#include <string>

namespace decloud::agent::domain::relay {

std::vector<std::string> ForwardExceptionRule() {
    return {"-i",   "dcc+",  "-m",      "conntrack", "--ctstate",
            "DNAT", "-m",    "comment", "--comment", std::string(kForwardExceptionComment),
            "-j",   "ACCEPT"};
}

ForwardExceptionStep DecideForwardException(std::string_view forward_listing, bool wanted) {
    const std::string our_comment = "--comment " + std::string(kForwardExceptionComment);
    std::optional<std::size_t> ours;
    std::optional<std::size_t> first_libvirt_jump;
    std::size_t index = 0;
    while (!forward_listing.empty()) {
        const auto end = forward_listing.find('\n');
        const auto line = forward_listing.substr(0, end);
        forward_listing.remove_prefix(end == std::string_view::npos ? forward_listing.size()
                                                                    : end + 1);
        if (!line.starts_with("-A FORWARD ")) continue;
        if (line.find(our_comment) != std::string_view::npos) {
            if (!ours) ours = index;
        } else if (line.find(" -j LIBVIRT_") != std::string_view::npos) {
            if (!first_libvirt_jump) first_libvirt_jump = index;
        }
        ++index;
    }
    if (!wanted) return ours ? ForwardExceptionStep::kRemove : ForwardExceptionStep::kNone;
    if (!ours) return ForwardExceptionStep::kInsert;
    if (first_libvirt_jump && *first_libvirt_jump < *ours) return ForwardExceptionStep::kMoveToTop;
    return ForwardExceptionStep::kNone;
}

}  // namespace decloud::agent::domain::relay
