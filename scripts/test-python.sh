#!/usr/bin/env bash
# Tests the Python binding: installs Debian's packages (cffi, setuptools, pytest, pip,
# venv, the C build dependencies and libnats for the official-client test), builds the
# `ember` package into a venv (build/pyvenv, made from Debian's /usr/bin/python3 with
# --system-site-packages) with `pip install --no-build-isolation .`, runs the pytest
# suite and the demo. Exits non-zero on any failure.
#
#   scripts/test-python.sh [pytest args...]      e.g. -k aio, -x, -v
set -euo pipefail
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
VENV=build/pyvenv

PKGS=(python3 python3-dev python3-cffi python3-setuptools python3-pytest python3-pip
      python3-venv build-essential pkg-config libuv1-dev libcjson-dev libssl-dev libcrypt-dev libnats3.4)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# a venv from Debian's interpreter (not a pyenv/conda python3 that may be first on PATH)
if ! grep -qs "^home = /usr/bin$" "$VENV/pyvenv.cfg" || [ ! -x "$VENV/bin/python" ]; then
  echo "== creating $VENV"
  rm -rf "$VENV"
  "$PY" -m venv --system-site-packages "$VENV"
fi

echo "== building and installing the ember package"
rm -rf build/python            # always rebuild the extension from the current core sources
"$VENV/bin/pip" install --no-build-isolation --no-index --quiet --disable-pip-version-check .

echo "== pytest tests/python"
# -p no:cacheprovider: leave no .pytest_cache in the source tree
"$VENV/bin/python" -m pytest tests/python -q -p no:cacheprovider "$@"

echo "== demo smoke"
"$VENV/bin/python" examples/python/demo.py --quiet -n 2000 >/dev/null
"$VENV/bin/python" examples/python/demo.py --quiet --dont-listen -n 2000 >/dev/null
echo "python binding: all tests passed"
