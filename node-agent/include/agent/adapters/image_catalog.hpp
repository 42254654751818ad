#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "agent/ports/image_store.hpp"
#include "decloud/common/result.hpp"

namespace decloud::agent::adapters {

// Base images in a directory, one folder per image:
//   <dir>/<name>/disk.qcow2            the base disk (required)
//   <dir>/<name>/vmlinuz, initrd.img   optional: boot this kernel directly
//   <dir>/<name>/cmdline               optional: its command line
//   <dir>/<name>/SHA256SUMS            optional: "hex  file" lines; every listed file must match
// Checksums are verified the first time an image is used and again whenever a file's size or
// modification time changes, so a corrupted or half-copied image is never handed to a VM.
//
// With a base URL, an image missing here is fetched from <url>/<name>/: its SHA256SUMS first
// (required: an image that cannot be verified is never used), then each file it lists (only
// disk.qcow2, vmlinuz, initrd.img and cmdline), into a temporary folder that becomes
// <dir>/<name> only once every checksum matched. Downloads stream to disk (curl, http/https
// only). Thread-safe; one fetch at a time.
struct ImageFetchOptions {
    std::string base_url;  // empty: local images only
    std::string curl = "curl";
    std::chrono::seconds timeout{3600};  // per file
};

class ImageCatalog final : public ports::ImageStore {
  public:
    explicit ImageCatalog(std::string directory, ImageFetchOptions fetch = {})
        : directory_(std::move(directory)), fetch_(std::move(fetch)) {}

    // ports::ImageStore
    common::Result<ports::Image> Find(const std::string& name) override;
    const std::string& directory() const { return directory_; }

  private:
    common::Status Verify(const std::string& folder);
    common::Status Fetch(const std::string& name);

    std::string directory_;
    ImageFetchOptions fetch_;
    std::mutex fetch_mutex_;
    std::mutex mutex_;
    std::map<std::string, std::string> verified_;  // folder -> fingerprint of sizes and mtimes
};

}  // namespace decloud::agent::adapters
