#!/usr/bin/env bash
# Installs code-server (VS Code's server + web client; a real extension host running the real `vscode` API)
# into a machine-wide cache (~/.cache/caged-agent/code-server-<version>), shared by every clone, so extension tests and browser flows can run without downloading VS Code.
# Works with only the npm registry reachable: native modules are built from source and @vscode/ripgrep gets
# Debian's rg instead of downloading one. Cached: a second run with a working install takes well under a second.
#
# Usage: bash scripts/setup-codeserver.sh [--force]
# Prints the code-server entry script path as its last line (…/node_modules/code-server/out/node/entry.js).
# Env: CODE_SERVER_VERSION (default 4.100.3, needs Node 20), CODE_SERVER_DIR (default $CAGED_CACHE_DIR/code-server-<version>;
# CAGED_CACHE_DIR defaults to ${XDG_CACHE_HOME:-~/.cache}/caged-agent).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
version="${CODE_SERVER_VERSION:-4.100.3}"
cache_root="${CAGED_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/caged-agent}"
dest="${CODE_SERVER_DIR:-$cache_root/code-server-$version}"
entry="$dest/node_modules/code-server/out/node/entry.js"
force=0
[ "${1:-}" = "--force" ] && force=1

t0=$(date +%s.%N)
step_t=$t0
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%6.1f", b - a }'; }
log() { echo "[setup-codeserver] $*" >&2; }
step() {
  local t; t=$(now)
  log "$(printf '%-44s %s s' "$1" "$(elapsed "$step_t" "$t")")"
  step_t=$t
}

# A working install: the marker names this version, the entry answers --version and the native modules exist.
works() {
  local d="$1" cs="$1/node_modules/code-server"
  [ -f "$d/.installed" ] && [ "$(cat "$d/.installed")" = "$version" ] || return 1
  [ -f "$cs/lib/vscode/node_modules/node-pty/build/Release/pty.node" ] || return 1
  [ -f "$cs/lib/vscode/node_modules/@vscode/spdlog/build/Release/spdlog.node" ] || return 1
  [ -x "$cs/lib/vscode/node_modules/@vscode/ripgrep/bin/rg" ] || return 1
  node "$cs/out/node/entry.js" --config "$d/config.yaml" --version 2>/dev/null | grep -q "^$version " || return 1
}

if [ $force -eq 0 ] && works "$dest"; then
  step "cached install ok ($version)"
  echo "$entry"
  exit 0
fi

# One installer at a time (parallel test runs on a cold machine): wait for the lock, then re-check.
mkdir -p "$(dirname "$dest")"
exec 9>"$dest.lock"
if ! flock -n 9; then
  log "another setup-codeserver.sh is installing; waiting for it"
  flock 9
  if [ $force -eq 0 ] && works "$dest"; then
    step "installed by the other run ($version)"
    echo "$entry"
    exit 0
  fi
fi

node_major="$(node -p 'process.versions.node.split(".")[0]')"
case "$version" in
  4.100.*) [ "$node_major" = "20" ] || { log "code-server $version needs Node 20; this is Node $(node -v)"; exit 1; } ;;
esac

# Another apt/dpkg run (e.g. scripts/install-system-deps.sh started elsewhere) holds the dpkg lock: wait.
for _ in $(seq 1 300); do
  pgrep -x 'apt-get|apt|dpkg' >/dev/null 2>&1 || break
  [ "${waited:-}" ] || { log "waiting for a running apt/dpkg to finish"; waited=1; }
  sleep 2
done

# System packages: libkrb5-dev + pkg-config (kerberos native module), ripgrep, a C++ toolchain.
missing=()
for p in libkrb5-dev pkg-config ripgrep; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
command -v g++ >/dev/null && command -v make >/dev/null || missing+=(build-essential)
command -v python3 >/dev/null || missing+=(python3)
if [ ${#missing[@]} -gt 0 ]; then
  log "missing system packages: ${missing[*]} — running scripts/install-system-deps.sh"
  bash "$root/scripts/install-system-deps.sh"
  if ! { command -v g++ >/dev/null && command -v make >/dev/null; }; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends g++ make >/dev/null
  fi
  step "system packages"
fi
rg_bin="$(command -v rg)"

# npm behaviour for the native builds: root may run install scripts; node-gyp may run without asking; node
# headers from the local Node install (node-gyp would otherwise download them).
export npm_config_unsafe_perm=true
export npm_config_yes=true
export npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false
node_prefix="$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")"
if [ -z "${npm_config_nodedir:-}" ] && [ -f "$node_prefix/include/node/common.gypi" ]; then
  export npm_config_nodedir="$node_prefix"
fi
quiet() { # run npm quietly; show its output only if it fails
  local out; out="$(mktemp)"
  if ! "$@" >"$out" 2>&1; then cat "$out" >&2; rm -f "$out"; log "FAILED: $* (in $(pwd))"; exit 1; fi
  rm -f "$out"
}

stage="$dest.tmp.$$"
rm -rf "$stage"
mkdir -p "$stage"
trap 'rm -rf "$stage"' EXIT
cd "$stage"
echo '{ "name": "code-server-cache", "private": true }' >package.json

quiet npm install --ignore-scripts --no-package-lock "code-server@$version"
step "npm install code-server@$version"
cs="$stage/node_modules/code-server"

cd "$cs/lib/vscode"
quiet npm install --ignore-scripts --omit=dev
step "npm install lib/vscode"
cd extensions
quiet npm install --ignore-scripts --omit=dev
step "npm install lib/vscode/extensions"

# @vscode/ripgrep's postinstall skips its download when bin/ exists.
cd "$cs/lib/vscode"
mkdir -p node_modules/@vscode/ripgrep/bin
cp "$rg_bin" node_modules/@vscode/ripgrep/bin/rg
chmod 755 node_modules/@vscode/ripgrep/bin/rg

# The native modules VS Code's server uses on Linux, built from source (their install scripts would first try
# to download prebuilt binaries from GitHub). @parcel/watcher ships prebuilt per-platform packages from npm;
# @vscode/windows-* are Windows-only and not loaded here.
npm_config_build_from_source=true quiet npm rebuild kerberos native-watchdog node-pty @vscode/spdlog @vscode/deviceid @vscode/ripgrep
step "npm rebuild lib/vscode (native modules)"
cd extensions
quiet npm rebuild
step "npm rebuild lib/vscode/extensions"

# What code-server's own postinstall does after installing: asar symlink and the bin helper links.
cd "$cs/lib/vscode"
ln -sfn node_modules node_modules.asar
(cd bin/remote-cli && ln -sfn code-linux.sh code-server)
(cd bin/helpers && ln -sfn browser-linux.sh browser.sh)

cd "$stage"
npm_config_build_from_source=true quiet npm rebuild argon2
step "npm rebuild argon2"

touch "$stage/config.yaml"
echo "$version" >"$stage/.installed"
works "$stage" || { log "install finished but the result does not look usable"; exit 1; }
rm -rf "$dest"
mkdir -p "$(dirname "$dest")"
mv "$stage" "$dest"
trap - EXIT
log "$(printf '%-44s %s s' "total" "$(elapsed "$t0" "$(now)")")"
echo "$entry"
