#!/usr/bin/env bash
# Tests Ember's Lua 5.4 binding: installs the Debian packages it needs, builds ember.so,
# runs the busted suite (tests/lua), the examples and a quick benchmark, runs the suite
# again against an ASan+UBSan build, and proves the LuaRocks rockspec builds (into a
# temporary tree). Exits non-zero on any failure.
#
#   bash scripts/test-lua.sh            everything
#   EMBER_LUA_ASAN=0 bash scripts/test-lua.sh    without the sanitizer pass
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
JOBS=${JOBS:-2}

PKGS=(build-essential cmake pkg-config libuv1-dev libcjson-dev libssl-dev libcrypt-dev zlib1g-dev
      liblua5.4-dev lua5.4 lua-busted luarocks python3)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

echo "== build the module"
if [ -f build/CMakeCache.txt ] && grep -qE '^\s*add_subdirectory\(lua\)' CMakeLists.txt; then
  # the project's build directory includes lua/: build just the module there
  cmake -S . -B build -DEMBER_BUILD_LUA=ON >/dev/null
  cmake --build build -j"$JOBS" --target ember_lua
  MODDIR=$ROOT/build/lua
else
  # lua/ as a project of its own (it builds the core from ../core)
  cmake -S lua -B build-lua -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build build-lua -j"$JOBS"
  MODDIR=$ROOT/build-lua/lua
fi
test -f "$MODDIR/ember.so"
export LUA_CPATH="$MODDIR/?.so;;"

echo "== busted (tests/lua)"
(cd tests/lua && lua5.4 /usr/bin/busted --output=plainTerminal .)

echo "== examples"
lua5.4 examples/lua/game.lua --frames 300 --quiet
lua5.4 examples/lua/game.lua --frames 30 --fps 60 --listen --quiet
lua5.4 examples/lua/demo.lua --dont-listen

echo "== benchmark (quick)"
lua5.4 bench/lua_bench.lua --quick

if [ "${EMBER_LUA_ASAN:-1}" != 0 ]; then
  ASAN_RT=$(gcc -print-file-name=libasan.so)
  UBSAN_RT=$(gcc -print-file-name=libubsan.so)
  if [ -f "$ASAN_RT" ] && [ -f "$UBSAN_RT" ]; then
    echo "== ASan + UBSan (module and core compiled together)"
    mkdir -p build-lua-asan
    # shellcheck disable=SC2046
    gcc -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=undefined \
      -fno-omit-frame-pointer -shared -fPIC -Icore/include -Icore/src \
      lua/ember_lua.c core/src/*.c $(pkg-config --cflags lua5.4 libuv libcjson libssl libcrypto libcrypt zlib) \
      $(pkg-config --libs libuv libcjson libssl libcrypto libcrypt zlib) -lpthread -o build-lua-asan/ember.so
    export LD_PRELOAD="$ASAN_RT:$UBSAN_RT"
    # leaks of the shell and python3 children are not ours: leak checks run below,
    # on Lua processes alone
    (cd tests/lua && ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
      LUA_CPATH="$ROOT/build-lua-asan/?.so;;" lua5.4 /usr/bin/busted --output=plainTerminal .)
    for run in "examples/lua/game.lua --frames 200 --quiet" "examples/lua/demo.lua" \
               "bench/lua_bench.lua --msgs 20000"; do
      # shellcheck disable=SC2086
      ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 LUA_CPATH="$ROOT/build-lua-asan/?.so;;" \
        lua5.4 $run >/dev/null
    done
    unset LD_PRELOAD
  else
    echo "== ASan + UBSan: skipped (no libasan/libubsan)"
  fi
fi

echo "== luarocks make (temporary tree)"
TREE=$(mktemp -d)
trap 'rm -rf "$TREE" "$ROOT/lua/build.luarocks"' EXIT
(cd lua && luarocks --lua-version 5.4 --tree "$TREE" make ember-scm-1.rockspec >"$TREE/make.log" 2>&1) \
  || { cat "$TREE/make.log"; exit 1; }
LUA_CPATH="$TREE/lib/lua/5.4/?.so" lua5.4 -e '
  local ember = require "ember"
  local srv <close> = ember.server{ dont_listen = true }
  local c <close> = srv:connect()
  c:subscribe("rock", function(m) m:respond("built by luarocks") end)
  print("rock: " .. package.searchpath("ember", package.cpath) .. ": " .. c:request("rock", "", 1000).data)'

echo "all Lua tests passed"
