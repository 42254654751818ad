#include "agent/adapters/image_catalog.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "decloud/crypto/crypto.hpp"
#include "decloud/process/run_program.hpp"

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

common::Status ImageCatalog::Fetch(const std::string& name) {
    std::lock_guard lock(fetch_mutex_);
    const auto folder = directory_ + "/" + name;
    if (fs::is_regular_file(folder + "/disk.qcow2")) return common::Ok();  // fetched meanwhile
    std::error_code ec;
    fs::create_directories(directory_, ec);
    const auto partial = directory_ + "/.fetch-" + name;
    fs::remove_all(partial, ec);
    if (!fs::create_directory(partial, ec))
        return Error::Unavailable("cannot create " + partial + ": " + ec.message());
    const auto cleanup = [&] {
        std::error_code ignored;
        fs::remove_all(partial, ignored);
    };
    const auto url = fetch_.base_url + "/" + name + "/";
    const auto download = [&](const std::string& file) -> common::Status {
        auto ran = process::RunProgram(
            {fetch_.curl, "-fsSL", "--proto", "=http,https", "--max-time",
             std::to_string(fetch_.timeout.count()), "-o", partial + "/" + file, url + file},
            fetch_.timeout + std::chrono::seconds{10});
        if (!ran) return ran.error();
        if (ran->exit_code != 0)
            return Error::Unavailable("fetching image file " + url + file +
                                      " failed: " + ran->err.substr(0, 500));
        return common::Ok();
    };
    if (auto st = download("SHA256SUMS"); !st) {
        cleanup();
        return st;
    }
    std::ifstream sums(partial + "/SHA256SUMS");
    std::string line;
    bool has_disk = false;
    std::vector<std::string> files;
    while (std::getline(sums, line)) {
        if (line.empty()) continue;
        std::istringstream fields(line);
        std::string hash, file;
        fields >> hash >> file;
        if (!file.empty() && file.front() == '*') file.erase(0, 1);
        if (file != "disk.qcow2" && file != "vmlinuz" && file != "initrd.img" &&
            file != "cmdline") {
            cleanup();
            return Error::Conflict("image '" + name + "': SHA256SUMS lists '" + file +
                                   "', which is not an image file");
        }
        has_disk = has_disk || file == "disk.qcow2";
        files.push_back(file);
    }
    if (!has_disk) {
        cleanup();
        return Error::Conflict("image '" + name + "': SHA256SUMS does not list disk.qcow2");
    }
    for (const auto& file : files) {
        if (auto st = download(file); !st) {
            cleanup();
            return st;
        }
    }
    if (auto st = Verify(partial); !st) {
        cleanup();
        return st;
    }
    fs::rename(partial, folder, ec);
    if (ec) {
        cleanup();
        return Error::Unavailable("cannot move the fetched image into " + folder + ": " +
                                  ec.message());
    }
    // Verified already; renaming keeps sizes and times, so the first use need not hash again.
    std::lock_guard verified_lock(mutex_);
    if (auto it = verified_.find(partial); it != verified_.end()) {
        verified_[folder] = it->second;
        verified_.erase(it);
    }
    return common::Ok();
}

common::Result<ports::Image> ImageCatalog::Find(const std::string& name) {
    if (!IsImageName(name)) return Error::InvalidArgument("image name '" + name + "' is malformed");
    const auto folder = directory_ + "/" + name;
    ports::Image image;
    image.name = name;
    image.disk = folder + "/disk.qcow2";
    if (!fs::is_regular_file(image.disk) && !fetch_.base_url.empty()) {
        if (auto st = Fetch(name); !st) return st.error();
    }
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
