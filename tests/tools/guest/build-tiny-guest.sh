#!/usr/bin/env bash
# Builds the tiny test guest into OUT_DIR:
#   vmlinuz       Debian's current kernel (the package linux-image-amd64 points at), downloaded with
#                 apt-get download and unpacked with dpkg-deb; nothing is installed on the host.
#   initrd.img    gzip'd cpio (newc) of busybox-static, ws-echo (ws_echo.c next to this script,
#                 linked statically here), the kernel modules below and /init.
#   cmdline       the kernel command line to boot it with.
#   base.qcow2    an empty 64 MiB qcow2 to put overlays on (the guest never needs it).
#   stamp         kernel package + version + hashes of this script and ws_echo.c; same stamp =>
#                 nothing to do.
#
# What the guest does (/init):
#   1. mounts proc, sys, devtmpfs; loads virtio (PCI, net, blk), the SATA/AHCI CD-ROM stack,
#      isofs, and the ACPI power button, in dependency order computed here from each module's
#      "depends=" field;
#   2. finds the NoCloud seed: an iso9660 filesystem labelled "cidata". It must be attached as a
#      CD-ROM on the SATA bus:
#          <disk type='file' device='cdrom'>
#            <driver name='qemu' type='raw'/>
#            <source file='/path/seed.iso'/>
#            <target dev='sda' bus='sata'/>
#            <readonly/>
#          </disk>
#      (a virtio disk, bus='virtio', also works: virtio_blk is loaded too);
#   3. writes meta-data's (YAML) instance-id and local-hostname to /www/instance-id and /www/hostname
#      (no trailing newline) and sets the hostname;
#   4. gets eth0's address by DHCP (busybox udhcpc with the script /etc/udhcpc.sh);
#   5. serves /www with busybox httpd on port 8080, a WebSocket echo (ws-echo) on port 9000, and
#      prints DECLOUD-GUEST-READY on the console;
#   6. powers off (after sync) when the ACPI power button is pressed, i.e. on `virsh shutdown`.
# A guest whose user-data holds the line "decloud-test-guest: fail-boot" plays a boot that fails:
# after step 3 it prints DECLOUD-GUEST-BOOT-FAILED on its console and powers off.
#
# Needs: apt-get (with a reachable Debian mirror on the first run), dpkg-deb, busybox-static,
# cpio, gzip, xz-utils, qemu-utils, flock (util-linux), a C compiler with a static libc (gcc,
# libc6-dev). Runs as any user that can write OUT_DIR.
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 OUT_DIR" >&2
    exit 2
fi
OUT_DIR=$1
mkdir -p "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)

readonly CMDLINE="console=ttyS0 loglevel=4 panic=-1"
# Loaded in this order after their dependencies (which are added automatically).
readonly WANTED_MODULES=(
    virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci
    failover net_failover virtio_net virtio_blk
    scsi_common scsi_mod libata libahci ahci cdrom sr_mod isofs
    button evdev
)

die() {
    echo "build-tiny-guest: $*" >&2
    exit 1
}

for tool in apt-cache apt-get dpkg-deb cpio gzip qemu-img flock sha256sum cc; do
    command -v "$tool" >/dev/null 2>&1 || die "missing tool: $tool"
done
BUSYBOX=/bin/busybox
[ -x "$BUSYBOX" ] || BUSYBOX=$(command -v busybox || true)
if [ -z "$BUSYBOX" ] || [ ! -x "$BUSYBOX" ]; then
    die "busybox not found (install busybox-static)"
fi
# The guest has no libc: the busybox copied into it must be the static build.
if ldd "$BUSYBOX" >/dev/null 2>&1; then
    die "$BUSYBOX is dynamically linked; install busybox-static"
fi

# One builder at a time per OUT_DIR; a second caller waits and then finds the cache warm.
exec 9>"$OUT_DIR/.lock"
flock 9

# The kernel package linux-image-amd64 currently depends on, e.g. linux-image-6.1.0-56-amd64, and
# its version, from one apt-cache call (each takes seconds when apt keeps no binary cache).
# The -cloud-amd64 flavour lacks the AHCI driver the SATA CD-ROM needs, so the generic one is used.
META_DEPENDS=$(apt-cache show --no-all-versions linux-image-amd64 2>/dev/null |
    sed -n 's/^Depends: //p' | head -n1)
if [ -z "$META_DEPENDS" ] && [ "$(id -u)" -eq 0 ]; then
    # A machine whose packages were all installed long ago may have no package lists left.
    apt-get update -qq >/dev/null 2>&1 || true
    META_DEPENDS=$(apt-cache show --no-all-versions linux-image-amd64 2>/dev/null |
        sed -n 's/^Depends: //p' | head -n1)
fi
KPKG=$(echo "$META_DEPENDS" | tr ',' '\n' |
    sed -n 's/^ *\(linux-image-[0-9][^ ]*-amd64\).*/\1/p' | head -n1)
[ -n "$KPKG" ] || die "apt-cache does not know linux-image-amd64 (run apt-get update)"
KVER_PKG=$(echo "$META_DEPENDS" | tr ',' '\n' |
    sed -n "s/^ *$KPKG (= \([^)]*\)).*/\1/p" | head -n1)
if [ -z "$KVER_PKG" ]; then
    KVER_PKG=$(apt-cache show --no-all-versions "$KPKG" 2>/dev/null | sed -n 's/^Version: //p' |
        head -n1)
fi
[ -n "$KVER_PKG" ] || die "apt-cache has no version for $KPKG"
WS_ECHO_SOURCE=$(dirname "$0")/ws_echo.c
[ -f "$WS_ECHO_SOURCE" ] || die "missing $WS_ECHO_SOURCE"
SCRIPT_HASH=$(cat "$0" "$WS_ECHO_SOURCE" | sha256sum | cut -d' ' -f1)
STAMP="$KPKG $KVER_PKG $SCRIPT_HASH"

outputs_present() {
    [ -s "$OUT_DIR/vmlinuz" ] && [ -s "$OUT_DIR/initrd.img" ] && [ -s "$OUT_DIR/cmdline" ] &&
        [ -s "$OUT_DIR/base.qcow2" ] && [ -s "$OUT_DIR/stamp" ]
}
if outputs_present && [ "$(cat "$OUT_DIR/stamp")" = "$STAMP" ]; then
    echo "build-tiny-guest: up to date ($STAMP)"
    exit 0
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tiny-guest.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

echo "build-tiny-guest: downloading $KPKG $KVER_PKG"
# apt-get download writes into the current directory; _apt cannot write to a private temp dir,
# which apt reports as a harmless warning.
if ! (cd "$WORK" && apt-get download -q "$KPKG=$KVER_PKG" >"$WORK/download.log" 2>&1); then
    cat "$WORK/download.log" >&2
    die "apt-get download $KPKG failed"
fi
DEB=$(find "$WORK" -maxdepth 1 -name 'linux-image-*.deb' -print -quit)
[ -n "$DEB" ] || die "apt-get download left no .deb"
dpkg-deb -x "$DEB" "$WORK/kernel"

KBOOT=$(find "$WORK/kernel/boot" -maxdepth 1 -name 'vmlinuz-*' -print -quit 2>/dev/null || true)
[ -n "$KBOOT" ] || die "$KPKG has no /boot/vmlinuz-*"
KREL=${KBOOT##*/vmlinuz-}
MODDIR="$WORK/kernel/lib/modules/$KREL"
[ -d "$MODDIR" ] || die "$KPKG has no /lib/modules/$KREL"

# Module name -> path of its .ko / .ko.xz / .ko.zst. Names use '_' but files may use '-'.
module_path() {
    local name=$1 alt=${1//_/-}
    find "$MODDIR" \( -name "$name.ko" -o -name "$name.ko.*" -o -name "$alt.ko" \
        -o -name "$alt.ko.*" \) -print -quit
}
# Gives an uncompressed copy of a module at $2.
unpack_module() {
    case "$1" in
        *.ko) cp "$1" "$2" ;;
        *.ko.xz) xz -dc "$1" >"$2" ;;
        *.ko.zst) zstd -qdc "$1" >"$2" ;;
        *.ko.gz) gzip -dc "$1" >"$2" ;;
        *) die "unknown module format: $1" ;;
    esac
}
# The depends= field of the module's .modinfo (NUL-separated key=value strings), without modinfo,
# which is in kmod, not installed on every host, and wants a modules.dep for the running kernel.
module_depends() {
    tr '\0' '\n' <"$1" | sed -n 's/^depends=//p' | head -n1 | tr ',' ' '
}

STAGE="$WORK/initramfs"
mkdir -p "$STAGE"/{bin,sbin,etc,proc,sys,dev,run,tmp,mnt/seed,www,lib/modules,usr/bin,usr/sbin}
declare -A VISITED=()
ORDER=()
visit() {
    local name=$1
    [ -n "${VISITED[$name]:-}" ] && return 0
    VISITED[$name]=1
    if grep -qE "/${name//_/[_-]}\.ko\$" "$MODDIR/modules.builtin"; then
        return 0
    fi
    local src
    src=$(module_path "$name")
    [ -n "$src" ] || die "module $name not in $KPKG and not built in"
    unpack_module "$src" "$WORK/$name.ko"
    local dep
    for dep in $(module_depends "$WORK/$name.ko"); do
        visit "$dep"
    done
    mv "$WORK/$name.ko" "$STAGE/lib/modules/$name.ko"
    ORDER+=("$name")
}
for m in "${WANTED_MODULES[@]}"; do
    visit "$m"
done
printf '%s\n' "${ORDER[@]}" >"$STAGE/lib/modules/load-order"
echo "build-tiny-guest: modules: ${ORDER[*]}"

cp "$BUSYBOX" "$STAGE/bin/busybox"
for applet in $("$BUSYBOX" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$STAGE/bin/$applet"
done

# The guest has no libc either: ws-echo is linked statically.
cc -static -O2 -std=c11 -D_DEFAULT_SOURCE -Wall -Wextra -Werror -o "$STAGE/bin/ws-echo" \
    "$WS_ECHO_SOURCE" || die "compiling $WS_ECHO_SOURCE failed"

cat >"$STAGE/etc/udhcpc.sh" <<'EOF'
#!/bin/sh
# busybox udhcpc hook: $1 is the event; $ip, $mask (prefix length), $router, $dns from the lease.
case "$1" in
    deconfig)
        ip addr flush dev "$interface"
        ip link set "$interface" up
        ;;
    bound|renew)
        ip addr flush dev "$interface"
        ip addr add "$ip/${mask:-24}" dev "$interface"
        for r in $router; do
            ip route replace default via "$r" dev "$interface"
            break
        done
        : >/etc/resolv.conf
        for d in $dns; do echo "nameserver $d" >>/etc/resolv.conf; done
        echo "udhcpc: $interface has $ip/${mask:-24}" >/dev/console
        ;;
esac
exit 0
EOF
chmod 755 "$STAGE/etc/udhcpc.sh"

cat >"$STAGE/init" <<'EOF'
#!/bin/sh
# PID 1 of the tiny DeCloud test guest (see tests/tools/guest/build-tiny-guest.sh).
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# The initramfs has no /dev/console node, so the kernel could not give us one: reopen it.
exec </dev/console >/dev/console 2>&1
say() { echo "tiny-guest: $*"; }

while read -r m; do
    insmod "/lib/modules/$m.ko" || say "insmod $m failed"
done </lib/modules/load-order

# Power off cleanly on the ACPI power button (virsh shutdown): wait for a key event from the
# "Power Button" input device, then sync and power off.
power_button_watch() {
    for dev in /sys/class/input/event*; do
        if grep -q "Power Button" "$dev/device/name" 2>/dev/null; then
            dd if="/dev/input/${dev##*/}" of=/dev/null bs=24 count=1 2>/dev/null
            say "power button pressed, powering off"
            sync
            poweroff -f
        fi
    done
}
power_button_watch &

# The seed: iso9660 labelled cidata, on a SATA CD-ROM (sr0) or a virtio disk (vd*). Devices appear
# asynchronously after the drivers load, so retry for a while.
SEED=""
i=0
while [ $i -lt 60 ]; do
    SEED=$(findfs LABEL=cidata 2>/dev/null || true)
    [ -n "$SEED" ] && break
    for d in /dev/sr* /dev/vd*; do
        [ -b "$d" ] || continue
        if mount -t iso9660 -o ro "$d" /mnt/seed 2>/dev/null; then
            if [ -f /mnt/seed/meta-data ]; then SEED=$d; umount /mnt/seed; break; fi
            umount /mnt/seed
        fi
    done
    [ -n "$SEED" ] && break
    i=$((i + 1))
    sleep 1
done
# meta-data is YAML: take the value of a top-level "key: value" line, without quotes.
meta() {
    sed -n "s/^$1:[[:space:]]*//p" /mnt/seed/meta-data | head -n1 |
        sed -e 's/\r$//' -e 's/[[:space:]]*$//' -e "s/^[\"']//" -e "s/[\"']\$//"
}
if [ -n "$SEED" ] && mount -t iso9660 -o ro "$SEED" /mnt/seed; then
    say "seed on $SEED"
    meta instance-id | tr -d '\n' >/www/instance-id
    meta local-hostname | tr -d '\n' >/www/hostname
    grep -q "^decloud-test-guest: fail-boot" /mnt/seed/user-data 2>/dev/null && FAIL_BOOT=1
    umount /mnt/seed
    [ -s /www/hostname ] && hostname "$(cat /www/hostname)"
else
    say "no cidata seed found"
fi

if [ -n "${FAIL_BOOT:-}" ]; then
    say "the user-data asks for a failed boot"
    echo "DECLOUD-GUEST-BOOT-FAILED"
    sync
    poweroff -f
fi

ip link set lo up
ip link set eth0 up
tries=0
until udhcpc -i eth0 -n -q -t 10 -s /etc/udhcpc.sh; do
    tries=$((tries + 1))
    [ $tries -ge 5 ] && { say "no DHCP lease"; break; }
done

httpd -p 8080 -h /www
ws-echo 9000 &
echo "DECLOUD-GUEST-READY"
while true; do sleep 3600; done
EOF
chmod 755 "$STAGE/init"

echo "build-tiny-guest: packing initramfs"
(cd "$STAGE" && find . -print0 | LC_ALL=C sort -z |
    cpio --null --quiet -o -H newc -R 0:0 | gzip -9n) >"$WORK/initrd.img"
cp "$KBOOT" "$WORK/vmlinuz"
echo "$CMDLINE" >"$WORK/cmdline"
qemu-img create -q -f qcow2 "$WORK/base.qcow2" 64M

# Replace the outputs; the stamp goes last so an interrupted run is never mistaken for a cache.
rm -f "$OUT_DIR/stamp"
for f in vmlinuz initrd.img cmdline base.qcow2; do
    mv -f "$WORK/$f" "$OUT_DIR/$f"
done
echo "$STAMP" >"$OUT_DIR/stamp.tmp"
mv -f "$OUT_DIR/stamp.tmp" "$OUT_DIR/stamp"
echo "build-tiny-guest: built $STAMP in $OUT_DIR"
