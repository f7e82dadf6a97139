#!/usr/bin/env bash
# Installs the build into a temporary prefix and builds programs against it with
# find_package(ember) and with pkg-config.
set -euo pipefail
BUILD=$1; SRC=$2
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
cmake --install "$BUILD" --prefix "$T/prefix" >/dev/null
cmake -S "$SRC/tests/install/consumer" -B "$T/consumer" -DCMAKE_PREFIX_PATH="$T/prefix" >/dev/null
cmake --build "$T/consumer" >/dev/null
"$T/consumer/consumer"
LD_LIBRARY_PATH="$T/prefix/lib:$T/prefix/lib/x86_64-linux-gnu" "$T/consumer/consumer_shared"
PKG_CONFIG_PATH=$(dirname "$(find "$T/prefix" -name ember.pc)")
export PKG_CONFIG_PATH
cc -o "$T/pc" "$SRC/tests/install/consumer/main.c" $(pkg-config --cflags --static --libs ember)
LD_LIBRARY_PATH="$T/prefix/lib:$T/prefix/lib/x86_64-linux-gnu" "$T/pc"
echo "install: 3 passed, 0 failed"
