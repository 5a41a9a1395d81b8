#!/usr/bin/env bash
# Installs the Debian packages a job needs. Idempotent; quiet when all are present.
#   install-system-deps.sh          everything the tests and benchmarks need (default)
#   install-system-deps.sh demo     only what `npm run demo` needs (a Docker engine, tools for local images)
set -euo pipefail
profile=${1:-test}
case "$profile" in
  demo) want=(debootstrap busybox-static curl ca-certificates openssl) ;;
  test) want=(docker.io debootstrap busybox-static curl ca-certificates chromium ripgrep libkrb5-dev pkg-config mitmproxy tinyproxy gcc libc6-dev iproute2 openssl) ;;
  *) echo "usage: $0 [demo|test]" >&2; exit 2 ;;
esac
# A Docker engine that already answers (or a dockerd from another package) needs no docker.io.
if [ "$profile" = demo ] && ! docker version >/dev/null 2>&1 && ! command -v dockerd >/dev/null 2>&1; then want+=(docker.io); fi
need=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "[setup] missing Debian packages: ${need[*]}" >&2
  echo "[setup] install them (sudo apt-get install -y ${need[*]}) or run this as root" >&2
  exit 1
fi
echo "[setup] installing Debian packages: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
