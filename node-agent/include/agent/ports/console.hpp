#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "decloud/common/result.hpp"

namespace decloud::agent::ports {

// Where an open console delivers what the guest writes. Called on the adapter's own thread,
// one call at a time, in order; must not block (hand the bytes on and return). After on_end
// neither is called again.
struct ConsoleSink {
    std::function<void(std::string bytes)> on_data;
    std::function<void(std::string reason)> on_end;  // the hypervisor ended the stream
};

// One open serial console of a domain. Thread-safe.
class ConsoleStream {
  public:
    virtual ~ConsoleStream() = default;
    // Sends bytes to the guest's serial port; kUnavailable once the stream has ended.
    virtual common::Status Write(std::string_view bytes) = 0;
    // Ends the stream (idempotent); the sink is not called any more once it returns.
    virtual void Close() = 0;
};

// The hypervisor's serial consoles, a port beside Hypervisor. Blocking; thread-safe.
class Consoles {
  public:
    virtual ~Consoles() = default;
    // Opens the serial console of the VM's domain, taking it over from any other reader.
    // kNotFound: no such domain; kConflict: the domain is not running.
    virtual common::Result<std::unique_ptr<ConsoleStream>> Open(const std::string& vm_id,
                                                                ConsoleSink sink) = 0;
};

}  // namespace decloud::agent::ports
