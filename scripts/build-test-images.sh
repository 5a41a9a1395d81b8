#!/usr/bin/env bash
# Builds the local images the engine tests use (no registry needed), each only when its tag is missing.
# Every image carries the label caged-agent.test=1.
#   caged-agent-test/debian:bookworm  debootstrap minbase + curl + ca-certificates (a real Debian agent image)
#   caged-agent-test/node:20          the host's /usr/bin/node + its shared libraries + busybox as /bin/sh,
#                                     a `node` user (uid 1000); the proxy base image and the test "outside"
#   caged-agent-test/noshell:1        the Debian rootfs without any shell and without update-ca-certificates
#   caged-agent-test/dev:1            the Debian rootfs plus the host's git, node and npm (Debian 12 packages):
#                                     an agent image for the workspace tests (real git and npm in the cage)
# The Debian root filesystem tarball is cached machine-wide ($CAGED_CACHE_DIR, default ~/.cache/caged-agent)
# so a re-import takes seconds, also from a fresh clone.
# Usage: scripts/build-test-images.sh [--force]   (--force rebuilds the images, keeps the cached tarball)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${CAGED_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/caged-agent}"
mkdir -p "$cache"
force=0
[ "${1:-}" = "--force" ] && force=1

DEBIAN_TAG=caged-agent-test/debian:bookworm
NODE_TAG=caged-agent-test/node:20
NOSHELL_TAG=caged-agent-test/noshell:1
DEV_TAG=caged-agent-test/dev:1
LABEL='LABEL caged-agent.test=1'
PATH_ENV='ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

have() { [ $force -eq 0 ] && docker image inspect "$1" >/dev/null 2>&1; }
log() { echo "[images] $*" >&2; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# The Debian mirror this machine's apt uses (deb822 .sources first, then one-line sources.list).
debian_mirror() {
  local m=""
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    m="$(awk '/^URIs:/{u=$2} /^Suites:/{ if ($0 ~ /[ \t]bookworm([ \t]|$)/ && u != "") { print u; exit } }' "$f")"
    [ -n "$m" ] && break
  done
  if [ -z "$m" ] && [ -f /etc/apt/sources.list ]; then
    m="$(awk '$1=="deb" && $3=="bookworm" {print $2; exit}' /etc/apt/sources.list)"
  fi
  echo "${m:-http://deb.debian.org/debian}"
}

rootfs_tar="$cache/debian-bookworm-rootfs.tar"
ensure_rootfs() {
  [ -s "$rootfs_tar" ] && return 0
  command -v debootstrap >/dev/null || bash "$root/scripts/install-system-deps.sh" demo
  local mirror dir
  mirror="$(debian_mirror)"
  dir="$cache/debootstrap-bookworm"
  rm -rf "$dir"
  log "debootstrap bookworm from $mirror (about 80 s)"
  debootstrap --variant=minbase --include=curl,ca-certificates bookworm "$dir" "$mirror" >"$cache/debootstrap.log" 2>&1 || {
    log "debootstrap failed; see $cache/debootstrap.log"; tail -n 20 "$cache/debootstrap.log" >&2; exit 1; }
  rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* 2>/dev/null || true
  tar -C "$dir" --numeric-owner -cf "$rootfs_tar.part" .
  mv "$rootfs_tar.part" "$rootfs_tar"
  rm -rf "$dir"
}

if ! have "$DEBIAN_TAG"; then
  ensure_rootfs
  log "importing $DEBIAN_TAG"
  docker import -c "$LABEL" -c "$PATH_ENV" -c 'CMD ["/bin/bash"]' "$rootfs_tar" "$DEBIAN_TAG" >/dev/null
fi

if ! have "$NOSHELL_TAG"; then
  ensure_rootfs
  log "building $NOSHELL_TAG (no shell, no update-ca-certificates)"
  d="$tmp/noshell"
  mkdir -p "$d"
  tar -C "$d" --numeric-owner -xf "$rootfs_tar"
  rm -f "$d"/bin/bash "$d"/bin/sh "$d"/bin/dash "$d"/bin/rbash "$d"/usr/bin/bash "$d"/usr/bin/sh "$d"/usr/bin/dash \
        "$d"/usr/bin/rbash "$d"/usr/sbin/update-ca-certificates "$d"/usr/bin/busybox
  for s in sh bash dash rbash; do
    if [ -e "$d/bin/$s" ] || [ -e "$d/usr/bin/$s" ]; then log "failed to remove $s"; exit 1; fi
  done
  tar -C "$d" --numeric-owner -cf "$tmp/noshell.tar" .
  rm -rf "$d"
  docker import -c "$LABEL" -c "$PATH_ENV" -c 'CMD ["/usr/bin/curl", "--version"]' "$tmp/noshell.tar" "$NOSHELL_TAG" >/dev/null
fi

if ! have "$NODE_TAG"; then
  log "assembling $NODE_TAG from the host's $(command -v node) ($(node --version))"
  command -v busybox >/dev/null || [ -x /bin/busybox ] || bash "$root/scripts/install-system-deps.sh" demo
  d="$tmp/node"
  mkdir -p "$d"/{usr/local/bin,bin,etc/ssl/certs,tmp,home/node,app,proc,sys,dev}
  chmod 1777 "$d/tmp"
  nodebin="$(readlink -f "$(command -v node)")"
  cp "$nodebin" "$d/usr/local/bin/node"
  # Shared libraries (and the dynamic loader) exactly where the host has them.
  ldd "$nodebin" | awk '/=> \//{print $3} /^\t\/[^ ]+ \(/{print $1}' | while read -r lib; do
    mkdir -p "$d$(dirname "$lib")"
    cp -L "$lib" "$d$lib"
  done
  for lib in $(ldd "$nodebin" | awk '/=> \//{print $3}'); do
    real="$(readlink -f "$lib")"; mkdir -p "$d$(dirname "$real")"; cp -L "$lib" "$d$real" 2>/dev/null || true
  done
  bb=/bin/busybox; [ -x "$bb" ] || bb="$(command -v busybox)"
  cp "$bb" "$d/bin/busybox"
  for a in sh ls cat echo env sleep mkdir rm cp mv ps id wget nc grep sed head tail kill true false chmod; do
    ln -sf busybox "$d/bin/$a"
  done
  ln -sf /usr/local/bin/node "$d/bin/node"
  cat >"$d/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
node:x:1000:1000:node:/home/node:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
  cat >"$d/etc/group" <<'EOF'
root:x:0:
node:x:1000:
nogroup:x:65534:
EOF
  echo 'hosts: files dns' >"$d/etc/nsswitch.conf"
  mkdir -p "$d/root"
  chown 1000:1000 "$d/home/node"
  tar -C "$d" --numeric-owner -cf "$tmp/node.tar" .
  rm -rf "$d"
  docker import -c "$LABEL" -c "$PATH_ENV" -c 'CMD ["node"]' "$tmp/node.tar" "$NODE_TAG" >/dev/null
  docker run --rm --label caged-agent.test=1 "$NODE_TAG" node -e 'process.exit(0)' || { log "$NODE_TAG does not run node"; exit 1; }
fi

# Copies a file or folder of the host to the same path under $1, with the shared libraries of binaries.
copy_from_host() {
  local d="$1"; shift
  local f
  for f in "$@"; do
    [ -e "$f" ] || [ -L "$f" ] || continue
    mkdir -p "$d$(dirname "$f")"
    cp -a "$f" "$d$(dirname "$f")/"
  done
}

if ! have "$DEV_TAG"; then
  ensure_rootfs
  command -v git >/dev/null || bash "$root/scripts/install-system-deps.sh" demo
  log "building $DEV_TAG (Debian + the host's git $(git --version | awk '{print $3}'), node $(node --version), npm)"
  d="$tmp/dev"
  mkdir -p "$d"
  tar -C "$d" --numeric-owner -xf "$rootfs_tar"
  # git: the files of Debian's git package, without docs, man pages and shell completion.
  dpkg -L git | grep -v -e '^/usr/share/doc' -e '^/usr/share/man' -e 'completion' | while read -r f; do
    [ -f "$f" ] || [ -L "$f" ] || continue
    mkdir -p "$d$(dirname "$f")"; cp -a "$f" "$d$f"
  done
  nodebin="$(readlink -f "$(command -v node)")"
  copy_from_host "$d" "$nodebin" /usr/lib/node_modules/npm
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$d/usr/bin/npm"
  for bin in "$nodebin" /usr/bin/git; do
    ldd "$bin" | awk '/=> \//{print $3}' | while read -r lib; do
      real="$(readlink -f "$lib")"
      [ -e "$d$lib" ] && continue
      mkdir -p "$d$(dirname "$real")" "$d$(dirname "$lib")"
      cp -L "$lib" "$d$real"
      [ "$real" = "$lib" ] || ln -sf "$real" "$d$lib"
    done
  done
  tar -C "$d" --numeric-owner -cf "$tmp/dev.tar" .
  rm -rf "$d"
  docker import -c "$LABEL" -c "$PATH_ENV" -c 'CMD ["/bin/bash"]' "$tmp/dev.tar" "$DEV_TAG.part" >/dev/null
  docker run --rm --label caged-agent.test=1 "$DEV_TAG.part" sh -c 'git --version && node --version && npm --version' >/dev/null \
    || { docker rmi "$DEV_TAG.part" >/dev/null; log "$DEV_TAG does not run git, node and npm"; exit 1; }
  docker tag "$DEV_TAG.part" "$DEV_TAG" && docker rmi "$DEV_TAG.part" >/dev/null
fi

log "ready: $DEBIAN_TAG $NODE_TAG $NOSHELL_TAG $DEV_TAG"
