#pragma once

#include <optional>
#include <string>

#include "agent/ports/hypervisor.hpp"
#include "decloud/common/result.hpp"

namespace decloud::agent::ports {

// A base image VMs are created from.
struct Image {
    std::string name;
    std::string disk;  // shared base image; VMs get qcow2 overlays on it
    std::optional<DirectKernelBoot> kernel_boot;
};

// Where base images come from. Blocking; thread-safe.
class ImageStore {
  public:
    virtual ~ImageStore() = default;
    // kInvalidArgument for a malformed name, kNotFound for an image this node lacks, kConflict
    // when the image is damaged (checksum mismatch).
    virtual common::Result<Image> Find(const std::string& name) = 0;
};

}  // namespace decloud::agent::ports
