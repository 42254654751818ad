#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "agent/ports/hypervisor.hpp"
#include "decloud/common/result.hpp"

namespace decloud::agent::adapters::libvirt {

struct VmStorageOptions {
    std::filesystem::path storage_dir;  // per-VM directories are created under it
    std::string qemu_img = "qemu-img";
    std::string genisoimage = "genisoimage";
    std::chrono::seconds program_timeout{120};
};

// Where one VM's files live: <storage_dir>/<vm_id>/{disk.qcow2,seed.iso,console.log}.
struct VmFiles {
    std::filesystem::path dir;
    std::filesystem::path disk;
    std::filesystem::path seed;
    std::filesystem::path console_log;  // the serial console's output, written by virtlogd
};

// The command lines, built as argv vectors (never passed to a shell).
std::vector<std::string> ImageInfoArgv(const std::string& qemu_img, const std::string& image);
std::vector<std::string> OverlayArgv(const std::string& qemu_img, const std::string& base_image,
                                     const std::string& base_format, const std::string& overlay,
                                     std::uint64_t size_gib);
// Run in the directory that holds meta-data, user-data and (optionally) network-config.
std::vector<std::string> SeedArgv(const std::string& genisoimage, const std::string& output_iso,
                                  bool with_network_config);

// A VM's overlay disk and NoCloud seed on the host's file system, made with qemu-img and
// genisoimage. Thread-safe for different VMs; callers serialise work on one VM.
class VmStorage {
  public:
    // Throws std::invalid_argument if storage_dir is empty. A relative storage_dir is made
    // absolute against the current directory.
    explicit VmStorage(VmStorageOptions options);

    // Paths for a canonical vm id (see CanonicalVmId); nothing is created.
    VmFiles FilesFor(const std::string& canonical_vm_id) const;

    // The format qemu-img reports for an image ("qcow2", "raw", ...).
    common::Result<std::string> ImageFormat(const std::string& image) const;
    // Creates the VM's directory, the overlay over spec.base_image (kept if it already exists,
    // since it may hold the guest's data) and a fresh seed ISO. Files appear complete or not at
    // all (written under a temporary name, then renamed). The console log is created empty
    // (mode 0640) if missing, so that it stays the agent's file when virtlogd, running as root,
    // writes it.
    common::Status Prepare(const std::string& canonical_vm_id, const ports::VmSpec& spec) const;
    // Removes the VM's directory and everything in it; a missing directory is a success.
    common::Status Remove(const std::string& canonical_vm_id) const;

  private:
    common::Status CreateOverlay(const ports::VmSpec& spec, const VmFiles& files) const;
    common::Status CreateSeed(const ports::CloudInitSeed& seed, const VmFiles& files) const;

    VmStorageOptions options_;
};

}  // namespace decloud::agent::adapters::libvirt
