#include "decloud/cli/commands.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <ostream>
#include <sstream>

#include "decloud/cli/api_client.hpp"
#include "decloud/common/clock.hpp"
#include "decloud/common/ids.hpp"
#include "decloud/crypto/ecies.hpp"
#include "decloud/crypto/ethereum.hpp"
#include "decloud/proto/siwe.hpp"

namespace decloud::cli {

namespace http = boost::beast::http;
using common::Error;
using common::ErrorCode;
using common::Result;
using common::Status;
using nlohmann::json;

namespace {

std::string Str(const json& j, const char* key) {
    const auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string("-");
}

Result<crypto::EthereumKey> LoadKey(const std::filesystem::path& file) {
    auto hex = ReadPrivateKeyFile(file);
    if (!hex) return hex.error();
    auto bytes = crypto::HexDecode(*hex);
    if (!bytes) return bytes.error();
    return crypto::EthereumKey::FromPrivateKey(*bytes);
}

// The signed-in session and a client for its API; refreshes an expired access token once.
class Authed {
  public:
    static Result<Authed> Open(CommandContext& ctx) {
        auto session = ctx.store.Load();
        if (!session) return session.error();
        if (!ctx.api_url.empty() && ctx.api_url != session->api_url)
            return Error::Unauthenticated("signed in at " + session->api_url + ", not " +
                                          ctx.api_url + "; run 'decloud login' for that API");
        auto client = ApiClient::Create(session->api_url, ctx.ca_file);
        if (!client) return client.error();
        return Authed(ctx, std::move(*session), std::move(*client));
    }

    Result<ApiReply> Call(http::verb method, const std::string& path,
                          const std::optional<json>& body = std::nullopt,
                          const ApiClient::Headers& headers = {}) {
        auto reply = client_.Call(method, path, body, session_.token, headers);
        if (reply || reply.error().code != ErrorCode::kUnauthenticated ||
            session_.refresh_token.empty())
            return reply;
        auto refreshed = client_.Call(http::verb::post, "/api/auth/refresh",
                                      json{{"refreshToken", session_.refresh_token}});
        if (!refreshed)
            return Error::Unauthenticated("the session has ended (" + refreshed.error().message +
                                          "); run 'decloud login' again");
        session_.token = Str(refreshed->body, "token");
        session_.expires_at = Str(refreshed->body, "expiresAt");
        if (auto saved = ctx_->store.Save(session_); !saved) return saved.error();
        return client_.Call(method, path, body, session_.token, headers);
    }

    const StoredSession& session() const { return session_; }

  private:
    Authed(CommandContext& ctx, StoredSession session, ApiClient client)
        : ctx_(&ctx), session_(std::move(session)), client_(std::move(client)) {}
    CommandContext* ctx_;
    StoredSession session_;
    ApiClient client_;
};

// Every item of a paged listing (`path` already has its query), following nextCursor; bounded
// so that a misbehaving server cannot loop us forever.
Result<json> AllPages(Authed& authed, const std::string& path, const char* key) {
    std::string cursor;
    json all = json::array();
    for (int page = 0; page < 1000; ++page) {
        auto reply =
            authed.Call(http::verb::get, cursor.empty() ? path : path + "&cursor=" + cursor);
        if (!reply) return reply.error();
        for (auto& item : reply->body[key]) all.push_back(std::move(item));
        const auto& next = reply->body["nextCursor"];
        if (!next.is_string()) break;
        cursor = next.get<std::string>();
    }
    return Result<json>(boost::system::in_place_value, std::move(all));
}

std::string ReadPublicKeyArgument(const std::string& arg) {
    // A path to a .pub file, or the key line itself.
    if (arg.starts_with("ssh-") || arg.starts_with("ecdsa-") || arg.starts_with("sk-")) return arg;
    std::ifstream in(arg);
    if (!in) return arg;
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

// Ids go into a path: percent-encode anything but unreserved characters.
std::string PathSegment(std::string_view id) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    for (const unsigned char c : id) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += kHex[c >> 4];
            out += kHex[c & 15];
        }
    }
    return out;
}

void PrintSshKey(std::ostream& out, const json& k) {
    out << Str(k, "id") << "  " << Str(k, "name") << "  " << Str(k, "type") << "  "
        << Str(k, "fingerprint") << "\n";
}

void PrintNode(std::ostream& out, const json& n) {
    out << Str(n, "id") << "  " << Str(n, "status") << "  region=" << Str(n, "region")
        << "  points=" << n.value("computePoints", 0)
        << "  relay=" << (n.value("requiresRelay", false) ? "needed" : "no") << "\n";
}

void PrintVm(std::ostream& out, const json& v) {
    out << Str(v, "id") << "  " << Str(v, "name") << "  " << Str(v, "state") << "  "
        << v.value("cpuCores", 0) << " cores, " << v.value("memoryMib", 0) << " MiB, "
        << v.value("diskGib", 0) << " GiB  " << Str(v, "hourlyRateUsdc") << " USDC/h";
    if (v.contains("addresses") && !v["addresses"].empty())
        out << "  " << v["addresses"][0].get<std::string>();
    if (v.value("nodeOffline", false)) out << "  (node offline)";
    out << "\n";
    if (const auto reason = Str(v, "stateReason"); !reason.empty()) out << "    " << reason << "\n";
}

// One call as the signed-in user, printed as the API's JSON (--json) or `print`'s summary.
Status CallAndPrint(CommandContext& ctx, http::verb method, const std::string& path,
                    void (*print)(std::ostream&, const json&)) {
    auto authed = Authed::Open(ctx);
    if (!authed) return authed.error();
    auto reply = authed->Call(method, path);
    if (!reply) return reply.error();
    if (ctx.json)
        ctx.out << reply->body.dump(2) << "\n";
    else
        print(ctx.out, reply->body);
    return common::Ok();
}

Status PrintUser(CommandContext& ctx, const json& me) {
    if (ctx.json) {
        ctx.out << me.dump(2) << "\n";
        return common::Ok();
    }
    ctx.out << "wallet:          " << Str(me, "walletAddress")
            << (me.value("admin", false) ? " (admin)" : "") << "\n"
            << "token expires:   " << Str(me, "tokenExpiresAt") << "\n"
            << "encryption key:  " << Str(me, "encryptionPublicKey") << " ("
            << Str(me, "encryptionKeySource") << ")\n";
    return common::Ok();
}

}  // namespace

Status Login(CommandContext& ctx, const std::filesystem::path& key_file) {
    auto key = LoadKey(key_file);
    if (!key) return key.error();
    std::string api_url = ctx.api_url;
    if (api_url.empty()) {
        auto previous = ctx.store.Load();
        api_url = previous ? previous->api_url : std::string(kDefaultApiUrl);
    }
    auto client = ApiClient::Create(api_url, ctx.ca_file);
    if (!client) return client.error();

    auto nonce = client->Call(http::verb::get, "/api/auth/nonce");
    if (!nonce) return nonce.error();
    const auto& offer = nonce->body;
    // Sign only for the service we are talking to: a server asking for another domain's
    // signature would be phishing for a session there.
    if (Str(offer, "domain") != client->Authority())
        return Error::PermissionDenied("the API at " + api_url + " asks for a sign-in to '" +
                                       Str(offer, "domain") + "', not to '" + client->Authority() +
                                       "'; refusing to sign");
    const auto chains = offer.find("chainIds");
    if (chains == offer.end() || !chains->is_array() || chains->empty() ||
        !(*chains)[0].is_number_unsigned())
        return Error::Internal("the nonce answer names no chain id");

    proto::SiweMessage m;
    m.scheme = client->url().scheme;
    m.domain = Str(offer, "domain");
    m.address = key->Address();
    m.statement = "Sign in to DeCloud.";
    m.uri = Str(offer, "uri");
    m.chain_id = (*chains)[0].get<std::uint64_t>();
    m.nonce = Str(offer, "nonce");
    m.issued_at = common::FormatRfc3339(std::chrono::system_clock::now());
    const auto text = proto::FormatSiweMessage(m);

    auto verified =
        client->Call(http::verb::post, "/api/auth/verify",
                     json{{"message", text}, {"signature", key->SignPersonalMessage(text)}});
    if (!verified) return verified.error();
    StoredSession session{api_url, Str(verified->body, "walletAddress"),
                          Str(verified->body, "token"), Str(verified->body, "refreshToken"),
                          Str(verified->body, "expiresAt")};
    if (auto saved = ctx.store.Save(session); !saved) return saved.error();
    ctx.out << "Signed in to " << api_url << " as " << session.wallet_address
            << "; access token valid until " << session.expires_at << "\n";
    return common::Ok();
}

Status Logout(CommandContext& ctx) {
    auto authed = Authed::Open(ctx);
    if (!authed) {
        if (authed.error().code == ErrorCode::kNotFound) {
            ctx.out << "Not signed in.\n";
            return common::Ok();
        }
        return authed.error();
    }
    auto client = ApiClient::Create(authed->session().api_url, ctx.ca_file);
    if (!client) return client.error();
    auto revoked =
        client->Call(http::verb::post, "/api/auth/logout", std::nullopt, authed->session().token);
    // An already expired or revoked session is as good as logged out.
    if (!revoked && revoked.error().code != ErrorCode::kUnauthenticated) return revoked.error();
    if (auto removed = ctx.store.Remove(); !removed) return removed.error();
    ctx.out << "Signed out of " << authed->session().api_url << "\n";
    return common::Ok();
}

Status WhoAmI(CommandContext& ctx) {
    auto authed = Authed::Open(ctx);
    if (!authed) return authed.error();
    auto me = authed->Call(http::verb::get, "/api/users/me");
    if (!me) return me.error();
    return PrintUser(ctx, me->body);
}

Status SshKeyAdd(CommandContext& ctx, const std::string& public_key_or_file,
                 const std::optional<std::string>& name) {
    auto authed = Authed::Open(ctx);
    if (!authed) return authed.error();
    json body{{"publicKey", ReadPublicKeyArgument(public_key_or_file)}};
    if (name) body["name"] = *name;
    auto added = authed->Call(http::verb::post, "/api/users/me/ssh-keys", body);
    if (!added) return added.error();
    if (ctx.json)
        ctx.out << added->body.dump(2) << "\n";
    else
        PrintSshKey(ctx.out, added->body);
    return common::Ok();
}

Status SshKeyList(CommandContext& ctx) {
    auto authed = Authed::Open(ctx);
    if (!authed) return authed.error();
    auto keys = authed->Call(http::verb::get, "/api/users/me/ssh-keys");
    if (!keys) return keys.error();
    if (ctx.json) {
        ctx.out << keys->body.dump(2) << "\n";
        return common::Ok();
    }
    const auto& items = keys->body["sshKeys"];
    if (items.empty())
        ctx.out << "No SSH keys; add one with 'decloud ssh-key add ~/.ssh/id_ed25519.pub'\n";
    for (const auto& k : items) PrintSshKey(ctx.out, k);
    return common::Ok();
}

Status SshKeyRemove(CommandContext& ctx, const std::string& id) {
    auto authed = Authed::Open(ctx);
    if (!authed) return authed.error();
    auto removed = authed->Call(http::verb::delete_, "/api/users/me/ssh-keys/" + PathSegment(id));
    if (!removed) return removed.error();
    ctx.out << "Removed SSH key " << id << "\n";
    return common::Ok();
}

Status EncryptionKeyDerive(CommandContext& ctx, const std::filesystem::path& key_file) {
    auto wallet = LoadKey(key_file);
    if (!wallet) return wallet.error();
    auto authed = Authed::Open(ctx);
    if (!authed) return authed.error();
    if (wallet->Address() != authed->session().wallet_address)
        return Error::InvalidArgument("the key file is for " + wallet->Address() +
                                      ", but the session is " + authed->session().wallet_address);
    const auto derived = crypto::DeriveEncryptionKey(*wallet);
    return EncryptionKeySet(ctx, "0x" + crypto::HexEncode(derived.PublicKey()));
}

Status EncryptionKeySet(CommandContext& ctx, const std::string& public_key_hex) {
    auto authed = Authed::Open(ctx);
    if (!authed) return authed.error();
    auto me = authed->Call(http::verb::put, "/api/users/me/encryption-key",
                           json{{"publicKey", public_key_hex}});
    if (!me) return me.error();
    return PrintUser(ctx, me->body);
}

Status EncryptionKeyClear(CommandContext& ctx) {
    auto authed = Authed::Open(ctx);
    if (!authed) return authed.error();
    auto me = authed->Call(http::verb::delete_, "/api/users/me/encryption-key");
    if (!me) return me.error();
    return PrintUser(ctx, me->body);
}

Status PasswordEncrypt(CommandContext& ctx, const std::string& password) {
    if (password.empty()) return Error::InvalidArgument("the password is empty");
    auto authed = Authed::Open(ctx);
    if (!authed) return authed.error();
    auto me = authed->Call(http::verb::get, "/api/users/me");
    if (!me) return me.error();
    const auto key_hex = Str(me->body, "encryptionPublicKey");
    if (key_hex == "-")
        return Error::InvalidArgument(
            "the API knows no encryption key for this wallet yet; run 'decloud encryption-key "
            "derive --key-file FILE' (or sign in again)");
    auto key = crypto::ParseSecp256k1PublicKeyHex(key_hex);
    if (!key) return key.error();
    const std::span<const std::uint8_t> plain(
        reinterpret_cast<const std::uint8_t*>(password.data()), password.size());
    auto sealed = crypto::EciesEncrypt(*key, plain);
    if (!sealed) return sealed.error();
    ctx.out << "0x" << crypto::HexEncode(*sealed) << "\n";
    return common::Ok();
}

Status PasswordDecrypt(CommandContext& ctx, const std::filesystem::path& key_file,
                       const std::string& payload_hex, bool derived) {
    auto wallet = LoadKey(key_file);
    if (!wallet) return wallet.error();
    auto payload = crypto::HexDecode(payload_hex);
    if (!payload) return Error::InvalidArgument("the encrypted password must be hex");
    const auto key = derived ? crypto::DeriveEncryptionKey(*wallet) : *wallet;
    auto plain = crypto::EciesDecrypt(key.Secret(), *payload);
    if (!plain) {
        if (plain.error().code == ErrorCode::kUnauthenticated)
            return Error::Unauthenticated(
                std::string("this key cannot decrypt the password") +
                (derived ? "" : "; if you registered a derived key, add --derived"));
        return plain.error();
    }
    ctx.out << std::string(plain->begin(), plain->end()) << "\n";
    return common::Ok();
}

Status KeyNew(CommandContext& ctx, const std::filesystem::path& key_file) {
    const auto key = crypto::EthereumKey::Generate();
    const std::string text = "0x" + crypto::HexEncode(key.Secret()) + "\n";
    const int fd = ::open(key_file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return Error::Conflict("cannot create " + key_file.string() + ": " + strerror(errno) +
                               " (an existing key is never overwritten)");
    const bool written = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    const bool synced = ::fsync(fd) == 0;
    ::close(fd);
    if (!written || !synced) {
        ::unlink(key_file.c_str());
        return Error::Unavailable("cannot write " + key_file.string());
    }
    ctx.out << key.Address() << "\n";
    return common::Ok();
}

Status KeyAddress(CommandContext& ctx, const std::filesystem::path& key_file) {
    auto key = LoadKey(key_file);
    if (!key) return key.error();
    ctx.out << key->Address() << "\n";
    return common::Ok();
}

Status NodeList(CommandContext& ctx, const std::optional<std::string>& status) {
    auto authed = Authed::Open(ctx);
    if (!authed) return authed.error();
    std::string path = "/api/nodes?limit=500";
    if (status) path += "&status=" + *status;
    auto listed = AllPages(*authed, path, "nodes");
    if (!listed) return listed.error();
    const auto& all = *listed;
    if (ctx.json) {
        ctx.out << json{{"nodes", all}}.dump(2) << "\n";
        return common::Ok();
    }
    if (all.empty()) ctx.out << "No nodes operated by " << authed->session().wallet_address << "\n";
    for (const auto& n : all) PrintNode(ctx.out, n);
    return common::Ok();
}

Status NodeShow(CommandContext& ctx, const std::string& id) {
    return CallAndPrint(ctx, http::verb::get, "/api/nodes/" + PathSegment(id), PrintNode);
}

Status VmCreate(CommandContext& ctx, const VmCreateOptions& o) {
    auto authed = Authed::Open(ctx);
    if (!authed) return authed.error();
    json body{{"name", o.name},        {"cpuCores", o.cpu_cores}, {"memoryMib", o.memory_mib},
              {"diskGib", o.disk_gib}, {"image", o.image},        {"tier", o.tier}};
    if (o.node_id) body["nodeId"] = *o.node_id;
    if (o.region) body["region"] = *o.region;
    if (!o.tags.empty()) body["tags"] = o.tags;
    if (!o.ssh_key_ids.empty()) body["sshKeyIds"] = o.ssh_key_ids;
    if (o.template_id) {
        body["template"] = *o.template_id;
        // The template says each parameter's type, so "8080" can be a port or a string.
        auto tmpl = authed->Call(http::verb::get, "/api/templates/" + PathSegment(*o.template_id));
        if (!tmpl) return tmpl.error();
        json params = json::object();
        for (const auto& assignment : o.template_params) {
            const auto eq = assignment.find('=');
            if (eq == std::string::npos || eq == 0)
                return Error::InvalidArgument("--param: expected name=value, got '" + assignment +
                                              "'");
            const auto name = assignment.substr(0, eq);
            const auto value = assignment.substr(eq + 1);
            std::string type = "string";
            for (const auto& p : tmpl->body.value("parameters", json::array()))
                if (p.value("name", "") == name) type = p.value("type", "string");
            if (type == "integer") {
                std::int64_t n = 0;
                const auto [end, ec] =
                    std::from_chars(value.data(), value.data() + value.size(), n);
                if (ec != std::errc{} || end != value.data() + value.size())
                    return Error::InvalidArgument("--param " + name + ": an integer is expected");
                params[name] = n;
            } else if (type == "boolean") {
                if (value != "true" && value != "false")
                    return Error::InvalidArgument("--param " + name + ": true or false");
                params[name] = value == "true";
            } else {
                params[name] = value;
            }
        }
        body["templateParams"] = params;
        if (o.image == "debian-12") body.erase("image");  // the template's own image
    }
    if (o.user_data_file) {
        std::ifstream in(*o.user_data_file);
        if (!in) return Error::InvalidArgument("cannot read " + *o.user_data_file);
        std::stringstream text;
        text << in.rdbuf();
        body["userData"] = text.str();
    }
    if (o.quote_only) {
        auto quote = authed->Call(http::verb::post, "/api/vms/quote", body);
        if (!quote) return quote.error();
        if (ctx.json) {
            ctx.out << quote->body.dump(2) << "\n";
            return common::Ok();
        }
        const auto& best = quote->body["placement"];
        if (best.is_null()) {
            ctx.out << "No node can take it: " << Str(quote->body, "explanation") << "\n";
            return common::Ok();
        }
        ctx.out << "node " << Str(best, "nodeId") << ": " << best.value("computePoints", 0)
                << " compute points, " << Str(best, "hourlyRateUsdc") << " USDC/h\n";
        return common::Ok();
    }
    // The idempotency key makes a retry after a lost answer return the same VM.
    const auto key = o.idempotency_key.value_or(common::NewUuid());
    auto created = authed->Call(http::verb::post, "/api/vms", body, {{"Idempotency-Key", key}});
    if (!created) return created.error();
    if (ctx.json)
        ctx.out << created->body.dump(2) << "\n";
    else
        PrintVm(ctx.out, created->body);
    return common::Ok();
}

Status VmList(CommandContext& ctx) {
    auto authed = Authed::Open(ctx);
    if (!authed) return authed.error();
    auto listed = AllPages(*authed, "/api/vms?limit=500", "vms");
    if (!listed) return listed.error();
    const auto& all = *listed;
    if (ctx.json) {
        ctx.out << json{{"vms", all}}.dump(2) << "\n";
        return common::Ok();
    }
    if (all.empty()) ctx.out << "No VMs\n";
    for (const auto& v : all) PrintVm(ctx.out, v);
    return common::Ok();
}

Status VmShow(CommandContext& ctx, const std::string& id) {
    return CallAndPrint(ctx, http::verb::get, "/api/vms/" + PathSegment(id), PrintVm);
}

Status VmAct(CommandContext& ctx, const std::string& id, const std::string& action) {
    if (action == "delete")
        return CallAndPrint(ctx, http::verb::delete_, "/api/vms/" + PathSegment(id), PrintVm);
    if (action == "start" || action == "stop" || action == "reboot")
        return CallAndPrint(ctx, http::verb::post, "/api/vms/" + PathSegment(id) + "/" + action,
                            PrintVm);
    return Error::InvalidArgument("unknown action " + action);
}

Status VmEvents(CommandContext& ctx, const std::string& id) {
    auto authed = Authed::Open(ctx);
    if (!authed) return authed.error();
    auto events = authed->Call(http::verb::get, "/api/vms/" + PathSegment(id) + "/events");
    if (!events) return events.error();
    if (ctx.json) {
        ctx.out << events->body.dump(2) << "\n";
        return common::Ok();
    }
    for (const auto& e : events->body["events"])
        ctx.out << Str(e, "at") << "  " << (e["from"].is_string() ? Str(e, "from") : "-") << " -> "
                << Str(e, "to") << "  " << Str(e, "reason") << "\n";
    return common::Ok();
}

}  // namespace decloud::cli
