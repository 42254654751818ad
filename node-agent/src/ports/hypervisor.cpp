#include "agent/ports/hypervisor.hpp"

namespace decloud::agent::ports {

std::string_view ToString(DomainState state) {
    switch (state) {
        case DomainState::kRunning:
            return "running";
        case DomainState::kStopped:
            return "stopped";
        case DomainState::kPaused:
            return "paused";
        case DomainState::kCrashed:
            return "crashed";
        case DomainState::kOther:
            return "other";
    }
    return "other";
}

}  // namespace decloud::agent::ports
