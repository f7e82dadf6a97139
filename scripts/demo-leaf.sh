#!/usr/bin/env bash
# DEMO.md steps 6-10: starts Debian's nats-server as a local hub (JetStream, a leafnodes
# port) on free loopback ports, then runs the C leaf demo (and the Python one when the
# binding is importable, or PYTHON names an interpreter that has it) against it, and
# stops the hub.
#   bash scripts/demo-leaf.sh [build dir]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
NATS_SERVER=${NATS_SERVER:-$(command -v nats-server || echo /usr/sbin/nats-server)}
dir=$(mktemp -d)
hub_pid=
cleanup() { [ -n "$hub_pid" ] && kill "$hub_pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cport=$(free_port); lport=$(free_port)
cat >"$dir/hub.conf" <<CONF
server_name: hub
listen: "127.0.0.1:$cport"
jetstream { store_dir: "$dir/hub" }
leafnodes { listen: "127.0.0.1:$lport" }
CONF
"$NATS_SERVER" -c "$dir/hub.conf" >"$dir/hub.log" 2>&1 &
hub_pid=$!
for _ in $(seq 100); do
  (exec 3<>/dev/tcp/127.0.0.1/$cport) 2>/dev/null && break
  sleep 0.05
done
"$BUILD/examples/example-leaf_demo" "nats-leaf://127.0.0.1:$lport" "nats://127.0.0.1:$cport" "$dir/c-store"
# the Python demo too, with PYTHON=<an interpreter that imports ember> (e.g. build/pyvenv/bin/python)
PYTHON=${PYTHON:-}
if [ -z "$PYTHON" ] && python3 -c 'import ember' 2>/dev/null; then PYTHON=python3; fi
if [ -n "$PYTHON" ]; then
  "$PYTHON" examples/python/leaf_demo.py \
    "nats-leaf://127.0.0.1:$lport" "nats://127.0.0.1:$cport" "$dir/py-store"
fi
