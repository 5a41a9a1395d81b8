#!/usr/bin/env bash
# The main job, end to end: makes sure a Docker engine runs and the images exist, starts a caged agent on a
# copy of demo/, shows one blocked and one allowed request from inside the agent, runs the isolation checks,
# and tears everything down. Works offline: the small images are built locally from this machine (Debian's
# archive + the host's Node) unless --pull is given, in which case public images are pulled and the local
# build is the fallback when the pull fails.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PULL=0; KEEP=0
for a in "$@"; do case "$a" in --pull) PULL=1 ;; --keep) KEEP=1 ;; *) echo "usage: npm run demo [-- --pull] [--keep]"; exit 2 ;; esac; done
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "Setting up (Debian packages, Docker engine)"
bash scripts/install-system-deps.sh demo
bash scripts/ensure-docker.sh
[ -f dist/cli.js ] && [ -f dist/proxy.js ] || npm run -s build
npm run -s build >/dev/null

AGENT_IMAGE=node:20-bookworm; PROXY_BASE=node:20-alpine
have() { docker image inspect "$1" >/dev/null 2>&1; }
if [ "$PULL" = 1 ]; then
  for img in $AGENT_IMAGE $PROXY_BASE; do have "$img" || docker pull -q "$img" || { echo "pull of $img failed"; PULL=0; }; done
fi
if [ "$PULL" = 0 ] || ! have "$AGENT_IMAGE" || ! have "$PROXY_BASE"; then
  say "Building small local images instead of pulling (Debian minbase + curl for the agent, the host's Node for the proxy)"
  bash scripts/build-test-images.sh
  AGENT_IMAGE=caged-agent-test/debian:bookworm; PROXY_BASE=caged-agent-test/node:20
fi

WORK=$(mktemp -d /tmp/caged-demo.XXXXXX)
export CAGED_AGENT_STATE_DIR="$WORK/state"
cp -r demo "$WORK/workspace"
CAGE=""; UP=caged-agent-demo-upstream
cleanup() {
  set +e
  if [ "$KEEP" = 0 ]; then
    say "Tearing down"
    # --images: the agent image embeds this run's CA, which goes away with $WORK.
    [ -n "$CAGE" ] && node dist/cli.js down --images "$CAGE"
    docker rm -f "$UP" >/dev/null 2>&1
    rm -rf "$WORK"
  else
    echo "kept: cage $CAGE, workspace $WORK/workspace (node dist/cli.js down $CAGE; docker rm -f $UP)"
  fi
}
trap cleanup EXIT

say "Starting the demo's 'internet': one HTTPS server named docs.demo.test and tracker.demo.test"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=Caged Agent Demo Upstream CA" -keyout "$WORK/up-ca.key" -out "$WORK/up-ca.pem" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign >/dev/null 2>&1
openssl req -newkey rsa:2048 -nodes -subj "/CN=docs.demo.test" -keyout "$WORK/up.key" -out "$WORK/up.csr" >/dev/null 2>&1
printf 'subjectAltName=DNS:docs.demo.test,DNS:tracker.demo.test\n' > "$WORK/up.ext"
openssl x509 -req -in "$WORK/up.csr" -CA "$WORK/up-ca.pem" -CAkey "$WORK/up-ca.key" -CAcreateserial -days 2 -extfile "$WORK/up.ext" -out "$WORK/up.pem" >/dev/null 2>&1
docker network inspect caged-agent-egress >/dev/null 2>&1 || docker network create --label caged-agent=1 --label caged-agent.role=egress caged-agent-egress >/dev/null
docker rm -f "$UP" >/dev/null 2>&1 || true
docker create --name "$UP" --label caged-agent.demo=1 --network caged-agent-egress \
  --network-alias docs.demo.test --network-alias tracker.demo.test \
  --entrypoint node "$PROXY_BASE" -e "
    const https = require('https'), fs = require('fs');
    https.createServer({ key: fs.readFileSync('/srv/up.key'), cert: fs.readFileSync('/srv/up.pem') }, (q, s) => {
      s.setHeader('content-type', 'text/plain');
      s.end('Hello from ' + q.headers.host + ': the agent reached an allowed host through the cage proxy.\n');
    }).listen(443, () => console.log('demo upstream listening'));" >/dev/null
chmod 644 "$WORK/up.key"   # the demo server's own key, read by the container's non-root user
tar -C "$WORK" --transform 's,^,srv/,' -cf - up.key up.pem | docker cp - "$UP:/"
docker start "$UP" >/dev/null

say "Starting the caged agent on $WORK/workspace (image $AGENT_IMAGE)"
CAGE=$(node dist/cli.js up --workspace "$WORK/workspace" --image "$AGENT_IMAGE" --proxy-base-image "$PROXY_BASE" --upstream-ca "$WORK/up-ca.pem" | tail -n 1)
echo "cage: $CAGE"
node dist/cli.js events "$CAGE" > "$WORK/events.log" 2>&1 &
EVENTS_PID=$!

say "Inside the agent: curl https://tracker.demo.test/collect  (not allowed)"
node dist/cli.js shell "$CAGE" -- curl -sS -i --max-time 10 https://tracker.demo.test/collect || true

say "Inside the agent: curl https://docs.demo.test/  (allowed)"
node dist/cli.js shell "$CAGE" -- curl -sS -i --max-time 10 https://docs.demo.test/

say "Isolation checks from inside the agent"
node dist/cli.js verify "$CAGE" --allowed-url https://docs.demo.test/

sleep 1; kill "$EVENTS_PID" 2>/dev/null || true; wait "$EVENTS_PID" 2>/dev/null || true
say "What the proxy reported (the editor turns blocks into Problems with an Allow quick fix)"
cat "$WORK/events.log"
