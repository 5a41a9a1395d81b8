// HTTP/1.1 relay edge cases through the proxy: chunked and close-delimited responses, server-sent event
// streams, HEAD/204/304, pipelining, Expect: 100-continue, upstream connection reuse and stale pooled
// connections; upstream TLS session resumption, and how requests share upstream connections under concurrency (bursts, held-open
// requests, refusing and stalled servers).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SessionCache, UpstreamPool } from '../../src/proxy/upstream';
import { askOn, curl, nodeHttps, rawExchange, startTestProxy, startUpstream, tlsThroughProxy, tmpDir, type TestProxy, type Upstream } from './helpers';

let proxy: TestProxy;
let node: http.Server; // a Node upstream with special routes
let raw: net.Server; // a hand-written upstream for framings Node would not produce
let tlsUp: Upstream;
let N: number;
let R: number;
let nodeConnections = 0;
let rawMode: 'close-delimited' | 'drop-second' = 'close-delimited';
let firstDropConn = 0; // in drop-second mode: the first connection, which dies on its second request

before(async () => {
  node = http.createServer((req, res) => {
    if (req.url === '/chunked') {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.write('part one, ');
      setTimeout(() => res.end('part two'), 20);
      return;
    }
    if (req.url === '/nocontent') return void res.writeHead(204).end();
    if (req.url === '/notmodified') return void res.writeHead(304, { ETag: '"x"' }).end();
    if (req.url === '/head') return void res.writeHead(200, { 'Content-Length': '1000' }).end(req.method === 'HEAD' ? undefined : 'x'.repeat(1000));
    let n = 0;
    req.on('data', (d: Buffer) => (n += d.length));
    req.on('end', () => res.end(`${req.method} ${req.url} ${n} ${req.headers.expect ?? '-'}`));
  });
  node.on('connection', () => nodeConnections++);
  node.keepAliveTimeout = 30000;
  await new Promise<void>((r) => node.listen(0, '127.0.0.1', r));
  N = (node.address() as net.AddressInfo).port;

  let rawCount = 0;
  raw = net.createServer((s) => {
    const conn = ++rawCount;
    let seen = 0;
    s.on('data', (d) => {
      const text = d.toString('latin1');
      const requests = text.split('\r\n\r\n').length - 1;
      for (let i = 0; i < requests; i++) {
        seen++;
        if (rawMode === 'close-delimited') {
          s.end('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nbody until close');
        } else if ((firstDropConn ||= conn) === conn && seen === 2) {
          s.destroy(); // a stale keep-alive connection: dies without answering
        } else {
          s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${String(conn).length + 5}\r\n\r\nconn ${conn}`);
        }
      }
    });
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => raw.listen(0, '127.0.0.1', r));
  R = (raw.address() as net.AddressInfo).port;
  tlsUp = await startUpstream(true);

  proxy = await startTestProxy(`version: 1
allow:
  - host: api.test:${N}
    private: true        # test upstreams live on 127.0.0.1
  - host: api.test:${R}
    private: true
  - host: api.test:${tlsUp.port}
    private: true
`);
});

after(async () => {
  await proxy.close(300);
  node.closeAllConnections();
  node.close();
  raw.close();
  await tlsUp.close();
});

describe('relay', () => {
  test('chunked responses, keep-alive on both legs', async () => {
    const before = nodeConnections;
    const url = `http://api.test:${N}/chunked`;
    const r = await curl(proxy.url, url, ['--next', '--proxy', proxy.url, '-s', '-i', url]);
    assert.equal(r.status, 200, r.stderr);
    // Two complete responses over one client connection (curl prints both).
    assert.equal(r.body.split('part one, part two').length - 1, 2, r.body);
    assert.ok(r.body.endsWith('part one, part two'));
    assert.equal(nodeConnections - before, 1, 'one pooled upstream connection served both');
  });

  test('HEAD, 204 and 304 have no body and the connection goes on', async () => {
    const out = await rawExchange(
      proxy.address.port,
      `HEAD http://api.test:${N}/head HTTP/1.1\r\nHost: api.test:${N}\r\n\r\n` +
        `GET http://api.test:${N}/nocontent HTTP/1.1\r\nHost: api.test:${N}\r\n\r\n` +
        `GET http://api.test:${N}/notmodified HTTP/1.1\r\nHost: api.test:${N}\r\n\r\n` +
        `GET http://api.test:${N}/last HTTP/1.1\r\nHost: api.test:${N}\r\nConnection: close\r\n\r\n`,
    );
    const statuses = [...out.matchAll(/^HTTP\/1\.1 (\d{3})/gm)].map((m) => m[1]);
    assert.deepEqual(statuses, ['200', '204', '304', '200'], out);
    assert.match(out, /Content-Length: 1000\r\n/);
    assert.ok(out.endsWith('GET /last 0 -'), out);
  });

  test('pipelined requests are answered in order', async () => {
    const reqs = [1, 2, 3].map((i) => `POST http://api.test:${N}/p${i} HTTP/1.1\r\nHost: api.test:${N}\r\nContent-Length: ${i}\r\n\r\n${'x'.repeat(i)}`).join('');
    const out = await rawExchange(proxy.address.port, reqs + `GET http://api.test:${N}/end HTTP/1.1\r\nHost: api.test:${N}\r\nConnection: close\r\n\r\n`);
    const bodies = [...out.matchAll(/(POST|GET) \/\w+ \d+ -/g)].map((m) => m[0]);
    assert.deepEqual(bodies, ['POST /p1 1 -', 'POST /p2 2 -', 'POST /p3 3 -', 'GET /end 0 -']);
  });

  test('a close-delimited response reaches the client and ends its connection', async () => {
    rawMode = 'close-delimited';
    const out = await rawExchange(proxy.address.port, `GET http://api.test:${R}/ HTTP/1.1\r\nHost: api.test:${R}\r\n\r\n`);
    assert.match(out, /^HTTP\/1\.1 200 OK/);
    assert.ok(out.endsWith('\r\n\r\nbody until close'), out);
  });

  test('a stale pooled upstream connection is replaced transparently', async () => {
    rawMode = 'drop-second';
    const a = await curl(proxy.url, `http://api.test:${R}/one`);
    assert.match(a.body, /^conn \d+$/);
    const first = Number(a.body.split(' ')[1]);
    const b = await curl(proxy.url, `http://api.test:${R}/two`, ['-X', 'POST', '-d', 'payload']);
    assert.equal(b.status, 200, b.stderr + b.body);
    assert.equal(b.body, `conn ${first + 1}`, 'replayed on a fresh connection');
  });

  test('Expect: 100-continue is answered without the client waiting', async () => {
    const file = path.join(tmpDir, 'two-mb.bin');
    fs.writeFileSync(file, Buffer.alloc(2 * 1024 * 1024, 0x41));
    const t0 = Date.now();
    const r = await curl(proxy.url, `https://api.test:${tlsUp.port}/upload`, ['-H', 'Expect: 100-continue', '--data-binary', `@${file}`]);
    assert.equal(r.status, 200, r.stderr);
    assert.equal(JSON.parse(r.body).bodyBytes, 2 * 1024 * 1024);
    assert.equal(JSON.parse(r.body).headers.expect, undefined, 'Expect is answered by the proxy, not forwarded');
    assert.ok(Date.now() - t0 < 900, `took ${Date.now() - t0} ms (curl waits 1 s for a missing 100 Continue)`);
  });

  test('a slow reader that hangs up mid-back-pressure leaves a usable pooled connection', { timeout: 20000 }, async () => {
    // Download 8 MB reading slowly (the relay pauses the upstream), then hang up right at the end.
    const size = 8 * 1024 * 1024;
    const s = await tlsThroughProxy(proxy.address.port, 'api.test', tlsUp.port);
    await new Promise<void>((resolve) => {
      let got = 0;
      s.on('data', (d: Buffer) => {
        got += d.length;
        s.pause();
        setTimeout(() => s.resume(), 1);
        if (got >= size) {
          s.destroy();
          resolve();
        }
      });
      s.write(`GET /download/${size} HTTP/1.1\r\nHost: api.test:${tlsUp.port}\r\n\r\n`);
    });
    // The next exchanges reuse pooled upstream connections: an upload and a download must both complete.
    const up = await nodeHttps(proxy.address.port, 'api.test', tlsUp.port, '/upload', { method: 'POST', body: Buffer.alloc(4 * 1024 * 1024, 1) });
    assert.equal(up.status, 200);
    assert.equal(JSON.parse(up.body).bodyBytes, 4 * 1024 * 1024);
    const small = await nodeHttps(proxy.address.port, 'api.test', tlsUp.port, '/after');
    assert.equal(small.status, 200);
  });

  test('many sequential intercepted requests reuse one upstream TLS connection', async () => {
    let tlsConns = 0;
    const count = () => tlsConns++;
    tlsUp.server.on('secureConnection', count);
    try {
      for (let i = 0; i < 5; i++) {
        const r = await nodeHttps(proxy.address.port, 'api.test', tlsUp.port, `/seq${i}`);
        assert.equal(r.status, 200);
      }
    } finally {
      tlsUp.server.removeListener('secureConnection', count);
    }
    assert.ok(tlsConns <= 1, `${tlsConns} upstream TLS connections for 5 requests`);
  });

  test('a server-sent event stream reaches the client event by event, not at its end', async () => {
    // How an agent's model API answers: one long chunked response, a few bytes at a time. Each event must
    // come through as it is written; a proxy that held bytes back would show them all at the end.
    const s = await tlsThroughProxy(proxy.address.port, 'api.test', tlsUp.port);
    const lags: number[] = [];
    const arrivals: number[] = [];
    let head = '';
    await new Promise<void>((resolve, reject) => {
      const req = https.request({ host: 'api.test', port: tlsUp.port, path: '/sse/6/150', createConnection: () => s }, (res) => {
        head = `${res.statusCode} ${res.headers['content-type']}`;
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          const at = performance.now();
          text += d;
          for (let i = text.indexOf('\n\n'); i >= 0; i = text.indexOf('\n\n')) {
            const sent = Number(/data: ([\d.]+)/.exec(text.slice(0, i))?.[1]);
            lags.push(at - sent);
            arrivals.push(at);
            text = text.slice(i + 2);
          }
        });
        res.on('end', resolve);
      });
      req.on('error', reject);
      req.end();
    });
    s.destroy();
    assert.equal(head, '200 text/event-stream');
    assert.equal(lags.length, 6, 'six events');
    assert.ok(Math.max(...lags) < 100, `each event arrives within 100 ms of being written (lags ${lags.map((l) => l.toFixed(1)).join(', ')} ms)`);
    assert.ok(arrivals[5] - arrivals[0] > 600, `the events arrive spread out as they were written (${(arrivals[5] - arrivals[0]).toFixed(0)} ms)`);
  });

  test('an intercepted keep-alive session idle past the timeout is closed; one in use is not', async () => {
    const short = await startTestProxy(`version: 1
allow:
  - host: api.test:${tlsUp.port}
    private: true
`, { keepAliveTimeoutMs: 400 });
    try {
      const ask = (s: import('node:tls').TLSSocket, p: string) => askOn(s, `GET ${p} HTTP/1.1\r\nHost: api.test:${tlsUp.port}\r\n\r\n`);
      const idle = await tlsThroughProxy(short.address.port, 'api.test', tlsUp.port);
      const busy = await tlsThroughProxy(short.address.port, 'api.test', tlsUp.port);
      const t0 = Date.now();
      assert.match(await ask(idle, '/one'), /^HTTP\/1\.1 200/);
      const closed = new Promise<number>((r) => idle.once('close', () => r(Date.now() - t0)));
      // The busy session keeps asking every 150 ms for longer than the timeout.
      for (let i = 0; i < 6; i++) {
        assert.match(await ask(busy, `/busy${i}`), /^HTTP\/1\.1 200/);
        await new Promise((r) => setTimeout(r, 150));
      }
      const after = await closed;
      // The sweep runs every keepAliveMs / 8 on a clock it advances itself: ± one interval.
      assert.ok(after >= 300 && after < 2000, `idle session closed after ${after} ms`);
      assert.equal(busy.destroyed, false, 'the session in use is still open');
      assert.match(await ask(busy, '/last'), /^HTTP\/1\.1 200/);
      busy.destroy();
    } finally {
      await short.close(300);
    }
  });
});

describe('upstream TLS sessions', () => {
  test('a new upstream connection to a server seen before resumes its TLS session, and only for that name', async () => {
    const up = await startUpstream(true);
    const seen: Array<{ name: string; reused: boolean }> = [];
    up.server.on('secureConnection', (s: import('node:tls').TLSSocket) => seen.push({ name: String((s as unknown as { servername?: string }).servername), reused: s.isSessionReused() }));
    const p = await startTestProxy(`version: 1
allow:
  - host: api.test:${up.port}
    private: true
  - host: other.test:${up.port}
    private: true
`);
    // The upstream drops its idle keep-alive connections: the proxy's next request needs a new one.
    const dropPooled = async () => {
      up.server.closeIdleConnections();
      await new Promise((r) => setTimeout(r, 100));
    };
    try {
      const one = await curl(p.url, `https://api.test:${up.port}/one`);
      assert.equal(one.status, 200, one.stderr);
      await dropPooled();
      const two = await curl(p.url, `https://api.test:${up.port}/two`);
      assert.equal(two.status, 200, two.stderr);
      assert.equal(JSON.parse(two.body).url, '/two');
      await dropPooled();
      const other = await curl(p.url, `https://other.test:${up.port}/three`);
      assert.equal(other.status, 200, other.stderr);
      assert.deepEqual(seen, [
        { name: 'api.test', reused: false },
        { name: 'api.test', reused: true },
        { name: 'other.test', reused: false },
      ]);
    } finally {
      await p.close(300);
      await up.close();
    }
  });
});

test('the session cache keeps the newest session per server and drops the least recently stored', () => {
  const c = new SessionCache(2);
  c.set('a|443', Buffer.from('a1'));
  c.set('b|443', Buffer.from('b1'));
  c.set('a|443', Buffer.from('a2')); // a newer ticket for a: a becomes the most recent
  c.set('c|443', Buffer.from('c1')); // over capacity: b goes
  assert.equal(c.size, 2);
  assert.equal(c.get('a|443')?.toString(), 'a2');
  assert.equal(c.get('b|443'), undefined);
  c.delete('a|443');
  assert.equal(c.get('a|443'), undefined);
});

describe('upstream connections under concurrency', () => {
  // A TLS upstream of our own: counts TCP connections, TLS handshakes in progress (max) and resumed ones.
  async function countingUpstream(onRequest: (req: http.IncomingMessage, res: http.ServerResponse) => void) {
    const up = await startUpstream(true);
    up.server.removeAllListeners('request');
    up.server.on('request', onRequest);
    const st = { connections: 0, handshaking: 0, maxHandshaking: 0, handshakes: 0, resumed: 0 };
    up.server.on('connection', () => {
      st.connections++;
      st.maxHandshaking = Math.max(st.maxHandshaking, ++st.handshaking);
    });
    up.server.on('secureConnection', (s: import('node:tls').TLSSocket) => {
      st.handshaking--;
      st.handshakes++;
      if (s.isSessionReused()) st.resumed++;
    });
    return { up, st };
  }
  const policyFor = (port: number) => `version: 1
allow:
  - host: api.test:${port}
    private: true
`;

  test('requests that all stay open at once each get an upstream connection (no request waits for another)', { timeout: 20000 }, async () => {
    const N = 10;
    const held: http.ServerResponse[] = [];
    const { up, st } = await countingUpstream((req, res) => {
      held.push(res);
      // Nothing is answered until all N requests are at the upstream at the same time.
      if (held.length === N) for (const r of held) r.end('released');
    });
    const p = await startTestProxy(policyFor(up.port));
    try {
      const replies = await Promise.all(Array.from({ length: N }, (_, i) => nodeHttps(p.address.port, 'api.test', up.port, `/held/${i}`)));
      assert.deepEqual(
        replies.map((r) => `${r.status} ${r.body}`),
        Array.from({ length: N }, () => '200 released'),
      );
      assert.equal(st.handshakes, N, 'one upstream connection per open request');
      assert.ok(st.maxHandshaking <= 6, `at most 6 upstream handshakes at once, saw ${st.maxHandshaking}`);
    } finally {
      await p.close(300);
      await up.close();
    }
  });

  test('a burst of short requests to one host reuses upstream connections as they free up', { timeout: 20000 }, async () => {
    const N = 40;
    const { up, st } = await countingUpstream((req, res) => res.end('ok'));
    const p = await startTestProxy(policyFor(up.port));
    try {
      const replies = await Promise.all(Array.from({ length: N }, (_, i) => nodeHttps(p.address.port, 'api.test', up.port, `/burst/${i}`)));
      assert.ok(replies.every((r) => r.status === 200 && r.body === 'ok'));
      assert.ok(st.maxHandshaking <= 6, `at most 6 upstream handshakes at once, saw ${st.maxHandshaking}`);
      assert.ok(st.handshakes < N, `${N} requests on ${st.handshakes} upstream connections`);
      // Connects started before the first session ticket arrived cannot resume; later ones do.
      assert.ok(st.handshakes <= 6 || st.resumed > 0, `${st.resumed} of ${st.handshakes} upstream handshakes resumed`);
    } finally {
      await p.close(300);
      await up.close();
    }
  });
});

test('concurrent requests to an upstream that refuses connections each get a 502, none hangs', { timeout: 20000 }, async () => {
  const closed = net.createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  const port = (closed.address() as net.AddressInfo).port;
  await new Promise<void>((r) => closed.close(() => r()));
  const p = await startTestProxy(`version: 1
allow:
  - host: api.test:${port}
    private: true
`);
  try {
    const replies = await Promise.all(Array.from({ length: 12 }, (_, i) => rawExchange(p.address.port, `GET http://api.test:${port}/r${i} HTTP/1.1\r\nHost: api.test:${port}\r\nConnection: close\r\n\r\n`)));
    for (const r of replies) {
      assert.match(r, /^HTTP\/1\.1 502 /);
      assert.match(r, /ECONNREFUSED/);
    }
  } finally {
    await p.close(300);
  }
});

test('requests waiting behind stalled upstream connects get connects of their own after a second', { timeout: 20000 }, async () => {
  // Accepts TCP and never answers the TLS ClientHello.
  const held: net.Socket[] = [];
  const stall = net.createServer((sk) => void held.push(sk.on('error', () => undefined)));
  await new Promise<void>((r) => stall.listen(0, '127.0.0.1', r));
  const port = (stall.address() as net.AddressInfo).port;
  const pool = new UpstreamPool({ resolver: async () => [{ address: '127.0.0.1', family: 4 }], connectTimeoutMs: 4000 });
  try {
    const t0 = Date.now();
    // Ten at once, six connects at a time: the four behind them start once the first six are a second old
    // and time out about 5 s after the start, not 8 s (two timeouts in a row).
    const took = await Promise.all(
      Array.from({ length: 10 }, () => new Promise<number>((resolve) => pool.acquire(true, 'api.test', port, true, (err) => resolve(err ? Date.now() - t0 : -1)))),
    );
    assert.ok(took.every((ms) => ms > 0), 'every request failed (timed out)');
    assert.ok(Math.max(...took) < 6500, `the last request waited ${Math.max(...took)} ms`);
  } finally {
    pool.destroy();
    for (const sk of held) sk.destroy();
    stall.close();
  }
});
