#include "agent/adapters/image_catalog.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "decloud/crypto/crypto.hpp"

namespace decloud::agent::adapters {

using common::Error;
namespace fs = std::filesystem;

namespace {

bool IsImageName(std::string_view name) {
    if (name.empty() || name.size() > 64 || name.front() == '.' || name.front() == '-')
        return false;
    return std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
    });
}

// Size and modification time of every file in the folder: changes when a file is replaced.
std::string Fingerprint(const std::string& folder) {
    std::string out;
    std::error_code ec;
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(folder, ec))
        names.push_back(entry.path().filename().string());
    std::sort(names.begin(), names.end());
    for (const auto& n : names) {
        struct stat st {};
        if (::stat((folder + "/" + n).c_str(), &st) != 0) continue;
        out += n + ":" + std::to_string(st.st_size) + ":" + std::to_string(st.st_mtim.tv_sec) +
               "." + std::to_string(st.st_mtim.tv_nsec) + ";";
    }
    return out;
}

std::string ReadTrimmed(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    auto s = ss.str();
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
    return s;
}

}  // namespace

common::Status ImageCatalog::Verify(const std::string& folder) {
    const auto sums = folder + "/SHA256SUMS";
    if (!fs::exists(sums)) return common::Ok();
    const auto fingerprint = Fingerprint(folder);
    {
        std::lock_guard lock(mutex_);
        if (auto it = verified_.find(folder); it != verified_.end() && it->second == fingerprint)
            return common::Ok();
    }
    std::ifstream in(sums);
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty()) continue;
        std::istringstream fields(line);
        std::string expected, file;
        fields >> expected >> file;
        if (!file.empty() && file.front() == '*') file.erase(0, 1);  // binary-mode marker
        if (expected.size() != 64 || file.empty() || file.find('/') != std::string::npos)
            return Error::Conflict(sums + ": malformed line '" + line + "'");
        auto actual = crypto::Sha256File(folder + "/" + file);
        if (!actual) return Error::Conflict(sums + ": " + actual.error().message);
        std::string lower = expected;
        std::transform(lower.begin(), lower.end(), lower.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        if (crypto::HexEncode(*actual) != lower)
            return Error::Conflict("image file " + folder + "/" + file +
                                   " does not match its SHA-256 in SHA256SUMS");
    }
    std::lock_guard lock(mutex_);
    verified_[folder] = fingerprint;
    return common::Ok();
}

common::Result<ports::Image> ImageCatalog::Find(const std::string& name) {
    if (!IsImageName(name)) return Error::InvalidArgument("image name '" + name + "' is malformed");
    const auto folder = directory_ + "/" + name;
    ports::Image image;
    image.name = name;
    image.disk = folder + "/disk.qcow2";
    if (!fs::is_regular_file(image.disk))
        return Error::NotFound("this node has no image '" + name + "' (" + image.disk + ")");
    if (auto st = Verify(folder); !st) return st.error();
    if (fs::is_regular_file(folder + "/vmlinuz")) {
        ports::DirectKernelBoot boot;
        boot.kernel = folder + "/vmlinuz";
        if (fs::is_regular_file(folder + "/initrd.img")) boot.initrd = folder + "/initrd.img";
        if (fs::is_regular_file(folder + "/cmdline"))
            boot.cmdline = ReadTrimmed(folder + "/cmdline");
        image.kernel_boot = std::move(boot);
    }
    return image;
}

}  // namespace decloud::agent::adapters
