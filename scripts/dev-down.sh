#!/usr/bin/env bash
# Stops what scripts/dev-up.sh started (by the pids it recorded) and the PostgreSQL cluster.
set -uo pipefail
cd "$(dirname "$0")/.."
VAR=$PWD/var
quiet=${1:-}
for name in agent orchestrator; do
    pidfile=$VAR/run/$name.pid
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
        [ -n "$quiet" ] || echo "dev-down: stopped $name ($pid)"
    fi
    rm -f "$pidfile"
done
if [ -d "$VAR/pg" ]; then
    scripts/pg-cluster.sh stop "$VAR/pg" >/dev/null 2>&1 && { [ -n "$quiet" ] || echo "dev-down: stopped PostgreSQL"; }
fi
exit 0
