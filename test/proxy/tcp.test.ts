// Raw TCP rules in the proxy (tcp.ts) with real sockets: a client looks a name up in the cage's DNS and connects
// to the answer (the proxy) on the rule's port; the proxy attributes it to the name, connects, relays. Without a
// rule it is closed with a block event (method TCP) the editor can offer "Allow TCP N to HOST" for.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Resolver } from 'node:dns/promises';
import * as net from 'node:net';
import type { DecisionEvent } from '../../src/policy/events';
import { startTestProxy, type TestProxy } from './helpers';

let echo: net.Server;
let E: number; // the echo server's port (127.0.0.1), also the rule's port on the proxy (127.0.0.2)
let W: number; // a watched port with no rule
let proxy: TestProxy;
let D: number;

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.2', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

const policy = (extra = '') => `version: 1
allow:
  - host: api.test
    tcp: [${E}]
    private: true
  - host: other.test
    tcp: [${E}]
${extra}`;

before(async () => {
  echo = net.createServer((s) => s.pipe(s));
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  E = (echo.address() as net.AddressInfo).port;
  W = await freePort();
  proxy = await startTestProxy(policy(), { transparent: { host: '127.0.0.2', tlsPort: await freePort(), httpPort: await freePort(), dns: [{ host: '127.0.0.2', port: 0 }], watchedTcpPorts: [W] } });
  D = proxy.transparent!.dns[0].port;
});

after(async () => {
  await proxy.close(500);
  await new Promise<void>((r) => echo.close(() => r()));
});

async function lookup(name: string): Promise<string[]> {
  const r = new Resolver({ timeout: 2000, tries: 1 });
  r.setServers([`127.0.0.2:${D}`]);
  return r.resolve4(name);
}

/** Connects to the proxy on `port`, sends `msg`, and resolves with what came back before the close. */
function talk(port: number, msg: string): Promise<string> {
  return new Promise((resolve) => {
    let got = '';
    const s = net.connect(port, '127.0.0.2', () => s.write(msg));
    s.on('data', (d) => {
      got += d.toString();
      if (got.length >= msg.length) s.end();
    });
    s.on('close', () => resolve(got));
    s.on('error', () => resolve(got));
  });
}

const tcpEvent = (host: string, port: number) => (e: { type: string }) => (e.type === 'allow' || e.type === 'block') && (e as DecisionEvent).host === host && (e as DecisionEvent).port === port && (e as DecisionEvent).method === 'TCP';

describe('raw TCP rules', () => {
  test('the proxy listens on the rule ports and the watched ones', () => {
    assert.deepEqual(proxy.transparent!.tcpPorts(), [E, W].sort((a, b) => a - b));
  });

  test('looked up, then connected: the bytes reach the named host and come back, with one allow event', async () => {
    assert.deepEqual(await lookup('api.test'), ['127.0.0.2']);
    assert.equal(await talk(E, 'ping over raw tcp'), 'ping over raw tcp');
    const e = (await proxy.waitEvent(tcpEvent('api.test', E))) as DecisionEvent;
    assert.equal(e.type, 'allow');
    assert.equal(e.ruleKey, `allow api.test tcp ${E}`);
    assert.equal(e.via, 'tcp', 'the event says how the connection arrived');
  });

  test('a lookup of another name in the same moment (another process) does not take the connection away', async () => {
    await lookup('api.test');
    await lookup('not-allowed.example'); // an HTTP host looked up in between, within the same few ms
    assert.equal(await talk(E, 'still api'), 'still api');
  });

  test('but a later lookup of a name without a rule is what the next connection is for: refused, not sent elsewhere', async () => {
    await lookup('api.test');
    await new Promise((r) => setTimeout(r, 120));
    await lookup('later.example');
    assert.equal(await talk(E, 'x'), '');
    const e = (await proxy.waitEvent(tcpEvent('later.example', E))) as DecisionEvent;
    assert.equal(e.type, 'block');
    assert.equal(e.reason, 'no-matching-rule');
  });

  test('private addresses are refused unless the rule says private: true (the checked address is the one connected to)', async () => {
    await lookup('other.test'); // resolves (for the proxy) to 127.0.0.1, and its rule has no private: true
    assert.equal(await talk(E, 'x'), '');
    const e = (await proxy.waitEvent((x) => tcpEvent('other.test', E)(x) && x.type === 'block')) as DecisionEvent;
    assert.equal(e.reason, 'private-address');
  });

  test('a watched port without a rule: closed, and a block event for the name looked up last', async () => {
    await lookup('db.i19.example');
    assert.equal(await talk(W, 'SELECT 1'), '');
    const e = (await proxy.waitEvent(tcpEvent('db.i19.example', W))) as DecisionEvent;
    assert.equal(e.type, 'block');
    assert.equal(e.reason, 'no-matching-rule');
    assert.equal(e.path, '');
    assert.equal(e.via, 'tcp');
  });

  test('a reload that adds a port starts its listener; one that drops it stops it', async () => {
    const extra = await freePort();
    assert.equal(proxy.reload(policy(`  - host: api.test\n    tcp: [${extra}]\n    private: true\n`)).ok, true);
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(proxy.transparent!.tcpPorts().includes(extra));
    assert.equal(proxy.reload(policy()).ok, true);
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(!proxy.transparent!.tcpPorts().includes(extra));
  });
});
