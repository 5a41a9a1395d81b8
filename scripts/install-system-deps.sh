#!/usr/bin/env bash
# Installs the Debian packages the tests and benchmarks need. Idempotent; quiet when all are present.
set -euo pipefail
need=()
want=(docker.io debootstrap busybox-static curl ca-certificates chromium ripgrep libkrb5-dev pkg-config mitmproxy tinyproxy wrk iproute2 openssl)
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "[setup] installing Debian packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
