#include "agent/adapters/libvirt/vm_storage.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "decloud/process/run_program.hpp"
#include "decloud/testing/process.hpp"

namespace decloud::agent::adapters::libvirt {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using common::ErrorCode;

constexpr const char* kVmId = "0d3c4b5a-6978-4a1b-9c2d-3e4f5a6b7c8d";

TEST(VmStorageCommands, AreArgvVectors) {
    EXPECT_EQ(OverlayArgv("qemu-img", "/img/base.qcow2", "qcow2", "/vms/x/disk.qcow2", 5),
              (std::vector<std::string>{"qemu-img", "create", "-f", "qcow2", "-F", "qcow2", "-b",
                                        "/img/base.qcow2", "/vms/x/disk.qcow2", "5G"}));
    EXPECT_EQ(SeedArgv("genisoimage", "/vms/x/seed.iso", false),
              (std::vector<std::string>{"genisoimage", "-output", "/vms/x/seed.iso", "-volid",
                                        "cidata", "-joliet", "-rock", "meta-data", "user-data"}));
    EXPECT_EQ(SeedArgv("genisoimage", "/s.iso", true).back(), "network-config");
    EXPECT_EQ(
        ImageInfoArgv("qemu-img", "/b.img"),
        (std::vector<std::string>{"qemu-img", "info", "--output=json", "--force-share", "/b.img"}));
}

class VmStorageTest : public ::testing::Test {
  protected:
    void SetUp() override {
        base_ = dir_.path() + "/base image's.qcow2";  // a quote in the path must not matter
        auto made =
            process::RunProgramChecked({"qemu-img", "create", "-f", "qcow2", base_, "64M"}, 60s);
        ASSERT_TRUE(made) << made.error().message;
        spec_.vm_id = kVmId;
        spec_.disk_gib = 2;
        spec_.base_image = base_;
        spec_.seed.meta_data = "instance-id: i-1\nlocal-hostname: tiny\n";
        spec_.seed.user_data = "#cloud-config\nruncmd: ['echo $(hi); rm -rf /']\n";
    }

    nlohmann::json Info(const fs::path& image) {
        auto out =
            process::RunProgramChecked({"qemu-img", "info", "--output=json", image.string()}, 60s);
        EXPECT_TRUE(out) << (out ? "" : out.error().message);
        return out ? nlohmann::json::parse(out->out) : nlohmann::json{};
    }

    // isoinfo reads a file out of the ISO by its Rock Ridge name.
    std::string IsoFile(const fs::path& iso, const std::string& name) {
        auto out = process::RunProgramChecked(
            {"isoinfo", "-R", "-i", iso.string(), "-x", "/" + name}, 60s);
        EXPECT_TRUE(out) << (out ? "" : out.error().message);
        return out ? out->out : "";
    }

    std::string IsoListing(const fs::path& iso) {
        auto out = process::RunProgramChecked({"isoinfo", "-R", "-i", iso.string(), "-f"}, 60s);
        EXPECT_TRUE(out) << (out ? "" : out.error().message);
        return out ? out->out : "";
    }

    testing::TempDir dir_{"decloud-vmstorage"};
    std::string base_;
    ports::VmSpec spec_;
    VmStorage storage_{VmStorageOptions{dir_.path() + "/vms"}};
};

TEST_F(VmStorageTest, ReportsTheBaseImageFormat) {
    auto format = storage_.ImageFormat(base_);
    ASSERT_TRUE(format) << format.error().message;
    EXPECT_EQ(*format, "qcow2");
    auto missing = storage_.ImageFormat(dir_.path() + "/missing.qcow2");
    ASSERT_FALSE(missing);
    EXPECT_NE(missing.error().message.find("missing.qcow2"), std::string::npos);
}

TEST_F(VmStorageTest, CreatesAnOverlayOnTheBaseImage) {
    ASSERT_TRUE(storage_.Prepare(kVmId, spec_));
    const auto files = storage_.FilesFor(kVmId);
    EXPECT_EQ(files.dir, fs::path(dir_.path()) / "vms" / kVmId);
    const auto info = Info(files.disk);
    EXPECT_EQ(info.value("format", ""), "qcow2");
    EXPECT_EQ(info.value("backing-filename", ""), base_);
    EXPECT_EQ(info.value("backing-filename-format", ""), "qcow2");
    EXPECT_EQ(info.value("virtual-size", 0ULL), 2ULL << 30);
    // Only the finished files remain.
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(files.dir))
        names.push_back(entry.path().filename().string());
    std::sort(names.begin(), names.end());
    EXPECT_EQ(names, (std::vector<std::string>{"console.log", "disk.qcow2", "seed.iso"}));
    // The console log starts empty and is not for other users to read.
    EXPECT_EQ(fs::file_size(files.console_log), 0u);
    EXPECT_EQ(fs::status(files.console_log).permissions(),
              fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
}

TEST_F(VmStorageTest, BuildsANoCloudSeedLabelledCidata) {
    ASSERT_TRUE(storage_.Prepare(kVmId, spec_));
    const auto seed = storage_.FilesFor(kVmId).seed;

    // The primary volume descriptor (sector 16) holds the volume id at byte 40, 32 bytes long.
    std::ifstream iso(seed, std::ios::binary);
    iso.seekg(32768);
    char pvd[72] = {};
    iso.read(pvd, sizeof pvd);
    ASSERT_TRUE(iso);
    EXPECT_EQ(static_cast<unsigned char>(pvd[0]), 1u);
    EXPECT_EQ(std::string(pvd + 1, 5), "CD001");
    std::string label(pvd + 40, 32);
    label.erase(label.find_last_not_of(' ') + 1);
    EXPECT_EQ(label, "cidata");

    auto isoinfo = process::RunProgramChecked({"isoinfo", "-d", "-i", seed.string()}, 60s);
    ASSERT_TRUE(isoinfo) << isoinfo.error().message;
    EXPECT_NE(isoinfo->out.find("Volume id: cidata"), std::string::npos) << isoinfo->out;

    EXPECT_EQ(IsoFile(seed, "meta-data"), spec_.seed.meta_data);
    EXPECT_EQ(IsoFile(seed, "user-data"), spec_.seed.user_data);
    EXPECT_EQ(IsoListing(seed).find("network-config"), std::string::npos);
}

TEST_F(VmStorageTest, IncludesNetworkConfigOnlyWhenGiven) {
    spec_.seed.network_config = "version: 2\nethernets:\n  eth0:\n    dhcp4: true\n";
    ASSERT_TRUE(storage_.Prepare(kVmId, spec_));
    const auto seed = storage_.FilesFor(kVmId).seed;
    EXPECT_NE(IsoListing(seed).find("/network-config"), std::string::npos);
    EXPECT_EQ(IsoFile(seed, "network-config"), spec_.seed.network_config);
}

TEST_F(VmStorageTest, PreparingAgainKeepsTheDiskAndRenewsTheSeed) {
    ASSERT_TRUE(storage_.Prepare(kVmId, spec_));
    const auto files = storage_.FilesFor(kVmId);
    const auto disk_time = fs::last_write_time(files.disk);
    const auto disk_inode = Info(files.disk).value("virtual-size", 0ULL);
    spec_.seed.meta_data = "instance-id: i-2\nlocal-hostname: renamed\n";
    spec_.disk_gib = 9;  // does not resize an existing disk
    ASSERT_TRUE(storage_.Prepare(kVmId, spec_));
    EXPECT_EQ(fs::last_write_time(files.disk), disk_time);
    EXPECT_EQ(Info(files.disk).value("virtual-size", 0ULL), disk_inode);
    EXPECT_EQ(IsoFile(files.seed, "meta-data"), spec_.seed.meta_data);
}

TEST_F(VmStorageTest, RemoveDeletesTheDirectoryAndIsIdempotent) {
    ASSERT_TRUE(storage_.Prepare(kVmId, spec_));
    const auto dir = storage_.FilesFor(kVmId).dir;
    ASSERT_TRUE(fs::exists(dir));
    EXPECT_TRUE(storage_.Remove(kVmId));
    EXPECT_FALSE(fs::exists(dir));
    EXPECT_TRUE(storage_.Remove(kVmId));
    EXPECT_TRUE(fs::exists(base_));
}

TEST_F(VmStorageTest, RefusesIdsThatAreNotCanonicalUuids) {
    for (const std::string bad : {"..", "../vms", "0D3C4B5A-6978-4A1B-9C2D-3E4F5A6B7C8D", "x"}) {
        auto prepared = storage_.Prepare(bad, spec_);
        ASSERT_FALSE(prepared) << bad;
        EXPECT_EQ(prepared.error().code, ErrorCode::kInvalidArgument);
        auto removed = storage_.Remove(bad);
        ASSERT_FALSE(removed) << bad;
        EXPECT_EQ(removed.error().code, ErrorCode::kInvalidArgument);
    }
    EXPECT_TRUE(fs::exists(base_));
}

TEST_F(VmStorageTest, MissingBaseImageIsNotFound) {
    spec_.base_image = dir_.path() + "/nope.qcow2";
    auto prepared = storage_.Prepare(kVmId, spec_);
    ASSERT_FALSE(prepared);
    EXPECT_EQ(prepared.error().code, ErrorCode::kNotFound);
    EXPECT_FALSE(fs::exists(storage_.FilesFor(kVmId).disk));
}

TEST_F(VmStorageTest, ToolFailuresCarryTheirStderr) {
    // Stand-ins that fail the way the real tools do: a message on stderr, a non-zero status.
    const auto fake = dir_.path() + "/failing-tool";
    std::ofstream(fake) << "#!/bin/sh\necho \"simulated failure: $1\" >&2\nexit 1\n";
    fs::permissions(fake, fs::perms::owner_all);
    VmStorage no_qemu_img{VmStorageOptions{dir_.path() + "/vms2", fake, "genisoimage"}};
    auto prepared = no_qemu_img.Prepare(kVmId, spec_);
    ASSERT_FALSE(prepared);
    EXPECT_NE(prepared.error().message.find("simulated failure: info"), std::string::npos)
        << prepared.error().message;
    EXPECT_FALSE(fs::exists(no_qemu_img.FilesFor(kVmId).disk));

    VmStorage no_genisoimage{VmStorageOptions{dir_.path() + "/vms3", "qemu-img", fake}};
    prepared = no_genisoimage.Prepare(kVmId, spec_);
    ASSERT_FALSE(prepared);
    EXPECT_NE(prepared.error().message.find("simulated failure: -output"), std::string::npos)
        << prepared.error().message;
    EXPECT_FALSE(fs::exists(no_genisoimage.FilesFor(kVmId).seed));
    EXPECT_FALSE(fs::exists(no_genisoimage.FilesFor(kVmId).dir / "seed.d"));
}

}  // namespace
}  // namespace decloud::agent::adapters::libvirt
