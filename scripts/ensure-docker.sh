#!/usr/bin/env bash
# Makes sure a Docker engine answers. Reuses one that already answers (local socket or DOCKER_HOST);
# otherwise installs Debian's docker.io (via install-system-deps.sh) and starts dockerd in the background,
# detached so it outlives this script, logging to .cache/dockerd.log. Idempotent: never starts a second
# dockerd. Exits non-zero with a clear message when the engine does not come up in time.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
timeout_s="${CAGED_DOCKER_TIMEOUT:-60}"

answers() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

if command -v docker >/dev/null 2>&1 && answers; then
  exit 0
fi

if [ -n "${DOCKER_HOST:-}" ] && [ "${DOCKER_HOST#unix://}" = "$DOCKER_HOST" ]; then
  echo "[docker] DOCKER_HOST=$DOCKER_HOST does not answer; not starting a local engine for a remote host." >&2
  exit 1
fi

if ! command -v dockerd >/dev/null 2>&1; then
  echo "[docker] no engine answers and dockerd is missing: installing system packages" >&2
  bash "$root/scripts/install-system-deps.sh" demo
fi

# A dockerd may already be starting (another run, or a stale pid file): wait for it instead of starting one.
running_pid=""
if [ -f /var/run/docker.pid ]; then
  p="$(cat /var/run/docker.pid 2>/dev/null || true)"
  if [ -n "$p" ] && kill -0 "$p" 2>/dev/null && grep -q dockerd "/proc/$p/cmdline" 2>/dev/null; then
    running_pid="$p"
  fi
fi

mkdir -p "$root/.cache"
log="$root/.cache/dockerd.log"
if [ -z "$running_pid" ]; then
  echo "[docker] starting dockerd (log: $log)" >&2
  # setsid + nohup: detached from this shell's session so it survives the script and its job control.
  setsid nohup dockerd >>"$log" 2>&1 </dev/null &
  disown || true
else
  echo "[docker] dockerd (pid $running_pid) is already starting; waiting for it" >&2
fi

deadline=$((SECONDS + timeout_s))
until answers; do
  if [ $SECONDS -ge $deadline ]; then
    echo "[docker] the Docker engine did not answer within ${timeout_s}s. Last lines of $log:" >&2
    tail -n 20 "$log" >&2 2>/dev/null || true
    exit 1
  fi
  sleep 0.5
done
echo "[docker] engine up: $(docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})')" >&2
