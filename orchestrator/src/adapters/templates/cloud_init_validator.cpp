#include "orchestrator/adapters/templates/cloud_init_validator.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <system_error>

#include "decloud/process/run_program.hpp"

namespace decloud::orchestrator::adapters::templates {

using common::Error;
using common::Result;

namespace {

constexpr std::size_t kMaxComplaints = 50;
constexpr std::size_t kMaxComplaintLength = 500;
constexpr std::string_view kErrorsPrefix = "Cloud config schema errors: ";

std::string ErrnoMessage(int err) {
    return std::error_code(err, std::generic_category()).message();
}

// A file only this process can read, removed when it goes out of scope.
class TempFile {
  public:
    TempFile() {
        std::string pattern =
            (std::filesystem::temp_directory_path() / "decloud-cloud-config-XXXXXX").string();
        fd_ = ::mkstemp(pattern.data());
        if (fd_ >= 0) path_ = pattern;
    }
    TempFile(const TempFile&) = delete;
    TempFile& operator=(const TempFile&) = delete;
    ~TempFile() {
        if (fd_ >= 0) ::close(fd_);
        if (!path_.empty()) ::unlink(path_.c_str());
    }
    bool ok() const { return fd_ >= 0; }
    const std::string& path() const { return path_; }
    bool Write(std::string_view text) {
        while (!text.empty()) {
            const auto n = ::write(fd_, text.data(), text.size());
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return false;
            text.remove_prefix(static_cast<std::size_t>(n));
        }
        return true;
    }

  private:
    int fd_ = -1;
    std::string path_;
};

bool IsKeyChar(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
}

// Whether `rest` starts with "<key>: " (how cloud-init begins each complaint).
bool StartsComplaint(std::string_view rest) {
    std::size_t i = 0;
    while (i < rest.size() && IsKeyChar(rest[i])) ++i;
    return i > 0 && rest.substr(i).starts_with(": ");
}

std::string Trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\n' || s.front() == '\r'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\n' || s.back() == '\r'))
        s.remove_suffix(1);
    return std::string(s);
}

void ReplaceAll(std::string& s, std::string_view from, std::string_view to) {
    if (from.empty()) return;
    for (auto at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
        s.replace(at, from.size(), to);
}

std::string Bounded(std::string s) {
    if (s.size() > kMaxComplaintLength) {
        s.resize(kMaxComplaintLength);
        s += "...";
    }
    return s;
}

}  // namespace

std::vector<std::string> ParseSchemaComplaints(std::string_view output, std::string_view file) {
    std::string text(output);
    if (!file.empty()) {
        ReplaceAll(text, file, "userData");
        ReplaceAll(text, std::filesystem::path(file).filename().string(), "userData");
    }
    std::vector<std::string> out;
    const auto at = text.find(kErrorsPrefix);
    if (at == std::string::npos) {
        const auto trimmed = Trim(text);
        out.push_back(
            Bounded(trimmed.empty() ? "cloud-init schema refused the document" : trimmed));
        return out;
    }
    const std::string_view list = std::string_view(text).substr(at + kErrorsPrefix.size());
    std::size_t start = 0;
    for (std::size_t i = 0; i + 2 <= list.size() && out.size() < kMaxComplaints; ++i) {
        if (list[i] == ',' && list[i + 1] == ' ' && StartsComplaint(list.substr(i + 2))) {
            out.push_back(Bounded(Trim(list.substr(start, i - start))));
            start = i + 2;
        }
    }
    if (out.size() < kMaxComplaints) {
        auto last = Trim(list.substr(start));
        if (!last.empty()) out.push_back(Bounded(std::move(last)));
    }
    return out;
}

CloudInitValidator::CloudInitValidator(CloudInitValidatorOptions options)
    : options_(std::move(options)), slots_(std::clamp(options_.max_concurrent, 1, 64)) {}

Result<std::vector<std::string>> CloudInitValidator::Check(const std::string& cloud_config) {
    if (!slots_.try_acquire_for(options_.timeout))
        return Error::Unavailable("the cloud-init schema check is busy; try again");
    struct Release {
        std::counting_semaphore<64>& s;
        ~Release() { s.release(); }
    } release{slots_};

    TempFile file;
    if (!file.ok())
        return Error::Internal("cannot create a temporary file: " + ErrnoMessage(errno));
    if (!file.Write(cloud_config)) return Error::Internal("cannot write a temporary file");

    auto ran = process::RunProgram({options_.program, "schema", "--config-file", file.path()},
                                   options_.timeout);
    if (!ran) {
        if (ran.error().code == common::ErrorCode::kTimeout)
            return Error::Timeout("cloud-init schema did not finish within " +
                                  std::to_string(options_.timeout.count()) + " ms");
        return ran.error();
    }
    if (ran->exit_code == 0) return std::vector<std::string>{};
    // The verdict goes to stderr or stdout depending on cloud-init's version: both are read.
    const std::string output = ran->out + ran->err;
    if (ran->exit_code > 128)
        return Error::Internal("cloud-init schema ended by signal " +
                               std::to_string(ran->exit_code - 128));
    if (ran->exit_code == 127 && output.find(kErrorsPrefix) == std::string::npos)
        return Error::Unavailable("cannot run " + options_.program + ": " + Trim(output));
    return ParseSchemaComplaints(output, file.path());
}

}  // namespace decloud::orchestrator::adapters::templates
