#include "agent/adapters/identity.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace decloud::agent::adapters {

using common::Error;
using common::Result;

namespace {

Result<crypto::Ed25519KeyPair> Load(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return Error::Unavailable("cannot stat " + path);
    if ((st.st_mode & 077) != 0)
        return Error::PermissionDenied("node key " + path +
                                       " is readable by others; run: chmod 600 " + path);
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string text = ss.str();
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' '))
        text.pop_back();
    auto seed = crypto::Base64Decode(text);
    if (!seed || seed->size() != 32)
        return Error::InvalidArgument("node key " + path +
                                      " is not a base64 Ed25519 seed of 32 bytes");
    return crypto::Ed25519KeyPair::FromPrivateKey(*seed);
}

}  // namespace

Result<crypto::Ed25519KeyPair> LoadOrCreateNodeKey(const std::string& path) {
    std::error_code ec;
    if (std::filesystem::exists(path, ec)) return Load(path);

    const auto parent = std::filesystem::path(path).parent_path();
    if (!parent.empty() && !std::filesystem::exists(parent, ec)) {
        std::filesystem::create_directories(parent, ec);
        if (ec) return Error::Unavailable("cannot create " + parent.string() + ": " + ec.message());
        ::chmod(parent.c_str(), 0700);
    }
    const auto key = crypto::Ed25519KeyPair::Generate();
    const auto text = crypto::Base64Encode(key.PrivateSeed()) + "\n";
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
        if (errno == EEXIST) return Load(path);  // another process won the race: use its key
        return Error::Unavailable("cannot create " + path);
    }
    return key;
}

}  // namespace decloud::agent::adapters
