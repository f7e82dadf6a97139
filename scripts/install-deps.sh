#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks to build and test Ember.
set -euo pipefail
PKGS=(build-essential cmake pkg-config clang libclang-rt-14-dev
      libuv1-dev libcjson-dev libssl-dev libcrypt-dev zlib1g-dev
      libnats-dev nats-server
      liblua5.4-dev lua5.4 lua-busted luarocks
      python3 python3-dev python3-cffi python3-setuptools python3-pytest python3-pip python3-venv
      swig tcl tcl-dev perl libperl-dev
      golang-go golang-github-nats-io-go-nats-dev  # tests/go: the Go client (GOPATH mode)
      openssl chromium)  # openssl: TLS test certificates; chromium: scripts/test-ws.sh
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
# Node.js + npm for the JavaScript-client interop suite (tests/js); machines of this kind
# come with Node.js 20, Debian's own packages are the fallback.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm
fi
