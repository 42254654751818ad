#!/usr/bin/env bash
# bench/heartbeats: N simulated agents heartbeating against one orchestrator with PostgreSQL,
# all on this machine. Peer in the same run: the same heartbeats done the naive way, one
# UPDATE per heartbeat straight into PostgreSQL (pgbench, same clients), which is what the
# orchestrator's batching is meant to beat. Last line: RESULT heartbeats_per_s=... p50_ms=...
# p99_ms=... peer_updates_per_s=... ratio=...
#
# Environment: NODES=20000 CONNECTIONS=64 SECONDS=20 IO_THREADS=2
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
NODES=${NODES:-20000}
CONNECTIONS=${CONNECTIONS:-64}
SECONDS_MEASURED=${SECONDS:-20}
IO_THREADS=${IO_THREADS:-2}
BIN=$ROOT/build/release

scripts/install-deps.sh >/dev/null
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/decloud-ccache}"
cmake --preset release >/dev/null
cmake --build --preset release -j"$(nproc)" --target decloud-orchestrator heartbeat_load >/dev/null

WORK=$(mktemp -d /tmp/decloud-bench-XXXXXX)
chmod 755 "$WORK"  # the database server runs as user postgres
PG_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
API_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ORCH_PID=""
cleanup() {
    [ -n "$ORCH_PID" ] && kill -TERM "$ORCH_PID" 2>/dev/null && wait "$ORCH_PID" 2>/dev/null
    scripts/pg-cluster.sh stop "$WORK/pg" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

DB_URL=$(scripts/pg-cluster.sh start "$WORK/pg" "$PG_PORT" | tail -n 1)
"$BIN/orchestrator/decloud-orchestrator" --set server.port="$API_PORT" --set database.url="$DB_URL" \
    --set server.io_threads="$IO_THREADS" --set auth.key_file="$WORK/jwt.keys" --set log.level=warn >"$WORK/orchestrator.log" 2>&1 &
ORCH_PID=$!
for _ in $(seq 1 240); do
    curl -fsS "http://127.0.0.1:$API_PORT/readyz" >/dev/null 2>&1 && break
    sleep 0.25
done

echo "== orchestrator: $NODES agents over $CONNECTIONS connections for ${SECONDS_MEASURED}s"
"$BIN/bench/heartbeats/heartbeat_load" --port "$API_PORT" --nodes "$NODES" \
    --connections "$CONNECTIONS" --seconds "$SECONDS_MEASURED" | tee "$WORK/load.txt"
ours=$(grep '^RESULT' "$WORK/load.txt" | tail -n 1)
rate=$(sed -n 's/.*heartbeats_per_s=\([0-9.]*\).*/\1/p' <<<"$ours")
p50=$(sed -n 's/.*p50_ms=\([0-9.]*\).*/\1/p' <<<"$ours")
p99=$(sed -n 's/.*p99_ms=\([0-9.]*\).*/\1/p' <<<"$ours")

# Durability of "last seen" may lag by at most a second: how long did the flushes take?
curl -fsS "http://127.0.0.1:$API_PORT/metrics" >"$WORK/metrics.txt"
flushes=$(sed -n 's/^decloud_heartbeat_flush_duration_seconds_count \([0-9.e+]*\)$/\1/p' "$WORK/metrics.txt")
flush_sum=$(sed -n 's/^decloud_heartbeat_flush_duration_seconds_sum \([0-9.e+-]*\)$/\1/p' "$WORK/metrics.txt")
under_1s=$(sed -n 's/^decloud_heartbeat_flush_duration_seconds_bucket{le="1"} \([0-9.e+]*\)$/\1/p' "$WORK/metrics.txt")
flush_mean_ms=$(python3 -c "print(f'{1000 * $flush_sum / max($flushes, 1):.1f}')")
flushes_over_1s=$(python3 -c "print(int($flushes - $under_1s))")
echo "heartbeat flushes: $flushes, mean ${flush_mean_ms} ms, over 1 s: $flushes_over_1s"

kill -TERM "$ORCH_PID"; wait "$ORCH_PID" || true; ORCH_PID=""

echo "== peer: one UPDATE per heartbeat with pgbench, $CONNECTIONS clients, same database"
PSQL=(psql "$DB_URL" -v ON_ERROR_STOP=1 -q)
"${PSQL[@]}" -c "DROP TABLE IF EXISTS bench_ids; CREATE TABLE bench_ids AS SELECT row_number() OVER (ORDER BY id) AS n, id FROM nodes; CREATE UNIQUE INDEX ON bench_ids(n); ANALYZE bench_ids;"
count=$("${PSQL[@]}" -At -c "SELECT count(*) FROM bench_ids")
cat >"$WORK/heartbeat.sql" <<SQL
\set n random(1, $count)
UPDATE nodes SET last_heartbeat_at = now(), updated_at = now(), usage = '{"cpuPercent":5,"memoryUsedBytes":1073741824,"storageUsedBytes":2147483648,"runningVms":2}'::jsonb WHERE id = (SELECT id FROM bench_ids WHERE n = :n);
SQL
/usr/lib/postgresql/15/bin/pgbench -n -c "$CONNECTIONS" -j 2 -T "$SECONDS_MEASURED" -f "$WORK/heartbeat.sql" "$DB_URL" | tee "$WORK/pgbench.txt"
peer=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$WORK/pgbench.txt" | head -n 1)
ratio=$(python3 -c "print(f'{$rate / $peer:.2f}')")
echo "orchestrator ${rate}/s vs naive per-heartbeat UPDATE ${peer}/s: ratio ${ratio}"
echo "RESULT heartbeats_per_s=$rate p50_ms=$p50 p99_ms=$p99 flush_mean_ms=$flush_mean_ms flushes_over_1s=$flushes_over_1s peer_updates_per_s=${peer%.*} ratio=$ratio"
