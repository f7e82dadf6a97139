#!/usr/bin/env bash
# Runs every test of Ember: installs dependencies, builds, runs the C unit tests, the
# interop suites (official C client against ember-server and nats-server), the same C
# tests under ASan+UBSan and the threaded ones under TSan, and the fuzz smoke runs.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-2}
bash scripts/install-deps.sh

echo "== build (RelWithDebInfo)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$JOBS"
echo "== tests"
ctest --test-dir build --output-on-failure -j"$JOBS"

echo "== ASan + UBSan"
CC=clang cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DEMBER_SANITIZE=address,undefined \
  -DEMBER_BUILD_BENCH=OFF -DEMBER_BUILD_FUZZ=ON >/dev/null
cmake --build build-asan -j"$JOBS"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  ctest --test-dir build-asan --output-on-failure -j"$JOBS" -L 'unit|fuzz|interop'

echo "== TSan (threaded tests)"
CC=clang cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DEMBER_SANITIZE=thread \
  -DEMBER_BUILD_BENCH=OFF -DEMBER_BUILD_EXAMPLES=OFF >/dev/null
cmake --build build-tsan -j"$JOBS"
TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
  ctest --test-dir build-tsan --output-on-failure -j1 -L 'unit'

echo "== JavaScript client (nats.js: JetStream, KV, object store)"
bash scripts/test-js.sh build/core/ember-server

echo "== Go client (nats.go from Debian: core, JetStream, KV, object store)"
bash scripts/test-go.sh build/core/ember-server

echo "== WebSocket in headless Chromium (nats-core wsconnect)"
bash scripts/test-ws.sh build

echo "== Lua module"
bash scripts/test-lua.sh

echo "== SWIG bindings (Tcl, Perl)"
bash scripts/test-swig.sh

echo "== Python binding"
bash scripts/test-python.sh

echo "== demo smoke"
./build/examples/example-demo --quiet
./build/examples/example-demo --quiet --dont-listen
# DEMO.md steps 6-10: a leaf node of Debian's nats-server (C and Python)
PYTHON=build/pyvenv/bin/python bash scripts/demo-leaf.sh build
# the KV example keeps its state across runs: the second run finds the first one's
kvdir=$(mktemp -d)
./build/examples/example-kv_state "$kvdir" >/dev/null
./build/examples/example-kv_state "$kvdir" | grep -q "runs: 2"
rm -rf "$kvdir"
echo "all tests passed"
