// HTTP/2 inside intercepted sessions (issue 19, part 3): ALPN offers h2 only when the upstream speaks it, and each
// stream is a request of its own — its decision, event (proto: h2), path rule, injection and redaction, data-loss
// guard, hold — with gRPC (trailers both ways, bidi streaming) relayed end to end. Against an h2 upstream and an
// HTTP/1.1-only one on 127.0.0.1.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import * as tls from 'node:tls';
import { cage } from './helpers';
import { startTestProxy, startUpstream, type TestProxy, type Upstream } from './helpers';
import { h2Request, h2Resolver, h2Via, startH2Upstream, tlsVia, type H2Upstream } from './h2helpers';

const TOKEN = 'ghp_abcdefghijklmnopqrstuvwxyz0123456789';
let h2up: H2Upstream;
let h1: Upstream;
let proxy: TestProxy;
let P: number;

const policy = () => `version: 1
onUnknown: ask
askTimeout: 30
allow:
  - host: h2.test:${P}
    private: true
    paths: ["/echo/**", "/grpc/**", "/hang", "/download/**"]
  - host: h2b.test:${P}
    private: true
    auth: { scheme: Bearer, secret: test_token }
  - host: api.test:${h1.port}
    private: true
deny:
  - host: h2.test:${P}
    paths: ["/admin/**"]
  - host: h2one.test:${P}
`;

before(async () => {
  h2up = await startH2Upstream();
  P = h2up.port;
  h1 = await startUpstream(true);
  proxy = await startTestProxy(policy(), { resolver: h2Resolver, env: { CAGED_SECRET_TEST_TOKEN: TOKEN } });
});

after(async () => {
  await proxy.close(500);
  await h2up.close();
  await h1.close();
});

const streamEvents = (path: string) => proxy.decisions().filter((e) => e.path === path);

describe('ALPN', () => {
  test('an h2 upstream: the agent is offered h2; an HTTP/1.1-only upstream: http/1.1, and the request still works', async () => {
    const a = await tlsVia(proxy.address.port, 'h2.test', P);
    assert.equal(a.alpnProtocol, 'h2');
    a.destroy();
    const b = await tlsVia(proxy.address.port, 'api.test', h1.port);
    assert.equal(b.alpnProtocol, 'http/1.1');
    b.write(`GET /v1 HTTP/1.1\r\nHost: api.test:${h1.port}\r\nConnection: close\r\n\r\n`);
    const got = await new Promise<string>((r) => {
      let s = '';
      b.on('data', (d) => (s += d));
      b.on('end', () => r(s));
    });
    assert.match(got, /^HTTP\/1\.1 200/);
    // Known now (the cache): the same answer at once.
    const c = await tlsVia(proxy.address.port, 'api.test', h1.port);
    assert.equal(c.alpnProtocol, 'http/1.1');
    c.destroy();
  });

  test('a client that offers only http/1.1 gets it; a blocked CONNECT is answered over http/1.1', async () => {
    const a = await tlsVia(proxy.address.port, 'h2.test', P, ['http/1.1']);
    assert.equal(a.alpnProtocol, 'http/1.1');
    a.destroy();
    const b = await tlsVia(proxy.address.port, 'h2one.test', P);
    assert.equal(b.alpnProtocol, 'http/1.1');
    b.destroy();
  });
});

describe('streams', () => {
  test('each stream is decided on its own: a denied path answers 403 with the reason on that stream, the other streams on the session succeed', async () => {
    const s = await h2Via(proxy.address.port, 'h2.test', P);
    const [ok, denied, ok2] = await Promise.all([h2Request(s, { ':path': '/echo/a?x=1' }), h2Request(s, { ':path': '/admin/panel' }), h2Request(s, { ':path': '/echo/b' }, 'hello')]);
    assert.equal(ok.status, 200);
    const j = JSON.parse(ok.body.toString());
    assert.equal(j.path, '/echo/a?x=1');
    assert.equal(j.authority, `h2.test:${P}`);
    assert.equal(denied.status, 403);
    assert.equal(denied.headers['x-caged-agent-block'], 'denied-by-rule');
    assert.match(denied.body.toString(), /Caged Agent blocked GET https:\/\/h2\.test:\d+\/admin\/panel\nReason: denied-by-rule\n/);
    assert.equal(ok2.status, 200);
    assert.equal(JSON.parse(ok2.body.toString()).bytes, 5);
    s.close();
    const ea = streamEvents('/echo/a')[0];
    assert.deepEqual([ea.type, ea.method, ea.host, ea.port, ea.status, ea.proto], ['allow', 'GET', 'h2.test', P, 200, 'h2']);
    assert.ok(ea.ruleKey);
    const eb = streamEvents('/admin/panel')[0];
    assert.deepEqual([eb.type, eb.method, eb.reason, eb.status, eb.proto], ['block', 'GET', 'denied-by-rule', 403, 'h2']);
    assert.equal(streamEvents('/echo/b')[0].method, 'POST');
    assert.equal(proxy.decisions().filter((e) => e.method === 'CONNECT' && e.host === 'h2.test').length, 0, 'the streams stand for the CONNECT');
  });

  test('100 concurrent streams on one connection', async () => {
    const s = await h2Via(proxy.address.port, 'h2.test', P);
    const all = await Promise.all(Array.from({ length: 100 }, (_, i) => h2Request(s, { ':path': `/echo/many/${i}` }, `body ${i}`)));
    all.forEach((r, i) => {
      assert.equal(r.status, 200);
      assert.equal(JSON.parse(r.body.toString()).path, `/echo/many/${i}`);
    });
    s.close();
    assert.equal(proxy.decisions().filter((e) => e.path.startsWith('/echo/many/')).length, 100);
  });

  test('the credential is injected upstream and overwritten in what comes back (headers and body)', async () => {
    const s = await h2Via(proxy.address.port, 'h2b.test', P);
    const r = await h2Request(s, { ':path': '/reflect', authorization: 'Bearer agent-own' });
    assert.equal(r.status, 200);
    const seen = h2up.seen.at(-1)!;
    assert.equal(seen.authorization, `Bearer ${TOKEN}`, 'the rule\'s credential replaced the agent\'s');
    assert.ok(!r.body.toString().includes(TOKEN));
    assert.ok(!String(r.headers['x-seen-auth']).includes(TOKEN));
    assert.match(r.body.toString(), /you sent: Bearer \*{40}/);
    s.close();
    const e = await proxy.waitEvent((x) => x.type === 'allow' && 'path' in x && x.path === '/reflect');
    assert.equal((e as { detail?: string }).detail, 'credential-redacted');
  });

  test('the data-loss guard: a credential in a header or in the body answers 403 on that stream; nothing reaches the upstream', async () => {
    const s = await h2Via(proxy.address.port, 'h2.test', P);
    const before = h2up.seen.length;
    const a = await h2Request(s, { ':path': '/echo/dlp-head', 'x-note': `key ${TOKEN}` });
    assert.equal(a.status, 403);
    assert.equal(a.headers['x-caged-agent-block'], 'secret-detected');
    assert.ok(!a.body.toString().includes(TOKEN));
    const b = await h2Request(s, { ':path': '/echo/dlp-body' }, `{"token":"${TOKEN}"}`);
    assert.equal(b.status, 403);
    assert.equal(b.headers['x-caged-agent-block'], 'secret-detected');
    const ok = await h2Request(s, { ':path': '/echo/after' });
    assert.equal(ok.status, 200, 'the session goes on');
    s.close();
    assert.equal(h2up.seen.length, before + 1, 'only the clean stream reached the upstream');
    for (const p of ['/echo/dlp-head', '/echo/dlp-body']) {
      const e = streamEvents(p)[0];
      assert.equal(e.reason, 'secret-detected');
      assert.ok(!JSON.stringify(e).includes(TOKEN));
    }
  });

  test('a credential in a later DATA frame of a streaming body: the stream answers 403 and the upstream stream is cancelled', async () => {
    const s = await h2Via(proxy.address.port, 'h2.test', P);
    const resetsBefore = h2up.resets;
    const r = await new Promise<{ status: number; block: unknown }>((resolve, reject) => {
      const req = s.request({ ':method': 'POST', ':path': '/echo/stream-dlp' });
      req.on('response', (h) => resolve({ status: Number(h[':status']), block: h['x-caged-agent-block'] }));
      req.on('error', reject);
      req.write('first part, clean');
      // Later than the headers' wait for first bytes: the headers have gone upstream by now.
      setTimeout(() => req.write(`then the key ${TOKEN}`), 100);
    });
    assert.deepEqual(r, { status: 403, block: 'secret-detected' });
    for (let i = 0; i < 200 && h2up.resets === resetsBefore; i++) await new Promise((res) => setTimeout(res, 10));
    assert.equal(h2up.resets, resetsBefore + 1, 'the upstream stream was reset before its body ended');
    s.close();
    const e = streamEvents('/echo/stream-dlp')[0];
    assert.deepEqual([e.type, e.reason, e.detail], ['block', 'secret-detected', 'github-token']);
  });

  test(':authority naming another host than the CONNECT is refused (403 bad-request, host-mismatch)', async () => {
    const s = await h2Via(proxy.address.port, 'h2.test', P);
    const r = await h2Request(s, { ':path': '/echo/x', ':authority': `h2b.test:${P}` });
    assert.equal(r.status, 403);
    assert.equal(r.headers['x-caged-agent-block'], 'bad-request');
    assert.match(r.body.toString(), /does not match the host and port/);
    s.close();
    assert.equal(streamEvents('/echo/x')[0].detail, 'host-mismatch');
  });

  test('a stream no rule matches is held (onUnknown: ask) and released by an answer; its neighbours are not held', async () => {
    // An unknown host's CONNECT is answered over HTTP/1.1 (and held there); a stream is held when the policy
    // changed under an open session: the host's rule is gone (a reload), the session stays.
    const s = await h2Via(proxy.address.port, 'h2.test', P);
    assert.equal((await h2Request(s, { ':path': '/echo/before' })).status, 200);
    assert.equal(proxy.reload(policy().replace(`  - host: h2.test:${P}\n    private: true\n    paths: ["/echo/**", "/grpc/**", "/hang", "/download/**"]\n`, '')).ok, true);
    try {
      const held = h2Request(s, { ':path': '/new/thing' });
      for (let i = 0; i < 300 && proxy.stats().held !== 1; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(proxy.stats().held, 1);
      const other = h2Request(s, { ':path': '/new/other' });
      for (let i = 0; i < 300 && proxy.stats().held !== 2; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(proxy.control({ op: 'refuse', host: 'h2.test' }).refused, 2);
      const [a, b] = await Promise.all([held, other]);
      assert.equal(a.status, 403);
      assert.equal(a.headers['x-caged-agent-block'], 'no-matching-rule');
      assert.equal(b.status, 403);
      const again = h2Request(s, { ':path': '/new/thing' });
      for (let i = 0; i < 300 && proxy.stats().held !== 1; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(proxy.control({ op: 'once', host: 'h2.test', private: true }).ok, true);
      assert.equal((await again).status, 200);
    } finally {
      proxy.reload(policy());
    }
    s.close();
    const es = streamEvents('/new/thing');
    assert.deepEqual(es.map((e) => [e.type, e.reason, e.proto]), [['block', 'no-matching-rule', 'h2'], ['allow', 'allowed', 'h2']]);
    assert.equal(es[1].rule, 'temporary once');
  });
});

describe('gRPC', () => {
  test('unary: content-type application/grpc, grpc-status in the trailers; request trailers reach the upstream', async () => {
    const s = await h2Via(proxy.address.port, 'h2.test', P);
    const r = await h2Request(s, { ':path': '/grpc/unary/svc.Echo/Call', 'content-type': 'application/grpc', te: 'trailers' }, Buffer.from([0, 0, 0, 0, 3, 1, 2, 3]));
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'application/grpc');
    assert.equal(r.trailers['grpc-status'], '0');
    assert.equal(r.trailers['grpc-message'], 'got 8');
    // Request trailers.
    const t = await new Promise<{ trailers: unknown }>((resolve, reject) => {
      const req = s.request({ ':method': 'POST', ':path': '/echo/with-trailers' }, { waitForTrailers: true });
      req.on('wantTrailers', () => req.sendTrailers({ 'x-checksum': 'abc' }));
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (d) => (body += d));
      req.on('end', () => resolve(JSON.parse(body)));
      req.on('error', reject);
      req.end('payload');
    });
    assert.deepEqual(t.trailers, { 'x-checksum': 'abc' });
    s.close();
  });

  test('bidi streaming: messages echoed one by one over a long-lived stream, then trailers', async () => {
    const s = await h2Via(proxy.address.port, 'h2.test', P);
    const req = s.request({ ':method': 'POST', ':path': '/grpc/bidi/svc.Chat/Talk', 'content-type': 'application/grpc', te: 'trailers' });
    const got: string[] = [];
    let trailers: http2.IncomingHttpHeaders = {};
    req.on('trailers', (t) => (trailers = t));
    const next = () => new Promise<string>((r) => req.once('data', (d: Buffer) => r(d.toString())));
    for (let i = 0; i < 5; i++) {
      const n = next();
      req.write(`msg-${i}`);
      got.push(await n); // each answer comes before the next message is sent: nothing waits for the end
      await new Promise((r) => setTimeout(r, 30));
    }
    const ended = new Promise<void>((r) => req.on('end', () => r()));
    req.resume();
    req.end();
    await ended;
    assert.deepEqual(got, ['msg-0', 'msg-1', 'msg-2', 'msg-3', 'msg-4']);
    assert.equal(trailers['grpc-status'], '0');
    assert.equal(trailers['grpc-message'], 'bidi-done');
    s.close();
  });

  test('flow control: 32 MB up and 32 MB down on one stream each, while a slow reader holds the upstream back', async () => {
    const s = await h2Via(proxy.address.port, 'h2.test', P);
    const big = Buffer.alloc(32 * 1024 * 1024, 0x62);
    const upR = await h2Request(s, { ':path': '/echo/upload', ':method': 'POST' }, big);
    assert.equal(upR.status, 200, upR.body.toString());
    assert.equal(JSON.parse(upR.body.toString()).bytes, big.length);
    // A reader that pauses: the proxy stops reading the upstream (its window fills) instead of buffering it all.
    const req = s.request({ ':method': 'GET', ':path': '/download/33554432' });
    let got = 0;
    req.on('data', (d: Buffer) => (got += d.length));
    await new Promise<void>((r) => req.once('response', () => r()));
    req.pause();
    await new Promise((r) => setTimeout(r, 300));
    const held = got;
    assert.ok(held < 8 * 1024 * 1024, `a paused reader holds the transfer back (${held} bytes arrived)`);
    const ended = new Promise<void>((r) => req.on('end', () => r()));
    req.resume();
    await ended;
    assert.equal(got, 32 * 1024 * 1024);
    s.close();
  });

  test('an upstream GOAWAY: the streams after it go on a new upstream session', async () => {
    const s = await h2Via(proxy.address.port, 'h2.test', P);
    assert.equal((await h2Request(s, { ':path': '/echo/before-goaway' })).status, 200);
    h2up.goawayAll();
    await new Promise((r) => setTimeout(r, 100));
    const all = await Promise.all([1, 2, 3].map((i) => h2Request(s, { ':path': `/echo/after-goaway/${i}` })));
    assert.deepEqual(all.map((r) => r.status), [200, 200, 200]);
    s.close();
  });

  test('a stream the agent resets is reset upstream too', async () => {
    const s = await h2Via(proxy.address.port, 'h2.test', P);
    const before = h2up.resets;
    const req = s.request({ ':method': 'GET', ':path': '/hang' });
    await new Promise<void>((r) => req.once('response', () => r()));
    req.close(http2.constants.NGHTTP2_CANCEL);
    for (let i = 0; i < 200 && h2up.resets === before; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(h2up.resets, before + 1);
    s.close();
  });
});

describe('transparent capture', () => {
  test('a client that ignores the proxy settings (TLS straight to the proxy, routed by SNI) gets h2 too: events via transparent, proto h2', async () => {
    // The proxy's own address is 127.0.0.2, on the h2 upstream's port (a captured connection is for the port it came to).
    const tp = await startTestProxy(policy(), { resolver: h2Resolver, transparent: { host: '127.0.0.2', tlsPort: P, httpPort: 0, dns: [] } });
    try {
      const sock = tls.connect({ host: '127.0.0.2', port: tp.transparent!.tlsPort, servername: 'h2.test', ca: cage().certPem, ALPNProtocols: ['h2', 'http/1.1'] });
      await new Promise<void>((resolve, reject) => {
        sock.once('secureConnect', () => resolve());
        sock.once('error', reject);
      });
      assert.equal(sock.alpnProtocol, 'h2');
      const s = http2.connect(`https://h2.test:${P}`, { createConnection: () => sock });
      s.on('error', () => {});
      const [ok, denied] = await Promise.all([h2Request(s, { ':path': '/echo/transparent' }), h2Request(s, { ':path': '/admin/transparent' })]);
      assert.equal(ok.status, 200);
      assert.equal(denied.status, 403);
      s.close();
      const es = tp.decisions().filter((e) => e.path.endsWith('/transparent'));
      assert.deepEqual(es.map((e) => [e.path, e.type, e.via, e.proto]).sort(), [
        ['/admin/transparent', 'block', 'transparent', 'h2'],
        ['/echo/transparent', 'allow', 'transparent', 'h2'],
      ]);
    } finally {
      await tp.close(300);
    }
  });
});
