#!/usr/bin/env bash
# Runs the JavaScript-client interop suite (official @nats-io/* clients, node:test) against
# one server binary that takes nats-server's flags.
#
#   tests/js/run.sh [server-binary] [extra node --test args...]
#
#   server-binary  default: nats-server from PATH, else /usr/sbin/nats-server
#   extra args     passed to `node --test`, e.g. --test-name-pattern='kv'
#
# Environment:
#   EMBER_JS_TESTS    space-separated test files to run instead of tests/js/*.test.mjs
#   EMBER_JS_TIMEOUT  overall limit for the node run in seconds (default 300)
#   EMBER_JS_KEEP     1 = keep the temp dir (store and server log) for inspection
#
# The suites get NATS_URL and, for those that start their own servers with their own
# config files (security.test.mjs), EMBER_JS_SERVER: the absolute path of the binary.
#
# Starts `<server> -js -sd <tmp>/store -a 127.0.0.1 -p <free port>`, waits until it
# accepts connections, runs the suite with NATS_URL set, stops the server by its PID,
# removes the temp dir and exits with the suite's status. Installs the npm dependencies
# from the committed lock (npm ci) when node_modules is missing.
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

SERVER="${1:-}"
[ $# -gt 0 ] && shift
if [ -z "$SERVER" ]; then
  SERVER="$(command -v nats-server || true)"
  [ -z "$SERVER" ] && [ -x /usr/sbin/nats-server ] && SERVER=/usr/sbin/nats-server
fi
if [ -z "$SERVER" ]; then
  echo "run.sh: no server binary given and nats-server not found" >&2
  exit 2
fi
if [ "${SERVER#*/}" = "$SERVER" ]; then
  SERVER="$(command -v "$SERVER" || true)"
fi
if [ ! -x "$SERVER" ]; then
  echo "run.sh: server binary '$SERVER' is not executable" >&2
  exit 2
fi
# absolute, for suites that start their own servers (security.test.mjs) from tests/js
SERVER_ABS="$(cd "$(dirname "$SERVER")" && pwd)/$(basename "$SERVER")"
NODE="$(command -v node || true)"
if [ -z "$NODE" ]; then
  echo "run.sh: node is required (Node.js 20+)" >&2
  exit 2
fi

# Dependencies: the committed package-lock.json pins the exact client versions.
if [ ! -d "$HERE/node_modules/@nats-io/transport-node" ]; then
  echo "== installing npm dependencies in tests/js"
  if [ -f "$HERE/package-lock.json" ]; then
    (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error) || exit 2
  else
    (cd "$HERE" && npm install --no-audit --no-fund --loglevel=error) || exit 2
  fi
fi

# The test files (validated before a server is started).
if [ -n "${EMBER_JS_TESTS:-}" ]; then
  FILES=()
  for f in $EMBER_JS_TESTS; do
    # relative to the caller's directory, or a bare name inside tests/js
    if [ -f "$f" ]; then
      FILES+=("$(cd "$(dirname "$f")" && pwd)/$(basename "$f")")
    elif [ -f "$HERE/$f" ]; then
      FILES+=("$HERE/$f")
    else
      echo "run.sh: no such test file: $f" >&2
      exit 2
    fi
  done
else
  FILES=("$HERE"/*.test.mjs)
fi

TMP="$(mktemp -d "${TMPDIR:-/tmp}/ember-js.XXXXXX")"
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null
    for _ in $(seq 1 50); do
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$SERVER_PID" 2>/dev/null; then
      echo "run.sh: server $SERVER_PID did not stop on TERM; sending KILL" >&2
      kill -KILL "$SERVER_PID" 2>/dev/null
    fi
    wait "$SERVER_PID" 2>/dev/null
  fi
  if [ "${EMBER_JS_KEEP:-0}" = 1 ]; then
    echo "run.sh: kept $TMP"
  else
    rm -rf "$TMP"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A free loopback port: bind port 0 and read what the kernel picked.
PORT="$("$NODE" -e '
  const s = require("net").createServer();
  s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });
')"
if [ -z "$PORT" ]; then
  echo "run.sh: could not find a free port" >&2
  exit 2
fi

mkdir -p "$TMP/store"
echo "== starting $SERVER on 127.0.0.1:$PORT (store $TMP/store)"
"$SERVER" -js -sd "$TMP/store" -a 127.0.0.1 -p "$PORT" >"$TMP/server.log" 2>&1 &
SERVER_PID=$!

# Wait until it accepts a connection and sends INFO (bounded).
ready=0
for _ in $(seq 1 100); do
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "run.sh: server exited during startup; log:" >&2
    cat "$TMP/server.log" >&2
    SERVER_PID=""
    exit 2
  fi
  if "$NODE" -e '
      const c = require("net").connect(+process.argv[1], "127.0.0.1");
      const t = setTimeout(() => process.exit(1), 500);
      c.on("data", (d) => { if (String(d).startsWith("INFO ")) { clearTimeout(t); c.destroy(); process.exit(0); } });
      c.on("error", () => process.exit(1));
    ' "$PORT" 2>/dev/null; then
    ready=1
    break
  fi
  sleep 0.1
done
if [ "$ready" != 1 ]; then
  echo "run.sh: server did not accept connections on 127.0.0.1:$PORT; log:" >&2
  cat "$TMP/server.log" >&2
  exit 2
fi


# Human-readable output unless the caller picked a reporter.
REPORTER=(--test-reporter=spec)
for a in "$@"; do
  case "$a" in --test-reporter*) REPORTER=() ;; esac
done

echo "== node --test against $(basename "$SERVER") (NATS_URL=nats://127.0.0.1:$PORT)"
rc=0
(
  cd "$HERE" &&
  NATS_URL="nats://127.0.0.1:$PORT" EMBER_JS_SERVER="$SERVER_ABS" timeout --kill-after=10 "${EMBER_JS_TIMEOUT:-300}" \
    "$NODE" --test --test-concurrency=1 --test-force-exit "${REPORTER[@]}" "$@" "${FILES[@]}"
) || rc=$?

if ! kill -0 "$SERVER_PID" 2>/dev/null; then
  echo "run.sh: the server exited during the run; log tail:" >&2
  tail -n 50 "$TMP/server.log" >&2
  SERVER_PID=""
  [ "$rc" = 0 ] && rc=1
elif [ "$rc" != 0 ]; then
  echo "-- server log tail ($TMP/server.log):"
  tail -n 20 "$TMP/server.log"
fi
if [ "$rc" = 124 ]; then
  echo "run.sh: suite exceeded ${EMBER_JS_TIMEOUT:-300}s" >&2
fi
exit "$rc"
