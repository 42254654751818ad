#!/usr/bin/env bash
# Installs everything DeCloud needs to build, run and test, from Debian 12's packages.
# Idempotent: packages already present are skipped; apt runs only when something is missing.
set -euo pipefail

PACKAGES=(
    # toolchain
    g++ cmake ninja-build ccache pkg-config clang-format git
    # libraries
    libboost1.81-all-dev libpqxx-dev libtomlplusplus-dev libcli11-dev prometheus-cpp-dev
    libspdlog-dev libfmt-dev nlohmann-json3-dev libssl-dev libsecp256k1-dev libcrypto++-dev
    libvirt-dev
    libgtest-dev libgmock-dev libbenchmark-dev
    # what the daemons and tests run
    postgresql-15 postgresql-client-15 sysbench pciutils pci.ids curl procps iproute2 wrk
    openssh-client openssl ca-certificates
    # VMs: libvirt with QEMU, the tiny test guest, cloud-init seeds
    libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients libvirt-daemon-config-network
    qemu-system-x86 qemu-utils dnsmasq-base iptables busybox-static cpio xz-utils genisoimage
    cloud-init libxml2-utils
    # ingress proxy and relays: the peers the benchmarks compare against, WireGuard in userspace,
    # nftables (the library the agent links and the CLI the tests judge with)
    nginx-light iperf3 wireguard-go wireguard-tools nftables libnftables-dev
    # the .deb packages: building (CPack's dpkg-shlibdeps), lintian, systemd-analyze, a Debian
    # 12 chroot for the install/upgrade/purge test
    dpkg-dev fakeroot lintian debootstrap systemd
    # the web console's browser test (driven by playwright-core from npm)
    chromium
)

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js and npm run the interoperability tests against npm packages (eciesjs); a machine that
# already has them (Debian's or NodeSource's) keeps its own.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    missing+=(nodejs npm)
fi
if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps: all ${#PACKAGES[@]} packages present"
    exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
# We run our own throwaway clusters; do not let the package create and start a system one.
if [ ! -e /etc/postgresql-common/createcluster.conf ]; then
    $SUDO mkdir -p /etc/postgresql-common
    echo "create_main_cluster = false" | $SUDO tee /etc/postgresql-common/createcluster.conf >/dev/null
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
# The benchmarks start their own nginx on loopback; the package's system service is not wanted.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet nginx 2>/dev/null; then
    $SUDO systemctl disable --now nginx >/dev/null 2>&1 || true
fi
