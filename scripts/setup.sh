#!/usr/bin/env bash
# Installs the Debian packages websockd needs to build and to try it as the
# README's first screen shows (python3-websockets, curl), and, with --test,
# to run its tests. As root it installs what is missing; otherwise it prints
# the one apt-get line that would, and fails. --list [--test] only prints the
# package names.
set -euo pipefail

list=0
if [ "${1:-}" = "--list" ]; then
  list=1
  shift
fi
pkgs=(gcc make cmake pkg-config libevent-dev libhttp-parser-dev libssl-dev
      libinih-dev libsystemd-dev libhiredis-dev liburing-dev python3 python3-websockets curl)
if [ "${1:-}" = "--test" ]; then
  pkgs+=(check clang libclang-rt-14-dev libwebsockets-dev dpkg-dev
        systemd adduser man-db nginx redis-server chromium openssl
        valgrind gnuplot-nox) # perf_budget (callgrind); bench charts (SVG)
  # Node's WebSocket client for the end-to-end tests: keep a node that is
  # already installed (say from NodeSource); otherwise take Debian's.
  if ! command -v node >/dev/null 2>&1; then
    pkgs+=(nodejs npm)
  fi
fi
pkgs+=(zlib1g-dev) # permessage-deflate (host/deflate.c)

if [ "$list" -eq 1 ]; then
  printf '%s\n' "${pkgs[@]}"
  exit 0
fi

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

line="apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "websockd: missing Debian packages. Run as root:" >&2
  echo "  $line" >&2
  exit 1
fi
echo "websockd: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=300 update -qq
# shellcheck disable=SC2086
$line -qq
