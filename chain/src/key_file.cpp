#include "decloud/chain/key_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace decloud::chain {

using common::Error;
using common::Result;

Result<PrivateKey> LoadPrivateKeyFile(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno == ENOENT) return Error::NotFound("key file " + path + " does not exist");
        return Error::PermissionDenied("key file " + path + ": " + std::strerror(errno));
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        return Error::PermissionDenied("key file " + path + " is not a regular file");
    }
    if ((st.st_mode & 07777) != 0600) {
        ::close(fd);
        return Error::PermissionDenied("key file " + path + " must have mode 0600");
    }
    if (st.st_uid != ::geteuid()) {
        ::close(fd);
        return Error::PermissionDenied("key file " + path + " must be owned by this user");
    }
    std::string text(256, '\0');
    std::size_t used = 0;
    for (;;) {
        const ssize_t n = ::read(fd, text.data() + used, text.size() - used);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        used += static_cast<std::size_t>(n);
        if (used == text.size()) break;
    }
    ::close(fd);
    text.resize(used);
    auto key = PrivateKey::FromHex(text);
    std::fill(text.begin(), text.end(), '\0');
    if (!key) return Error::InvalidArgument("key file " + path + " does not hold a valid key");
    return key;
}

}  // namespace decloud::chain
