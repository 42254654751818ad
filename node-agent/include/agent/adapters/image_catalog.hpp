#pragma once

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
// Thread-safe.
class ImageCatalog final : public ports::ImageStore {
  public:
    explicit ImageCatalog(std::string directory) : directory_(std::move(directory)) {}

    // ports::ImageStore
    common::Result<ports::Image> Find(const std::string& name) override;
    const std::string& directory() const { return directory_; }

  private:
    common::Status Verify(const std::string& folder);

    std::string directory_;
    std::mutex mutex_;
    std::map<std::string, std::string> verified_;  // folder -> fingerprint of sizes and mtimes
};

}  // namespace decloud::agent::adapters
