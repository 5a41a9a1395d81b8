// Issue 15, the path and connection families, as an agent would attack them on real sockets: encoded
// separators past path rules (F1), pipelined local answers and clients that never read (F4), requests
// aborted before their response (F7), request-shaped quick fixes (F8), the Host sent upstream (F9), raw
// UTF-8 targets (F10), half-open sockets (F12) and lower-case methods.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import type { DecisionEvent } from '../../src/policy/events';
import { fixChoices } from '../../src/extension/logic/fixes';
import { LINGER_MS } from '../../src/proxy/linger';
import { spawnProxy, stop, type Child } from './child';
import { collect, connectTunnel, count, startRecordingUpstream, startTestProxy, testResolver, tmpDir, type Recorded, type RecordingUpstream, type TestProxy } from './helpers';

/**
 * What a server that decodes the path before resolving it (Python's http.server, nginx with an unescaping
 * location, IIS) serves: percent-escapes decoded, "\" taken as "/", dot-segments resolved.
 */
const FILES: Record<string, string> = { '/allowed/file.txt': 'allowed file', '/secret.txt': 'SECRET FILE' };
function decodingOrigin(r: Recorded, s: net.Socket): void {
  const target = r.head.split(' ')[1];
  let p = target.split('?')[0];
  for (let i = 0; i < 2; i++) p = Buffer.from(p.replace(/%([0-9a-f]{2})/gi, (_, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1').toString('latin1');
  p = p.replace(/\xc0\xaf|\xc1\x9c|\\/g, '/').replace(/\xc0\xae/g, '.');
  const resolved = path.posix.normalize(p);
  const body = FILES[resolved] ?? `no ${resolved}`;
  s.write(`HTTP/1.1 ${FILES[resolved] ? 200 : 404} X\r\nContent-Length: ${body.length}\r\nX-Resolved: ${encodeURI(resolved)}\r\n\r\n${body}`);
}

let up: RecordingUpstream;
let held: RecordingUpstream; // never answers: for requests aborted before their response
let proxy: TestProxy;
const NAMES = ['files.test', 'gitlab.test', 'utf.test', 'hold.test'];

function policy(): string {
  const P = up.port;
  return `version: 1
allow:
  - host: files.test:${P}
    private: true
    paths: ["/allowed/**"]
  - host: gitlab.test:${P}
    private: true
  - host: api.test:${P}
    private: true
  - host: utf.test:${P}
    private: true
    paths: ["/café/**"]
  - host: hold.test:${held.port}
    private: true
deny:
  - host: api.test:${P}
    paths: ["/admin/**"]
`;
}

before(async () => {
  up = await startRecordingUpstream(false, decodingOrigin);
  held = await startRecordingUpstream(false, () => undefined);
  proxy = await startTestProxy(policy(), { resolver: async (h) => (NAMES.includes(h) ? [{ address: '127.0.0.1', family: 4 }] : testResolver(h)) });
});

after(async () => {
  await proxy.close(500);
  await up.close();
  await held.close();
});

/** One absolute-form request on a fresh connection; resolves with the response (head and body). */
async function ask(host: string, target: string | Buffer, extra = '', port = up.port): Promise<string> {
  const s = net.connect(proxy.address.port, '127.0.0.1');
  const line = Buffer.concat([Buffer.from(`GET http://${host}:${port}`), Buffer.from(target), Buffer.from(` HTTP/1.1\r\nHost: ${host}:${port}\r\n${extra}\r\n`)]);
  const r = await collect(s, line, (g) => g.includes('\r\n\r\n') && g.length >= g.indexOf('\r\n\r\n') + 4 + Number(/content-length: (\d+)/i.exec(g)?.[1] ?? 0), 5000);
  s.destroy();
  return r.got;
}

describe('F1: encoded separators never change what a path rule matched', () => {
  const traversals = [
    '/allowed/..%2Fsecret.txt',
    '/allowed/%2e%2e%2fsecret.txt',
    '/allowed/..%5Csecret.txt',
    '/allowed/..\\secret.txt',
    '/allowed/%2E%2E%5csecret.txt',
    '/allowed/..%252Fsecret.txt',
    '/allowed/%252e%252e/secret.txt',
    '/allowed/%c0%ae%c0%ae%c0%afsecret.txt',
    '/allowed/x/..%2F..%2Fsecret.txt',
    '/allowed%2F..%2Fsecret.txt',
    '/allowed/..;/secret.txt',
  ];
  for (const t of traversals) {
    test(`${t} is refused, never served`, async () => {
      const before = up.requests.length;
      const got = await ask('files.test', t);
      assert.match(got, /^HTTP\/1\.1 403/, got.slice(0, 200));
      assert.ok(!got.includes('SECRET FILE'));
      assert.equal(up.requests.length, before, 'nothing forwarded');
      assert.match(got, /X-Caged-Agent-Block: (bad-path|path-not-allowed)/);
    });
  }

  test('plain paths and harmless encodings under the rule still pass', async () => {
    assert.match(await ask('files.test', '/allowed/file.txt'), /^HTTP\/1\.1 200[^]*allowed file$/);
    assert.match(await ask('files.test', '/allowed/a%2Fb'), /^HTTP\/1\.1 404/); // both readings: under /allowed
    assert.match(await ask('files.test', '/allowed/%2e%2e/secret.txt'), /X-Caged-Agent-Block: path-not-allowed/); // resolved to /secret.txt
  });

  test('a host without path rules keeps encoded slashes as data (GitLab project ids)', async () => {
    const got = await ask('gitlab.test', '/api/v4/projects/group%2Fproject/issues');
    assert.match(got, /^HTTP\/1\.1 404/);
    assert.ok(up.requests.at(-1)!.head.startsWith('GET /api/v4/projects/group%2Fproject/issues HTTP/1.1\r\n'));
  });

  for (const t of ['/admin%2Fusers', '/public/..%2Fadmin/users', '/admin;v=1/users', '/public%5C..%5Cadmin']) {
    test(`a conditional deny is not dodged with ${t}`, async () => {
      const before = up.requests.length;
      const got = await ask('api.test', t);
      assert.match(got, /^HTTP\/1\.1 403/);
      assert.equal(up.requests.length, before);
    });
  }
});

describe('F10: raw UTF-8 in the request line is matched, logged and forwarded once encoded', () => {
  test('/caf\\xC3\\xA9 becomes /caf%C3%A9 everywhere, and a "/café/**" rule matches it', async () => {
    const got = await ask('utf.test', Buffer.from('/caf\xc3\xa9/menu', 'latin1'));
    assert.match(got, /^HTTP\/1\.1 404/, 'allowed by the rule and forwarded');
    assert.ok(up.requests.at(-1)!.head.startsWith('GET /caf%C3%A9/menu HTTP/1.1\r\n'), up.requests.at(-1)!.head);
    assert.equal(proxy.lastDecision()!.path, '/caf%C3%A9/menu');
    assert.match(await ask('utf.test', '/cafe/menu'), /X-Caged-Agent-Block: path-not-allowed/);
  });
});

describe('method case', () => {
  test('a lower-case method is refused with a plain reason, nothing forwarded', async () => {
    const before = up.requests.length;
    const s = net.connect(proxy.address.port, '127.0.0.1');
    const r = await collect(s, `get http://api.test:${up.port}/x HTTP/1.1\r\nHost: api.test:${up.port}\r\n\r\n`, () => false, 3000);
    assert.match(r.got, /^HTTP\/1\.1 400/);
    assert.match(r.got, /not upper-case/);
    assert.equal(up.requests.length, before);
  });
});

describe('F9: the Host sent upstream is the one checked', () => {
  test('a Host header naming another port is refused', async () => {
    const before = up.requests.length;
    const t = await connectTunnel(proxy.address.port, `api.test:${up.port}`);
    const r = await collect(t.socket, 'GET /x HTTP/1.1\r\nHost: api.test:9999\r\n\r\n', (g) => g.includes('host-mismatch') || /bad-request[^]*\n$/.test(g), 3000);
    t.socket.destroy();
    assert.match(r.got, /X-Caged-Agent-Block: bad-request/);
    assert.equal(up.requests.length, before);
    assert.equal(proxy.lastDecision()!.detail, 'host-mismatch');
  });

  test('"Connection: host" cannot drop it, and it is sent once, as checked', async () => {
    await ask('api.test', '/x', 'Connection: host, keep-alive\r\n');
    const head = up.requests.at(-1)!.head;
    assert.equal(count(head.toLowerCase(), '\r\nhost:'), 1, head);
    assert.ok(head.includes(`\r\nHost: api.test:${up.port}\r\n`));
  });

  test('a Host without a port is accepted; upstream gets the checked host:port', async () => {
    const t = await connectTunnel(proxy.address.port, `API.test:${up.port}`);
    await collect(t.socket, 'GET /y HTTP/1.1\r\nHost: api.TEST\r\n\r\n', (g) => g.includes('\r\n\r\n'), 3000);
    t.socket.destroy();
    assert.ok(up.requests.at(-1)!.head.includes(`\r\nHost: api.test:${up.port}\r\n`));
  });
});

describe('F7: a request that reached the upstream always gets its event', () => {
  test('the client resets before the response head: one event, no status, client-aborted', async () => {
    const s = net.connect(proxy.address.port, '127.0.0.1');
    s.on('error', () => undefined);
    const body = 'x=1';
    const before = held.requests.length;
    s.write(`POST http://hold.test:${held.port}/hold HTTP/1.1\r\nHost: hold.test:${held.port}\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    for (let i = 0; i < 100 && held.requests.length === before; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(held.requests.length, before + 1, 'the upstream got the POST');
    s.resetAndDestroy();
    const e = (await proxy.waitEvent((x) => (x as DecisionEvent).path === '/hold')) as DecisionEvent;
    assert.deepEqual([e.type, e.method, e.reason, e.status, e.detail], ['allow', 'POST', 'allowed', undefined, 'client-aborted']);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(proxy.decisions().filter((x) => x.path === '/hold').length, 1);
  });
});

describe('F8: quick fixes built from a request are never wider than they read', () => {
  for (const p of ['/*/x', '/**/x', '/a*/b', '/*', '/**', '/**/', '/x*']) {
    test(`a blocked ${p} offers no path-wide choice`, async () => {
      await ask('files.test', p);
      const e = proxy.lastDecision()!;
      assert.equal(e.reason, 'path-not-allowed');
      const choices = fixChoices(e, undefined);
      assert.ok(choices.length > 0);
      for (const c of choices) {
        assert.ok(!c.spec.paths, `${c.title} must not be a path choice`);
      }
    });
  }

  test('a plain path still offers its narrow choices', async () => {
    await ask('files.test', '/v1/x');
    const c = fixChoices(proxy.lastDecision()!, undefined);
    assert.deepEqual(
      c.filter((x) => x.spec.paths).map((x) => x.title),
      [`Allow GET /v1/** on files.test:${up.port}`, `Allow /v1/** on files.test:${up.port} (any method)`],
    );
  });
});

describe('F4: pipelined local answers loop, with back-pressure', () => {
  test('3,600 pipelined requests the proxy answers itself, in one write', async () => {
    const s = net.connect(proxy.address.port, '127.0.0.1');
    const r = await collect(s, 'GET / HTTP/1.1\r\n\r\n'.repeat(3600), (g) => count(g, 'HTTP/1.1 400') >= 3600, 15000);
    assert.equal(count(r.got, 'HTTP/1.1 400'), 3600);
    assert.ok(!r.closed, 'the connection goes on');
    const more = await collect(s, 'GET / HTTP/1.1\r\n\r\n', (g) => g.includes('HTTP/1.1 400'), 3000);
    assert.match(more.got, /^HTTP\/1\.1 400/);
    s.destroy();
    assert.ok(!proxy.events.some((x) => x.type === 'error'));
  });

  test('a client that pipelines and never reads is closed by the idle sweep', async () => {
    const p2 = await startTestProxy('version: 1\nallow: []\n', { keepAliveTimeoutMs: 400 });
    try {
      const s = net.connect(p2.address.port, '127.0.0.1');
      s.on('error', () => undefined);
      const closed = new Promise<void>((r) => s.once('close', () => r()));
      await new Promise((r) => s.once('connect', r));
      const chunk = Buffer.from('GET / HTTP/1.1\r\n\r\n'.repeat(4000));
      for (let i = 0; i < 200 && s.write(chunk); i++);
      s.pause(); // never reads
      const t0 = Date.now();
      await closed;
      assert.ok(Date.now() - t0 < 5000);
      assert.equal(p2.stats().connections, 0);
    } finally {
      await p2.close(100);
    }
  });

  test('dist/proxy.js: a client pipelining 40 MB and never reading does not grow its RSS', async (t) => {
    const file = path.join(tmpDir, 'f4-policy.yaml');
    fs.writeFileSync(file, 'version: 1\nallow: []\n');
    const c: Child = await spawnProxy(file);
    try {
      const rss = () => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${c.proc.pid}/status`, 'utf8'))![1]) / 1024;
      const base = rss();
      const s = net.connect(c.port, '127.0.0.1');
      s.on('error', () => undefined);
      await new Promise((r) => s.once('connect', r));
      s.pause();
      const chunk = Buffer.from('GET / HTTP/1.1\r\n\r\n'.repeat(3600));
      let sent = 0;
      let peak = base;
      const deadline = Date.now() + 4000;
      while (sent < 40e6 && Date.now() < deadline) {
        if (!s.write(chunk)) await new Promise((r) => setTimeout(r, 100)); // no more until the proxy reads
        sent += chunk.length;
        peak = Math.max(peak, rss());
      }
      await new Promise((r) => setTimeout(r, 300));
      peak = Math.max(peak, rss());
      s.destroy();
      await new Promise((r) => setTimeout(r, 500));
      const afterMb = rss();
      t.diagnostic(`RSS ${base.toFixed(1)} MB before, peak ${peak.toFixed(1)} MB, ${afterMb.toFixed(1)} MB after the client left; the client got ${(sent / 1e6).toFixed(1)} MB of requests out in 4 s`);
      assert.ok(sent < 40e6, 'the proxy stopped reading (back-pressure reached the client)');
      assert.ok(peak - base < 40, `RSS grew by ${(peak - base).toFixed(1)} MB`);
    } finally {
      await stop(c);
    }
  });
});

describe('F12: half-open sockets are reaped', () => {
  test('200 clients that send garbage, read their 400 and never send FIN are closed after a short grace', async () => {
    const idle = net.connect(proxy.address.port, '127.0.0.1'); // a keep-alive control: must stay open
    await new Promise((r) => idle.once('connect', r));
    const base = proxy.stats().sockets;
    const socks = await Promise.all(
      Array.from({ length: 200 }, () => new Promise<net.Socket>((resolve) => {
        const s = net.connect({ port: proxy.address.port, host: '127.0.0.1', allowHalfOpen: true });
        s.on('error', () => undefined);
        s.once('connect', () => resolve(s));
      })),
    );
    // Each gets its 400 and the proxy's FIN; the client keeps its side open.
    await Promise.all(socks.map((s) => collect(s, 'HELLO THERE\r\n\r\n', (g) => g.includes('Bad Request'), 5000)));
    assert.equal(proxy.stats().sockets, base + 200, 'all still open right after their answer');
    const t0 = Date.now();
    while (proxy.stats().sockets > base && Date.now() - t0 < LINGER_MS * 2 + 3000) await new Promise((r) => setTimeout(r, 100));
    assert.equal(proxy.stats().sockets, base, `the proxy closed them (after ${Date.now() - t0} ms)`);
    assert.ok(!idle.destroyed && idle.readyState === 'open', 'an idle keep-alive connection is left alone');
    idle.destroy();
    for (const s of socks) s.destroy();
  });
});
