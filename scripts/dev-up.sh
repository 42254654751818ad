#!/usr/bin/env bash
# From a fresh Debian 12 machine to a running local DeCloud platform, in one command:
# installs dependencies, builds (release preset), starts a throwaway PostgreSQL cluster under
# var/pg, the orchestrator and one node agent on this machine, and waits until the node is
# online. Stop everything with scripts/dev-down.sh.
#
# Ports (override with the environment): DECLOUD_PG_PORT=55432 DECLOUD_API_PORT=8080
# DECLOUD_AGENT_PORT=9090. The node's operator is a local dev wallet (var/dev-wallet.key, created
# on first use, also an admin); the `decloud` CLI is signed in as it (DECLOUD_CONFIG_DIR=var/cli).
# No chain runs here, so nobody could deposit: VMs start without a balance (billing still meters).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VAR=$ROOT/var
PG_PORT=${DECLOUD_PG_PORT:-55432}
API_PORT=${DECLOUD_API_PORT:-8080}
AGENT_PORT=${DECLOUD_AGENT_PORT:-9090}
BIN=$ROOT/build/release

scripts/install-deps.sh
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/decloud-ccache}"
cmake --preset release >/dev/null
cmake --build --preset release -j"$(nproc)" --target decloud-orchestrator decloud-agent decloud decloud_web

mkdir -p "$VAR/log" "$VAR/run"
scripts/dev-down.sh --quiet || true

CLI=$BIN/cli/decloud
KEY=$VAR/dev-wallet.key
[ -f "$KEY" ] || "$CLI" key new --out "$KEY" >/dev/null
WALLET=$("$CLI" key address --key-file "$KEY")
export DECLOUD_CONFIG_DIR=$VAR/cli DECLOUD_API="http://127.0.0.1:$API_PORT"

DB_URL=$(scripts/pg-cluster.sh start "$VAR/pg" "$PG_PORT" | tail -n 1)

"$BIN/orchestrator/decloud-orchestrator" --config deploy/orchestrator.toml \
    --set server.port="$API_PORT" --set database.url="$DB_URL" \
    --set auth.domain="127.0.0.1:$API_PORT" --set auth.uri="http://127.0.0.1:$API_PORT" \
    --set auth.key_file="$VAR/orchestrator/jwt.keys" --set auth.admin_wallets="$WALLET" \
    --set templates.directory="$ROOT/templates" --set web.root="$ROOT/web/dist" \
    --set billing.require_balance_to_start=false \
    >"$VAR/log/orchestrator.log" 2>&1 &
echo $! >"$VAR/run/orchestrator.pid"

wait_for() {  # wait_for DESCRIPTION SECONDS COMMAND...
    local what=$1 seconds=$2
    shift 2
    for _ in $(seq 1 $((seconds * 4))); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.25
    done
    echo "dev-up: $what did not happen within ${seconds}s; see $VAR/log/" >&2
    exit 1
}
wait_for "orchestrator ready" 60 curl -fsS "http://127.0.0.1:$API_PORT/readyz"

# VMs need a running libvirtd (libvirt-daemon-system starts one under systemd); without it the
# node still registers and heartbeats, and says so.
mkdir -p "$VAR/images"
if virsh -c qemu:///system uri >/dev/null 2>&1; then
    VMS_SETTINGS=(--set vms.enabled=true --set vms.images_dir="$VAR/images")
    VMS_NOTE="libvirt at qemu:///system; put base images in $VAR/images/<name>/disk.qcow2"
else
    VMS_SETTINGS=(--set vms.enabled=false)
    VMS_NOTE="off: no libvirtd at qemu:///system (install libvirt-daemon-system to run VMs)"
fi

"$BIN/node-agent/decloud-agent" --config deploy/agent.toml \
    --set orchestrator.url="http://127.0.0.1:$API_PORT" \
    --set node.operator_wallet="$WALLET" --set node.region=local --set node.tags=dev \
    --set node.state_dir="$VAR/agent" --set node.vm_storage_path="$VAR/agent/vms" \
    --set server.port="$AGENT_PORT" "${VMS_SETTINGS[@]}" \
    >"$VAR/log/agent.log" 2>&1 &
echo $! >"$VAR/run/agent.pid"

"$CLI" login --key-file "$KEY" >/dev/null
node_online() { "$CLI" node list --status online | grep -q ' online '; }
echo "dev-up: waiting for the node agent (the first start runs a 10 s CPU benchmark)..."
wait_for "node online" 120 node_online

NODE_ID=$("$CLI" node list --status online | head -n 1 | cut -d' ' -f1)
cat <<MSG

DeCloud is running.
  API:           http://127.0.0.1:$API_PORT  (OpenAPI description: proto/openapi.yaml)
  web console:   http://127.0.0.1:$API_PORT/  (sign in with a browser wallet; web/dist)
  node:          $NODE_ID is online
  wallet:        $WALLET (operator and admin; key in $KEY)
  VMs:           $VMS_NOTE
                 try: $CLI vm create web --cores 1 --memory 512 --disk 5 --quote
  CLI:           export DECLOUD_CONFIG_DIR=$VAR/cli; $CLI node list
                 (signed in already; try also: whoami, ssh-key add ~/.ssh/id_ed25519.pub)
  health:        http://127.0.0.1:$API_PORT/readyz   metrics: http://127.0.0.1:$API_PORT/metrics
  agent health:  http://127.0.0.1:$AGENT_PORT/healthz
  PostgreSQL:    $DB_URL
  logs:          $VAR/log/
Stop it with scripts/dev-down.sh
MSG
