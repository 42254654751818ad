#include "agent/app/orchestrator_link.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "agent/domain/backoff.hpp"
#include "decloud/net/blocking.hpp"

namespace decloud::agent::app {

namespace asio = boost::asio;
namespace http = boost::beast::http;

OrchestratorLink::OrchestratorLink(asio::any_io_executor executor, LinkOptions options,
                                   crypto::Ed25519KeyPair key, NodeProfile profile,
                                   proto::NodeResources resources, proto::ComputeScore compute,
                                   UsageSource usage, Clock clock)
    : executor_(executor),
      options_(std::move(options)),
      key_(std::move(key)),
      profile_(std::move(profile)),
      resources_(std::move(resources)),
      compute_(std::move(compute)),
      usage_(std::move(usage)),
      clock_(std::move(clock)),
      client_(executor, options_.orchestrator_host, options_.orchestrator_port, options_.http),
      timer_(executor),
      random_(std::random_device{}()),
      channel_timer_(executor) {}

void OrchestratorLink::Stop() {
    stopping_ = true;
    asio::post(executor_, [this] {
        timer_.cancel();
        channel_timer_.cancel();
        if (channel_) channel_->Close("agent stopping");
        client_.Close();
    });
}

LinkStatus OrchestratorLink::Status() const {
    std::lock_guard lock(status_mutex_);
    return status_;
}

void OrchestratorLink::NoteFailure(const std::string& what) {
    std::lock_guard lock(status_mutex_);
    ++status_.failures;
    status_.last_error = what;
}

asio::awaitable<void> OrchestratorLink::Wait(std::chrono::milliseconds delay) {
    if (stopping_) co_return;
    timer_.expires_after(delay);
    // A result queued while we were busy must not wait for the next heartbeat.
    if (wake_pending_.exchange(false)) co_return;
    co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
    wake_pending_ = false;
}

void OrchestratorLink::PostResult(proto::CommandResult result) {
    {
        std::lock_guard lock(status_mutex_);
        outbox_.push_back(std::move(result));
        report_due_ = true;
    }
    wake_pending_ = true;
    asio::post(executor_, [this] { timer_.cancel(); });
}

// By value: the coroutine may outlive the caller's temporaries.
asio::awaitable<OrchestratorLink::Outcome> OrchestratorLink::Post(std::string path,
                                                                  std::string body) {
    net::Request req{http::verb::post, options_.base_path + path, 11};
    req.set(http::field::content_type, "application/json");
    req.set(http::field::authorization, "Bearer " + node_token_);
    req.body() = std::move(body);
    auto resp = co_await client_.Send(std::move(req));
    if (!resp) {
        NoteFailure(path + ": " + resp.error().message);
        co_return Outcome::kRetry;
    }
    const auto status = resp->result_int();
    if (status >= 200 && status < 300) co_return Outcome::kOk;
    NoteFailure(path + ": HTTP " + std::to_string(status) + " " + resp->body());
    spdlog::warn("{} answered HTTP {}: {}", path, status, resp->body());
    // 4xx: the orchestrator will never accept this one (e.g. a command it forgot): drop it.
    co_return status >= 400 && status < 500 && status != 401 && status != 429 ? Outcome::kRejected
                                                                              : Outcome::kRetry;
}

asio::awaitable<OrchestratorLink::Outcome> OrchestratorLink::SendResults() {
    const auto node_id = Status().node_id;
    for (;;) {
        proto::CommandResult next;
        {
            std::lock_guard lock(status_mutex_);
            if (outbox_.empty()) co_return Outcome::kOk;
            next = outbox_.front();
        }
        auto posting = Post("/api/nodes/" + node_id + "/commands/" + next.command_id + "/result",
                            proto::ToJson(next).dump());
        const auto outcome = co_await std::move(posting);
        if (outcome == Outcome::kRetry) co_return outcome;
        std::lock_guard lock(status_mutex_);
        if (!outbox_.empty() && outbox_.front().command_id == next.command_id) outbox_.pop_front();
    }
}

asio::awaitable<OrchestratorLink::Outcome> OrchestratorLink::SendReport() {
    if (!report_source_ || !blocking_) co_return Outcome::kOk;
    auto report = co_await net::RunBlocking(*blocking_, report_source_);
    if (!report) {
        // Without a hypervisor there is nothing true to report; the next try may have one.
        NoteFailure("VM report: " + report.error().message);
        co_return Outcome::kRetry;
    }
    const auto node_id = Status().node_id;
    auto posting = Post("/api/nodes/" + node_id + "/vms/report", proto::ToJson(*report).dump());
    const auto outcome = co_await std::move(posting);
    if (outcome == Outcome::kOk && report_delivered_) report_delivered_(*report);
    co_return outcome;
}

asio::awaitable<OrchestratorLink::Outcome> OrchestratorLink::Register() {
    const auto signed_req = BuildSignedRegistration(key_, profile_, resources_, compute_,
                                                    options_.agent_version, clock_());
    net::Request req{http::verb::post, options_.base_path + "/api/nodes/register", 11};
    req.set(http::field::content_type, "application/json");
    req.set(proto::kSignatureHeader, signed_req.signature);
    req.body() = signed_req.body;
    auto resp = co_await client_.Send(std::move(req));
    if (!resp) {
        NoteFailure("register: " + resp.error().message);
        spdlog::warn("cannot reach the orchestrator to register: {}", resp.error().message);
        co_return Outcome::kRetry;
    }
    const auto status = resp->result_int();
    if (status != 200) {
        NoteFailure("register: HTTP " + std::to_string(status) + " " + resp->body());
        // 4xx other than timing problems will not fix themselves, but the operator may fix
        // the orchestrator side; keep retrying with back-off rather than exit.
        spdlog::error("registration refused (HTTP {}): {}", status, resp->body());
        co_return Outcome::kRetry;
    }
    auto json = proto::ParseJson(resp->body());
    if (!json) co_return Outcome::kRetry;
    auto decoded = proto::DecodeRegisterNodeResponse(*json);
    if (!decoded) {
        NoteFailure("register: bad response: " + decoded.error().message);
        co_return Outcome::kRetry;
    }
    node_token_ = decoded->node_token;
    interval_ =
        std::chrono::seconds{std::max<std::uint32_t>(1, decoded->heartbeat_interval_seconds)};
    {
        std::lock_guard lock(status_mutex_);
        status_.registered = true;
        status_.node_id = decoded->node_id;
        status_.behind_cgnat = decoded->behind_cgnat;
        status_.cgnat_reason = decoded->cgnat_reason;
        status_.last_success = std::chrono::steady_clock::now();
    }
    spdlog::info("registered as node {} (relay needed: {}; {})", decoded->node_id,
                 decoded->requires_relay, decoded->cgnat_reason);
    co_return Outcome::kOk;
}

asio::awaitable<OrchestratorLink::Outcome> OrchestratorLink::Heartbeat() {
    const auto node_id = Status().node_id;
    proto::HeartbeatRequest hb{usage_(), options_.agent_version, std::nullopt};
    if (relay_report_) {
        auto report = net::RunBlocking(*relay_blocking_, [this] { return relay_report_(); });
        hb.relay = co_await std::move(report);
    }
    net::Request req{http::verb::post, options_.base_path + "/api/nodes/" + node_id + "/heartbeat",
                     11};
    req.set(http::field::content_type, "application/json");
    req.set(http::field::authorization, "Bearer " + node_token_);
    req.body() = proto::ToJson(hb).dump();
    auto resp = co_await client_.Send(std::move(req));
    if (!resp) {
        NoteFailure("heartbeat: " + resp.error().message);
        spdlog::warn("heartbeat failed: {}", resp.error().message);
        co_return Outcome::kRetry;
    }
    const auto status = resp->result_int();
    if (status == 401 || status == 404) {
        NoteFailure("heartbeat: HTTP " + std::to_string(status));
        spdlog::warn(
            "orchestrator does not recognise this node any more (HTTP {}); registering again",
            status);
        std::lock_guard lock(status_mutex_);
        status_.registered = false;
        co_return Outcome::kRejected;
    }
    if (status != 200) {
        NoteFailure("heartbeat: HTTP " + std::to_string(status));
        spdlog::warn("heartbeat answered HTTP {}: {}", status, resp->body());
        co_return Outcome::kRetry;
    }
    auto json = proto::ParseJson(resp->body());
    if (json) {
        if (auto decoded = proto::DecodeHeartbeatResponse(*json)) {
            interval_ =
                std::chrono::seconds{std::max<std::uint32_t>(1, decoded->next_heartbeat_seconds)};
            if (decoded->relay && relay_apply_) {
                // By reference: RunBlocking's closure must hold nothing to destroy (it is
                // destroyed twice over by co_spawn); `desired` lives in this frame meanwhile.
                const proto::RelayDesiredState& desired = *decoded->relay;
                auto apply =
                    net::RunBlocking(*relay_blocking_, [this, &desired] { relay_apply_(desired); });
                co_await std::move(apply);
            }
            if (!decoded->commands.empty()) {
                if (command_handler_) {
                    command_handler_(std::move(decoded->commands));
                } else {
                    for (const auto& cmd : decoded->commands)
                        spdlog::warn("command {} ({}) ignored: this agent manages no VMs", cmd.id,
                                     cmd.type);
                }
            }
        }
    }
    std::lock_guard lock(status_mutex_);
    ++status_.heartbeats_sent;
    status_.last_success = std::chrono::steady_clock::now();
    co_return Outcome::kOk;
}

asio::awaitable<void> OrchestratorLink::Run() {
    domain::Backoff backoff(options_.initial_backoff, options_.max_backoff, 2.0);
    bool registered = false;
    while (!stopping_) {
        bool failed = false;
        try {
            if (!registered) {
                const auto outcome = co_await Register();
                if (outcome != Outcome::kOk) {
                    co_await Wait(std::chrono::duration_cast<std::chrono::milliseconds>(
                        backoff.Next(random_())));
                    continue;
                }
                registered = true;
                backoff.Reset();
            }
            const auto outcome = co_await Heartbeat();
            if (outcome == Outcome::kRejected) {
                registered = false;
                continue;
            }
            if (outcome == Outcome::kRetry) {
                co_await Wait(
                    std::chrono::duration_cast<std::chrono::milliseconds>(backoff.Next(random_())));
                continue;
            }
            backoff.Reset();
            if (co_await SendResults() == Outcome::kRetry) {
                co_await Wait(
                    std::chrono::duration_cast<std::chrono::milliseconds>(backoff.Next(random_())));
                continue;
            }
            bool report_now = false;
            {
                std::lock_guard lock(status_mutex_);
                report_now =
                    report_due_ || ++heartbeats_since_report_ >= options_.report_every_heartbeats;
                report_due_ = false;
            }
            if (report_now) {
                heartbeats_since_report_ = 0;
                if (co_await SendReport() == Outcome::kRetry) {
                    std::lock_guard lock(status_mutex_);
                    report_due_ = true;
                }
            }
            co_await Wait(std::chrono::duration_cast<std::chrono::milliseconds>(
                domain::Jittered(interval_, options_.heartbeat_jitter, random_())));
        } catch (const std::exception& e) {
            // Nothing may take the agent down; log and try again after a pause.
            NoteFailure(e.what());
            spdlog::error("orchestrator link: {}", e.what());
            failed = true;
        }
        if (failed) co_await Wait(options_.max_backoff);
    }
}

asio::awaitable<void> OrchestratorLink::RunChannel() {
    if (!options_.command_channel) co_return;
    domain::Backoff backoff(options_.initial_backoff, options_.max_backoff, 2.0);
    auto wait = [this](std::chrono::milliseconds delay) -> asio::awaitable<void> {
        if (stopping_) co_return;
        channel_timer_.expires_after(delay);
        co_await channel_timer_.async_wait(asio::as_tuple(asio::use_awaitable));
    };
    while (!stopping_) {
        const auto status = Status();
        if (!status.registered || node_token_.empty()) {
            co_await wait(std::chrono::milliseconds{200});
            continue;
        }
        try {
            // The call is made outside the co_await: g++ 12 mishandles non-trivial temporaries
            // (strings, vectors) in a co_await expression's arguments.
            auto connecting = net::ConnectWebSocket(
                executor_, options_.orchestrator_host, options_.orchestrator_port,
                options_.base_path + "/api/nodes/" + status.node_id + "/channel",
                {{"Authorization", "Bearer " + node_token_}}, options_.http);
            auto opened = co_await std::move(connecting);
            if (!opened) {
                NoteFailure("command channel: " + opened.error().message);
                co_await wait(
                    std::chrono::duration_cast<std::chrono::milliseconds>(backoff.Next(random_())));
                continue;
            }
            channel_ = *opened;
            backoff.Reset();
            {
                std::lock_guard lock(status_mutex_);
                status_.channel_open = true;
            }
            spdlog::info("command channel open");
            for (;;) {
                auto message = co_await channel_->Read();
                if (!message) {
                    if (!stopping_)
                        spdlog::warn("command channel closed: {}", message.error().message);
                    break;
                }
                auto json = proto::ParseJson(*message);
                if (json && proto::IsConsoleMessage(*json)) {
                    auto console = proto::DecodeConsoleMessage(*json);
                    if (!console) {
                        spdlog::warn("command channel: ignoring a console message: {}",
                                     console.error().message);
                    } else if (console_handler_) {
                        console_handler_(std::move(*console),
                                         [weak = std::weak_ptr(channel_)](std::string text) {
                                             if (auto c = weak.lock()) c->Send(std::move(text));
                                         });
                    }
                    continue;
                }
                auto push = json ? proto::DecodeChannelPush(*json)
                                 : common::Result<proto::ChannelPush>(json.error());
                if (!push) {
                    spdlog::warn("command channel: ignoring a message: {}", push.error().message);
                    continue;
                }
                {
                    std::lock_guard lock(status_mutex_);
                    status_.channel_commands += push->commands.size();
                }
                if (command_handler_ && !push->commands.empty())
                    command_handler_(std::move(push->commands));
            }
        } catch (const std::exception& e) {
            NoteFailure(std::string("command channel: ") + e.what());
        }
        if (channel_ && console_channel_closed_) console_channel_closed_();
        channel_.reset();
        {
            std::lock_guard lock(status_mutex_);
            status_.channel_open = false;
        }
        co_await wait(
            std::chrono::duration_cast<std::chrono::milliseconds>(backoff.Next(random_())));
    }
}

}  // namespace decloud::agent::app
