#!/usr/bin/env bash
# bench/scheduler: Schedule() over 10,000 and 100,000 random nodes against a naive scheduler
# (copy every fitting node, text for every rejection, full sort) in the same run. Builds nothing:
# build first with
#   cmake --preset release -DDECLOUD_BUILD_BENCH=ON && cmake --build --preset release --target scheduler_bench
# Usage: bench/scheduler/run.sh [path/to/scheduler_bench] [benchmark flags...]
# Last line: RESULT placements_per_s_10000=... placements_per_s=... nodes=100000
#            naive_placements_per_s=... ratio_vs_naive=...
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
echo "$result"
