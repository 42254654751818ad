#include "agent/app/console_sessions.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

namespace decloud::agent::app {

namespace asio = boost::asio;
using proto::ConsoleMessage;
using proto::ConsoleMessageType;

struct ConsoleSessions::Session {
    std::string id;
    std::string vm_id;
    Send send;
    // Touched on the console thread only (io_), which runs one task at a time in order.
    std::unique_ptr<ports::ConsoleStream> stream;
    // Guarded by the owner's mutex.
    bool ended = false;
    std::string pending;
    std::uint64_t dropped = 0;
    bool flush_scheduled = false;
};

ConsoleSessions::ConsoleSessions(asio::any_io_executor executor, ports::Consoles& consoles,
                                 ConsoleSessionOptions options)
    : executor_(std::move(executor)), consoles_(consoles), options_(options) {}

ConsoleSessions::~ConsoleSessions() { Stop(); }

void ConsoleSessions::Stop() {
    {
        std::lock_guard lock(mutex_);
        if (stopped_) return;
        stopped_ = true;
    }
    CloseAll();
    io_.join();
}

std::size_t ConsoleSessions::OpenSessions() const {
    std::lock_guard lock(mutex_);
    return sessions_.size();
}

void ConsoleSessions::CloseAll() {
    std::lock_guard lock(mutex_);
    while (!sessions_.empty()) {
        auto session = sessions_.begin()->second;
        EndLocked(session, "the command channel closed", false);
    }
}

void ConsoleSessions::Handle(ConsoleMessage message, Send send) {
    switch (message.type) {
        case ConsoleMessageType::kOpen:
            Open(message, std::move(send));
            return;
        case ConsoleMessageType::kInput: {
            std::lock_guard lock(mutex_);
            auto it = sessions_.find(message.session);
            if (it == sessions_.end()) return;  // ended meanwhile; the orchestrator was told
            asio::post(io_, [this, session = it->second, data = std::move(message.data)] {
                if (!session->stream) return;  // not open yet, or failed to open
                if (auto st = session->stream->Write(data); !st) {
                    std::lock_guard relock(mutex_);
                    if (!session->ended) EndLocked(session, st.error().message, true);
                }
            });
            return;
        }
        case ConsoleMessageType::kClose: {
            std::lock_guard lock(mutex_);
            auto it = sessions_.find(message.session);
            if (it != sessions_.end()) EndLocked(it->second, message.reason, false);
            return;
        }
        case ConsoleMessageType::kOpened:
        case ConsoleMessageType::kOutput:
        case ConsoleMessageType::kClosed:
            spdlog::warn("console: ignoring {} from the orchestrator", ToString(message.type));
            return;
    }
}

void ConsoleSessions::Open(const ConsoleMessage& message, Send send) {
    auto closed = [&](std::string reason) {
        ConsoleMessage reply;
        reply.type = ConsoleMessageType::kClosed;
        reply.session = message.session;
        reply.reason = std::move(reason);
        send(proto::ToJson(reply).dump());
    };
    auto session = std::make_shared<Session>();
    session->id = message.session;
    session->vm_id = message.vm_id;
    session->send = send;
    {
        std::lock_guard lock(mutex_);
        if (stopped_) return closed("the agent is stopping");
        if (sessions_.contains(message.session)) return;  // delivered twice
        if (auto it = by_vm_.find(message.vm_id); it != by_vm_.end()) {
            auto older = sessions_.at(it->second);
            EndLocked(older, "taken over by a newer console session of this VM", true);
        }
        if (sessions_.size() >= options_.max_sessions)
            return closed("too many console sessions on this node (at most " +
                          std::to_string(options_.max_sessions) + ")");
        sessions_.emplace(session->id, session);
        by_vm_[session->vm_id] = session->id;
    }
    std::weak_ptr<ConsoleSessions> weak_self = weak_from_this();
    asio::post(io_, [this, weak_self, session] {
        std::weak_ptr<Session> weak = session;
        ports::ConsoleSink sink;
        sink.on_data = [weak_self, weak](std::string bytes) {
            auto self = weak_self.lock();
            auto s = weak.lock();
            if (self && s) self->OnData(s, std::move(bytes));
        };
        sink.on_end = [weak_self, weak](std::string reason) {
            auto self = weak_self.lock();
            auto s = weak.lock();
            if (!self || !s) return;
            std::lock_guard lock(self->mutex_);
            if (!s->ended) self->EndLocked(s, reason, true);
        };
        {
            std::lock_guard lock(mutex_);
            if (session->ended) return;  // closed before it opened
        }
        auto stream = consoles_.Open(session->vm_id, std::move(sink));
        std::lock_guard lock(mutex_);
        if (!stream) {
            if (!session->ended) EndLocked(session, stream.error().message, true);
            return;
        }
        session->stream = std::move(*stream);
        // Closed while opening: the teardown EndLocked queued runs after this task and frees it.
        if (session->ended) return;
        ConsoleMessage opened;
        opened.type = ConsoleMessageType::kOpened;
        opened.session = session->id;
        session->send(proto::ToJson(opened).dump());
        spdlog::info("console session {} open on VM {}", session->id, session->vm_id);
    });
}

void ConsoleSessions::OnData(const std::shared_ptr<Session>& session, std::string bytes) {
    std::lock_guard lock(mutex_);
    if (session->ended) return;
    session->pending += bytes;
    if (session->pending.size() > options_.buffer_bytes) {
        const auto excess = session->pending.size() - options_.buffer_bytes;
        session->pending.erase(0, excess);
        session->dropped += excess;
    }
    if (session->flush_scheduled) return;
    session->flush_scheduled = true;
    auto timer = std::make_shared<asio::steady_timer>(executor_, options_.flush_interval);
    timer->async_wait([this, timer, weak_self = weak_from_this(),
                       weak = std::weak_ptr<Session>(session)](boost::system::error_code) {
        auto self = weak_self.lock();
        auto s = weak.lock();
        if (!self || !s) return;
        std::lock_guard relock(mutex_);
        s->flush_scheduled = false;
        if (!s->ended) FlushLocked(*s);
    });
}

void ConsoleSessions::FlushLocked(Session& session) {
    std::string_view rest = session.pending;
    while (!rest.empty()) {
        const auto n = std::min(rest.size(), proto::kMaxConsoleDataBytes);
        ConsoleMessage output;
        output.type = ConsoleMessageType::kOutput;
        output.session = session.id;
        output.data = std::string(rest.substr(0, n));
        output.dropped = session.dropped;
        session.send(proto::ToJson(output).dump());
        rest.remove_prefix(n);
    }
    session.pending.clear();
}

void ConsoleSessions::EndLocked(std::shared_ptr<Session> session, const std::string& reason,
                                bool notify) {
    session->ended = true;
    sessions_.erase(session->id);
    if (auto it = by_vm_.find(session->vm_id); it != by_vm_.end() && it->second == session->id)
        by_vm_.erase(it);
    if (notify) {
        FlushLocked(*session);
        ConsoleMessage closed;
        closed.type = ConsoleMessageType::kClosed;
        closed.session = session->id;
        closed.reason = reason;
        session->send(proto::ToJson(closed).dump());
    }
    spdlog::info("console session {} on VM {} ended: {}", session->id, session->vm_id, reason);
    // The stream's teardown calls libvirt (blocking), and may wait for its event callback,
    // which takes mutex_: never under it, always on the console thread.
    asio::post(io_, [session] {
        if (session->stream) session->stream->Close();
        session->stream.reset();
    });
}

}  // namespace decloud::agent::app
