#!/usr/bin/env bash
# bench/scheduler: Schedule() over 10,000 and 100,000 random nodes against a naive scheduler
# (copy every fitting node, text for every rejection, full sort) in the same run. Builds nothing:
# build first with
#   cmake --preset release -DDECLOUD_BUILD_BENCH=ON && cmake --build --preset release --target scheduler_bench
# Usage: bench/scheduler/run.sh [path/to/scheduler_bench] [benchmark flags...]
# Last line: RESULT placements_per_s_10000=... placements_per_s=... nodes=100000
#            naive_placements_per_s=... ratio_vs_naive=... [create_to_running_s=...]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${1:-$ROOT/build/release/bench/scheduler/scheduler_bench}
[ $# -gt 0 ] && shift
if [ ! -x "$BIN" ]; then
    echo "scheduler_bench not found at $BIN; build it first (see the top of $0)" >&2
    exit 1
fi

OUT=$(mktemp /tmp/decloud-scheduler-bench-XXXXXX)
trap 'rm -f "$OUT"' EXIT
"$BIN" "$@" | tee "$OUT" | grep -v '^RESULT ' || true
result=$(grep '^RESULT ' "$OUT" | tail -n 1 || true)
if [ -z "$result" ]; then
    echo "scheduler_bench printed no RESULT line" >&2
    exit 1
fi
# Create-to-running for the tiny guest, end to end (orchestrator, agent, libvirtd in a namespace,
# QEMU emulation): the VM end-to-end test times create -> the guest's HTTP answer. It needs root
# and the asan build of the tests (scripts/test.sh makes it); skipped otherwise.
E2E=${E2E_BIN:-$ROOT/build/asan/tests/e2e/vm_e2e_test}
if [ "$(id -u)" -eq 0 ] && [ -x "$E2E" ]; then
    e2e_out=$(ASAN_OPTIONS=detect_leaks=0 "$E2E" --gtest_filter='*CreateRunStopStartDelete*' 2>&1 || true)
    seconds=$(echo "$e2e_out" | sed -n 's/^create to HTTP answer: \([0-9.]*\) s$/\1/p' | tail -n 1)
    if [ -n "$seconds" ]; then
        echo "create to running (guest answering HTTP): $seconds s"
        result="$result create_to_running_s=$seconds"
    else
        echo "vm_e2e_test did not report a create-to-running time" >&2
    fi
fi
echo "$result"
