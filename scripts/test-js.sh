#!/usr/bin/env bash
# Runs the JavaScript-client interop suite (tests/js: the official @nats-io/transport-node,
# jetstream, kv and obj clients under node:test) against Debian's nats-server, when it is
# installed, and against ember-server; prints one result line per server and exits
# non-zero if any run fails or ember-server cannot be found.
#
#   scripts/test-js.sh [ember-server-binary] [extra node --test args...]
#
# The ember-server binary defaults to build/core/ember-server (where the root
# CMakeLists.txt puts it), then build/ember-server. Build it first with
# `cmake -S . -B build && cmake --build build`.
#
# Environment:
#   EMBER_JS_SKIP_NATS_SERVER=1  skip the nats-server reference run
#   (tests/js/run.sh also reads EMBER_JS_TESTS, EMBER_JS_TIMEOUT, EMBER_JS_KEEP)
set -uo pipefail
cd "$(dirname "$0")/.."

EMBER="${1:-}"
[ $# -gt 0 ] && shift
if [ -z "$EMBER" ]; then
  for c in build/core/ember-server build/ember-server; do
    if [ -x "$c" ]; then EMBER="$c"; break; fi
  done
fi

if ! command -v node >/dev/null 2>&1; then
  echo "test-js.sh: node (Node.js 20+) is required; install the Debian 'nodejs' and 'npm' packages" >&2
  exit 2
fi

results=()
fail=0

run_one() { # label binary [args]
  local label="$1" bin="$2"
  shift 2
  echo
  echo "=================== JS interop: $label ($bin)"
  local start=$SECONDS rc=0
  bash tests/js/run.sh "$bin" "$@" || rc=$?
  local secs=$((SECONDS - start))
  if [ "$rc" = 0 ]; then
    results+=("PASS  $label ($bin, ${secs}s)")
  else
    results+=("FAIL  $label ($bin, exit $rc, ${secs}s)")
    fail=1
  fi
}

if [ "${EMBER_JS_SKIP_NATS_SERVER:-0}" = 1 ]; then
  results+=("SKIP  nats-server (EMBER_JS_SKIP_NATS_SERVER=1)")
else
  NATS="$(command -v nats-server || true)"
  [ -z "$NATS" ] && [ -x /usr/sbin/nats-server ] && NATS=/usr/sbin/nats-server
  if [ -n "$NATS" ]; then
    run_one "nats-server $("$NATS" --version 2>/dev/null | awk '{print $2}')" "$NATS" "$@"
  else
    results+=("SKIP  nats-server (not installed)")
  fi
fi

if [ -n "$EMBER" ] && [ -x "$EMBER" ]; then
  run_one "ember-server" "$EMBER" "$@"
else
  results+=("FAIL  ember-server (not found${EMBER:+ at $EMBER}; build it with cmake --build build)")
  fail=1
fi

echo
echo "=================== JS interop summary"
for r in "${results[@]}"; do echo "  $r"; done
exit "$fail"
