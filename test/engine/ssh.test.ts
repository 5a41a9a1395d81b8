// git over SSH through a raw TCP rule, in a real cage, as a user runs it: `git clone git@HOST:repo.git` with the
// agent's own ssh, unchanged (no proxy settings, no ssh_config from us). The outside is an sshd of the test's
// own (Debian's openssh-server, scripts/build-ssh-test-image.sh) with a bare repository. Host key checking stays
// on and checks the real server's key; without a rule the connection is refused with a TCP block event.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type Docker from 'dockerode';
import { EGRESS_NETWORK, type CageEngine, type CageInfo, type ProxyEvent } from '../../src/engine';
import { makeEngine, makeWorkspace, prepare, ROOT, tearDownCage, TEST_LABEL, tmpDir, waitForEvent } from './setup';

const SSH_IMAGE = 'caged-agent-test/ssh:1';
// Host names only this file puts on the shared egress network (see test/shared/upstream.ts).
const GIT_HOST = 'git.i19-ssh.test';
const OTHER_HOST = 'other.i19-ssh.test';
const SSHD = 'caged-agent-test-i19-sshd';

const SSHD_SCRIPT = `set -e
ssh-keygen -A >/dev/null
printf '%s\\n' "$AUTH_KEY" > /home/git/.ssh/authorized_keys
chown -R git:git /home/git/.ssh && chmod 600 /home/git/.ssh/authorized_keys
su git -s /bin/sh -c 'git init -q --bare --initial-branch=main /home/git/repo.git && cd /tmp && git init -q w && cd w && echo "hello over ssh" > README && git add README && git -c user.email=t@t -c user.name=t commit -qm first && git push -q /home/git/repo.git HEAD:refs/heads/main' || { echo repo-failed; exit 1; }
echo "hostkey $(cut -d' ' -f1,2 /etc/ssh/ssh_host_ed25519_key.pub)"
echo sshd-ready
exec /usr/sbin/sshd -D -e -o PasswordAuthentication=no -o PermitRootLogin=no
`;

describe('git over SSH through a raw TCP rule in a real cage', { timeout: 240_000 }, () => {
  let engine: CageEngine;
  let docker: Docker;
  let stateDir: string;
  let ws: string;
  let keys: string;
  let sshd: Docker.Container | undefined;
  let cage: CageInfo;
  const events: ProxyEvent[] = [];
  let stopEvents: (() => void) | undefined;

  const waitEvent = (pred: (e: ProxyEvent) => boolean) => waitForEvent(events, pred);
  /** The agent's git/ssh with its key and known_hosts from the workspace; host key checking strict. */
  const sshCmd = (knownHosts: string) => `ssh -i ${keys}/id_ed25519 -o UserKnownHostsFile=${keys}/${knownHosts} -o StrictHostKeyChecking=yes -o BatchMode=yes -o ConnectTimeout=5`;

  before(async () => {
    prepare();
    const b = spawnSync('bash', [path.join(ROOT, 'scripts', 'build-ssh-test-image.sh')], { stdio: ['ignore', 'inherit', 'inherit'], timeout: 10 * 60_000 });
    assert.equal(b.status, 0, 'the ssh test image builds');
    stateDir = tmpDir('caged-state-i19ssh-');
    ws = makeWorkspace('caged-i19-ssh-ws-', `version: 1\nallow:\n  - host: ${GIT_HOST}\n    tcp: [22]\n    private: true   # the test sshd is on a Docker bridge\n`);
    keys = path.join(ws, '.testkeys');
    fs.mkdirSync(keys);
    // The key is made with the image's ssh-keygen (a fresh CI machine has no OpenSSH), owned by this user.
    const own = `${process.getuid?.() ?? 0}:${process.getgid?.() ?? 0}`;
    const kg = spawnSync('docker', ['run', '--rm', '--label', 'caged-agent.test=1', '--network', 'none', '-u', own, '-v', `${keys}:/keys`, 'caged-agent-test/ssh:1', 'ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'i19', '-f', '/keys/id_ed25519'], { encoding: 'utf8' });
    assert.equal(kg.status, 0, `ssh-keygen in the test image: ${kg.stderr}`);
    engine = makeEngine(stateDir);
    docker = engine.docker;
    await engine.down(engine.cageIdFor(ws));
    await engine.ensureEgressNetwork();
    await docker.getContainer(SSHD).remove({ force: true }).catch(() => undefined);
    sshd = await docker.createContainer({
      name: SSHD,
      Image: SSH_IMAGE,
      Entrypoint: ['bash', '-c', SSHD_SCRIPT],
      Cmd: [],
      Env: [`AUTH_KEY=${fs.readFileSync(path.join(keys, 'id_ed25519.pub'), 'utf8').trim()}`],
      Labels: { [TEST_LABEL]: '1' },
      HostConfig: { NetworkMode: EGRESS_NETWORK },
      NetworkingConfig: { EndpointsConfig: { [EGRESS_NETWORK]: { Aliases: [GIT_HOST, OTHER_HOST] } } },
    } as Docker.ContainerCreateOptions);
    await sshd.start();
    const deadline = Date.now() + 20_000;
    let logs = '';
    for (;;) {
      logs = String(await sshd.logs({ stdout: true, stderr: true } as Docker.ContainerLogsOptions & { follow?: false }));
      if (logs.includes('sshd-ready')) break;
      if (Date.now() > deadline || logs.includes('repo-failed')) throw new Error(`the test sshd did not start: ${logs}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    // known_hosts as a user has it: the real server's host key under its name; and one with a wrong key.
    const hostKey = /hostkey (ssh-ed25519 \S+)/.exec(logs)?.[1] ?? '';
    assert.match(hostKey, /^ssh-ed25519 /, logs);
    fs.writeFileSync(path.join(keys, 'known_hosts'), `${GIT_HOST} ${hostKey}\n${OTHER_HOST} ${hostKey}\n`);
    const wrong = fs.readFileSync(path.join(keys, 'id_ed25519.pub'), 'utf8').split(' ').slice(0, 2).join(' ');
    fs.writeFileSync(path.join(keys, 'known_hosts_wrong'), `${GIT_HOST} ${wrong}\n`);
    cage = await engine.up({ workspace: ws, agentImage: SSH_IMAGE });
    const sub = await engine.events(cage.id, (e) => events.push(e));
    stopEvents = () => sub.stop();
  });

  after(async () => {
    stopEvents?.();
    await tearDownCage(engine, ws, stateDir, () => sshd?.remove({ force: true }));
  });

  it('git clone git@HOST:repo.git works unchanged, checking the real host key; the proxy records one TCP allow', async () => {
    const r = await engine.exec(cage.id, ['bash', '-c', `GIT_SSH_COMMAND='${sshCmd('known_hosts')}' git clone -q git@${GIT_HOST}:repo.git /tmp/clone && cat /tmp/clone/README`]);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.stdout, 'hello over ssh\n');
    const e = await waitEvent((x) => x.type === 'allow' && x.host === GIT_HOST && x.method === 'TCP');
    assert.equal(e.type === 'allow' && e.port, 22);
  });

  it('host key checking stays on: a known_hosts with another key for the name refuses the server', async () => {
    const r = await engine.exec(cage.id, ['bash', '-c', `${sshCmd('known_hosts_wrong')} git@${GIT_HOST} true`]);
    assert.notEqual(r.exitCode, 0);
    assert.match(r.stderr, /REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed/);
  });

  it('a host without a rule: ssh fails, and a TCP block event names it (what the quick fix allows)', async () => {
    const r = await engine.exec(cage.id, ['bash', '-c', `${sshCmd('known_hosts')} git@${OTHER_HOST} true`]);
    assert.notEqual(r.exitCode, 0);
    const e = await waitEvent((x) => x.type === 'block' && x.host === OTHER_HOST && x.method === 'TCP');
    assert.equal(e.type === 'block' && e.reason, 'no-matching-rule');
    assert.equal(e.type === 'block' && e.port, 22);
    const log = String(await sshd!.logs({ stdout: true, stderr: true } as Docker.ContainerLogsOptions & { follow?: false }));
    assert.equal((log.match(/Accepted publickey/g) ?? []).length, 1, `only the allowed clone reached the server: ${log}`);
  });
});
