#include "agent/adapters/identity.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

namespace decloud::agent::adapters {

using common::Error;
using common::Result;

namespace {

Result<std::string> ReadSecret(const std::string& path, std::string_view what) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return Error::Unavailable("cannot stat " + path);
    if ((st.st_mode & 077) != 0)
        return Error::PermissionDenied(std::string(what) + " " + path +
                                       " is readable by others; run: chmod 600 " + path);
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string text = ss.str();
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' '))
        text.pop_back();
    return text;
}

// The text of the secret file at `path`, written with `generate()` first if there is none.
Result<std::string> LoadOrCreateSecret(const std::string& path, std::string_view what,
                                       const std::function<std::string()>& generate) {
    std::error_code ec;
    if (std::filesystem::exists(path, ec)) return ReadSecret(path, what);

    const auto parent = std::filesystem::path(path).parent_path();
    if (!parent.empty() && !std::filesystem::exists(parent, ec)) {
        std::filesystem::create_directories(parent, ec);
        if (ec) return Error::Unavailable("cannot create " + parent.string() + ": " + ec.message());
        ::chmod(parent.c_str(), 0700);
    }
    const std::string secret = generate();
    const std::string text = secret + "\n";
    // Written to a private temporary file, then linked into place: a crash never leaves a
    // half-written key, and two agents starting at once cannot both create one.
    const std::string tmp = path + ".tmp." + std::to_string(::getpid());
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return Error::Unavailable("cannot create " + tmp);
    const bool written =
        ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
        ::fsync(fd) == 0;
    ::close(fd);
    if (!written) {
        ::unlink(tmp.c_str());
        return Error::Unavailable("cannot write " + tmp);
    }
    const int linked = ::link(tmp.c_str(), path.c_str());
    ::unlink(tmp.c_str());
    if (linked != 0) {
        if (errno == EEXIST) return ReadSecret(path, what);  // another process won the race
        return Error::Unavailable("cannot create " + path);
    }
    return secret;
}

}  // namespace

Result<crypto::Ed25519KeyPair> LoadOrCreateNodeKey(const std::string& path) {
    auto text = LoadOrCreateSecret(path, "node key", [] {
        return crypto::Base64Encode(crypto::Ed25519KeyPair::Generate().PrivateSeed());
    });
    if (!text) return text.error();
    auto seed = crypto::Base64Decode(*text);
    if (!seed || seed->size() != 32)
        return Error::InvalidArgument("node key " + path +
                                      " is not a base64 Ed25519 seed of 32 bytes");
    return crypto::Ed25519KeyPair::FromPrivateKey(*seed);
}

Result<domain::relay::WireGuardKey> LoadOrCreateWireGuardKey(const std::string& path) {
    auto text = LoadOrCreateSecret(
        path, "WireGuard key", [] { return domain::relay::WireGuardKey::Generate().ToBase64(); });
    if (!text) return text.error();
    auto key = domain::relay::WireGuardKey::FromBase64(*text);
    if (!key || key->IsZero())
        return Error::InvalidArgument("WireGuard key " + path + " is not a base64 X25519 key");
    return key;
}

Result<std::optional<domain::relay::WireGuardKey>> FileWireGuardKeyStore::Staged() {
    std::error_code ec;
    if (!std::filesystem::exists(NextPath(), ec))
        return std::optional<domain::relay::WireGuardKey>();
    auto key = LoadOrCreateWireGuardKey(NextPath());
    if (!key) return key.error();
    return std::optional<domain::relay::WireGuardKey>(std::move(*key));
}

Result<domain::relay::WireGuardKey> FileWireGuardKeyStore::StageNext() {
    return LoadOrCreateWireGuardKey(NextPath());
}

common::Status FileWireGuardKeyStore::CommitNext() {
    auto staged = Staged();
    if (!staged) return staged.error();
    if (!*staged) return Error::Conflict("no staged WireGuard key to commit");
    // rename(2) replaces the key in use atomically; the directory entry is then made durable.
    if (::rename(NextPath().c_str(), path_.c_str()) != 0)
        return Error::Unavailable("cannot rename " + NextPath() + " to " + path_ + ": " +
                                  std::strerror(errno));
    const auto parent = std::filesystem::path(path_).parent_path();
    const int dir =
        ::open(parent.empty() ? "." : parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir >= 0) {
        ::fsync(dir);
        ::close(dir);
    }
    return common::Ok();
}

}  // namespace decloud::agent::adapters
