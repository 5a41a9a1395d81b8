// Byte-for-byte integrity of relayed bodies. The proxy reads every socket into one shared buffer
// (src/proxy/readbuf.ts) and copies only what must outlive a read; a missed copy would show up as corrupted
// bytes when several connections move data at once and writes queue up behind slow readers. So: random
// (not constant) bodies, both directions, intercepted and tunnelled, all at the same time, one slow reader,
// checked by SHA-256 — and the same again with the shared buffer switched off (the fallback path).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as https from 'node:https';
import * as tls from 'node:tls';
import WebSocket from 'ws';
import { connectTunnel, randomBytes, startTestProxy, startUpstream, tlsThroughProxy, web, type EchoReply, type TestProxy, type Upstream } from './helpers';

let up: Upstream;
let proxy: TestProxy;
const SIZE = 6 * 1024 * 1024;

before(async () => {
  up = await startUpstream(true);
  proxy = await startTestProxy(`version: 1
allow:
  - host: api.test:${up.port}
    private: true
  - host: tunnel.test:${up.port}
    intercept: false
    private: true
`);
});

after(async () => {
  await proxy.close(500);
  await up.close();
});

function sha256Of(seed: string, n: number): string {
  const h = crypto.createHash('sha256');
  for (const c of randomBytes(seed, n)) h.update(c);
  return h.digest('hex');
}

async function tunnelled(host: string): Promise<tls.TLSSocket> {
  const t = await connectTunnel(proxy.address.port, `${host}:${up.port}`);
  assert.equal(t.status, 200);
  return new Promise((resolve, reject) => {
    const s = tls.connect({ socket: t.socket, servername: host, ca: web().certPem, ALPNProtocols: ['http/1.1'] });
    s.once('secureConnect', () => resolve(s));
    s.once('error', reject);
  });
}

/** One exchange over `sock`; resolves with the status and the SHA-256 and length of the response body. */
function exchange(sock: tls.TLSSocket | https.Agent, host: string, path: string, opts: { body?: { seed: string; size: number; chunked?: boolean }; slow?: boolean } = {}): Promise<{ status: number; sha256: string; bytes: number; text: string }> {
  return new Promise((resolve, reject) => {
    const via = sock instanceof https.Agent ? { agent: sock } : { createConnection: () => sock };
    const headers: Record<string, string> = opts.body && !opts.body.chunked ? { 'Content-Length': String(opts.body.size) } : {};
    const req = https.request({ host, port: up.port, path, method: opts.body ? 'POST' : 'GET', ...via, headers }, (res) => {
      const h = crypto.createHash('sha256');
      let bytes = 0;
      let text = '';
      res.on('data', (d: Buffer) => {
        h.update(d);
        bytes += d.length;
        if (text.length < 4096) text += d.toString('latin1');
        if (opts.slow && bytes % 7 === 0) {
          // A slow reader: the proxy's writes to us queue up while other connections keep reading.
          res.pause();
          setTimeout(() => res.resume(), 2);
        }
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, sha256: h.digest('hex'), bytes, text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (opts.body) {
      const gen = randomBytes(opts.body.seed, opts.body.size);
      const pump = () => {
        for (let c = gen.next(); !c.done; c = gen.next()) if (!req.write(c.value)) return void req.once('drain', pump);
        req.end();
      };
      pump();
    } else req.end();
  });
}

async function everythingAtOnce(tag: string): Promise<void> {
  const jobs: Array<Promise<void>> = [];
  const download = (host: string, open: (h: string) => Promise<tls.TLSSocket>, seed: string, slow = false, chunked = false) =>
    jobs.push(
      (async () => {
        const s = await open(host);
        const r = await exchange(s, host, `/${chunked ? 'random-chunked' : 'random'}/${SIZE}/${seed}`, { slow });
        s.destroy();
        assert.equal(r.status, 200, `${seed}: status`);
        assert.equal(r.bytes, SIZE, `${seed}: length`);
        assert.equal(r.sha256, sha256Of(seed, SIZE), `${seed}: the bytes arrived intact`);
      })(),
    );
  const upload = (host: string, open: (h: string) => Promise<tls.TLSSocket>, seed: string, chunked = false) =>
    jobs.push(
      (async () => {
        const s = await open(host);
        const r = await exchange(s, host, '/upload', { body: { seed, size: SIZE, chunked } });
        s.destroy();
        assert.equal(r.status, 200, `${seed}: status`);
        const reply = JSON.parse(r.text) as EchoReply;
        assert.equal(reply.bodyBytes, SIZE, `${seed}: length`);
        assert.equal(reply.sha256, sha256Of(seed, SIZE), `${seed}: the upstream received the bytes intact`);
      })(),
    );
  const intercepted = (h: string) => tlsThroughProxy(proxy.address.port, h, up.port);
  download('api.test', intercepted, `${tag}-down-1`);
  download('api.test', intercepted, `${tag}-down-2`);
  download('api.test', intercepted, `${tag}-down-slow`, true);
  download('api.test', intercepted, `${tag}-down-chunked`, false, true);
  upload('api.test', intercepted, `${tag}-up-1`);
  upload('api.test', intercepted, `${tag}-up-chunked`, true);
  jobs.push(wsEcho(`${tag}-ws`));
  download('tunnel.test', tunnelled, `${tag}-tunnel-down`, true);
  upload('tunnel.test', tunnelled, `${tag}-tunnel-up`);
  await Promise.all(jobs);
}

/** A 2 MiB random binary WebSocket message through an intercepted wss:// connection, echoed back. */
async function wsEcho(seed: string): Promise<void> {
  const s = await tlsThroughProxy(proxy.address.port, 'api.test', up.port);
  const ws = new WebSocket(`wss://api.test:${up.port}/echo`, { createConnection: () => s } as WebSocket.ClientOptions);
  const msg = Buffer.concat([...randomBytes(seed, 2 * 1024 * 1024)]);
  const back = await new Promise<Buffer>((resolve, reject) => {
    ws.once('open', () => ws.send(msg, { binary: true }));
    ws.once('message', (m) => resolve(Buffer.isBuffer(m) ? m : Buffer.concat(m as Buffer[])));
    ws.once('error', reject);
  });
  ws.close();
  assert.equal(crypto.createHash('sha256').update(back).digest('hex'), crypto.createHash('sha256').update(msg).digest('hex'), `${seed}: the echo came back intact`);
}

describe('relayed bytes arrive intact', () => {
  test('random bodies both ways, intercepted and tunnelled, all at once (shared read buffer)', { timeout: 60000 }, async () => {
    await everythingAtOnce('shared');
  });

  test('the same with the shared read buffer switched off (fallback to data events)', { timeout: 60000 }, async () => {
    process.env.CAGED_PROXY_NO_READBUF = '1';
    try {
      await everythingAtOnce('fallback');
    } finally {
      delete process.env.CAGED_PROXY_NO_READBUF;
    }
  });

  test('keep-alive: a download then an upload on one intercepted session, then a small request', { timeout: 60000 }, async () => {
    const s = await tlsThroughProxy(proxy.address.port, 'api.test', up.port);
    // An agent whose only connection is that session: every request below goes over it.
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
    let opened = 0;
    (agent as unknown as { createConnection: () => tls.TLSSocket }).createConnection = () => (opened++, s);
    const d = await exchange(agent, 'api.test', `/random/${SIZE}/ka-down`);
    assert.equal(d.sha256, sha256Of('ka-down', SIZE));
    const u = await exchange(agent, 'api.test', '/upload', { body: { seed: 'ka-up', size: SIZE } });
    assert.equal((JSON.parse(u.text) as EchoReply).sha256, sha256Of('ka-up', SIZE));
    const small = await exchange(agent, 'api.test', '/small');
    assert.equal(small.status, 200);
    assert.equal((JSON.parse(small.text) as EchoReply).url, '/small');
    assert.equal(opened, 1, 'one session for all three exchanges');
    agent.destroy();
    s.destroy();
  });
});

