#!/usr/bin/env bash
# Builds caged-agent-test/ssh:1 for the raw TCP tests (test/engine/ssh.test.ts): caged-agent-test/dev:1 (Debian
# with git) plus Debian's openssh-client and openssh-server (9.2), unpacked from their packages. The same image
# is the agent (ssh, git) and the "outside" git server (sshd). Built once; reused while the tag exists.
set -euo pipefail
TAG=caged-agent-test/ssh:1
BASE=caged-agent-test/dev:1
log() { echo "[ssh-image] $*" >&2; }

docker image inspect "$TAG" >/dev/null 2>&1 && { log "ready: $TAG"; exit 0; }
docker image inspect "$BASE" >/dev/null 2>&1 || bash "$(dirname "$0")/build-test-images.sh"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
log "downloading openssh-client, openssh-server and their libraries from Debian"
# apt-get download writes into the current folder; as root it warns that _apt cannot, which is harmless.
apt-get download openssh-client openssh-server openssh-sftp-server libwrap0 libnsl2 libtirpc3 libtirpc-common libedit2 libfido2-1 libcbor0.8 libbsd0 libmd0 >/dev/null 2>&1 || {
  apt-get update >/dev/null 2>&1
  apt-get download openssh-client openssh-server openssh-sftp-server libwrap0 libnsl2 libtirpc3 libtirpc-common libedit2 libfido2-1 libcbor0.8 libbsd0 libmd0 >/dev/null
}
mkdir root
for deb in ./*.deb; do dpkg -x "$deb" root; done
# The base image is merged-/usr (/bin, /sbin, /lib are links into /usr): a real /lib in the copy would replace
# the link. Move what the packages put there into /usr.
for top in bin sbin lib lib64; do
  if [ -d "root/$top" ] && [ ! -L "root/$top" ]; then mkdir -p "root/usr/$top"; cp -a "root/$top/." "root/usr/$top/"; rm -rf "root/$top"; fi
done
rm -rf root/usr/share/doc root/usr/share/man root/etc/init.d root/usr/lib/systemd
cat > Dockerfile <<EOF
FROM $BASE
COPY root/ /
RUN mkdir -p /run/sshd /root/.ssh && chmod 700 /root/.ssh && cp /usr/share/openssh/sshd_config /etc/ssh/sshd_config \\
 && (getent passwd sshd >/dev/null || echo 'sshd:x:101:65534::/run/sshd:/usr/sbin/nologin' >> /etc/passwd) \\
 && (getent passwd git >/dev/null || (echo 'git:x:1001:1001::/home/git:/bin/sh' >> /etc/passwd && echo 'git:x:1001:' >> /etc/group && echo 'git:*:19000:0:99999:7:::' >> /etc/shadow)) \\
 && mkdir -p /home/git/.ssh && chown -R 1001:1001 /home/git && chmod 700 /home/git/.ssh \\
 && ssh -V && ! (ldd /usr/sbin/sshd /usr/bin/ssh /usr/bin/ssh-keygen | grep 'not found')
LABEL caged-agent.test=1
EOF
log "building $TAG"
docker build -q -t "$TAG" . >/dev/null
docker run --rm --label caged-agent.test=1 "$TAG" sh -c 'ssh -V && git --version' >&2
log "ready: $TAG"
