#!/usr/bin/env bash
# Installs what is needed, builds under ASan+UBSan and runs the whole test suite (CTest).
# Extra arguments go to ctest, e.g. `scripts/test.sh -L unit` or `scripts/test.sh -R cgnat`.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
# npm packages the interoperability tests and the ingress tests' upstream run, anvil + solc-js
# for the chain tests, and the web console's (Vite, xterm.js, playwright-core for the browser
# test), exactly as locked.
for dir in tests/interop/*/ tests/tools/upstream/ tests/tools/chain/ web/; do
    if [ ! -f "$dir/node_modules/.package-lock.json" ] ||
        [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
        npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
    fi
done
# Object files are cached outside the clone, so a fresh checkout rebuilds quickly.
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/decloud-ccache}"
export CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-5G}"
# Paths inside the clone are hashed relative to it, so a clone elsewhere hits the same entries.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}"
export CCACHE_NOHASHDIR=true
# The daemons under test are built with the sanitizers too; make them fail loudly.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

cmake --preset asan >/dev/null
cmake --build --preset asan -j"$(nproc)"
ctest --preset asan -j2 "$@"
