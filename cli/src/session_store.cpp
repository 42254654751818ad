#include "decloud/cli/session_store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace decloud::cli {

namespace fs = std::filesystem;
using common::Error;
using nlohmann::json;

fs::path DefaultConfigDir() {
    if (const char* dir = std::getenv("DECLOUD_CONFIG_DIR"); dir && *dir) return dir;
    if (const char* xdg = std::getenv("XDG_CONFIG_HOME"); xdg && *xdg)
        return fs::path(xdg) / "decloud";
    const char* home = std::getenv("HOME");
    return fs::path(home && *home ? home : ".") / ".config" / "decloud";
}

common::Result<StoredSession> SessionStore::Load() const {
    std::ifstream in(path());
    if (!in) return Error::NotFound("not signed in: run 'decloud login --key-file FILE' first");
    std::stringstream text;
    text << in.rdbuf();
    const auto j = json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
    if (!j.is_object())
        return Error::InvalidArgument(path().string() + " is damaged; run 'decloud login' again");
    StoredSession s;
    s.api_url = j.value("apiUrl", "");
    s.wallet_address = j.value("walletAddress", "");
    s.token = j.value("token", "");
    s.refresh_token = j.value("refreshToken", "");
    s.expires_at = j.value("expiresAt", "");
    if (s.api_url.empty() || s.token.empty())
        return Error::InvalidArgument(path().string() + " is damaged; run 'decloud login' again");
    return s;
}

common::Status SessionStore::Save(const StoredSession& s) const {
    std::error_code ec;
    fs::create_directories(dir_, ec);
    if (ec) return Error::Unavailable("cannot create " + dir_.string() + ": " + ec.message());
    ::chmod(dir_.c_str(), 0700);
    const json j{{"apiUrl", s.api_url},
                 {"walletAddress", s.wallet_address},
                 {"token", s.token},
                 {"refreshToken", s.refresh_token},
                 {"expiresAt", s.expires_at}};
    const std::string text = j.dump(2) + "\n";
    const fs::path tmp = path().string() + ".tmp";
    ::unlink(tmp.c_str());
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return Error::Unavailable("cannot write " + tmp.string() + ": " + strerror(errno));
    std::size_t written = 0;
    while (written < text.size()) {
        const auto n = ::write(fd, text.data() + written, text.size() - written);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            const std::string why = strerror(errno);
            ::close(fd);
            ::unlink(tmp.c_str());
            return Error::Unavailable("cannot write " + tmp.string() + ": " + why);
        }
        written += static_cast<std::size_t>(n);
    }
    ::fsync(fd);
    ::close(fd);
    if (::rename(tmp.c_str(), path().c_str()) != 0) {
        const std::string why = strerror(errno);
        ::unlink(tmp.c_str());
        return Error::Unavailable("cannot replace " + path().string() + ": " + why);
    }
    return common::Ok();
}

common::Status SessionStore::Remove() const {
    if (::unlink(path().c_str()) != 0 && errno != ENOENT)
        return Error::Unavailable("cannot remove " + path().string() + ": " + strerror(errno));
    return common::Ok();
}

common::Result<std::string> ReadPrivateKeyFile(const fs::path& file) {
    struct stat st {};
    if (::stat(file.c_str(), &st) != 0)
        return Error::NotFound("cannot read key file " + file.string() + ": " + strerror(errno));
    if ((st.st_mode & 077) != 0)
        return Error::PermissionDenied("key file " + file.string() +
                                       " is readable by others; run 'chmod 600 " + file.string() +
                                       "'");
    std::ifstream in(file);
    std::stringstream text;
    text << in.rdbuf();
    std::string key = text.str();
    const auto first = key.find_first_not_of(" \t\r\n");
    const auto last = key.find_last_not_of(" \t\r\n");
    key = first == std::string::npos ? std::string() : key.substr(first, last - first + 1);
    if (key.starts_with("0x") || key.starts_with("0X")) key.erase(0, 2);
    const bool hex =
        key.size() == 64 && key.find_first_not_of("0123456789abcdefABCDEF") == std::string::npos;
    if (!hex)
        return Error::InvalidArgument("key file " + file.string() +
                                      " must hold a secp256k1 private key: 64 hex digits");
    return key;
}

}  // namespace decloud::cli
