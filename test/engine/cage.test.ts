// The full cage cycle on a real Docker engine: up → verify → allow → reload → down, plus what a user
// would check by hand: labels, topology, hardening, the read-only policy, the agent's trust store.
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type Docker from 'dockerode';
import { EGRESS_NETWORK, LABEL, LABEL_CAGE, LABEL_ROLE, names, PROXY_ALIAS, type CageEngine, type CageInfo, type ProxyEvent } from '../../src/engine';
import { addAllow } from '../../src/policy';
import { allowPolicy, leftovers, makeEngine, makeWorkspace, prepare, startUpstream, tearDownCage, tmpDir, type Upstream } from './setup';

// Host names only this file puts on the shared egress network (see test/shared/upstream.ts).
const ALLOWED = 'allowed.engine-cage.test';
const BLOCKED = 'blocked.engine-cage.test';

describe('a cage on a real Docker engine', { timeout: 240_000 }, () => {
  let engine: CageEngine;
  let docker: Docker;
  let stateDir: string;
  let ws: string;
  let upstream: Upstream;
  let cage: CageInfo;
  const events: ProxyEvent[] = [];
  let stopEvents: (() => void) | undefined;

  before(async () => {
    prepare();
    stateDir = tmpDir('caged-state-');
    ws = makeWorkspace('caged-ws-', allowPolicy(ALLOWED));
    engine = makeEngine(stateDir);
    docker = engine.docker;
    await engine.down(engine.cageIdFor(ws));
    upstream = await startUpstream(docker, engine, { name: 'caged-agent-test-upstream-cage', hosts: [ALLOWED, BLOCKED] });
  });

  after(async () => {
    stopEvents?.();
    await tearDownCage(engine, ws, stateDir, upstream?.stop);
  });

  it('starts: up returns a healthy cage and reports each step', async () => {
    const steps: string[] = [];
    const t0 = Date.now();
    cage = await engine.up({ workspace: ws, upstreamCaPem: upstream.caPem, onProgress: (s) => { if (!steps.includes(s)) steps.push(s); } });
    const ms = Date.now() - t0;
    console.log(`# up took ${ms} ms`);
    assert.equal(cage.state, 'healthy');
    assert.equal(cage.id, engine.cageIdFor(ws));
    assert.match(cage.id, /^ca-[0-9a-f]{10}$/);
    assert.equal(cage.workspace, ws);
    assert.deepEqual(cage.policy, { ok: true, message: '1 allow and 0 deny rules in force' });
    assert.deepEqual(steps, ['engine', 'proxy-image', 'ca', 'agent-image', 'workspace', 'networks', 'proxy-container', 'proxy-healthy', 'policy', 'agent-container']);
  });

  it('starting again returns the running cage without touching it', async () => {
    const again = await engine.up({ workspace: ws, upstreamCaPem: upstream.caPem });
    assert.equal(again.agentContainerId, cage.agentContainerId);
    assert.equal(again.proxyContainerId, cage.proxyContainerId);
  });

  it('labels every object and wires the topology: agent on the internal network only, proxy on both', async () => {
    const agent = await docker.getContainer(cage.agentContainerId!).inspect();
    const proxy = await docker.getContainer(cage.proxyContainerId!).inspect();
    for (const [c, role] of [[agent, 'agent'], [proxy, 'proxy']] as const) {
      assert.equal(c.Config.Labels[LABEL], '1');
      assert.equal(c.Config.Labels[LABEL_CAGE], cage.id);
      assert.equal(c.Config.Labels[LABEL_ROLE], role);
      assert.equal(c.Config.Labels['caged-agent.workspace'], ws);
      assert.deepEqual(c.HostConfig.PortBindings ?? {}, {}, `${role} publishes no ports`);
      assert.ok(!JSON.stringify(c.Mounts).includes('docker.sock'), `${role} has no Docker socket`);
    }
    assert.deepEqual(Object.keys(agent.NetworkSettings.Networks), [names.network(cage.id)]);
    assert.deepEqual(Object.keys(proxy.NetworkSettings.Networks).sort(), [EGRESS_NETWORK, names.network(cage.id)].sort());
    assert.ok(proxy.NetworkSettings.Networks[names.network(cage.id)].Aliases?.includes(PROXY_ALIAS));
    // The agent's DNS server is the proxy's cage address (the proxy answers every name, test/engine/transparent.test.ts).
    assert.deepEqual(agent.HostConfig.Dns, [proxy.NetworkSettings.Networks[names.network(cage.id)].IPAddress]);
    assert.notEqual(agent.HostConfig.NetworkMode, 'host');
    assert.notEqual(agent.HostConfig.Privileged, true);
    assert.deepEqual(agent.HostConfig.CapDrop, ['NET_RAW', 'MKNOD'], 'the agent has no raw sockets and no device nodes');

    const net = await docker.getNetwork(names.network(cage.id)).inspect();
    assert.equal(net.Internal, true);
    assert.equal(net.Labels?.[LABEL_CAGE], cage.id);
    assert.equal(net.Labels?.[LABEL_ROLE], 'network');
    const egress = await docker.getNetwork(EGRESS_NETWORK).inspect();
    assert.equal(egress.Internal, false);
    assert.equal(egress.Labels?.[LABEL_ROLE], 'egress');
    const vol = await docker.getVolume(names.volume(cage.id)).inspect();
    assert.equal(vol.Labels[LABEL_CAGE], cage.id);
    assert.equal(vol.Labels[LABEL_ROLE], 'volume');
    const img = await docker.getImage(agent.Image).inspect();
    assert.equal(img.Config.Labels[LABEL_CAGE], cage.id);
    assert.equal(img.Config.Labels[LABEL_ROLE], 'image');

    // Proxy hardening.
    assert.deepEqual(proxy.HostConfig.CapDrop, ['ALL']);
    assert.ok(proxy.HostConfig.SecurityOpt?.some((s: string) => s.startsWith('no-new-privileges')));
    assert.equal(proxy.HostConfig.ReadonlyRootfs, true);
    assert.ok(proxy.HostConfig.Tmpfs && '/tmp' in proxy.HostConfig.Tmpfs);
    assert.ok((proxy.HostConfig.PidsLimit ?? 0) > 0);
    assert.ok((proxy.HostConfig.Memory ?? 0) > 0);
    assert.equal(proxy.HostConfig.CpuShares, 2048, 'the proxy is weighted ahead of a busy agent');
    assert.equal(proxy.Config.User, '1000:1000');
    assert.ok(proxy.Config.Healthcheck?.Test?.includes('--health'));
    const uid = await engine.exec(cage.id, ['id', '-u']);
    assert.equal(uid.exitCode, 0);
  });

  it('keeps secrets out of the agent: no CA key in its env, image or workspace', async () => {
    const key = fs.readFileSync(path.join(stateDir, 'cages', cage.id, 'ca.key'), 'utf8');
    assert.equal(fs.statSync(path.join(stateDir, 'cages', cage.id, 'ca.key')).mode & 0o777, 0o600);
    assert.equal(fs.statSync(path.join(stateDir, 'cages', cage.id)).mode & 0o777, 0o700);
    const keyLine = key.split('\n')[1];
    const r = await engine.exec(cage.id, ['sh', '-c', `env; grep -rl -- '${keyLine.slice(0, 40)}' /etc /usr/local /root /home /tmp /opt ${cage.workspaceInContainer} 2>/dev/null; true`]);
    assert.ok(!r.stdout.includes(keyLine.slice(0, 40)), 'the CA key is not visible inside the agent');
    assert.ok(!r.stdout.includes('CAGED_SECRET'), 'no secret variables in the agent');
    const agent = await docker.getContainer(cage.agentContainerId!).inspect();
    assert.ok(!JSON.stringify(agent.Config.Env).includes('PRIVATE KEY'));
  });

  it('verify: every check passes from inside the agent', async () => {
    const checks = await engine.verify(cage.id, { allowedUrl: `https://${ALLOWED}/`, blockedUrl: `https://${BLOCKED}/`, externalName: ALLOWED });
    for (const c of checks) console.log(`# ${c.ok ? 'PASS' : 'FAIL'} ${c.name}: ${c.detail}`);
    assert.ok(checks.length >= 6);
    assert.deepEqual(checks.filter((c) => !c.ok).map((c) => c.name), []);
    assert.ok(checks.every((c) => !c.skipped));
  });

  it("the agent's curl trusts the cage CA through the system trust store alone", async () => {
    // No CA env variables: curl falls back to the image's system bundle.
    const r = await engine.exec(cage.id, ['env', '-u', 'CURL_CA_BUNDLE', '-u', 'SSL_CERT_FILE', '-u', 'REQUESTS_CA_BUNDLE', 'curl', '-sS', '-v', `https://${ALLOWED}/hello`]);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.stdout, `hello from ${ALLOWED} GET /hello\n`);
    assert.match(r.stderr, new RegExp(`issuer: CN=Caged Agent CA ${cage.id}`));
    assert.match(r.stderr, /SSL certificate verify ok/);
    // And the system bundle still holds the image's original roots next to the cage CA.
    const count = await engine.exec(cage.id, ['grep', '-c', 'BEGIN CERTIFICATE', '/etc/ssl/certs/ca-certificates.crt']);
    assert.ok(Number(count.stdout.trim()) > 100, 'original roots kept');
  });

  it('a blocked host gets 403 with the reason header, and the event stream reports it', async () => {
    const sub = await engine.events(cage.id, (e) => events.push(e));
    stopEvents = () => sub.stop();
    const r = await engine.exec(cage.id, ['curl', '-sS', '-D', '-', '-o', '/dev/null', `https://${BLOCKED}/secret`]);
    assert.match(r.stdout, /^HTTP\/1\.1 403/m);
    assert.match(r.stdout, /^x-caged-agent-block: no-matching-rule/im);
    const deadline = Date.now() + 5000;
    while (!events.some((e) => e.type === 'block' && e.host === BLOCKED) && Date.now() < deadline) await new Promise((res) => setTimeout(res, 50));
    const ev = events.find((e) => e.type === 'block' && e.host === BLOCKED);
    assert.ok(ev, `a block event arrived (got ${JSON.stringify(events)})`);
    assert.equal(ev.type === 'block' && ev.reason, 'no-matching-rule');
  });

  it('the agent cannot write, replace or remove the policy', async () => {
    const inside = path.posix.join(cage.workspaceInContainer!, '.caged');
    const before = fs.readFileSync(path.join(ws, '.caged', 'policy.yaml'), 'utf8');
    for (const cmd of [
      `echo '  - host: evil.test' >> ${inside}/policy.yaml`,
      `rm -f ${inside}/policy.yaml`,
      `mv ${inside} ${inside}.moved`,
      `rm -rf ${inside}`,
      `touch ${inside}/other.yaml`,
      `chmod 777 ${inside}/policy.yaml`,
    ]) {
      const r = await engine.exec(cage.id, ['sh', '-c', cmd]);
      assert.notEqual(r.exitCode, 0, `"${cmd}" must fail`);
    }
    assert.equal(fs.readFileSync(path.join(ws, '.caged', 'policy.yaml'), 'utf8'), before);
    assert.equal((await engine.exec(cage.id, ['cat', `${inside}/policy.yaml`])).stdout, before, 'the agent can read it');
    // The rest of the workspace is writable.
    const w = await engine.exec(cage.id, ['sh', '-c', `echo written > ${cage.workspaceInContainer}/out.txt`]);
    assert.equal(w.exitCode, 0, w.stderr);
    assert.equal(fs.readFileSync(path.join(ws, 'out.txt'), 'utf8'), 'written\n');
  });

  it('allow → reload: the newly allowed host works at once', async () => {
    const file = path.join(ws, '.caged', 'policy.yaml');
    const text = addAllow(fs.readFileSync(file, 'utf8'), { host: BLOCKED, private: true }).text;
    assert.match(text, /# The test upstream lives on a Docker bridge address/, 'comments kept');
    fs.writeFileSync(file, text);
    const r = await engine.pushPolicy(cage.id, text);
    assert.deepEqual(r, { ok: true, message: '2 allow and 0 deny rules in force' });
    const hash = crypto.createHash('sha256').update(text).digest('hex');
    const deadline = Date.now() + 5000;
    while (!events.some((e) => e.type === 'policy-loaded' && e.hash === hash) && Date.now() < deadline) await new Promise((res) => setTimeout(res, 50));
    assert.ok(events.some((e) => e.type === 'policy-loaded' && e.hash === hash), `policy-loaded event seen: ${JSON.stringify(events)}`);
    const c = await engine.exec(cage.id, ['curl', '-sS', `https://${BLOCKED}/now`]);
    assert.equal(c.exitCode, 0, c.stderr);
    assert.equal(c.stdout, `hello from ${BLOCKED} GET /now\n`);
  });

  it('an invalid policy is reported with line and column, and the last good one stays', async () => {
    const r = await engine.pushPolicy(cage.id, `version: 1\nallow:\n  - host: ${ALLOWED}\n    bogus: [\n`);
    assert.equal(r.ok, false);
    assert.ok(r.line && r.line >= 3, `line given: ${JSON.stringify(r)}`);
    assert.match(r.message, /previous policy stays/);
    const c = await engine.exec(cage.id, ['curl', '-sS', `https://${BLOCKED}/still`]);
    assert.equal(c.exitCode, 0, c.stderr);
    // Restore the file's policy through reloadPolicy (reads the policy file the cage was started with).
    const back = await engine.reloadPolicy(cage.id);
    assert.equal(back.ok, true);
  });

  it("one follower of the proxy's log serves every consumer: event streams, a replay and a push", async () => {
    // Counts the log streams the engine opens from here on (the event stream of the test above is still open).
    const proto = Object.getPrototypeOf(docker.getContainer(cage.proxyContainerId!));
    const logs = proto.logs;
    const opened = { follow: 0, read: 0 };
    proto.logs = function (this: Docker.Container, opts: { follow?: boolean }, ...rest: unknown[]) {
      if (opts?.follow) opened.follow++;
      else opened.read++;
      return logs.call(this, opts, ...rest);
    };
    const a: ProxyEvent[] = [];
    const b: ProxyEvent[] = [];
    const subs: Array<{ stop(): void }> = [];
    try {
      subs.push(await engine.events(cage.id, (e) => a.push(e)));
      subs.push(await engine.events(cage.id, (e) => b.push(e), { since: new Date(Date.now() - 600_000) }));
      assert.ok(b.some((e) => e.type === 'block' && e.host === BLOCKED), 'the replay has the earlier block');
      const text = fs.readFileSync(path.join(ws, '.caged', 'policy.yaml'), 'utf8');
      const hash = crypto.createHash('sha256').update(text).digest('hex');
      const before = b.filter((e) => e.type === 'policy-loaded' && e.hash === hash).length;
      const r = await engine.reloadPolicy(cage.id);
      assert.equal(r.ok, true, r.message);
      const deadline = Date.now() + 5000;
      while (!a.some((e) => e.type === 'policy-loaded' && e.hash === hash) && Date.now() < deadline) await new Promise((res) => setTimeout(res, 50));
      assert.equal(a.filter((e) => e.type === 'policy-loaded' && e.hash === hash).length, 1, 'the new subscriber sees the reload once');
      assert.equal(b.filter((e) => e.type === 'policy-loaded' && e.hash === hash).length, before + 1, 'the replaying subscriber sees it once more, not twice');
      assert.deepEqual(opened, { follow: 0, read: 1 }, 'no second follower: the replay is one read of the log, the push waits on the open follower');
    } finally {
      proto.logs = logs;
      for (const s of subs) s.stop();
    }
  });

  it('list() finds the cage by its labels, as after a restart of the caller', async () => {
    const fresh = makeEngine(stateDir);
    const cages = await fresh.list();
    const found = cages.find((c) => c.id === cage.id);
    assert.ok(found);
    assert.equal(found.workspace, ws);
    assert.ok(['healthy', 'starting'].includes(found.state));
    assert.equal(found.policyPath, path.join(ws, '.caged', 'policy.yaml'));
  });

  it('openShell gives an interactive terminal in the workspace', async () => {
    const s = await engine.openShell(cage.id, { cols: 100, rows: 30 });
    let out = '';
    s.stream.on('data', (d: Buffer) => (out += d.toString()));
    s.stream.write('pwd; stty size; exit 7\n');
    const code = await s.exit;
    assert.equal(code, 7);
    assert.ok(out.includes(cage.workspaceInContainer!), out);
    assert.match(out, /30 100/);
  });

  it('down removes every labelled object of the cage and is idempotent', async () => {
    stopEvents?.();
    stopEvents = undefined;
    await engine.down(cage.id);
    assert.deepEqual(await leftovers(docker, [cage.id]), []);
    await engine.down(cage.id); // nothing left: still success
    assert.equal((await engine.list()).find((c) => c.id === cage.id), undefined);
    // The shared egress network and the cached images stay.
    await docker.getNetwork(EGRESS_NETWORK).inspect();
    await docker.getImage(cage.agentImage).inspect();
  });

  it('a restart reuses the CA and the cached agent image', async () => {
    const t0 = Date.now();
    const again = await engine.up({ workspace: ws, upstreamCaPem: upstream.caPem });
    console.log(`# up with cached images took ${Date.now() - t0} ms`);
    assert.equal(again.id, cage.id);
    assert.equal(again.agentImage, cage.agentImage);
    await engine.down(again.id);
    assert.deepEqual(await leftovers(docker, [cage.id]), []);
  });
});
