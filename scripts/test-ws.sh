#!/usr/bin/env bash
# The WebSocket listener in a real browser: headless Chromium loads tests/ws/page.html,
# whose script (@nats-io/nats-core's wsconnect, bundled with esbuild into
# tests/ws/dist/page.js) connects to the websocket port of an embedded Ember
# (tests/ws/browser_host.c), subscribes, and shows the message the host publishes from C.
# tests/ws/drive.mjs drives Chromium through the DevTools protocol and checks the text
# the page shows; the host checks that the page confirmed over NATS.
#
#   scripts/test-ws.sh [build-dir]      default build-dir: build (needs core/libember.a)
#
# Needs Debian's chromium (run as root with --no-sandbox), node 20+ and npm (installs
# tests/ws's pinned packages with `npm ci` when tests/ws/node_modules is missing).
# Every step is bounded (EMBER_WS_TIMEOUT seconds for the browser part, default 60); the
# host is stopped by its PID. EMBER_WS_DEBUG=1 prints the server's log.
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD="${1:-build}"
TIMEOUT="${EMBER_WS_TIMEOUT:-60}"
LIB="$BUILD/core/libember.a"

fail() { echo "test-ws.sh: $*" >&2; exit 1; }
[ -f "$LIB" ] || fail "$LIB not found: build first (cmake -S . -B $BUILD && cmake --build $BUILD)"
CHROMIUM="$(command -v chromium || command -v chromium-browser || true)"
[ -n "$CHROMIUM" ] || fail "chromium is required (Debian package 'chromium', see scripts/install-deps.sh)"
command -v node >/dev/null 2>&1 || fail "node is required"
command -v npm >/dev/null 2>&1 || fail "npm is required"

if [ ! -d tests/ws/node_modules/@nats-io/nats-core ] || [ ! -d tests/ws/node_modules/esbuild ]; then
  echo "== npm ci (tests/ws)"
  (cd tests/ws && timeout 300 npm ci --no-audit --no-fund) || fail "npm ci failed in tests/ws"
fi
echo "== bundle the page (esbuild)"
(cd tests/ws && timeout 120 ./node_modules/.bin/esbuild page.mjs --bundle --format=iife \
   --platform=browser --log-level=warning --outfile=dist/page.js) || fail "esbuild failed"

work=$(mktemp -d)
host_pid=""
cleanup() {
  if [ -n "$host_pid" ] && kill -0 "$host_pid" 2>/dev/null; then kill "$host_pid" 2>/dev/null; fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "== build the C host"
${CC:-cc} -O1 -g tests/ws/browser_host.c -Icore/include "$LIB" \
  $(pkg-config --libs libuv libcjson libssl libcrypto libcrypt zlib) -lpthread -o "$work/browser_host" \
  || fail "cannot build tests/ws/browser_host.c"

"$work/browser_host" "$TIMEOUT" >"$work/host.out" 2>"$work/host.err" &
host_pid=$!
port=""
for _ in $(seq 1 100); do
  port=$(awk '/^PORT /{print $2}' "$work/host.out" 2>/dev/null)
  [ -n "$port" ] && break
  kill -0 "$host_pid" 2>/dev/null || break
  sleep 0.1
done
[ -n "$port" ] || { cat "$work/host.err" >&2; fail "the host did not start"; }
echo "== chromium headless -> ws://127.0.0.1:$port"

node_flags=()
node -e 'process.exit(typeof WebSocket === "function" ? 0 : 1)' 2>/dev/null ||
  node_flags=(--experimental-websocket --no-warnings)
url="file://$PWD/tests/ws/page.html?port=$port"
rc=0
timeout $((TIMEOUT + 15)) node "${node_flags[@]}" tests/ws/drive.mjs --chromium "$CHROMIUM" \
  --url "$url" --selector '#result' --expect "received browser.hello: hello from C" \
  --timeout "$TIMEOUT" || rc=1

# the host ends by itself once the page confirmed (or after TIMEOUT)
for _ in $(seq 1 $((TIMEOUT * 10))); do
  kill -0 "$host_pid" 2>/dev/null || break
  sleep 0.1
done
host_rc=0
wait "$host_pid" || host_rc=$?
host_pid=""
cat "$work/host.err"
if [ "$rc" = 0 ] && [ "$host_rc" = 0 ]; then
  echo "test-ws.sh: PASS (browser received the message published from C)"
  exit 0
fi
fail "FAIL (page check: $rc, host: $host_rc)"
