#!/usr/bin/env bash
# Runs the Go-client interop suite (tests/go: the official nats.go client as Debian ships it,
# golang-github-nats-io-go-nats-dev 1.22, with its legacy JetStreamContext, KV and object
# store API) against Debian's nats-server, when it is installed, and against ember-server;
# prints one result line per server and exits non-zero if any run fails.
#
#   scripts/test-go.sh [ember-server-binary] [extra go test args...]
#
# The ember-server binary defaults to build/core/ember-server. Installs nothing: needs
# golang-go and golang-github-nats-io-go-nats-dev (scripts/install-deps.sh). No module proxy
# is reachable, so the tests build in GOPATH mode against /usr/share/gocode.
#
# Environment:
#   EMBER_GO_SKIP_NATS_SERVER=1  skip the nats-server reference run
#   EMBER_GO_TIMEOUT             go test -timeout per server (default 120s)
#   EMBER_GO_KEEP=1              keep the server's temp dir and print its log tail
set -uo pipefail
cd "$(dirname "$0")/.."

EMBER="${1:-}"
[ $# -gt 0 ] && shift
[ -z "$EMBER" ] && EMBER=build/core/ember-server
if [ ! -x "$EMBER" ]; then
  echo "test-go.sh: ember-server not found at '$EMBER'; build it first" >&2
  exit 2
fi
EMBER="$(cd "$(dirname "$EMBER")" && pwd)/$(basename "$EMBER")"
if ! command -v go >/dev/null 2>&1; then
  echo "test-go.sh: go is required; install the Debian 'golang-go' package" >&2
  exit 2
fi
if [ ! -d /usr/share/gocode/src/github.com/nats-io/nats.go ]; then
  echo "test-go.sh: nats.go sources missing; install golang-github-nats-io-go-nats-dev" >&2
  exit 2
fi

TMP="$(mktemp -d /tmp/ember-go-XXXXXX)"
trap 'rm -rf "$TMP"' EXIT
export GO111MODULE=off GOPATH="/usr/share/gocode:$TMP/gopath" GOFLAGS= GOPROXY=off
export GOCACHE="${GOCACHE:-$TMP/cache}"
TIMEOUT="${EMBER_GO_TIMEOUT:-120s}"
NATSGO="$(sed -n 's/.*Version *= *"\([0-9.]*\)".*/\1/p' /usr/share/gocode/src/github.com/nats-io/nats.go/nats.go | head -1)"

echo "== building tests/go (nats.go $NATSGO, $(go version | awk '{print $3}'))"
if ! (cd tests/go && go test -c -o "$TMP/embergo.test" .); then
  echo "test-go.sh: building tests/go failed" >&2
  exit 1
fi

results=()
fail=0
run_one() { # label binary [args]
  local label="$1" bin="$2"
  shift 2
  echo
  echo "=================== Go client: $label ($bin)"
  local start=$SECONDS rc=0
  (cd tests/go && EMBER_GO_SERVER="$bin" timeout 170 "$TMP/embergo.test" -test.timeout "$TIMEOUT" "$@") || rc=$?
  local secs=$((SECONDS - start))
  if [ "$rc" = 0 ]; then
    results+=("PASS  $label ($bin, ${secs}s)")
  else
    results+=("FAIL  $label ($bin, exit $rc, ${secs}s)")
    fail=1
  fi
}

NATS_SERVER="$(command -v nats-server || true)"
[ -z "$NATS_SERVER" ] && [ -x /usr/sbin/nats-server ] && NATS_SERVER=/usr/sbin/nats-server
if [ "${EMBER_GO_SKIP_NATS_SERVER:-0}" != 1 ] && [ -n "$NATS_SERVER" ]; then
  run_one nats-server "$NATS_SERVER" "$@"
fi
run_one ember-server "$EMBER" "$@"

echo
echo "== Go client (nats.go $NATSGO) summary"
for r in "${results[@]}"; do echo "  $r"; done
exit $fail
