#pragma once

#include <memory>
#include <string>

#include "agent/ports/console.hpp"

namespace decloud::agent::adapters {

class LibvirtEventLoop;

// ports::Consoles on libvirt: virDomainOpenConsole (with VIR_DOMAIN_CONSOLE_FORCE, so a new
// session takes the console over from an older one) into a non-blocking virStream, read from
// libvirt's default event loop, which runs on one thread of this process while any
// LibvirtConsoles exists (the loop is registered once per process, before the first connection
// it serves). Each open console has a connection of its own, so a console never waits for a
// slow hypervisor call. Thread-safe.
class LibvirtConsoles final : public ports::Consoles {
  public:
    explicit LibvirtConsoles(std::string uri);
    ~LibvirtConsoles() override;
    LibvirtConsoles(const LibvirtConsoles&) = delete;
    LibvirtConsoles& operator=(const LibvirtConsoles&) = delete;

    // ports::Consoles
    common::Result<std::unique_ptr<ports::ConsoleStream>> Open(const std::string& vm_id,
                                                               ports::ConsoleSink sink) override;

  private:
    std::string uri_;
    std::shared_ptr<LibvirtEventLoop> loop_;
};

}  // namespace decloud::agent::adapters
