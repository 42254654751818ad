#include "agent/adapters/libvirt/vm_storage.hpp"

#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <system_error>

#include "agent/adapters/libvirt/domain_xml.hpp"
#include "decloud/process/run_program.hpp"

namespace decloud::agent::adapters::libvirt {

namespace fs = std::filesystem;
using common::Error;
using common::Result;

namespace {

common::Status WriteFile(const fs::path& path, const std::string& content) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
    out.close();
    if (!out) return Error::Internal("cannot write " + path.string());
    return common::Ok();
}

common::Status Rename(const fs::path& from, const fs::path& to) {
    std::error_code ec;
    fs::rename(from, to, ec);
    if (ec)
        return Error::Internal("cannot rename " + from.string() + " to " + to.string() + ": " +
                               ec.message());
    return common::Ok();
}

// The id becomes a path component: only a canonical UUID may, never "..", "/" or similar.
common::Status CheckCanonical(const std::string& vm_id) {
    auto canonical = CanonicalVmId(vm_id);
    if (!canonical) return canonical.error();
    if (*canonical != vm_id) return Error::InvalidArgument("vm id is not in canonical form");
    return common::Ok();
}

}  // namespace

std::vector<std::string> ImageInfoArgv(const std::string& qemu_img, const std::string& image) {
    // --force-share: the base image may be open in running guests.
    return {qemu_img, "info", "--output=json", "--force-share", image};
}

std::vector<std::string> OverlayArgv(const std::string& qemu_img, const std::string& base_image,
                                     const std::string& base_format, const std::string& overlay,
                                     std::uint64_t size_gib) {
    return {qemu_img,    "create", "-f",       "qcow2", "-F",
            base_format, "-b",     base_image, overlay, std::to_string(size_gib) + "G"};
}

std::vector<std::string> SeedArgv(const std::string& genisoimage, const std::string& output_iso,
                                  bool with_network_config) {
    std::vector<std::string> argv{genisoimage, "-output", output_iso,  "-volid",   "cidata",
                                  "-joliet",   "-rock",   "meta-data", "user-data"};
    if (with_network_config) argv.emplace_back("network-config");
    return argv;
}

VmStorage::VmStorage(VmStorageOptions options) : options_(std::move(options)) {
    if (options_.storage_dir.empty()) throw std::invalid_argument("storage directory not set");
    options_.storage_dir = fs::absolute(options_.storage_dir).lexically_normal();
}

VmFiles VmStorage::FilesFor(const std::string& canonical_vm_id) const {
    const auto dir = options_.storage_dir / canonical_vm_id;
    return {dir, dir / "disk.qcow2", dir / "seed.iso", dir / "console.log"};
}

Result<std::string> VmStorage::ImageFormat(const std::string& image) const {
    auto info = process::RunProgramChecked(ImageInfoArgv(options_.qemu_img, image),
                                           options_.program_timeout);
    if (!info) return info.error();
    const auto parsed = nlohmann::json::parse(info->out, nullptr, false);
    if (!parsed.is_object() || !parsed.contains("format") || !parsed["format"].is_string())
        return Error::Internal("qemu-img info gave no format for " + image);
    return parsed["format"].get<std::string>();
}

common::Status VmStorage::CreateOverlay(const ports::VmSpec& spec, const VmFiles& files) const {
    if (spec.base_image.empty()) return Error::InvalidArgument("no base image given");
    // Absolute, because qemu-img resolves a relative backing file against the overlay's directory,
    // and because a path starting with '/' cannot be read as a protocol ("nbd:...").
    const auto base = fs::absolute(spec.base_image).lexically_normal();
    std::error_code ec;
    if (!fs::is_regular_file(base, ec))
        return Error::NotFound("base image " + base.string() + " does not exist");
    auto format = ImageFormat(base.string());
    if (!format) return format.error();
    if (*format != "qcow2" && *format != "raw")
        return Error::InvalidArgument("base image " + base.string() + " is " + *format +
                                      ", expected qcow2 or raw");
    auto partial = files.disk;
    partial += ".part";
    fs::remove(partial, ec);
    auto created = process::RunProgramChecked(
        OverlayArgv(options_.qemu_img, base.string(), *format, partial.string(), spec.disk_gib),
        options_.program_timeout);
    if (!created) {
        fs::remove(partial, ec);
        return created.error();
    }
    return Rename(partial, files.disk);
}

common::Status VmStorage::CreateSeed(const ports::CloudInitSeed& seed, const VmFiles& files) const {
    const auto staging = files.dir / "seed.d";
    std::error_code ec;
    fs::remove_all(staging, ec);
    if (!fs::create_directory(staging, ec) || ec)
        return Error::Internal("cannot create " + staging.string() + ": " + ec.message());
    const bool with_network = !seed.network_config.empty();
    auto status = WriteFile(staging / "meta-data", seed.meta_data);
    if (status) status = WriteFile(staging / "user-data", seed.user_data);
    if (status && with_network) status = WriteFile(staging / "network-config", seed.network_config);
    auto partial = files.seed;
    partial += ".part";
    if (status) {
        fs::remove(partial, ec);
        auto built = process::RunProgramChecked(
            SeedArgv(options_.genisoimage, partial.string(), with_network),
            options_.program_timeout, staging.string());
        if (built) {
            status = Rename(partial, files.seed);
        } else {
            status = built.error();
        }
    }
    fs::remove(partial, ec);
    fs::remove_all(staging, ec);
    return status;
}

common::Status VmStorage::Prepare(const std::string& canonical_vm_id,
                                  const ports::VmSpec& spec) const {
    if (auto st = CheckCanonical(canonical_vm_id); !st) return st;
    const auto files = FilesFor(canonical_vm_id);
    std::error_code ec;
    fs::create_directories(files.dir, ec);
    if (ec) return Error::Internal("cannot create " + files.dir.string() + ": " + ec.message());
    if (!fs::exists(files.disk, ec)) {
        if (auto st = CreateOverlay(spec, files); !st) return st;
    }
    if (!fs::exists(files.console_log, ec)) {
        if (auto st = WriteFile(files.console_log, ""); !st) return st;
        fs::permissions(files.console_log,
                        fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read, ec);
        if (ec) return Error::Internal("cannot set the mode of " + files.console_log.string());
    }
    return CreateSeed(spec.seed, files);
}

common::Status VmStorage::Remove(const std::string& canonical_vm_id) const {
    if (auto st = CheckCanonical(canonical_vm_id); !st) return st;
    const auto files = FilesFor(canonical_vm_id);
    std::error_code ec;
    fs::remove_all(files.dir, ec);
    if (ec) return Error::Internal("cannot remove " + files.dir.string() + ": " + ec.message());
    return common::Ok();
}

}  // namespace decloud::agent::adapters::libvirt
