#!/usr/bin/env bash
# bench/proxy: the node agent's ingress proxy (decloud-ingress, one io thread) against nginx set
# up as the equivalent reverse proxy (one worker, keep-alive to the client and to the upstream),
# in the same run, to the same upstream, on loopback only. Builds nothing: build first with
#   cmake --preset release -DDECLOUD_BUILD_BENCH=ON
#   cmake --build --preset release --target decloud-ingress proxy_load proxy_ws_echo
# Usage: bench/proxy/run.sh [build dir]          (default: build/release)
#
# Upstream: a second nginx (one worker) answering every GET with a fixed 100-byte body, and
# proxy_ws_echo (one thread) for WebSockets. Both proxies route the same path form,
# /api/vms/{id}/proxy/http/{port}/..., to them and add the same forwarding headers.
#  1. throughput: wrk -t1 -c$CONNECTIONS --latency through each proxy (and direct, for reference),
#     after a warm-up, alternating nginx and ours for $ROUNDS rounds; the best round of each
#     counts. Also shown: the proxy process's CPU time per request (utime+stime from /proc), which
#     other load on the machine hardly disturbs;
#  2. added latency: proxy_load rate, open loop at half of nginx's best requests/s, latency from the
#     scheduled send; direct, ours, ours-bp and nginx alternate for $RATE_ROUNDS rounds and the
#     lowest p50 and p99 of each count (other work on the machine only ever adds); added = proxy -
#     direct. 2b: the same for direct, ours and ours-bp, a second decloud-ingress with
#     --busy-poll-us $BUSY_POLL_US (the agent's ingress.busy_poll), which spends CPU while traffic
#     flows to skip the wake-up of a sleeping thread; always with plain scheduling (see RT);
#  3. WebSocket echo throughput (64-byte messages) direct, through ours, through nginx, best of
#     $WS_ROUNDS alternating rounds;
#  4. idle WebSocket memory: VmRSS growth of the proxy process (nginx: its worker) per bridged,
#     idle WebSocket, over $IDLE_WS connections.
# ours_p50_us/ours_p99_us/nginx_* in the RESULT line are the fixed-rate figures of step 2.
# One run takes about 2.5 minutes.
#
# Environment: CONNECTIONS=64 WRK_SECONDS=5 ROUNDS=3 RATE_CONNECTIONS=16 RATE_SECONDS=6
#   RATE_ROUNDS=3 WS_CONNECTIONS=16 WS_SECONDS=4 WS_ROUNDS=2 IDLE_WS=1000 BUSY_POLL_US=50
#   INGRESS_BIN=<decloud-ingress to measure> (default: <build dir>/node-agent/decloud-ingress)
#   PROFILE=<file>: also record decloud-ingress under wrk with perf and write the report there.
#   RT=1 (default, root only): during step 2 the load generator, both proxies and the upstream run
#     SCHED_RR priority 1. On a machine shared with other work (compiles) a SCHED_OTHER process
#     waits milliseconds for a core, which buries the microseconds being measured; step 2 keeps
#     under one of the cores busy, so the rest of the machine keeps running. RT=0: plain scheduling.
#     Step 2b always runs with plain scheduling.
# Last line: RESULT ours_rps=... nginx_rps=... ratio_vs_nginx=... ours_p50_us=... ours_p99_us=...
#   nginx_p50_us=... nginx_p99_us=... added_p50_us=... added_p99_us=... nginx_added_p50_us=...
#   nginx_added_p99_us=... busy_poll_added_p50_us=...
#   busy_poll_added_p99_us=... ws_msgs_per_s=...
#   ws_direct_msgs_per_s=... ws_ratio_vs_direct=... ws_idle_kib_per_conn=...
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$ROOT/build/release}
CONNECTIONS=${CONNECTIONS:-64}
WRK_SECONDS=${WRK_SECONDS:-5}
ROUNDS=${ROUNDS:-3}
RATE_CONNECTIONS=${RATE_CONNECTIONS:-16}
RATE_SECONDS=${RATE_SECONDS:-6}
RATE_ROUNDS=${RATE_ROUNDS:-3}
WS_CONNECTIONS=${WS_CONNECTIONS:-16}
WS_SECONDS=${WS_SECONDS:-4}
WS_ROUNDS=${WS_ROUNDS:-2}
IDLE_WS=${IDLE_WS:-1000}
BUSY_POLL_US=${BUSY_POLL_US:-50}
PROFILE=${PROFILE:-}
RT=${RT:-1}
INGRESS=${INGRESS_BIN:-$BUILD/node-agent/decloud-ingress}
LOAD=$BUILD/bench/proxy/proxy_load
ECHO=$BUILD/bench/proxy/proxy_ws_echo
for bin in "$INGRESS" "$LOAD" "$ECHO"; do
    if [ ! -x "$bin" ]; then
        echo "$bin not found; build it first (see the top of $0)" >&2
        exit 1
    fi
done
for tool in nginx wrk python3 curl; do
    command -v "$tool" >/dev/null || { echo "$tool is required" >&2; exit 1; }
done

WORK=$(mktemp -d /tmp/decloud-proxy-bench-XXXXXX)
chmod 755 "$WORK"  # nginx workers drop to an unprivileged user when started as root
PIDS=()   # daemons started here, alive until cleanup
FG_PID="" # the measuring command running now (see run)
cleanup() {
    local pid
    [ -n "$FG_PID" ] && PIDS+=("$FG_PID")
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Runs a command in the background so that a signal to this script reaches cleanup at once;
# waits for it and returns its status. Its pid is forgotten once it is reaped (never kill a
# recycled pid).
run() {
    "$@" &
    FG_PID=$!
    local rc=0
    wait "$FG_PID" || rc=$?
    FG_PID=""
    return $rc
}

# CPU time (user + system, all threads) of a process in microseconds.
CLK_TCK=$(getconf CLK_TCK)
cpu_us() {
    sed 's/.*) //' "/proc/$1/stat" | awk -v hz="$CLK_TCK" '{ printf "%.0f", ($12 + $13) * 1e6 / hz }'
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_for FILE PATTERN PID: until FILE has a line matching PATTERN (10 s at most).
wait_for() {
    for _ in $(seq 1 200); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        kill -0 "$3" 2>/dev/null || { echo "process $3 exited; its log:" >&2; cat "$1" >&2; exit 1; }
        sleep 0.05
    done
    echo "timed out waiting for '$2' in $1" >&2
    exit 1
}

wait_http() {  # wait_http URL PID LOG
    for _ in $(seq 1 200); do
        curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
        kill -0 "$2" 2>/dev/null || { echo "process $2 exited; its log:" >&2; cat "$3" >&2; exit 1; }
        sleep 0.05
    done
    echo "no answer from $1" >&2
    exit 1
}

# nginx_conf DIR: the part both nginx instances share; no path outside DIR.
nginx_conf() {
    mkdir -p "$1/tmp"
    cat <<EOF
worker_processes 1;
daemon off;
pid $1/nginx.pid;
error_log $1/error.log warn;
worker_rlimit_nofile 65536;
events { worker_connections 16384; }
http {
    access_log off;
    client_body_temp_path $1/tmp/body;
    proxy_temp_path $1/tmp/proxy;
    fastcgi_temp_path $1/tmp/fastcgi;
    uwsgi_temp_path $1/tmp/uwsgi;
    scgi_temp_path $1/tmp/scgi;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
EOF
}

VM_ID=8f0c2a8e-5d1b-4c53-9a57-0b6f3e1d2c4a
UP_PORT=$(free_port)
NGX_PORT=$(free_port)
BODY=$(printf 'ok %097d' 0)  # 100 bytes

# Upstream for HTTP: nginx with a fixed answer.
mkdir -p "$WORK/upstream"
{
    nginx_conf "$WORK/upstream"
    cat <<EOF
    server {
        listen 127.0.0.1:$UP_PORT;
        location / {
            default_type text/plain;
            return 200 "$BODY";
        }
    }
}
EOF
} >"$WORK/upstream/nginx.conf"
nginx -p "$WORK/upstream" -c "$WORK/upstream/nginx.conf" -e "$WORK/upstream/error.log" \
    >"$WORK/upstream/out.log" 2>&1 &
UP_PID=$!
PIDS+=("$UP_PID")

# Upstream for WebSockets.
"$ECHO" --listen 127.0.0.1:0 >"$WORK/echo.log" 2>&1 &
ECHO_PID=$!
PIDS+=("$ECHO_PID")
wait_for "$WORK/echo.log" 'listening on' "$ECHO_PID"
WS_PORT=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\)$/\1/p' "$WORK/echo.log")

HTTP_PATH=/api/vms/$VM_ID/proxy/http/$UP_PORT/
WS_PATH=/api/vms/$VM_ID/proxy/http/$WS_PORT/

# nginx as the reverse proxy: the same route, the same forwarding headers as ours.
mkdir -p "$WORK/nginx"
{
    nginx_conf "$WORK/nginx"
    cat <<EOF
    upstream vm_http {
        server 127.0.0.1:$UP_PORT;
        keepalive 64;
        keepalive_requests 10000000;
        keepalive_timeout 300s;
    }
    upstream vm_ws {
        server 127.0.0.1:$WS_PORT;
    }
    server {
        listen 127.0.0.1:$NGX_PORT;
        location $HTTP_PATH {
            proxy_pass http://vm_http/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$http_host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header Forwarded "for=\$remote_addr";
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_set_header X-Forwarded-Host \$http_host;
        }
        location $WS_PATH {
            proxy_pass http://vm_ws/;
            proxy_http_version 1.1;
            proxy_set_header Upgrade \$http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_set_header Host \$http_host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header Forwarded "for=\$remote_addr";
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_set_header X-Forwarded-Host \$http_host;
            proxy_read_timeout 600s;
            proxy_send_timeout 600s;
        }
    }
}
EOF
} >"$WORK/nginx/nginx.conf"
nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log" \
    >"$WORK/nginx/out.log" 2>&1 &
NGX_PID=$!
PIDS+=("$NGX_PID")

# Ours, routing the same VM: the HTTP upstream is its default port, the echo server an extra port.
cat >"$WORK/routes.json" <<EOF
{"routes":[{"vmId":"$VM_ID","name":"bench","address":"127.0.0.1","defaultPort":$UP_PORT,
            "extraPorts":[$WS_PORT]}]}
EOF
# Every client here is 127.0.0.1: the per-address connection limit is lifted as nginx has none.
"$INGRESS" --listen 127.0.0.1:0 --routes "$WORK/routes.json" --max-connections-per-client 100000 \
    >"$WORK/ingress.log" 2>&1 &
OURS_PID=$!
PIDS+=("$OURS_PID")
wait_for "$WORK/ingress.log" 'listening on' "$OURS_PID"
OURS_PORT=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\)$/\1/p' "$WORK/ingress.log")
# The same with busy polling (ingress.busy_poll), for step 2b only.
"$INGRESS" --listen 127.0.0.1:0 --routes "$WORK/routes.json" --busy-poll-us "$BUSY_POLL_US" \
    --max-connections-per-client 100000 \
    >"$WORK/ingress-bp.log" 2>&1 &
OURS_BP_PID=$!
PIDS+=("$OURS_BP_PID")
wait_for "$WORK/ingress-bp.log" 'listening on' "$OURS_BP_PID"
OURS_BP_PORT=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\)$/\1/p' "$WORK/ingress-bp.log")

wait_http "http://127.0.0.1:$UP_PORT/" "$UP_PID" "$WORK/upstream/out.log"
wait_http "http://127.0.0.1:$NGX_PORT$HTTP_PATH" "$NGX_PID" "$WORK/nginx/out.log"
wait_http "http://127.0.0.1:$OURS_PORT$HTTP_PATH" "$OURS_PID" "$WORK/ingress.log"
wait_http "http://127.0.0.1:$OURS_BP_PORT$HTTP_PATH" "$OURS_BP_PID" "$WORK/ingress-bp.log"
for port in "$UP_PORT" "$NGX_PORT" "$OURS_PORT" "$OURS_BP_PORT"; do
    path=$HTTP_PATH
    [ "$port" = "$UP_PORT" ] && path=/
    got=$(curl -fsS "http://127.0.0.1:$port$path")
    [ "$got" = "$BODY" ] || { echo "unexpected body from port $port: $got" >&2; exit 1; }
done
NGX_WORKER=$(awk '{print $1}' "/proc/$NGX_PID/task/$NGX_PID/children")
UP_WORKER=$(awk '{print $1}' "/proc/$UP_PID/task/$UP_PID/children")
echo "upstream nginx :$UP_PORT, ws echo :$WS_PORT, nginx proxy :$NGX_PORT (worker $NGX_WORKER)," \
    "decloud-ingress :$OURS_PORT (pid $OURS_PID); $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"

url_of() {  # url_of direct|ours|nginx
    case $1 in
        direct) echo "http://127.0.0.1:$UP_PORT/" ;;
        ours) echo "http://127.0.0.1:$OURS_PORT$HTTP_PATH" ;;
        nginx) echo "http://127.0.0.1:$NGX_PORT$HTTP_PATH" ;;
    esac
}
port_of() {
    case $1 in
        direct) echo "$UP_PORT" ;;
        ours) echo "$OURS_PORT" ;;
        ours-bp) echo "$OURS_BP_PORT" ;;
        nginx) echo "$NGX_PORT" ;;
    esac
}

# "123.45us" / "1.23ms" / "1.00s" -> microseconds
to_us() {
    awk -v v="$1" 'BEGIN {
        n = v + 0
        if (v ~ /us$/) print n; else if (v ~ /ms$/) print n * 1000; else if (v ~ /s$/) print n * 1000000
        else print n }'
}
# Process that does the work for a target: the proxy, or the upstream for direct.
declare -A PROC_OF=([direct]=$UP_WORKER [ours]=$OURS_PID [nginx]=$NGX_WORKER)

# wrk_run NAME SECONDS: sets WRK_RPS, WRK_P50, WRK_P99 (us) and WRK_CPU (CPU us per request of
# PROC_OF[NAME]); fails on socket errors or non-2xx answers.
wrk_run() {
    local out="$WORK/wrk-$1.txt" cpu0 cpu1 requests
    cpu0=$(cpu_us "${PROC_OF[$1]}")
    run wrk -t1 -c"$CONNECTIONS" -d"$2"s --latency "$(url_of "$1")" >"$out"
    cpu1=$(cpu_us "${PROC_OF[$1]}")
    if grep -qE 'Socket errors|Non-2xx' "$out"; then
        echo "wrk through $1 saw errors:" >&2
        cat "$out" >&2
        exit 1
    fi
    WRK_RPS=$(awk '/^Requests\/sec:/ {print $2}' "$out")
    WRK_P50=$(to_us "$(awk '$1 == "50%" {print $2}' "$out")")
    WRK_P99=$(to_us "$(awk '$1 == "99%" {print $2}' "$out")")
    requests=$(awk '/requests in/ {print $1}' "$out")
    WRK_CPU=$(awk -v c=$((cpu1 - cpu0)) -v n="$requests" 'BEGIN { printf "%.1f", c / n }')
}
# awk-based float helpers
gt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a > b) }'; }
minus() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a - b }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }

# ---- 1. throughput (closed loop, wrk) ------------------------------------------------------
echo "== 1. wrk -t1 -c$CONNECTIONS -d${WRK_SECONDS}s, best of $ROUNDS alternating rounds" \
    "(cpu_us/req: CPU time of the proxy process, of the upstream for direct)"
for name in direct nginx ours; do wrk_run "$name" 2; done  # warm-up
declare -A BEST_RPS=([nginx]=0 [ours]=0) BEST_CPU=()
printf '%-7s %6s %10s %10s %10s %12s\n' target round req/s p50_us p99_us cpu_us/req
for round in $(seq 1 "$ROUNDS"); do
    order="nginx ours"
    [ $((round % 2)) -eq 0 ] && order="ours nginx"
    for name in $order; do
        wrk_run "$name" "$WRK_SECONDS"
        printf '%-7s %6s %10.0f %10.1f %10.1f %12s\n' "$name" "$round" "$WRK_RPS" "$WRK_P50" \
            "$WRK_P99" "$WRK_CPU"
        if gt "$WRK_RPS" "${BEST_RPS[$name]}"; then
            BEST_RPS[$name]=$WRK_RPS
            BEST_CPU[$name]=$WRK_CPU
        fi
    done
done
wrk_run direct "$WRK_SECONDS"
printf '%-7s %6s %10.0f %10.1f %10.1f %12s\n' direct - "$WRK_RPS" "$WRK_P50" "$WRK_P99" "$WRK_CPU"
RATIO=$(ratio "${BEST_RPS[ours]}" "${BEST_RPS[nginx]}")
echo "best: ours $(printf '%.0f' "${BEST_RPS[ours]}") req/s (${BEST_CPU[ours]} CPU us/req)," \
    "nginx $(printf '%.0f' "${BEST_RPS[nginx]}") req/s (${BEST_CPU[nginx]} CPU us/req);" \
    "ours/nginx $RATIO; direct, no proxy: $(printf '%.0f' "$WRK_RPS") req/s"

if [ -n "$PROFILE" ]; then
    perf record -q -F 999 -g -o "$WORK/perf.data" -p "$OURS_PID" -- sleep "$WRK_SECONDS" \
        >"$WORK/perf.log" 2>&1 &
    PERF_PID=$!
    sleep 0.3
    wrk_run ours "$WRK_SECONDS"
    FG_PID=$PERF_PID
    perf_rc=0
    wait "$PERF_PID" || perf_rc=$?
    FG_PID=""
    if [ "$perf_rc" -eq 0 ]; then
        perf report -i "$WORK/perf.data" --stdio --no-children --percent-limit 0.5 \
            >"$PROFILE" 2>/dev/null
        perf report -i "$WORK/perf.data" --stdio --no-children --sort dso >>"$PROFILE" 2>/dev/null
        echo "perf profile of decloud-ingress under wrk ($(printf '%.0f' "$WRK_RPS") req/s): $PROFILE"
    else
        echo "perf record failed: $(cat "$WORK/perf.log")" >&2
    fi
fi

# ---- 2. added latency (open loop, fixed rate) ---------------------------------------------
RATE=$(awk -v r="${BEST_RPS[nginx]}" 'BEGIN { printf "%d", r / 2 }')
declare -A P50=() P99=()
# rate_pass PASS RT TARGET...: the lowest p50 and p99 of each target over $RATE_ROUNDS alternating
# rounds, into P50[PASS/TARGET] and P99[PASS/TARGET]; with RT=1 the load generator, the proxies
# and the upstream run SCHED_RR 1 for the pass.
rate_pass() {
    local pass=$1 rt=$2
    shift 2
    local rt_cmd=() pids=("$UP_WORKER" "$NGX_WORKER" "$OURS_PID" "$OURS_BP_PID")
    local pid round name path out result p50 p99 dropped note key
    if [ "$rt" = 1 ]; then
        rt_cmd=(chrt -r 1)
        for pid in "${pids[@]}"; do chrt -a -r -p 1 "$pid" >/dev/null; done
    fi
    printf '%-7s %6s %10s %10s %10s %10s\n' target round p50_us p90_us p99_us p99.9_us
    for round in $(seq 1 "$RATE_ROUNDS"); do
        for name in "$@"; do
            path=$HTTP_PATH
            [ "$name" = direct ] && path=/
            out="$WORK/rate-$name.txt"
            if ! run "${rt_cmd[@]}" "$LOAD" rate --port "$(port_of "$name")" --target "$path" \
                --rate "$RATE" --connections "$RATE_CONNECTIONS" --seconds "$RATE_SECONDS" \
                --warmup 1 >"$out"; then
                echo "fixed-rate load through $name failed:" >&2
                cat "$out" >&2
                exit 1
            fi
            result=$(grep '^RESULT' "$out")
            field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$result"; }
            p50=$(field p50_us) p99=$(field p99_us) dropped=$(field dropped)
            note=""
            [ "$dropped" -gt 0 ] && note="  (fell behind: $dropped requests never sent)"
            printf '%-7s %6s %10s %10s %10s %10s%s\n' "$name" "$round" "$p50" "$(field p90_us)" \
                "$p99" "$(field p999_us)" "$note"
            key="$pass/$name"
            if [ -z "${P50[$key]:-}" ] || gt "${P50[$key]}" "$p50"; then P50[$key]=$p50; fi
            if [ -z "${P99[$key]:-}" ] || gt "${P99[$key]}" "$p99"; then P99[$key]=$p99; fi
        done
    done
    if [ "$rt" = 1 ]; then
        for pid in "${pids[@]}"; do chrt -a -o -p 0 "$pid" >/dev/null; done
    fi
}

echo "== 2. fixed rate $RATE req/s (half of nginx's best), $RATE_CONNECTIONS connections," \
    "${RATE_SECONDS}s, $RATE_ROUNDS rounds, lowest of each counts; latency from the scheduled send"
PASS1=plain
if [ "$RT" = 1 ] && [ "$(id -u)" -eq 0 ]; then
    PASS1=rt
    echo "   (load generator, proxies and upstream run SCHED_RR 1 in this pass; RT=0 turns it off)"
fi
rate_pass "$PASS1" "$([ "$PASS1" = rt ] && echo 1 || echo 0)" direct ours nginx
ADDED_P50=$(minus "${P50[$PASS1/ours]}" "${P50[$PASS1/direct]}")
ADDED_P99=$(minus "${P99[$PASS1/ours]}" "${P99[$PASS1/direct]}")
NGINX_ADDED_P50=$(minus "${P50[$PASS1/nginx]}" "${P50[$PASS1/direct]}")
NGINX_ADDED_P99=$(minus "${P99[$PASS1/nginx]}" "${P99[$PASS1/direct]}")
echo "lowest p50/p99 (us): direct ${P50[$PASS1/direct]}/${P99[$PASS1/direct]}," \
    "ours ${P50[$PASS1/ours]}/${P99[$PASS1/ours]}, nginx ${P50[$PASS1/nginx]}/${P99[$PASS1/nginx]}"
echo "added over direct (us): ours p50 $ADDED_P50 p99 $ADDED_P99;" \
    "nginx p50 $NGINX_ADDED_P50 p99 $NGINX_ADDED_P99"
# A busy-polling thread must not run SCHED_RR: the kernel throttles a real-time task that never
# sleeps, stalling everything real-time on its core. So this pass runs everything as usual.
echo "== 2b. the same with decloud-ingress busy polling ${BUSY_POLL_US}us (ours-bp), plain scheduling"
rate_pass bp 0 direct ours ours-bp
BP_ADDED_P50=$(minus "${P50[bp/ours-bp]}" "${P50[bp/direct]}")
BP_ADDED_P99=$(minus "${P99[bp/ours-bp]}" "${P99[bp/direct]}")
echo "lowest p50/p99 (us): direct ${P50[bp/direct]}/${P99[bp/direct]}," \
    "ours ${P50[bp/ours]}/${P99[bp/ours]}, ours-bp ${P50[bp/ours-bp]}/${P99[bp/ours-bp]}"
echo "added over direct (us): ours p50 $(minus "${P50[bp/ours]}" "${P50[bp/direct]}")" \
    "p99 $(minus "${P99[bp/ours]}" "${P99[bp/direct]}"); ours-bp p50 $BP_ADDED_P50 p99 $BP_ADDED_P99"

# ---- 3. WebSocket echo throughput ---------------------------------------------------------
echo "== 3. WebSocket echo: $WS_CONNECTIONS connections, 64-byte messages, ${WS_SECONDS}s," \
    "best of $WS_ROUNDS rounds (cpu_us/msg: CPU time of the proxy, of the echo server for direct)"
PROC_OF[direct]=$ECHO_PID
declare -A WS=([direct]=0 [ours]=0 [nginx]=0) WS_CPU=()
printf '%-7s %6s %10s %12s\n' target round msgs/s cpu_us/msg
for round in $(seq 1 "$WS_ROUNDS"); do
    order="direct ours nginx"
    [ $((round % 2)) -eq 0 ] && order="nginx ours direct"
    for name in $order; do
        port=$OURS_PORT path=$WS_PATH
        case $name in
            direct) port=$WS_PORT path=/ ;;
            nginx) port=$NGX_PORT ;;
        esac
        out="$WORK/ws-$name.txt"
        cpu0=$(cpu_us "${PROC_OF[$name]}")
        if ! run "$LOAD" ws-echo --port "$port" --target "$path" --connections "$WS_CONNECTIONS" \
            --seconds "$WS_SECONDS" --warmup 1 --size 64 >"$out" 2>&1; then
            echo "WebSocket echo through $name failed:" >&2
            cat "$out" >&2
            exit 1
        fi
        cpu1=$(cpu_us "${PROC_OF[$name]}")
        rate=$(sed -n 's/^RESULT msgs_per_s=\([0-9.]*\).*/\1/p' "$out")
        # Every echo is two messages through the proxy; the CPU time covers warm-up and run.
        cpu=$(awk -v c=$((cpu1 - cpu0)) -v r="$rate" -v s="$WS_SECONDS" \
            'BEGIN { printf "%.1f", c / (2 * r * (s + 1)) }')
        printf '%-7s %6s %10s %12s\n' "$name" "$round" "$rate" "$cpu"
        if gt "$rate" "${WS[$name]}"; then
            WS[$name]=$rate
            WS_CPU[$name]=$cpu
        fi
    done
done
WS_RATIO=$(ratio "${WS[ours]}" "${WS[direct]}")
echo "best: direct ${WS[direct]}, ours ${WS[ours]} (${WS_CPU[ours]} CPU us/msg), nginx ${WS[nginx]}" \
    "(${WS_CPU[nginx]} CPU us/msg) echoes/s; ours/direct $WS_RATIO," \
    "nginx/direct $(ratio "${WS[nginx]}" "${WS[direct]}")"

# ---- 4. idle WebSocket memory -------------------------------------------------------------
echo "== 4. $IDLE_WS idle bridged WebSockets: VmRSS growth of the proxy process"
declare -A KIB=()
for name in ours nginx; do
    port=$OURS_PORT
    [ "$name" = nginx ] && port=$NGX_PORT
    out="$WORK/idle-$name.txt"
    if ! run "$LOAD" ws-idle --port "$port" --target "$WS_PATH" --connections "$IDLE_WS" \
        --pid "${PROC_OF[$name]}" >"$out" 2>&1; then
        echo "idle WebSockets through $name failed:" >&2
        cat "$out" >&2
        exit 1
    fi
    KIB[$name]=$(sed -n 's/^RESULT kib_per_conn=\([-0-9.]*\).*/\1/p' "$out")
    printf '%-7s %8s KiB per connection  (%s)\n' "$name" "${KIB[$name]}" \
        "$(grep -o 'VmRSS.*KiB:' "$out" | sed 's/:$//')"
done
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"

printf 'RESULT ours_rps=%.0f nginx_rps=%.0f ratio_vs_nginx=%s ours_p50_us=%s ours_p99_us=%s' \
    "${BEST_RPS[ours]}" "${BEST_RPS[nginx]}" "$RATIO" "${P50[$PASS1/ours]}" "${P99[$PASS1/ours]}"
printf ' nginx_p50_us=%s nginx_p99_us=%s added_p50_us=%s added_p99_us=%s' \
    "${P50[$PASS1/nginx]}" "${P99[$PASS1/nginx]}" "$ADDED_P50" "$ADDED_P99"
printf ' nginx_added_p50_us=%s nginx_added_p99_us=%s' "$NGINX_ADDED_P50" "$NGINX_ADDED_P99"
printf ' busy_poll_added_p50_us=%s busy_poll_added_p99_us=%s' "$BP_ADDED_P50" "$BP_ADDED_P99"
printf ' ws_msgs_per_s=%s ws_direct_msgs_per_s=%s ws_ratio_vs_direct=%s ws_idle_kib_per_conn=%s\n' \
    "${WS[ours]}" "${WS[direct]}" "$WS_RATIO" "${KIB[ours]}"
