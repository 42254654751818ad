#!/usr/bin/env bash
# A PostgreSQL 15 cluster of the project's own, under a directory we choose.
#   scripts/pg-cluster.sh start  DATA_DIR PORT   # initdb on first use, start, create db "decloud";
#                                                # the last line printed is the connection string
#   scripts/pg-cluster.sh stop   DATA_DIR
#   scripts/pg-cluster.sh status DATA_DIR
# As root, the server runs as the unprivileged user postgres (initdb refuses root).
set -euo pipefail
BIN=/usr/lib/postgresql/15/bin
cmd=${1:?usage: pg-cluster.sh start|stop|status DATA_DIR [PORT]}
dir=${2:?data directory required}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

as_pg() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$cmd" in
start)
    port=${3:?port required}
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres:postgres "$dir"
        if ! runuser -u postgres -- test -w "$dir"; then
            echo "pg-cluster: user postgres cannot reach $dir (a parent directory is private?)." >&2
            echo "pg-cluster: put the clone somewhere world-traversable, e.g. /srv or /opt." >&2
            exit 1
        fi
    fi
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        as_pg "$BIN/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C >"$dir/initdb.log" 2>&1 \
            || { cat "$dir/initdb.log" >&2; exit 1; }
    fi
    if ! as_pg "$BIN/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
        as_pg "$BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
            -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300" start >/dev/null \
            || { tail -n 20 "$dir/server.log" >&2; exit 1; }
    fi
    if ! "$BIN/psql" -h 127.0.0.1 -p "$port" -U postgres -Atc "SELECT 1 FROM pg_database WHERE datname='decloud'" postgres | grep -q 1; then
        "$BIN/createdb" -h 127.0.0.1 -p "$port" -U postgres decloud
    fi
    echo "postgresql://postgres@127.0.0.1:$port/decloud"
    ;;
stop)
    if [ -f "$dir/data/PG_VERSION" ] && as_pg "$BIN/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
        as_pg "$BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    fi
    ;;
status)
    as_pg "$BIN/pg_ctl" -D "$dir/data" status
    ;;
*)
    echo "usage: pg-cluster.sh start|stop|status DATA_DIR [PORT]" >&2
    exit 2
    ;;
esac
