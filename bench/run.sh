#!/bin/sh
# Build Ember in Release mode (in build-bench/ unless EMBER_BENCH_BUILD_DIR is set) and run
# ember-bench with the given arguments: bench/run.sh [tcp|inproc|all] [options]
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${EMBER_BENCH_BUILD_DIR:-$root/build-bench}
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DEMBER_BUILD_BENCH=ON >/dev/null
cmake --build "$build" -j"$(nproc)" --target ember-bench ember-server >/dev/null
exec "$build/bench/ember-bench" "$@"
