#pragma once

// What both libvirt adapters (LibvirtHypervisor, LibvirtConsoles) need around libvirt's C API.

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <pthread.h>
#include <signal.h>

#include <mutex>
#include <stdexcept>

namespace decloud::agent::adapters::libvirt {

// libvirt prints every error on stderr by default; ours are returned and logged instead.
inline void SilentErrorHandler(void* /*user_data*/, virErrorPtr /*error*/) {}

inline void InitializeLibvirt() {
    static std::once_flag once;
    std::call_once(once, [] {
        if (virInitialize() < 0) throw std::runtime_error("libvirt failed to initialise");
        virSetErrorFunc(nullptr, SilentErrorHandler);
    });
}

// libvirt writes to its socket with write(): once libvirtd has gone, that raises SIGPIPE, whose
// default action would end the agent. Rather than change the process-wide disposition, the
// calling thread blocks SIGPIPE around libvirt calls and discards one raised meanwhile.
class ScopedSigpipeBlock {
  public:
    ScopedSigpipeBlock() {
        sigemptyset(&pipe_);
        sigaddset(&pipe_, SIGPIPE);
        sigset_t pending;
        sigemptyset(&pending);
        was_pending_ = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;
        pthread_sigmask(SIG_BLOCK, &pipe_, &previous_);
    }
    ~ScopedSigpipeBlock() {
        if (!was_pending_) {
            sigset_t pending;
            sigemptyset(&pending);
            if (sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1) {
                const timespec no_wait{0, 0};
                while (sigtimedwait(&pipe_, nullptr, &no_wait) == SIGPIPE) {
                }
            }
        }
        pthread_sigmask(SIG_SETMASK, &previous_, nullptr);
    }
    ScopedSigpipeBlock(const ScopedSigpipeBlock&) = delete;
    ScopedSigpipeBlock& operator=(const ScopedSigpipeBlock&) = delete;

  private:
    sigset_t pipe_{};
    sigset_t previous_{};
    bool was_pending_ = false;
};

}  // namespace decloud::agent::adapters::libvirt
