#!/usr/bin/env bash
# fuzz-long.sh [target] [seconds]: build a libFuzzer target with clang into build-fuzz/
# and run it for a long time (default: parser, 600 s, i.e. millions of executions).
#
#   scripts/fuzz-long.sh                 # fuzz_parser for 10 minutes
#   scripts/fuzz-long.sh parser 3600     # an hour
#   JOBS=4 scripts/fuzz-long.sh parser   # 4 parallel workers (logs in build-fuzz/fuzz-<target>-logs)
#   RUNS=5000000 scripts/fuzz-long.sh    # stop after that many executions instead
#
# The corpus grows in build-fuzz/corpus-<target>/ (kept between runs; the seeds in
# tests/fuzz/corpus/<target>/ are read, never written). Crashes are written to
# build-fuzz/artifacts-<target>/; replay one with:
#   build-fuzz/tests/fuzz/fuzz_<target> build-fuzz/artifacts-<target>/crash-...
#
# The build goes through CMake (EMBER_BUILD_FUZZ=ON) when the project configures; if it
# does not (missing dependencies, or FUZZ_STANDALONE=1), the target is compiled directly
# with the sources listed as FUZZ_SOURCES_<target> in tests/fuzz/CMakeLists.txt.
set -euo pipefail

target=${1:-parser}
target=${target#fuzz_}
seconds=${2:-600}
root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build-fuzz
src=$root/tests/fuzz/fuzz_$target.c
[ -f "$src" ] || { echo "no such fuzz target: $src" >&2; exit 2; }
command -v clang >/dev/null || { echo "clang is needed" >&2; exit 2; }

mkdir -p "$build"
log=$build/cmake-fuzz.log
exe=""
if [ -z "${FUZZ_STANDALONE:-}" ] &&
   cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER=clang -DEMBER_BUILD_FUZZ=ON \
         -DEMBER_BUILD_BENCH=OFF -DEMBER_BUILD_EXAMPLES=OFF \
         -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$log" 2>&1 &&
   cmake --build "$build" --target "fuzz_$target" -j "$(nproc)" >>"$log" 2>&1; then
    exe=$build/tests/fuzz/fuzz_$target
else
    echo "CMake build failed or skipped (see $log); compiling directly" >&2
    # FUZZ_SOURCES_<target> from tests/fuzz/CMakeLists.txt (one set(...) line)
    line=$(grep -E "^[[:space:]]*set\(FUZZ_SOURCES_${target}[[:space:]]" \
               "$root/tests/fuzz/CMakeLists.txt" || true)
    [ -n "$line" ] || { echo "no FUZZ_SOURCES_$target in tests/fuzz/CMakeLists.txt" >&2; exit 2; }
    sources=$(echo "$line" | sed -E "s/^[[:space:]]*set\(FUZZ_SOURCES_${target}[[:space:]]+//; s/\)[[:space:]]*$//" |
              sed -e "s#\${EMBER_FUZZ_SRC}#$root/core/src#g" -e "s#\${PROJECT_SOURCE_DIR}#$root#g")
    exe=$build/fuzz_$target
    # shellcheck disable=SC2086
    clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
          -fno-omit-frame-pointer -I"$root/core/src" -I"$root/core/include" \
          "$src" $sources -o "$exe"
fi

work=$build/corpus-$target
art=$build/artifacts-$target
mkdir -p "$work" "$art"
args=(-max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="$art/")
[ -n "${RUNS:-}" ] && args+=(-runs="$RUNS")
[ -f "$root/tests/fuzz/fuzz_$target.dict" ] && args+=(-dict="$root/tests/fuzz/fuzz_$target.dict")
if [ -n "${JOBS:-}" ] && [ "$JOBS" -gt 1 ]; then
    logs=$build/fuzz-$target-logs
    mkdir -p "$logs"
    args+=(-jobs="$JOBS" -workers="$JOBS")
    cd "$logs"
fi
seeds=()
[ -d "$root/tests/fuzz/corpus/$target" ] && seeds=("$root/tests/fuzz/corpus/$target")

echo "fuzzing $exe for ${seconds}s (corpus $work)" >&2
exec "$exe" "${args[@]}" "$work" "${seeds[@]}"
