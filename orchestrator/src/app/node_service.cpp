#include "orchestrator/app/node_service.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <mutex>

#include "decloud/common/ids.hpp"
#include "orchestrator/domain/cgnat.hpp"
#include "orchestrator/domain/node_health.hpp"

namespace decloud::orchestrator::app {

using common::Error;
using common::Result;
using common::Status;

namespace {

constexpr std::size_t kMaxRegionLength = 64;
constexpr std::size_t kMaxTags = 32;
constexpr std::size_t kMaxTagLength = 64;
constexpr std::size_t kMaxAgentVersionLength = 64;
constexpr std::size_t kMaxCpuModelLength = 256;
constexpr std::size_t kMaxGpus = 64;
constexpr std::uint32_t kMaxComputePoints = 10'000'000;
constexpr std::uint64_t kMaxPricePerPoint = 1'000'000'000;  // 1,000 USDC per point-hour

bool IsLowerAlnumOrDash(char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

bool IsTagChar(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == ':';
}

bool IsPrintableAscii(std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
}

Status ValidateResources(const proto::RegisterNodeRequest& req) {
    const auto& r = req.resources;
    if (r.cpu_threads == 0)
        return Error::InvalidArgument("resources.cpuThreads: must be at least 1");
    if (r.cpu_cores == 0 || r.cpu_cores > r.cpu_threads)
        return Error::InvalidArgument("resources.cpuCores: must be between 1 and cpuThreads");
    if (r.memory_bytes == 0)
        return Error::InvalidArgument("resources.memoryBytes: must be positive");
    if (r.storage_free_bytes > r.storage_total_bytes)
        return Error::InvalidArgument("resources.storageFreeBytes: exceeds storageTotalBytes");
    if (r.cpu_model.size() > kMaxCpuModelLength || !IsPrintableAscii(r.cpu_model))
        return Error::InvalidArgument("resources.cpuModel: too long or not printable ASCII");
    if (r.gpus.size() > kMaxGpus) return Error::InvalidArgument("resources.gpus: too many entries");
    if (req.compute.points > kMaxComputePoints)
        return Error::InvalidArgument("compute.points: implausibly large");
    if (req.agent_version.size() > kMaxAgentVersionLength || !IsPrintableAscii(req.agent_version))
        return Error::InvalidArgument("agentVersion: too long or not printable ASCII");
    return common::Ok();
}

}  // namespace

Status ValidateRegion(std::string_view region) {
    if (region.size() > kMaxRegionLength)
        return Error::InvalidArgument("region: at most 64 characters");
    if (!std::all_of(region.begin(), region.end(), IsLowerAlnumOrDash))
        return Error::InvalidArgument(
            "region: only lowercase letters, digits and '-' (e.g. eu-west)");
    return common::Ok();
}

Status ValidateTags(const std::vector<std::string>& tags) {
    if (tags.size() > kMaxTags) return Error::InvalidArgument("tags: at most 32 tags");
    for (const auto& t : tags) {
        if (t.empty() || t.size() > kMaxTagLength)
            return Error::InvalidArgument("tags: each tag has 1 to 64 characters");
        if (!std::all_of(t.begin(), t.end(), IsTagChar))
            return Error::InvalidArgument("tags: '" + t +
                                          "' may only use letters, digits and - _ . :");
    }
    return common::Ok();
}

NodeService::NodeService(ports::NodeRepository& repository, const common::Clock& clock,
                         NodeServiceOptions options)
    : repository_(repository), clock_(clock), options_(options) {}

Result<proto::RegisterNodeResponse> NodeService::Register(std::string_view body,
                                                          std::string_view signature_base64,
                                                          std::string_view observed_ip) {
    auto json = proto::ParseJson(body);
    if (!json) return json.error();
    auto req = proto::DecodeRegisterNodeRequest(*json);
    if (!req) return req.error();

    if (signature_base64.empty())
        return Error::Unauthenticated("registration must be signed with the node key (header " +
                                      std::string(proto::kSignatureHeader) + ")");
    const auto key = crypto::Base64Decode(req->node_public_key);
    if (!key || key->size() != 32)
        return Error::InvalidArgument("nodePublicKey: must be a base64 Ed25519 public key");
    if (!crypto::VerifyEd25519(req->node_public_key, body, signature_base64))
        return Error::Unauthenticated("signature does not verify with nodePublicKey");

    const auto now = clock_.Now();
    common::TimePoint signed_at;
    if (!common::ParseRfc3339(req->timestamp, signed_at))
        return Error::InvalidArgument("timestamp: must be an RFC 3339 time");
    if (signed_at > now + options_.registration_max_skew ||
        signed_at < now - options_.registration_max_skew)
        return Error::Unauthenticated(
            "timestamp: outside the accepted window of " +
            std::to_string(
                std::chrono::duration_cast<std::chrono::seconds>(options_.registration_max_skew)
                    .count()) +
            " s around the orchestrator's clock");

    auto wallet = crypto::NormalizeEthereumAddress(req->operator_wallet);
    if (!wallet) return Error::InvalidArgument("operatorWallet: " + wallet.error().message);
    if (!req->public_ip.empty() &&
        domain::ClassifyAddress(req->public_ip).scope == domain::AddressScope::kInvalid)
        return Error::InvalidArgument("publicIp: '" + req->public_ip + "' is not an IP address");
    if (auto st = ValidateRegion(req->region); !st) return st.error();
    if (auto st = ValidateTags(req->tags); !st) return st.error();
    if (auto st = ValidateResources(*req); !st) return st.error();

    // Only now, with a valid request, remember the signature so a captured body cannot be
    // replayed to obtain fresh credentials.
    const auto sig_hash = crypto::HexEncode(crypto::Sha256(signature_base64));
    if (auto st =
            repository_.ConsumeOnce(sig_hash, signed_at + options_.registration_max_skew, now);
        !st) {
        if (st.error().code == common::ErrorCode::kConflict)
            return Error::Conflict("this signed registration was already used; sign a new one");
        return st.error();
    }

    domain::NodeRegistration reg;
    reg.public_key = req->node_public_key;
    reg.operator_wallet = *wallet;
    reg.reported_ip = domain::CanonicalAddress(req->public_ip);
    reg.observed_ip = domain::CanonicalAddress(observed_ip);
    reg.region = req->region;
    reg.tags = req->tags;
    reg.resources = req->resources;
    reg.compute = req->compute;
    reg.agent_version = req->agent_version;
    reg.cgnat_override = req->behind_cgnat;
    if (req->price_per_point_micro_usdc > kMaxPricePerPoint)
        return Error::InvalidArgument("pricePerPointMicroUsdc: at most " +
                                      std::to_string(kMaxPricePerPoint));
    reg.price_per_point_micro_usdc = req->price_per_point_micro_usdc != 0
                                         ? req->price_per_point_micro_usdc
                                         : options_.default_price_per_point_micro_usdc;
    reg.cgnat = domain::AssessCgnat(reg.reported_ip, reg.observed_ip, req->behind_cgnat,
                                    options_.public_ranges);
    const auto token = crypto::RandomToken(32);
    const auto token_hash = crypto::Sha256(token);
    reg.credential_hash = crypto::HexEncode(token_hash);

    auto outcome = repository_.Register(reg, now);
    if (!outcome) return outcome.error();
    CacheCredential(outcome->node.id, token_hash);
    spdlog::info("node {} {} (wallet {}, cgnat: {})", outcome->node.id,
                 outcome->created ? "registered" : "re-registered", reg.operator_wallet,
                 reg.cgnat.reason);

    proto::RegisterNodeResponse resp;
    resp.node_id = outcome->node.id;
    resp.node_token = token;
    resp.heartbeat_interval_seconds = static_cast<std::uint32_t>(
        std::chrono::duration_cast<std::chrono::seconds>(options_.heartbeat_interval).count());
    resp.behind_cgnat = outcome->node.cgnat.behind_cgnat;
    resp.requires_relay = outcome->node.cgnat.requires_relay;
    resp.cgnat_reason = outcome->node.cgnat.reason;
    return resp;
}

void NodeService::CacheCredential(const std::string& node_id, const crypto::Hash256& hash) {
    std::unique_lock lock(credentials_mutex_);
    credentials_[node_id] = hash;
}

void NodeService::ForgetCredential(const std::string& node_id) {
    std::unique_lock lock(credentials_mutex_);
    credentials_.erase(node_id);
}

bool NodeService::CachedCredentialMatches(const std::string& node_id,
                                          std::string_view token) const {
    const auto presented = crypto::Sha256(token);
    std::shared_lock lock(credentials_mutex_);
    const auto it = credentials_.find(node_id);
    if (it == credentials_.end()) return false;
    const std::string_view a(reinterpret_cast<const char*>(it->second.data()), it->second.size());
    const std::string_view b(reinterpret_cast<const char*>(presented.data()), presented.size());
    return crypto::ConstantTimeEquals(a, b);
}

FastAuth NodeService::TryHeartbeat(const std::string& node_id, std::string_view token,
                                   const proto::HeartbeatRequest& request) {
    // A mismatch may mean the node re-registered through another replica: look it up.
    if (!CachedCredentialMatches(node_id, token)) return FastAuth::kUnknown;
    buffer_.Record(node_id, request.usage, request.agent_version, clock_.Now());
    return FastAuth::kAccepted;
}

Result<proto::HeartbeatResponse> NodeService::HeartbeatAfterLookup(
    const std::string& node_id, std::string_view token, const proto::HeartbeatRequest& request) {
    if (auto st = AuthenticateNode(node_id, token); !st) return st.error();
    buffer_.Record(node_id, request.usage, request.agent_version, clock_.Now());
    return HeartbeatReply();
}

Status NodeService::AuthenticateNode(const std::string& node_id, std::string_view token) {
    if (CachedCredentialMatches(node_id, token)) return common::Ok();
    if (!common::IsUuid(node_id)) return Error::NotFound("node " + node_id + " is not registered");
    auto cred = repository_.GetCredential(node_id);
    if (!cred) {
        if (cred.error().code == common::ErrorCode::kNotFound) {
            ForgetCredential(node_id);
            return Error::NotFound("node " + node_id + " is not registered; register again");
        }
        return cred.error();
    }
    const auto presented = crypto::HexEncode(crypto::Sha256(token));
    if (!crypto::ConstantTimeEquals(presented, cred->credential_hash))
        return Error::Unauthenticated("the credentials presented are not those of node " + node_id);
    auto stored = crypto::HexDecode(cred->credential_hash);
    if (stored && stored->size() == 32) {
        crypto::Hash256 h{};
        std::copy(stored->begin(), stored->end(), h.begin());
        CacheCredential(node_id, h);
    }
    return common::Ok();
}

proto::HeartbeatResponse NodeService::HeartbeatReply() const {
    proto::HeartbeatResponse resp;
    resp.next_heartbeat_seconds = static_cast<std::uint32_t>(
        std::chrono::duration_cast<std::chrono::seconds>(options_.heartbeat_interval).count());
    return resp;
}

Result<ports::HeartbeatFlushResult> NodeService::FlushHeartbeats() {
    auto batch = buffer_.Drain();
    if (batch.empty()) return ports::HeartbeatFlushResult{};
    auto result = repository_.ApplyHeartbeats(batch, options_.heartbeat_interval, clock_.Now());
    if (!result) {
        // Keep them for the next attempt: a database hiccup must not lose "last seen".
        buffer_.Restore(std::move(batch));
        return result.error();
    }
    return result;
}

Result<std::vector<std::string>> NodeService::SweepOffline() {
    const auto now = clock_.Now();
    return repository_.MarkStaleOffline(now - options_.offline_after, now);
}

NodeView NodeService::MakeView(domain::Node node, const ports::NodeHistory& history,
                               common::TimePoint now) const {
    NodeView view;
    const auto window_start = now - options_.uptime_window;
    view.uptime_ratio_30d =
        domain::UptimeRatio(history.availability, window_start, now, node.registered_at);
    const auto today = domain::UtcDay(now);
    for (const auto& day : history.daily) {
        view.missed_heartbeats_30d += day.missed;
        if (day.day == today) {
            view.heartbeats_today = day.heartbeats;
            view.missed_heartbeats_today = day.missed;
        }
    }
    view.node = std::move(node);
    return view;
}

Result<NodeView> NodeService::Get(const std::string& node_id) {
    if (!common::IsUuid(node_id)) return Error::NotFound("no node with id '" + node_id + "'");
    auto node = repository_.Get(node_id);
    if (!node) return node.error();
    const auto now = clock_.Now();
    auto history = repository_.History(std::span(&node_id, 1), now - options_.uptime_window);
    if (!history) return history.error();
    const auto it = history->find(node_id);
    return MakeView(std::move(*node), it == history->end() ? ports::NodeHistory{} : it->second,
                    now);
}

Result<NodePage> NodeService::List(const ports::NodeListQuery& query) {
    if (query.limit == 0 || query.limit > 500)
        return Error::InvalidArgument("limit: must be between 1 and 500");
    if (!query.after_id.empty() && !common::IsUuid(query.after_id))
        return Error::InvalidArgument("cursor: not a cursor returned by this API");
    auto q = query;
    ++q.limit;  // one extra row tells whether another page exists
    auto nodes = repository_.List(q);
    if (!nodes) return nodes.error();
    NodePage page;
    const bool more = nodes->size() > query.limit;
    if (more) nodes->resize(query.limit);
    const auto now = clock_.Now();
    std::vector<std::string> ids;
    for (const auto& n : *nodes) ids.push_back(n.id);
    auto history = repository_.History(ids, now - options_.uptime_window);
    if (!history) return history.error();
    for (auto& n : *nodes) {
        const auto it = history->find(n.id);
        page.nodes.push_back(
            MakeView(std::move(n), it == history->end() ? ports::NodeHistory{} : it->second, now));
    }
    if (more && !page.nodes.empty()) page.next_cursor = page.nodes.back().node.id;
    return page;
}

}  // namespace decloud::orchestrator::app
