#!/usr/bin/env bash
# bench/marketplace: marketplace searches at the scale of a real network. A throwaway PostgreSQL
# gets the orchestrator's schema, 100,000 nodes with 30 days of heartbeat history (availability
# intervals and daily counters) and VMs (load.sql, generated inside the database); then the
# search rows are rebuilt and typical filtered searches run one at a time through the real
# service and PostgreSQL adapter (marketplace_bench). A second pass logs every search's
# EXPLAIN ANALYZE plan with auto_explain, written to $PLANS (default /tmp/marketplace-plans.txt).
# Last line: RESULT nodes=... p50_ms=... p99_ms=...
#
# Environment: NODES=100000 QUERIES=3000 PRESET=release BUILD_DIR=build/$PRESET
#              PLANS=/tmp/marketplace-plans.txt
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
NODES=${NODES:-100000}
QUERIES=${QUERIES:-3000}
PRESET=${PRESET:-release}
BUILD_DIR=${BUILD_DIR:-build/$PRESET}
PLANS=${PLANS:-/tmp/marketplace-plans.txt}
NOW_EPOCH=1800000000
NOW_TEXT=$(date -u -d "@$NOW_EPOCH" '+%Y-%m-%d %H:%M:%S+00')

export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/decloud-ccache}"
cmake --preset "$PRESET" -B "$BUILD_DIR" >/dev/null
cmake --build "$BUILD_DIR" -j2 --target marketplace_bench >/dev/null
BIN=$ROOT/$BUILD_DIR/bench/marketplace/marketplace_bench

WORK=$(mktemp -d /tmp/decloud-bench-XXXXXX)
chmod 755 "$WORK"  # the database server runs as user postgres
PG_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cleanup() {
    scripts/pg-cluster.sh stop "$WORK/pg" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

DB_URL=$(scripts/pg-cluster.sh start "$WORK/pg" "$PG_PORT" | tail -n 1)
PSQL=(/usr/lib/postgresql/15/bin/psql "$DB_URL" -v ON_ERROR_STOP=1 -q)
"$BIN" --db "$DB_URL" --migrate

echo "== loading $NODES nodes, 30 days of history, VMs"
start=$(date +%s.%N)
"${PSQL[@]}" -v nodes="$NODES" -v now="$NOW_TEXT" -f bench/marketplace/load.sql
load_s=$(python3 -c "import time; print(f'{time.time() - $start:.1f}')")
"${PSQL[@]}" -At -c "SELECT 'rows: nodes ' || (SELECT count(*) FROM nodes) || ', availability ' ||
    (SELECT count(*) FROM node_availability) || ', daily stats ' ||
    (SELECT count(*) FROM node_daily_stats) || ', vms ' || (SELECT count(*) FROM vms)"
echo "loaded in ${load_s}s"

echo "== searches: $QUERIES, one at a time"
"$BIN" --db "$DB_URL" --now "$NOW_EPOCH" --queries "$QUERIES" --nodes "$NODES" | tee "$WORK/run.txt"
"${PSQL[@]}" -At -c "SELECT 'node_market: ' || pg_size_pretty(pg_total_relation_size('node_market'))
    || ' with indexes'"

echo "== EXPLAIN ANALYZE of each search kind (auto_explain) -> $PLANS"
"${PSQL[@]}" -c "ALTER DATABASE decloud SET session_preload_libraries = 'auto_explain';
    ALTER DATABASE decloud SET auto_explain.log_min_duration = 0;
    ALTER DATABASE decloud SET auto_explain.log_analyze = on;
    ALTER DATABASE decloud SET auto_explain.log_buffers = on;"
log_lines_before=$(wc -l <"$WORK/pg/server.log")
"$BIN" --db "$DB_URL" --now "$NOW_EPOCH" --explain >/dev/null
tail -n +"$((log_lines_before + 1))" "$WORK/pg/server.log" >"$PLANS"
echo "$(grep -c 'Query Text' "$PLANS") plans written"

grep '^RESULT' "$WORK/run.txt" | tail -n 1
