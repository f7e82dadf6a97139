#!/usr/bin/env bash
# Tests Ember's SWIG bindings (bindings/ember.i): installs the Debian packages they need,
# configures and builds them with -DEMBER_BUILD_SWIG=ON in their own build directory
# (build-swig/, or $EMBER_SWIG_BUILD), runs the Tcl suite (tcltest) and the Perl suite
# (Test::More, through prove), then the fixture example of each language. Exits non-zero
# on any failure.
#
#   bash scripts/test-swig.sh
#   EMBER_SWIG_BUILD=/tmp/build-swig bash scripts/test-swig.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
JOBS=${JOBS:-2}
BUILD=${EMBER_SWIG_BUILD:-$ROOT/build-swig}

PKGS=(build-essential cmake pkg-config libuv1-dev libcjson-dev libssl-dev libcrypt-dev
      swig tcl tcl-dev perl libperl-dev)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

echo "== build the SWIG bindings ($BUILD)"
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEMBER_BUILD_SWIG=ON \
  -DEMBER_BUILD_TESTS=OFF -DEMBER_BUILD_BENCH=OFF -DEMBER_BUILD_EXAMPLES=OFF \
  -DEMBER_BUILD_LUA=OFF >/dev/null
cmake --build "$BUILD" -j"$JOBS" --target ember_swig_tcl ember_swig_perl
TCLDIR=$BUILD/bindings/tcl
PERLDIR=$BUILD/bindings/perl
test -f "$TCLDIR/ember.so" -a -f "$TCLDIR/pkgIndex.tcl"
test -f "$PERLDIR/Ember.so" -a -f "$PERLDIR/Ember.pm"

status=0
echo "== Tcl (tcltest: bindings/tcl/tests)"
EMBER_TCL_DIR=$TCLDIR tclsh bindings/tcl/tests/all.tcl || status=1

echo "== Perl (Test::More: bindings/perl/t)"
prove -I"$PERLDIR" bindings/perl/t || status=1

echo "== examples"
EMBER_TCL_DIR=$TCLDIR tclsh bindings/tcl/example.tcl || status=1
perl -I"$PERLDIR" bindings/perl/example.pl || status=1

if [ $status -ne 0 ]; then
  echo "SWIG binding tests FAILED" >&2
  exit 1
fi
echo "all SWIG binding tests passed"
