#!/usr/bin/env bash
# bench/relay: TCP through the relay path of issue 7 (user -> relay DNAT -> WireGuard -> CGNAT
# node behind a carrier NAT) with the agent's real adapters, UapiWireGuard (wireguard-go) and
# NftPortForwarder (libnftables), in network namespaces the driver builds and removes (the
# topology of tests/integration/relay_agent/relay_path_test.cpp). Needs root. Builds nothing:
#   cmake --preset release -B build/release -DDECLOUD_BUILD_BENCH=ON
#   cmake --build build/release --target relay_bench
# Usage: bench/relay/run.sh [build dir]          (default: build/release)
#
#   client 203.0.113.2 --- 203.0.113.1 relay 198.51.100.1 --- 198.51.100.2 carrier 100.64.0.1
#                                                                 (masquerade)      |
#                                                                      100.64.0.2 cgnat
#  1. throughput: iperf3 server on the CGNAT node; iperf3 -c from the client, -t $IPERF_SECONDS,
#     through the relay's public port 203.0.113.1:5201 (DNAT into the tunnel, wireguard-go on
#     both ends, the tunnel's UDP through the carrier NAT) and over the direct path, alternating
#     for $THROUGHPUT_ROUNDS rounds; the best of each counts.
#     The direct path is the fairest one these namespaces allow: the same client, the same three
#     veths and the same two forwarding hops (relay, carrier) to the same server, only routed:
#     the client connects to 100.64.0.2:5201 itself, with no DNAT on the relay and no tunnel; the
#     carrier lets exactly that port in (the port forward a CGNAT customer cannot get). So
#     relay/direct is the cost of the relay mechanism itself (DNAT + masquerade + WireGuard in
#     userspace, encryption on both ends), not of extra hops.
#     Each relay run also shows the CPU time both wireguard-go spent per GB carried and the
#     tunnel's UDP datagrams dropped because a wireguard-go socket's receive buffer was full
#     (Udp RcvbufErrors in the relay's and the CGNAT node's namespaces): TCP retransmits on the
#     relay path are those drops.
#  2. connection cost: the driver's own load generator, $CONNECTIONS sequential TCP connections
#     (after $WARMUP warm-up ones), each connect + 1 byte echoed back (timed from connect() to the
#     echoed byte; closed with a reset), through the relay's public port 8080, with 10, 1,000 and
#     10,000 mappings in the map (installed with one NftPortForwarder::Apply; the measured
#     connection uses one of them); $CONN_ROUNDS rounds in alternating order, lowest p50 and p99
#     of each size count. Flat means p50 at 10,000 within 10% of p50 at 10.
#  3. mapping changes: with 10,000 mappings present, NftPortForwarder::Apply with one more, then
#     with one fewer, $CHANGES times; median and max of each (bound: 10 ms), and checked to be
#     exactly one nft transaction each (NftPortForwarder::Transactions). The first added mapping
#     is checked to forward, the first removed one to stop forwarding.
# RT=1 (default): during steps 2 and 3 the driver (load generator, echo server) and both
#   wireguard-go run SCHED_RR priority 1: on a machine shared with other work (compiles) a
#   SCHED_OTHER thread waits milliseconds for a core, which buries the microseconds measured;
#   these steps keep under one core busy. Step 1 runs with plain scheduling. RT=0: plain always.
# One run takes about 1 minute with the defaults.
# Environment: IPERF_SECONDS=5 THROUGHPUT_ROUNDS=2 CONNECTIONS=2000 WARMUP=200 CONN_ROUNDS=5
#   CHANGES=50 RT=1
# Last line: RESULT relay_mbps=... direct_mbps=... conn_us_10=... conn_us_1000=...
#   conn_us_10000=... mapping_add_ms=... mapping_remove_ms=...   (conn: p50; mapping: median)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$ROOT/build/release}
DRIVER=$BUILD/bench/relay/relay_bench
if [ ! -x "$DRIVER" ]; then
    echo "$DRIVER not found; build it first (see the top of $0)" >&2
    exit 1
fi
[ "$(id -u)" -eq 0 ] || { echo "needs root (network namespaces, nftables)" >&2; exit 1; }
for tool in ip ss iperf3 wireguard-go; do
    command -v "$tool" >/dev/null || { echo "$tool is required" >&2; exit 1; }
done
RT_FLAG=true
[ "${RT:-1}" = 1 ] || RT_FLAG=false

# The driver cleans up everything it created when it exits, also on SIGINT/SIGTERM; forward
# those to it and wait for it.
"$DRIVER" --iperf-seconds "${IPERF_SECONDS:-5}" --throughput-rounds "${THROUGHPUT_ROUNDS:-2}" \
    --connections "${CONNECTIONS:-2000}" --warmup "${WARMUP:-200}" \
    --conn-rounds "${CONN_ROUNDS:-5}" --changes "${CHANGES:-50}" --rt "$RT_FLAG" &
DRIVER_PID=$!
trap 'kill -TERM "$DRIVER_PID" 2>/dev/null || true' INT TERM
rc=0
wait "$DRIVER_PID" || rc=$?
if [ "$rc" -gt 128 ] && kill -0 "$DRIVER_PID" 2>/dev/null; then
    wait "$DRIVER_PID" || rc=$?  # interrupted wait: the driver is still cleaning up
fi
exit "$rc"
