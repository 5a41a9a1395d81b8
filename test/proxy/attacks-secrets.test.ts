// Issue 15, the secret families, as an agent would attack them on real sockets: a detected secret that
// still went upstream (F11), injected credentials in cleartext (F2), TRACE and other reflections of the
// injected credential (F3), detected secrets echoed into events and 403 bodies (F5), and ways past the
// data-loss guard (F6). Recording upstreams show exactly what left the proxy.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import type { Writable } from 'node:stream';
import type { DecisionEvent } from '../../src/policy/events';
import { askOn, collect, connectTunnel, count, startRecordingUpstream, startTestProxy, testResolver, tlsThroughProxy, type RecordingUpstream, type TestProxy } from './helpers';

// Assembled at run time so this file does not look like it leaks credentials.
const GH = ['ghp', '_', 'A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8'].join('');
const INJECTED = 'injected-' + 'credential-value-0123456789';

let plain: RecordingUpstream;
let secure: RecordingUpstream;
let proxy: TestProxy;
const lookups: string[] = [];

function policy(): string {
  return `version: 1
allow:
  - host: api.test:${plain.port}
    private: true
    paths: ["/upload", "/ok/**"]
  - host: api.test:${secure.port}
    private: true
  - host: auth.test:${plain.port}
    private: true
    auth: { scheme: Bearer, secret: up }
  - host: auth.test:${secure.port}
    private: true
    auth: { scheme: Bearer, secret: up }
  - host: "*.wild.test:${plain.port}"
    private: true
  - host: "*.wild.test:${secure.port}"
    private: true
`;
}

/** Answers that reflect the request, the way debug endpoints and TRACE do. */
function reflect(r: { head: string }, s: net.Socket): void {
  const path = r.head.split(' ')[1];
  const auth = /\r\nauthorization: *([^\r]*)/i.exec(r.head)?.[1] ?? '';
  if (path === '/reflect-split') {
    // The head back as the body, written in two pieces that cut the credential in the middle.
    const cut = r.head.indexOf(INJECTED) + 7;
    s.write(`HTTP/1.1 200 OK\r\nX-Echo: ${auth}\r\nContent-Length: ${r.head.length}\r\n\r\n${r.head.slice(0, cut)}`);
    setTimeout(() => s.write(r.head.slice(cut)), 30);
  } else if (path === '/reflect-chunked') {
    // Chunked, with the credential split across two chunks (and two writes).
    const body = `{"authorization":"${auth}"}`;
    const cut = body.indexOf(INJECTED) + 11;
    const a = body.slice(0, cut);
    const b = body.slice(cut);
    s.write(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${a.length.toString(16)}\r\n${a}\r\n`);
    setTimeout(() => s.write(`${b.length.toString(16)}\r\n${b}\r\n0\r\n\r\n`), 30);
  } else s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${r.head.length}\r\n\r\n${r.head}`);
}

before(async () => {
  plain = await startRecordingUpstream(false, reflect);
  secure = await startRecordingUpstream(true, reflect);
  proxy = await startTestProxy(policy(), {
    env: { CAGED_SECRET_UP: INJECTED },
    resolver: async (host) => {
      lookups.push(host);
      return host.endsWith('.wild.test') ? [{ address: '127.0.0.1', family: 4 }] : testResolver(host);
    },
  });
});

after(async () => {
  await proxy.close(500);
  await plain.close();
  await secure.close();
});

/** One request on a fresh plain connection to the proxy; resolves with everything that came back. */
function rawRequest(text: string | Buffer): Promise<string> {
  const s = net.connect(proxy.address.port, '127.0.0.1');
  return collect(s, text, (got) => /\r\n\r\n/.test(got) && got.length >= got.indexOf('\r\n\r\n') + 4 + Number(/content-length: (\d+)/i.exec(got)?.[1] ?? 0), 5000).then((r) => (s.destroy(), r.got));
}

function blocksFor(path: string): DecisionEvent[] {
  return proxy.decisions().filter((e) => e.path === path);
}

describe('F11: a detected secret never goes upstream, whatever throws', () => {
  test('3,200 locally answered pipelined requests, then a POST with a token, while the early connect runs', async () => {
    const before = plain.raw().length;
    const t = await connectTunnel(proxy.address.port, `api.test:${plain.port}`);
    assert.equal(t.status, 200);
    const body = `token=${GH}`;
    const data = 'GET /x HTTP/1.1\r\n\r\n'.repeat(3200) + `POST /upload HTTP/1.1\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
    const r = await collect(t.socket, data, (got) => count(got, 'HTTP/1.1 403 Forbidden') >= 3201, 20000);
    t.socket.destroy();
    assert.equal(count(r.got, 'HTTP/1.1 403 Forbidden'), 3201, 'every request answered');
    assert.equal(count(r.got, 'X-Caged-Agent-Block: secret-detected'), 1);
    const e = await proxy.waitEvent((x) => x.type === 'block' && (x as DecisionEvent).path === '/upload');
    assert.equal((e as DecisionEvent).reason, 'secret-detected');
    await new Promise((res) => setTimeout(res, 100)); // the upstream connect had its chance to complete
    assert.ok(!plain.raw().slice(before).includes('ghp_'), 'nothing of the POST reached the upstream');
    assert.ok(!proxy.events.some((x) => x.type === 'error'), 'nothing threw');
  });

  test('the log throws while blocking the POST: the connection fails closed, nothing goes up', async () => {
    // An event sink that fails on a large batch: the 512th pending line (the block of the POST) flushes.
    const sink = { write: (s: string) => (s.split('\n').length > 100 ? (() => { throw new Error('event sink failed'); })() : true) } as unknown as Writable;
    const p2 = await startTestProxy(policy(), { events: sink, env: { CAGED_SECRET_UP: INJECTED } });
    try {
      const before = plain.raw().length;
      const body = `token=${GH}`;
      const one = `GET http://api.test:${plain.port}/x HTTP/1.1\r\nHost: api.test:${plain.port}\r\n\r\n`;
      const data = one.repeat(511) + `POST http://api.test:${plain.port}/upload HTTP/1.1\r\nHost: api.test:${plain.port}\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
      const s = net.connect(p2.address.port, '127.0.0.1');
      const r = await collect(s, data, () => false, 3000);
      assert.ok(r.closed, 'the connection was closed');
      assert.equal(count(r.got, 'X-Caged-Agent-Block: secret-detected'), 0);
      await new Promise((res) => setTimeout(res, 200));
      assert.ok(!plain.raw().slice(before).includes('ghp_'), 'nothing of the POST reached the upstream');
      assert.ok(p2.events.some((x) => x.type === 'error' && /failed and was closed/.test(String((x as { message?: string }).message))));
      // The proxy still serves.
      const ok = await new Promise<string>((resolve) => {
        const c = net.connect(p2.address.port, '127.0.0.1');
        void collect(c, `GET http://api.test:${plain.port}/ok/1 HTTP/1.1\r\nHost: api.test:${plain.port}\r\n\r\n`, (g) => g.includes('\r\n\r\n'), 3000).then((x) => (c.destroy(), resolve(x.got)));
      });
      assert.match(ok, /^HTTP\/1\.1 200/);
    } finally {
      await p2.close(200);
    }
  });
});

describe('F2: injected credentials only travel over verified TLS', () => {
  test('absolute-form http:// to an auth host is blocked with insecure-auth; nothing is sent', async () => {
    const before = plain.raw().length;
    const got = await rawRequest(`GET http://auth.test:${plain.port}/me HTTP/1.1\r\nHost: auth.test:${plain.port}\r\n\r\n`);
    assert.match(got, /^HTTP\/1\.1 403/);
    assert.match(got, /X-Caged-Agent-Block: insecure-auth/);
    assert.match(got, /unencrypted/);
    assert.ok(!got.includes(INJECTED));
    assert.equal(plain.raw().length, before, 'no byte reached the upstream');
    assert.equal(proxy.lastDecision()!.reason, 'insecure-auth');
  });

  test('plain HTTP inside a CONNECT to an auth host is blocked the same way', async () => {
    const before = plain.raw().length;
    const t = await connectTunnel(proxy.address.port, `auth.test:${plain.port}`);
    const r = await collect(t.socket, 'GET /me HTTP/1.1\r\nHost: auth.test\r\n\r\n', (g) => g.includes('insecure-auth') && g.endsWith('\n'), 3000);
    t.socket.destroy();
    assert.match(r.got, /X-Caged-Agent-Block: insecure-auth/);
    // (The early connect at CONNECT time sent a TLS ClientHello to this plain server; no request.)
    assert.ok(!plain.raw().slice(before).includes('GET /me'));
    assert.ok(!plain.raw().slice(before).includes(INJECTED));
  });

  test('intercepted HTTPS gets the credential upstream', async () => {
    const s = await tlsThroughProxy(proxy.address.port, 'auth.test', secure.port);
    await askOn(s, `GET /plain HTTP/1.1\r\nHost: auth.test:${secure.port}\r\nAuthorization: Bearer agent-made-up\r\n\r\n`);
    s.destroy();
    const last = secure.requests.at(-1)!;
    assert.match(last.head, new RegExp(`\\r\\nAuthorization: Bearer ${INJECTED}\\r\\n`));
    assert.ok(!last.head.includes('agent-made-up'));
  });
});

describe('F3: the injected credential never comes back to the agent', () => {
  for (const method of ['TRACE', 'TRACK']) {
    test(`${method} is refused and never forwarded`, async () => {
      const before = secure.requests.length;
      const s = await tlsThroughProxy(proxy.address.port, 'auth.test', secure.port);
      const got = await askOn(s, `${method} /x HTTP/1.1\r\nHost: auth.test:${secure.port}\r\n\r\n`);
      s.destroy();
      assert.match(got, /^HTTP\/1\.1 403/);
      assert.match(got, /X-Caged-Agent-Block: method-refused/);
      assert.match(got, /echo/);
      assert.equal(secure.requests.length, before);
    });
  }

  test('a reflected header split across reads is overwritten, same length; the event says so', async () => {
    const s = await tlsThroughProxy(proxy.address.port, 'auth.test', secure.port);
    const got = await askOn(s, `GET /reflect-split HTTP/1.1\r\nHost: auth.test:${secure.port}\r\n\r\n`);
    s.destroy();
    assert.ok(!got.includes(INJECTED), got);
    assert.ok(!got.includes(INJECTED.slice(0, 12)) && !got.includes(INJECTED.slice(-12)), 'no part of it either');
    const head = got.slice(0, got.indexOf('\r\n\r\n'));
    const body = got.slice(got.indexOf('\r\n\r\n') + 4);
    assert.equal(body.length, Number(/content-length: (\d+)/i.exec(head)![1]), 'framing kept');
    assert.ok(head.includes('X-Echo: Bearer ' + '*'.repeat(INJECTED.length)));
    assert.ok(body.includes('Authorization: Bearer ' + '*'.repeat(INJECTED.length)));
    const e = proxy.lastDecision()!;
    assert.deepEqual([e.type, e.path, e.status, e.detail], ['allow', '/reflect-split', 200, 'credential-redacted']);
  });

  test('a credential split across two HTTP chunks is overwritten too', async () => {
    const s = await tlsThroughProxy(proxy.address.port, 'auth.test', secure.port);
    const got = await askOn(s, `GET /reflect-chunked HTTP/1.1\r\nHost: auth.test:${secure.port}\r\n\r\n`);
    s.destroy();
    const body = got.slice(got.indexOf('\r\n\r\n') + 4);
    const data = body.split('\r\n').filter((_, i) => i % 2 === 1).join('');
    assert.equal(data, `{"authorization":"Bearer ${'*'.repeat(INJECTED.length)}"}`);
    assert.equal(proxy.lastDecision()!.detail, 'credential-redacted');
  });

  test('responses on hosts without injection are passed through untouched', async () => {
    const s = await tlsThroughProxy(proxy.address.port, 'api.test', secure.port);
    const got = await askOn(s, `GET /echo HTTP/1.1\r\nHost: api.test:${secure.port}\r\nX-Note: ${INJECTED}\r\n\r\n`);
    s.destroy();
    assert.ok(got.includes(`X-Note: ${INJECTED}`));
    assert.equal(proxy.lastDecision()!.detail, undefined);
  });
});

describe('F5: a detected secret is redacted everywhere it is shown', () => {
  test('a token in the path: not in the event, not in the 403 body', async () => {
    const s = await tlsThroughProxy(proxy.address.port, 'api.test', secure.port);
    const got = await askOn(s, `GET /repos/${GH}/x HTTP/1.1\r\nHost: api.test:${secure.port}\r\n\r\n`);
    s.destroy();
    assert.match(got, /X-Caged-Agent-Block: secret-detected/);
    assert.ok(!got.includes(GH));
    assert.ok(got.includes('/repos/[REDACTED:github-token]/x'));
    const e = proxy.lastDecision()!;
    assert.equal(e.path, '/repos/[REDACTED:github-token]/x');
    assert.ok(!JSON.stringify(proxy.events).includes(GH));
  });

  test('a token in a path blocked for another reason, and in a mismatched Host header', async () => {
    const a = await rawRequest(`GET http://api.test:${plain.port}/no/${GH} HTTP/1.1\r\nHost: api.test:${plain.port}\r\n\r\n`);
    assert.match(a, /X-Caged-Agent-Block: path-not-allowed/);
    assert.ok(!a.includes(GH));
    assert.equal(blocksFor('/no/[REDACTED:github-token]').length, 1);
    const b = await rawRequest(`GET http://api.test:${plain.port}/ok/1 HTTP/1.1\r\nHost: ${GH}.wild.test\r\n\r\n`);
    assert.match(b, /X-Caged-Agent-Block: bad-request/);
    assert.ok(!b.includes(GH), b);
    assert.ok(!JSON.stringify(proxy.events).includes(GH));
  });
});

describe('F6: the guard scans what is forwarded', () => {
  const cases: Array<[string, (p: number) => string]> = [
    ['an encoded "_" in the path', (p) => `GET http://api.test:${p}/ok/${GH.replace('_', '%5F')} HTTP/1.1\r\nHost: api.test:${p}\r\n\r\n`],
    ['a double-encoded "_" in the path', (p) => `GET http://api.test:${p}/ok/${GH.replace('_', '%255F')} HTTP/1.1\r\nHost: api.test:${p}\r\n\r\n`],
    ['a percent-encoded query', (p) => `GET http://api.test:${p}/ok/q?t=${GH.replace('_', '%5f')} HTTP/1.1\r\nHost: api.test:${p}\r\n\r\n`],
    ['a "+"-encoded private key header in the query', (p) => `GET http://api.test:${p}/ok/q?k=-----BEGIN+RSA+PRIVATE+KEY----- HTTP/1.1\r\nHost: api.test:${p}\r\n\r\n`],
    ['a header name', (p) => `GET http://api.test:${p}/ok/h HTTP/1.1\r\nHost: api.test:${p}\r\n${GH}: 1\r\n\r\n`],
    ['the host name, no Host header', (p) => `GET http://${GH.toLowerCase()}.wild.test:${p}/ HTTP/1.1\r\n\r\n`],
    ['a lower-cased AWS key id as a DNS label', (p) => `GET http://${'AKIA' + 'Z7ABCDEFGHIJKLMN'.toLowerCase()}.wild.test:${p}/ HTTP/1.1\r\n\r\n`],
    ['an AWS key id as the method', (p) => `${'AKIA' + 'Z7ABCDEFGHIJKLMN'} http://api.test:${p}/ok/m HTTP/1.1\r\nHost: api.test:${p}\r\n\r\n`],
    ['an encoded body', (p) => `POST http://api.test:${p}/upload HTTP/1.1\r\nHost: api.test:${p}\r\nContent-Length: ${8 + GH.length + 2}\r\n\r\ntoken=${GH.replace('_', '%5F')}&x`],
  ];
  for (const [what, request] of cases) {
    test(`${what}: blocked, nothing sent or looked up`, async () => {
      const before = plain.raw().length;
      const lookedUp = lookups.length;
      const got = await rawRequest(request(plain.port));
      assert.match(got, /X-Caged-Agent-Block: secret-detected/, got.slice(0, 300));
      assert.equal(plain.raw().length, before);
      assert.ok(!lookups.slice(lookedUp).some((h) => h.includes('ghp') || h.includes('akia')), 'no DNS lookup of the name');
      assert.ok(!got.includes(GH));
      assert.ok(!got.includes('AKIAZ7') && !JSON.stringify(proxy.decisions().at(-1)).includes('AKIAZ7'), 'the key id is in neither the 403 nor the event');
    });
  }

  test('a token as a label of a CONNECT host: no lookup, no connect, a redacted block', async () => {
    const lookedUp = lookups.length;
    const host = `${GH.toLowerCase()}.wild.test`;
    const t = await connectTunnel(proxy.address.port, `${host}:${secure.port}`);
    t.socket.destroy();
    const e = (await proxy.waitEvent((x) => x.type === 'block' && (x as DecisionEvent).method === 'CONNECT' && (x as DecisionEvent).reason === 'secret-detected')) as DecisionEvent;
    assert.equal(e.host, '[REDACTED:github-token].wild.test');
    assert.equal(lookups.length, lookedUp);
  });

  test('ordinary traffic still passes (encoded query, plus signs, a JSON body)', async () => {
    const body = '{"q":"a+b%20c"}';
    const got = await rawRequest(`POST http://api.test:${plain.port}/upload?x=a%20b+c HTTP/1.1\r\nHost: api.test:${plain.port}\r\nAccept: application/vnd.github+json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    assert.match(got, /^HTTP\/1\.1 200/);
  });
});
