// Ask instead of fail (issue 17) on real sockets: with onUnknown: ask a request no rule matches waits (CONNECT
// with the TLS handshake done and the request inside held, or plain HTTP), one pending event per host:port,
// one answer for all of them; a temporary allow, an answer "once", a deny, a reload and the timeout each
// release or refuse them with their one decision event; explicit denies never wait; the caps hold.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import type { PendingEvent, ProxyEvent, ResolvedEvent } from '../../src/policy/events';
import { parsePolicy } from '../../src/policy';
import { EventLog } from '../../src/proxy/events';
import { HoldQueue, type HeldRequest } from '../../src/proxy/hold';
import { controlClientRequest } from './holdHelpers';
import { curl, startTestProxy, startUpstream, tmpDir, type CurlResult, type TestProxy, type Upstream } from './helpers';

let up: Upstream;
let plain: Upstream;
let S: number;
let P: number;

before(async () => {
  up = await startUpstream(true);
  plain = await startUpstream(false);
  S = up.port;
  P = plain.port;
});
after(async () => {
  await up.close();
  await plain.close();
});

const policy = (extra = '', timeout = 30) => `version: 1
onUnknown: ask
askTimeout: ${timeout}
allow:
  - host: other.test:${S}
    private: true
deny:
  - host: tunnel.test:${S}
${extra}`;

const isType = <T extends ProxyEvent>(type: T['type']) => (e: ProxyEvent): e is T => e.type === type;
const waitHeld = async (proxy: TestProxy, n: number) => {
  for (let i = 0; i < 500 && proxy.stats().held !== n; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(proxy.stats().held, n);
};

describe('held requests (onUnknown: ask)', () => {
  let proxy: TestProxy;
  before(async () => {
    proxy = await startTestProxy(policy());
  });
  after(async () => {
    await proxy.close(500);
  });

  test('an unknown HTTPS host waits; a temporary allow releases it with 200, one pending and one resolved event', async () => {
    const a = curl(proxy.url, `https://api.test:${S}/v1/x?q=1`);
    const b = curl(proxy.url, `https://api.test:${S}/v1/y`, ['-X', 'POST', '-d', 'hello']);
    await waitHeld(proxy, 2);
    const pend = proxy.events.filter(isType<PendingEvent>('pending'));
    assert.ok(pend.length >= 1 && pend.length <= 2, 'one pending event, at most one update');
    assert.deepEqual([pend[0].host, pend[0].port], ['api.test', S]);
    assert.ok(['GET /v1/x', 'POST /v1/y'].includes(`${pend[0].method} ${pend[0].path}`), 'the first request, path without the query');
    assert.ok(Date.parse(pend[0].until) - Date.now() > 20_000);
    assert.equal(proxy.decisions().filter((d) => d.host === 'api.test').length, 0, 'no decision event while held');
    const r = proxy.control({ op: 'add', entries: [{ id: 't-1', kind: 'allow', host: `api.test:${S}`, private: true, created: Date.now(), expires: Date.now() + 60_000 }] });
    assert.equal(r.ok, true, r.error);
    assert.equal(r.released, 2);
    const [ra, rb] = await Promise.all([a, b]);
    assert.equal(ra.status, 200, ra.stderr);
    assert.match(ra.body, /GET/);
    assert.equal(rb.status, 200);
    assert.match(rb.body, /POST/);
    const ds = proxy.decisions().filter((d) => d.host === 'api.test');
    assert.equal(ds.length, 2, 'one event per released request');
    assert.ok(ds.every((d) => d.type === 'allow' && d.rule === 'temporary t-1'));
    const res = proxy.events.filter(isType<ResolvedEvent>('resolved'));
    assert.deepEqual(res.map((e) => [e.host, e.outcome, e.count]), [['api.test', 'allowed', 2]]);
    // Passes at once now; the policy text is the same.
    const again = await curl(proxy.url, `https://api.test:${S}/v1/z`);
    assert.equal(again.status, 200);
    // Revoked: held again.
    assert.equal(proxy.control({ op: 'remove', ids: ['t-1'] }).ok, true);
    const c = curl(proxy.url, `https://api.test:${S}/v1/after`);
    await waitHeld(proxy, 1);
    assert.equal(proxy.control({ op: 'refuse', host: 'api.test' }).refused, 1);
    const rc = await c;
    assert.equal(rc.status, 403);
    assert.equal(rc.headers['x-caged-agent-block'], 'no-matching-rule');
    assert.match(rc.body, /denied api\.test/);
  });

  test('allow once releases the waiting requests and adds nothing; plain HTTP is held too', async () => {
    const a = curl(proxy.url, `http://api.test:${P}/plain`);
    await waitHeld(proxy, 1);
    const r = proxy.control({ op: 'once', host: 'api.test', private: true });
    assert.equal(r.ok, true, r.error);
    const ra = await a;
    assert.equal(ra.status, 200, ra.stderr + ra.body);
    const ev = proxy.decisions().filter((d) => d.path === '/plain');
    assert.equal(ev.length, 1);
    assert.equal(ev[0].rule, 'temporary once');
    // Nothing was added: the next one waits again.
    const b = curl(proxy.url, `http://api.test:${P}/plain2`);
    await waitHeld(proxy, 1);
    const none = proxy.control({ op: 'once', host: 'nothing.test' });
    assert.equal(none.ok, false);
    assert.match(none.error!, /no request to nothing\.test is waiting/);
    proxy.control({ op: 'refuse', host: 'api.test' });
    assert.equal((await b).status, 403);
  });

  test('explicit denies, private addresses and bad paths never wait', async () => {
    const t0 = Date.now();
    const d = await curl(proxy.url, `https://tunnel.test:${S}/x`);
    assert.equal(d.status, 403);
    assert.equal(d.headers['x-caged-agent-block'], 'denied-by-rule');
    const p = await curl(proxy.url, `https://other.test:${S}/a/..;/b`, ['--path-as-is']);
    assert.equal(p.status, 403);
    assert.ok(Date.now() - t0 < 5000);
    assert.equal(proxy.stats().held, 0);
  });

  test('a policy reload that allows the host releases the held request; the client leaving ends it with one event', async () => {
    const a = curl(proxy.url, `https://api.test:${S}/reload`);
    await waitHeld(proxy, 1);
    proxy.reload(policy().replace('allow:\n', `allow:\n  - host: api.test:${S}\n    private: true\n`));
    const ra = await a;
    assert.equal(ra.status, 200, ra.body);
    proxy.reload(policy());
    // A client that gives up while held: out of the queue, one block event.
    const sock = net.connect(proxy.address.port, '127.0.0.1');
    sock.write(`GET http://api.test:${P}/left HTTP/1.1\r\nHost: api.test:${P}\r\n\r\n`);
    await waitHeld(proxy, 1);
    sock.destroy();
    await waitHeld(proxy, 0);
    assert.ok(proxy.events.some((e) => e.type === 'resolved' && e.outcome === 'gone'));
    const left = proxy.decisions().filter((d) => d.path === '/left');
    assert.equal(left.length, 1);
  });
});

describe('timeouts and caps', () => {
  test('no answer: 403 no-decision after askTimeout, with a resolved timeout event', async () => {
    const proxy = await startTestProxy(policy('', 1));
    try {
      const t0 = Date.now();
      const r = await curl(proxy.url, `https://api.test:${S}/slow`);
      const ms = Date.now() - t0;
      assert.equal(r.status, 403);
      assert.equal(r.headers['x-caged-agent-block'], 'no-decision');
      assert.match(r.body, /Nobody answered within 1 s/);
      assert.ok(ms >= 900 && ms < 4000, `${ms} ms`);
      const ev = proxy.decisions().find((d) => d.path === '/slow')!;
      assert.deepEqual([ev.type, ev.reason, ev.detail], ['block', 'no-decision', 'timeout']);
      assert.ok(proxy.events.some((e) => e.type === 'resolved' && e.outcome === 'timeout'));
    } finally {
      await proxy.close(500);
    }
  });

  test('onUnknown: deny (the default) blocks at once', async () => {
    const proxy = await startTestProxy(policy().replace('onUnknown: ask', 'onUnknown: deny'));
    try {
      const r = await curl(proxy.url, `https://api.test:${S}/x`);
      assert.equal(r.status, 403);
      assert.equal(r.headers['x-caged-agent-block'], 'no-matching-rule');
    } finally {
      await proxy.close(500);
    }
  });

  test('a temporary deny refuses at once; an expired temporary allow holds again', async () => {
    const proxy = await startTestProxy(policy());
    try {
      proxy.control({ op: 'add', entries: [{ id: 'd-1', kind: 'deny', host: `api.test:${S}`, created: Date.now() }, { id: 'a-1', kind: 'allow', host: `localhost:${S}`, private: true, created: Date.now(), expires: Date.now() + 700 }] });
      const r = await curl(proxy.url, `https://api.test:${S}/x`);
      assert.equal(r.status, 403);
      assert.match(r.body, /temporary deny d-1/);
      assert.equal((await curl(proxy.url, `https://localhost:${S}/x`)).status, 200);
      await new Promise((res) => setTimeout(res, 900));
      assert.deepEqual(proxy.control({ op: 'state' }).temporary!.map((e) => e.id), ['d-1']);
      const late = curl(proxy.url, `https://localhost:${S}/late`);
      await waitHeld(proxy, 1);
      proxy.control({ op: 'refuse', host: 'localhost' });
      assert.equal((await late).status, 403);
      const bad = proxy.control({ op: 'add', entries: [{ id: 'x', kind: 'allow', host: '*.com', created: 0 }] });
      assert.equal(bad.ok, false);
      assert.match(bad.error!, /public suffix/);
    } finally {
      await proxy.close(500);
    }
  });

  test('a temporary allow survives a policy reload (it lives in the proxy, not in the file)', async () => {
    const proxy = await startTestProxy(policy());
    try {
      assert.equal(proxy.control({ op: 'add', entries: [{ id: 't-r', kind: 'allow', host: `api.test:${S}`, private: true, created: Date.now() }] }).ok, true);
      assert.equal(proxy.reload(policy().replace('allow:\n', 'allow:\n  - host: unrelated.test\n')).ok, true);
      assert.deepEqual(proxy.control({ op: 'state' }).temporary!.map((e) => e.id), ['t-r']);
      const r = await curl(proxy.url, `https://api.test:${S}/after-reload`);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.status, 200, r.stderr);
      assert.match(r.body, /after-reload/);
      const d = proxy.decisions().filter((e) => e.host === 'api.test').at(-1);
      assert.deepEqual([d?.type, d?.rule], ['allow', 'temporary t-r'], 'allowed by the temporary entry, not held');
    } finally {
      await proxy.close(500);
    }
  });

  test('past the total cap a request is refused at once with hold-full (any host)', () => {
    const events: ProxyEvent[] = [];
    const p = parsePolicy(policy()).policy!;
    const q = new HoldQueue(new EventLog(null, (e) => events.push(e)), () => p, { total: 3, perHost: 250 });
    const refused: string[] = [];
    const req = (host: string): HeldRequest => ({ host, port: 443, method: 'GET', path: '/', due: Date.now() + 30_000, retry: () => 'held', refuse: (b) => refused.push(`${host} ${b.reason} ${b.detail}`) });
    for (const h of ['a.test', 'b.test', 'c.test']) assert.equal(q.hold(req(h)), undefined);
    const full = q.hold(req('d.test'));
    assert.equal(full?.reason, 'no-decision');
    assert.equal(full?.detail, 'hold-full');
    assert.match(full!.message, /^3 requests are already waiting/);
    assert.equal(q.size, 3);
    assert.equal(q.list().length, 3, 'the refused one raised no pending group');
    q.close();
    assert.deepEqual(refused.sort(), ['a.test no-decision timeout', 'b.test no-decision timeout', 'c.test no-decision timeout']);
  });

  test('past the per-host cap a request is refused at once with hold-full', async () => {
    const proxy = await startTestProxy(policy());
    const socks: net.Socket[] = [];
    try {
      for (let i = 0; i < 250; i++) {
        const s = net.connect(proxy.address.port, '127.0.0.1');
        s.on('error', () => {});
        s.write(`GET http://api.test:${P}/n${i} HTTP/1.1\r\nHost: api.test:${P}\r\n\r\n`);
        socks.push(s);
      }
      await waitHeld(proxy, 250);
      const pend = proxy.events.filter((e) => e.type === 'pending');
      assert.ok(pend.length <= 3, `${pend.length} pending events for one host`);
      const r: CurlResult = await curl(proxy.url, `http://api.test:${P}/over`);
      assert.equal(r.status, 403);
      assert.equal(r.headers['x-caged-agent-block'], 'no-decision');
      assert.match(r.body, /250 requests to api\.test/);
      proxy.control({ op: 'refuse', host: 'api.test' });
      assert.equal(proxy.stats().held, 0);
    } finally {
      for (const s of socks) s.destroy();
      await proxy.close(500);
    }
  });
});

describe('the control socket', () => {
  test('answers on a mode-600 unix socket, in client mode too', async () => {
    const file = path.join(tmpDir, 'ctl.sock');
    const proxy = await startTestProxy(policy(), { controlSocket: file });
    try {
      assert.equal(fs.statSync(file).mode & 0o777, 0o600);
      const r = await controlClientRequest(file, { op: 'state' });
      assert.equal(r.ok, true);
      assert.deepEqual(r.pending, []);
      const bad = await controlClientRequest(file, { op: 'nope' });
      assert.equal(bad.ok, false);
      assert.match(bad.error!, /unknown operation/);
    } finally {
      await proxy.close(500);
    }
  });
});
