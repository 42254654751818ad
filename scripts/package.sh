#!/usr/bin/env bash
# Builds the Debian packages decloud-node-agent and decloud-orchestrator with CPack from the
# release preset (build/release); the .debs land in build/release/packages (or --output).
#   scripts/package.sh [--revision N] [--version X.Y.Z] [--output DIR]
# --revision / --version make a "newer build" of the same sources (upgrade tests); they apply to
# this run only and do not change build/release's cache.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/build/release"
output="$build/packages"
revision=""
version=""
while [ $# -gt 0 ]; do
    case "$1" in
    --revision) revision="$2"; shift 2 ;;
    --version) version="$2"; shift 2 ;;
    --output) output="$2"; shift 2 ;;
    *) echo "usage: $0 [--revision N] [--version X.Y.Z] [--output DIR]" >&2; exit 2 ;;
    esac
done

export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/decloud-ccache}" CCACHE_BASEDIR="$root" CCACHE_NOHASHDIR=true
cd "$root"
# cpack installs only the packaged components; it must not build every target of the tree.
cmake --preset release -DCMAKE_SKIP_INSTALL_ALL_DEPENDENCY=ON >/dev/null
cmake --build "$build" -j"${JOBS:-2}" --target decloud-agent decloud-orchestrator decloud_package_files \
    decloud_web

args=(--config "$build/CPackConfig.cmake" -B "$output")
[ -n "$revision" ] && args+=(-D "CPACK_DEBIAN_PACKAGE_RELEASE=$revision")
[ -n "$version" ] && args+=(-D "CPACK_PACKAGE_VERSION=$version")
mkdir -p "$output"
cpack "${args[@]}" >"$output/cpack.log" 2>&1 || { cat "$output/cpack.log" >&2; exit 1; }
rm -rf "$output/_CPack_Packages"
ls -1 "$output"/*.deb
