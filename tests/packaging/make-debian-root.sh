#!/usr/bin/env bash
# Keeps a Debian 12 root for the package tests as a tarball, with the given packages installed:
#   make-debian-root.sh <root.tar> [package ...]
# First run: debootstrap (minbase, bookworm, from this machine's Debian mirror), then the
# packages (the .debs' Depends) with apt inside it, so the tests install the .debs offline.
# Later runs: nothing to do when <root.tar>.packages already lists every package; otherwise the
# missing ones are added and the tarball replaced. Services never start (policy-rc.d). /proc is
# mounted only while apt runs maintainer scripts, and unmounted on every exit path.
set -euo pipefail

out="$1"
shift
wanted=("$@")
manifest="$out.packages"

missing=()
for p in "${wanted[@]}"; do
    if [ ! -f "$out" ] || [ ! -f "$manifest" ] || ! grep -qxF "$p" "$manifest"; then missing+=("$p"); fi
done
if [ -f "$out" ] && [ ${#missing[@]} -eq 0 ]; then exit 0; fi

mirror=$(awk '/^URIs:/ && /debian\/?$/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
[ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $3 == "bookworm" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
[ -n "$mirror" ] || mirror="http://deb.debian.org/debian"

work=$(mktemp -d "${TMPDIR:-/tmp}/decloud-debootstrap.XXXXXX")
root="$work/root"
cleanup() {
    # Unmount anything left under the root (deepest first) before deleting it.
    set +e
    grep -o " $root[^ ]*" /proc/self/mounts 2>/dev/null | sort -r | while read -r m; do
        umount -l "$m"
    done
    if ! grep -q " $root" /proc/self/mounts; then rm -rf --one-file-system "$work"; fi
}
trap cleanup EXIT
in_root() { env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive chroot "$root" "$@"; }

if [ -f "$out" ]; then
    mkdir -p "$root"
    tar -C "$root" --numeric-owner -xpf "$out"
else
    echo "make-debian-root: debootstrap bookworm from $mirror" >&2
    debootstrap --variant=minbase bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
        { tail -n 30 "$work/debootstrap.log" >&2; exit 1; }
    printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
    chmod 0755 "$root/usr/sbin/policy-rc.d"
fi

if [ ${#missing[@]} -gt 0 ]; then
    echo "make-debian-root: installing ${missing[*]}" >&2
    cp /etc/resolv.conf "$root/etc/resolv.conf"
    mount -t proc proc "$root/proc"
    { in_root apt-get update -q && in_root apt-get install -y -q --no-install-recommends "${missing[@]}"; } \
        >"$work/apt.log" 2>&1 || { tail -n 30 "$work/apt.log" >&2; exit 1; }
    in_root apt-get clean
    umount "$root/proc"
    rm -f "$root/etc/resolv.conf"
fi

mkdir -p "$(dirname "$out")"
tar -C "$root" --numeric-owner -cf "$out.tmp" .
{ [ -f "$manifest" ] && cat "$manifest"; printf '%s\n' "${wanted[@]}"; } | sort -u >"$manifest.tmp"
mv "$out.tmp" "$out"
mv "$manifest.tmp" "$manifest"
echo "make-debian-root: $out ($(du -h "$out" | cut -f1))" >&2
