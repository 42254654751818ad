#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "decloud/testing/process.hpp"

namespace decloud::testing {

// The tiny test guest: Debian's kernel and an initramfs of busybox-static with the virtio,
// CD-ROM and iso9660 modules. Built once by tests/tools/guest/build-tiny-guest.sh and cached
// outside the build tree ($DECLOUD_GUEST_CACHE, else ~/.cache/decloud-guest); a throw explains
// what is missing. Thread-safe; the script runs at most once per process.
//
// How to boot it (direct kernel boot, domain type 'qemu', machine q35 or pc):
//   <kernel>kernel</kernel> <initrd>initrd</initrd> <cmdline>cmdline</cmdline>
//   <features><acpi/></features>                        (for a clean `virsh shutdown`)
//   the NoCloud seed (iso9660, volume label "cidata", with meta-data) as a SATA CD-ROM:
//     <disk type='file' device='cdrom'>
//       <driver name='qemu' type='raw'/><source file='SEED.iso'/>
//       <target dev='sda' bus='sata'/><readonly/>
//     </disk>
//   (a virtio disk, bus='virtio', works too), one NIC with <model type='virtio'/>, and
//   <serial type='file'> (or pty) as the console. 256 MiB of RAM is enough.
struct TinyGuest {
    std::string kernel;      // path to vmlinuz
    std::string initrd;      // path to the initramfs
    std::string cmdline;     // what to boot it with ("console=ttyS0 ...")
    std::string base_image;  // a small qcow2 to put overlays on
    // What the guest does (see the script): reads its NoCloud seed from the CD-ROM, brings eth0
    // up by DHCP, serves HTTP on kHttpPort with /hostname holding the seed's local-hostname and
    // /instance-id its instance-id (no trailing newline), a WebSocket echo on kWebSocketPort
    // (tests/tools/guest/ws_echo.c: every frame back as sent, "!ping X" and "!close CODE REASON"
    // as the test upstream does), and prints kReadyMarker on its console.
    // It powers off when the ACPI power button is pressed (virsh shutdown, needs <acpi/>). It
    // takes 17-25 s under QEMU emulation from `virsh create` to answering HTTP.
    static constexpr int kHttpPort = 8080;
    static constexpr int kWebSocketPort = 9000;  // on the ingress proxy's default allow-list
    static constexpr const char* kReadyMarker = "DECLOUD-GUEST-READY";
    // user-data with this line makes the guest print kBootFailedMarker and power off at once.
    static constexpr const char* kFailBootUserData =
        "#cloud-config\ndecloud-test-guest: fail-boot\n";
    static constexpr const char* kBootFailedMarker = "DECLOUD-GUEST-BOOT-FAILED";
};
TinyGuest BuildOrLoadTinyGuest();

// libvirtd and virtlogd started by the test inside a network namespace of its own, with the
// libvirt network "default" (NAT, DHCP by dnsmasq) started inside that namespace, so guests'
// traffic never leaves it. Only one sandbox can exist at a time on a machine (libvirtd's sockets
// are global): tests that use it carry the CTest RESOURCE_LOCK "libvirtd". The destructor
// destroys and undefines every domain and network it finds, kills the daemons by their pids and
// deletes the namespace, also when the test failed. Throws std::runtime_error when it cannot
// start, with the daemons' logs in the message.
//
// How: the namespace is dcl-<pid of the test>. `ip netns exec` also gives the daemons a mount
// namespace in which /etc/netns/dcl-<pid>/ is bind-mounted over /etc: there the sandbox puts a
// fresh /etc/libvirt (qemu.conf running QEMU as root without a security driver, no definitions)
// and /etc/passwd, /etc/group with the libvirt-qemu user libvirtd insists on, so the host's
// configuration is neither needed nor touched. Sandboxes left by a crashed run (their dcl-<pid>
// process is gone) are killed and removed first; a libvirtd that is not ours makes it throw.
//
// With `existing_netns` the daemons and guests live in that namespace instead, which the caller
// created and deletes (a test's CGNAT node, say): the sandbox then neither creates nor deletes
// it, and of the processes in it stops only its own.
class LibvirtSandbox {
  public:
    explicit LibvirtSandbox(std::string existing_netns = {});
    ~LibvirtSandbox();
    LibvirtSandbox(const LibvirtSandbox&) = delete;
    LibvirtSandbox& operator=(const LibvirtSandbox&) = delete;

    std::string Uri() const { return "qemu:///system"; }
    const std::string& Namespace() const { return netns_; }
    std::string NetworkName() const { return "default"; }

    // Runs a command inside the namespace (`ip netns exec NS ...`) and returns its exit code and
    // output; for curl and friends.
    struct Output {
        int exit_code = -1;
        std::string out;
        std::string err;
    };
    Output ExecInNamespace(const std::vector<std::string>& argv, int timeout_seconds = 30) const;
    // An HTTP GET from inside the namespace (curl); empty on any failure.
    std::string HttpGet(const std::string& address, int port, const std::string& path,
                        int timeout_seconds = 5) const;
    // Restarts libvirtd (same namespace, same state), for reconnection tests.
    void RestartLibvirtd();
    // Daemon logs, for failure messages.
    std::string Logs() const;

    // The daemons' pids (they change when libvirtd restarts).
    int LibvirtdPid() const { return libvirtd_pid_; }
    int VirtlogdPid() const { return virtlogd_pid_; }
    // Runs `virsh -c Uri() args...` (a test tool may shell out; product code does not).
    CommandResult Virsh(const std::vector<std::string>& args, int timeout_seconds = 60) const;

  private:
    void Start();
    void StartLibvirtd();
    void EnsureDefaultNetwork();
    void TearDown() noexcept;

    std::string netns_;  // set once no foreign daemon was found
    std::string existing_netns_;
    bool owns_netns_ = true;
    std::string state_dir_;
    std::string etc_dir_;  // /etc/netns/<netns_>
    int libvirtd_pid_ = -1;
    int virtlogd_pid_ = -1;
    std::unique_ptr<ChildProcess> libvirtd_;
    std::unique_ptr<ChildProcess> virtlogd_;
    std::filesystem::file_time_type started_at_;
};

}  // namespace decloud::testing
