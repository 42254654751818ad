#include "agent/adapters/libvirt/libvirt_console.hpp"

#include <spdlog/spdlog.h>

#include <array>
#include <atomic>
#include <mutex>
#include <thread>
#include <utility>

#include "agent/adapters/libvirt/domain_xml.hpp"
#include "agent/adapters/libvirt/libvirt_hypervisor.hpp"
#include "libvirt_support.hpp"

namespace decloud::agent::adapters {

using common::Error;
using common::Result;
using libvirt::ScopedSigpipeBlock;

// libvirt's default event loop on a thread of its own. One per process at a time (Acquire);
// stopped and joined when the last LibvirtConsoles lets go of it.
class LibvirtEventLoop {
  public:
    static std::shared_ptr<LibvirtEventLoop> Acquire() {
        static std::mutex mutex;
        static std::weak_ptr<LibvirtEventLoop> current;
        const std::lock_guard lock(mutex);
        if (auto loop = current.lock()) return loop;
        auto loop = std::shared_ptr<LibvirtEventLoop>(new LibvirtEventLoop());
        current = loop;
        return loop;
    }

    ~LibvirtEventLoop() {
        stopping_ = true;
        // A timeout that fires at once wakes virEventRunDefaultImpl, which then sees stopping_.
        const int timer = virEventAddTimeout(
            0, [](int id, void*) { virEventRemoveTimeout(id); }, nullptr, nullptr);
        if (timer < 0) spdlog::error("cannot wake libvirt's event loop to stop it");
        if (thread_.joinable()) thread_.join();
    }
    LibvirtEventLoop(const LibvirtEventLoop&) = delete;
    LibvirtEventLoop& operator=(const LibvirtEventLoop&) = delete;

  private:
    LibvirtEventLoop() {
        libvirt::InitializeLibvirt();
        static std::once_flag registered;
        std::call_once(registered, [] {
            if (virEventRegisterDefaultImpl() < 0)
                throw std::runtime_error("cannot register libvirt's event loop");
        });
        thread_ = std::thread([this] {
            // Our thread: SIGPIPE from a vanished libvirtd must never reach it.
            sigset_t pipe;
            sigemptyset(&pipe);
            sigaddset(&pipe, SIGPIPE);
            pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
            while (!stopping_) {
                if (virEventRunDefaultImpl() < 0) {
                    spdlog::error("libvirt event loop: {}", virGetLastErrorMessage());
                    std::this_thread::sleep_for(std::chrono::milliseconds{100});
                }
            }
        });
    }

    std::atomic<bool> stopping_{false};
    std::thread thread_;
};

namespace {

// What the stream's event callback shares with the LibvirtConsoleStream: the callback runs on
// the event loop thread and reaches it through a reference of its own (CallbackRef).
struct StreamState {
    std::mutex mutex;
    virStreamPtr stream = nullptr;  // owned by LibvirtConsoleStream
    ports::ConsoleSink sink;
    bool ended = false;  // guarded by mutex; no sink call after it is set
};

// The event callback's opaque: its own reference to the state. Freed by us, not through
// libvirt's free callback (libvirt 9.0 dropped it without calling that when a stream was removed
// and aborted, leaking the state), and only on the event loop thread after the callback was
// removed: a dispatch already under way runs on that thread too, so it has finished by then.
using CallbackRef = std::shared_ptr<StreamState>;

void FreeCallbackRefOnLoop(CallbackRef* ref) {
    const int timer = virEventAddTimeout(
        0,
        [](int id, void* opaque) {
            virEventRemoveTimeout(id);
            delete static_cast<CallbackRef*>(opaque);
        },
        ref, nullptr);
    // Without a timer the reference stays: a few bytes, rather than a callback on freed memory.
    if (timer < 0)
        spdlog::warn("libvirt console: cannot schedule the release of a stream's state: {}",
                     virGetLastErrorMessage());
}

// Stops the stream's events and aborts it; mutex held, not yet ended.
void EndLocked(StreamState& state) {
    state.ended = true;
    virStreamEventRemoveCallback(state.stream);
    virStreamAbort(state.stream);
}

void OnStreamEvent(virStreamPtr stream, int events, void* opaque) {
    auto& state = **static_cast<CallbackRef*>(opaque);
    const std::lock_guard lock(state.mutex);
    if (state.ended) return;
    std::string reason;
    if ((events & VIR_STREAM_EVENT_READABLE) != 0) {
        std::array<char, 16 * 1024> buffer{};
        for (;;) {
            const int n = virStreamRecv(stream, buffer.data(), buffer.size());
            if (n > 0) {
                state.sink.on_data(std::string(buffer.data(), static_cast<std::size_t>(n)));
                continue;
            }
            if (n == 0) reason = "the console was closed by the hypervisor (the VM stopped?)";
            if (n == -1)
                reason = std::string("reading the console failed: ") + virGetLastErrorMessage();
            break;  // n == -2: nothing more for now
        }
    }
    if (reason.empty() && (events & (VIR_STREAM_EVENT_ERROR | VIR_STREAM_EVENT_HANGUP)) != 0)
        reason = "the console stream ended (the VM stopped, or another session took it over)";
    if (reason.empty()) return;
    EndLocked(state);
    state.sink.on_end(std::move(reason));
}

class LibvirtConsoleStream final : public ports::ConsoleStream {
  public:
    LibvirtConsoleStream(ConnectionHandle conn, std::shared_ptr<StreamState> state,
                         CallbackRef* callback_ref, std::shared_ptr<LibvirtEventLoop> loop)
        : conn_(std::move(conn)),
          state_(std::move(state)),
          callback_ref_(callback_ref),
          loop_(std::move(loop)) {}

    ~LibvirtConsoleStream() override {
        Close();  // the callback is removed: no new dispatch starts
        FreeCallbackRefOnLoop(callback_ref_);
        const ScopedSigpipeBlock no_sigpipe;
        virStreamFree(state_->stream);
        conn_.reset();
    }
    LibvirtConsoleStream(const LibvirtConsoleStream&) = delete;
    LibvirtConsoleStream& operator=(const LibvirtConsoleStream&) = delete;

    common::Status Write(std::string_view bytes) override {
        const ScopedSigpipeBlock no_sigpipe;
        const std::lock_guard lock(state_->mutex);
        while (!bytes.empty()) {
            if (state_->ended) return Error::Unavailable("the console session has ended");
            const int n = virStreamSend(state_->stream, bytes.data(), bytes.size());
            if (n == -2) {
                // Non-blocking and full: a console takes a few bytes of typing at a time, so
                // wait briefly rather than queue.
                std::this_thread::sleep_for(std::chrono::milliseconds{5});
                continue;
            }
            if (n < 0)
                return Error::Unavailable(std::string("writing to the console failed: ") +
                                          virGetLastErrorMessage());
            bytes.remove_prefix(static_cast<std::size_t>(n));
        }
        return common::Ok();
    }

    void Close() override {
        const ScopedSigpipeBlock no_sigpipe;
        const std::lock_guard lock(state_->mutex);
        if (!state_->ended) EndLocked(*state_);
    }

  private:
    ConnectionHandle conn_;
    std::shared_ptr<StreamState> state_;
    CallbackRef* callback_ref_;               // the callback's opaque
    std::shared_ptr<LibvirtEventLoop> loop_;  // outlives the stream's callbacks
};

}  // namespace

LibvirtConsoles::LibvirtConsoles(std::string uri)
    : uri_(std::move(uri)), loop_(LibvirtEventLoop::Acquire()) {
    if (uri_.empty()) throw std::invalid_argument("libvirt URI not set");
}

LibvirtConsoles::~LibvirtConsoles() = default;

Result<std::unique_ptr<ports::ConsoleStream>> LibvirtConsoles::Open(const std::string& vm_id,
                                                                    ports::ConsoleSink sink) {
    auto id = libvirt::CanonicalVmId(vm_id);
    if (!id) return id.error();
    const auto name = libvirt::DomainName(*id);
    const ScopedSigpipeBlock no_sigpipe;
    // Opened after the event loop was registered, so this connection's socket is served by it.
    ConnectionHandle conn(virConnectOpen(uri_.c_str()));
    if (!conn)
        return Error::Unavailable("cannot connect to libvirt at " + uri_ + ": " +
                                  virGetLastErrorMessage());
    DomainHandle domain(virDomainLookupByName(conn.get(), name.c_str()));
    if (!domain) {
        const virError* error = virGetLastError();
        const std::string why = virGetLastErrorMessage();
        if (error != nullptr && error->code == VIR_ERR_NO_DOMAIN)
            return Error::NotFound("no domain " + name);
        return Error::Unavailable("looking up domain " + name + ": " + why);
    }
    if (virDomainIsActive(domain.get()) != 1)
        return Error::Conflict("the VM is not running, so its console cannot be opened");
    virStreamPtr stream = virStreamNew(conn.get(), VIR_STREAM_NONBLOCK);
    if (stream == nullptr)
        return Error::Internal(std::string("creating a stream: ") + virGetLastErrorMessage());
    auto state = std::make_shared<StreamState>();
    state->stream = stream;
    state->sink = std::move(sink);
    if (virDomainOpenConsole(domain.get(), nullptr, stream, VIR_DOMAIN_CONSOLE_FORCE) < 0) {
        const virError* error = virGetLastError();
        const bool inactive = error != nullptr && error->code == VIR_ERR_OPERATION_INVALID;
        const std::string why = virGetLastErrorMessage();
        virStreamFree(stream);
        if (inactive)
            return Error::Conflict("the console of " + name + " cannot be opened: " + why);
        return Error::Unavailable("opening the console of " + name + ": " + why);
    }
    auto* opaque = new CallbackRef(state);
    {
        // The callback may fire at once on the loop thread; it waits for this lock.
        const std::lock_guard lock(state->mutex);
        if (virStreamEventAddCallback(
                stream,
                VIR_STREAM_EVENT_READABLE | VIR_STREAM_EVENT_ERROR | VIR_STREAM_EVENT_HANGUP,
                OnStreamEvent, opaque, nullptr) < 0) {
            const std::string why = virGetLastErrorMessage();
            delete opaque;
            virStreamAbort(stream);
            virStreamFree(stream);
            return Error::Internal("watching the console of " + name + ": " + why);
        }
    }
    spdlog::info("opened the console of {}", name);
    return std::unique_ptr<ports::ConsoleStream>(
        std::make_unique<LibvirtConsoleStream>(std::move(conn), std::move(state), opaque, loop_));
}

}  // namespace decloud::agent::adapters
