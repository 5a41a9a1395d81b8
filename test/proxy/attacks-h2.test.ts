// Stream-level attacks on an intercepted HTTP/2 session, refused as strictly as the HTTP/1.1 framing rules:
// header names and pseudo-headers node's client would never send (written as raw frames with a tiny HPACK
// literal encoder), CONNECT, a :path or :scheme out of place, CONTINUATION floods and oversize header lists
// (CVE-2024-27983 class), rapid reset (CVE-2023-44487 class), and the concurrent-stream bound. Each case checks
// what reached the upstream: nothing of a refused stream.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type * as tls from 'node:tls';
import { startTestProxy, type TestProxy } from './helpers';
import { h2Request, h2Resolver, h2Via, startH2Upstream, tlsVia, type H2Upstream } from './h2helpers';

let up: H2Upstream;
let proxy: TestProxy;
let P: number;

before(async () => {
  up = await startH2Upstream();
  P = up.port;
  proxy = await startTestProxy(`version: 1\nallow:\n  - host: h2.test:${P}\n    private: true\n`, { resolver: h2Resolver });
});

after(async () => {
  await proxy.close(500);
  await up.close();
});

// ------------------------------------------------------------------ raw frames
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const T = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, GOAWAY: 7, CONTINUATION: 9 };
const END_STREAM = 0x1;
const END_HEADERS = 0x4;

function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream & 0x7fffffff, 5);
  return Buffer.concat([h, payload]);
}

/** An HPACK integer with an n-bit prefix (RFC 7541 5.1); `first` holds the bits above the prefix. */
function hpackInt(v: number, n: number, first = 0): Buffer {
  const max = (1 << n) - 1;
  if (v < max) return Buffer.from([first | v]);
  const out = [first | max];
  v -= max;
  while (v >= 128) {
    out.push((v % 128) + 128);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return Buffer.from(out);
}

/** A header block of literals without indexing, new names, no Huffman (RFC 7541 6.2.2). */
function hpack(headers: Array<[string, string]>): Buffer {
  const parts: Buffer[] = [];
  for (const [k, v] of headers) {
    parts.push(Buffer.from([0x00]), hpackInt(k.length, 7), Buffer.from(k, 'latin1'), hpackInt(v.length, 7), Buffer.from(v, 'latin1'));
  }
  return Buffer.concat(parts);
}

const base = (path = '/echo'): Array<[string, string]> => [
  [':method', 'GET'],
  [':scheme', 'https'],
  [':path', path],
  [':authority', `h2.test:${P}`],
];

interface Raw {
  sock: tls.TLSSocket;
  frames: Array<{ type: number; flags: number; stream: number; payload: Buffer }>;
  closed: Promise<void>;
  /** Resolves when a frame matching `pred` arrived (or false after ms / when the connection closed). */
  waitFrame(pred: (f: { type: number; stream: number; payload: Buffer }) => boolean, ms?: number): Promise<boolean>;
}

async function raw(): Promise<Raw> {
  const sock = await tlsVia(proxy.address.port, 'h2.test', P, ['h2']);
  assert.equal(sock.alpnProtocol, 'h2');
  const frames: Raw['frames'] = [];
  let buf = Buffer.alloc(0);
  const listeners = new Set<() => void>();
  sock.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    while (buf.length >= 9) {
      const len = buf.readUIntBE(0, 3);
      if (buf.length < 9 + len) break;
      frames.push({ type: buf[3], flags: buf[4], stream: buf.readUInt32BE(5) & 0x7fffffff, payload: buf.subarray(9, 9 + len) });
      buf = buf.subarray(9 + len);
    }
    for (const l of [...listeners]) l();
  });
  sock.on('error', () => {});
  const closed = new Promise<void>((r) => sock.once('close', () => r()));
  sock.write(Buffer.concat([PREFACE, frame(T.SETTINGS, 0, 0, Buffer.alloc(0))]));
  const waitFrame: Raw['waitFrame'] = (pred, ms = 3000) =>
    new Promise((resolve) => {
      const check = () => {
        if (frames.some(pred)) done(true);
      };
      const done = (v: boolean) => {
        listeners.delete(check);
        clearTimeout(t);
        resolve(v);
      };
      const t = setTimeout(() => done(false), ms);
      void closed.then(() => done(frames.some(pred)));
      listeners.add(check);
      check();
    });
  return { sock, frames, closed, waitFrame };
}

const rstOrGoaway = (stream: number) => (f: { type: number; stream: number }) => (f.type === T.RST_STREAM && f.stream === stream) || f.type === T.GOAWAY;

describe('malformed streams are reset; nothing reaches the upstream', () => {
  const cases: Array<[string, Array<[string, string]>]> = [
    ['an upper-case header name', [...base('/echo/upper'), ['X-Upper', 'a']]],
    ['an unknown pseudo-header', [...base('/echo/pseudo'), [':protocol', 'websocket']]],
    ['a pseudo-header after a regular header', [[':method', 'GET'], [':scheme', 'https'], ['x-a', 'b'], [':path', '/echo/order'], [':authority', `h2.test:${P}`]]],
    ['a connection-specific header (connection)', [...base('/echo/conn'), ['connection', 'keep-alive']]],
    ['transfer-encoding', [...base('/echo/te'), ['transfer-encoding', 'chunked']]],
    ['te other than trailers', [...base('/echo/te2'), ['te', 'gzip']]],
    ['no :path', [[':method', 'GET'], [':scheme', 'https'], [':authority', `h2.test:${P}`]]],
    ['two :path', [...base('/echo/two'), [':path', '/echo/three']]],
  ];
  for (const [name, headers] of cases) {
    test(name, async () => {
      const before = up.seen.length;
      const r = await raw();
      r.sock.write(frame(T.HEADERS, END_HEADERS | END_STREAM, 1, hpack(headers)));
      assert.ok(await r.waitFrame(rstOrGoaway(1)), 'the stream is reset (or the session ends)');
      r.sock.destroy();
      assert.equal(up.seen.length, before, 'nothing reached the upstream');
    });
  }
});

describe('refused with a 403 on the stream (node:http2 lets these through)', () => {
  test('CONNECT and a :path that is not origin-form, a :scheme other than https; the session goes on', async () => {
    const s = await h2Via(proxy.address.port, 'h2.test', P);
    const before = up.seen.length;
    const c = await h2Request(s, { ':method': 'CONNECT', ':authority': 'elsewhere.test:443' });
    assert.equal(c.status, 403);
    assert.equal(c.headers['x-caged-agent-block'], 'bad-request');
    assert.match(c.body.toString(), /CONNECT \(and extended CONNECT\) inside an HTTP\/2 session is not supported/);
    // nghttp2 itself resets a :path that is not origin-form (PROTOCOL_ERROR); gate.streamHeadersBlock would answer 403.
    await assert.rejects(h2Request(s, { ':path': 'h2.test/echo/abs' }), /NGHTTP2_PROTOCOL_ERROR/);
    const sc = await h2Request(s, { ':path': '/echo/scheme', ':scheme': 'http' });
    assert.equal(sc.status, 403);
    assert.match(sc.body.toString(), /Reason: bad-request\n.*:scheme/);
    assert.equal((await h2Request(s, { ':path': '/echo/fine' })).status, 200);
    s.close();
    assert.equal(up.seen.length, before + 1, 'only the good stream reached the upstream');
    assert.equal(proxy.decisions().find((e) => e.path === '/echo/scheme')?.detail, 'h2-scheme');
    assert.equal(proxy.decisions().find((e) => e.method === 'CONNECT')?.detail, 'h2-connect');
  });

  test('a lower-case :method (a "trace" that would slip past the refused methods) gets a 403 with the reason; nothing forwarded', async () => {
    const s = await h2Via(proxy.address.port, 'h2.test', P);
    const before = up.seen.length;
    for (const m of ['trace', 'get']) {
      const r = await h2Request(s, { ':method': m, ':path': `/echo/lower-${m}` });
      assert.equal(r.status, 403, m);
      assert.match(r.body.toString(), /not upper-case/);
      assert.equal(proxy.decisions().find((e) => e.path === `/echo/lower-${m}`)?.detail, 'h2-method');
    }
    assert.equal((await h2Request(s, { ':method': 'TRACE', ':path': '/echo/trace-upper' })).status, 403, 'TRACE itself is refused');
    s.close();
    assert.equal(up.seen.length, before, 'nothing reached the upstream');
  });

  test('the session advertises the bounds: 128 concurrent streams, a 32 KiB header list', async () => {
    const s = await h2Via(proxy.address.port, 'h2.test', P);
    await new Promise<void>((r) => s.once('remoteSettings', () => r()));
    assert.equal(s.remoteSettings.maxConcurrentStreams, 128);
    assert.equal(s.remoteSettings.maxHeaderListSize, 32 * 1024);
    s.close();
  });
});

describe('the session is for the CONNECT host only', () => {
  test('a TLS server name other than the CONNECT host: every stream answers 403 sni-mismatch, nothing goes upstream', async () => {
    const before = up.seen.length;
    const sock = await tlsVia(proxy.address.port, 'h2.test', P, ['h2', 'http/1.1'], 'h2b.test');
    assert.equal(sock.alpnProtocol, 'h2');
    const http2 = await import('node:http2');
    const s = http2.connect(`https://h2.test:${P}`, { createConnection: () => sock });
    s.on('error', () => {});
    const r = await h2Request(s, { ':path': '/echo/sni' });
    assert.equal(r.status, 403);
    assert.equal(r.headers['x-caged-agent-block'], 'sni-mismatch');
    s.close();
    assert.equal(up.seen.length, before);
    assert.equal(proxy.decisions().find((e) => e.path === '/echo/sni')?.reason, 'sni-mismatch');
  });
});

describe('floods tear the session down, with bounded memory', () => {
  test('a CONTINUATION flood (a header block that never ends) ends the session', async () => {
    const before = up.seen.length;
    const r = await raw();
    r.sock.write(frame(T.HEADERS, 0, 1, hpack(base('/echo/flood'))));
    const filler = frame(T.CONTINUATION, 0, 1, hpack([['x-f', 'a'.repeat(16000)]]));
    let sent = 0;
    let gone = false;
    void r.closed.then(() => (gone = true));
    const heap0 = process.memoryUsage().rss;
    for (let i = 0; i < 2000 && !gone && !r.frames.some((f) => f.type === T.GOAWAY); i++) {
      if (!r.sock.write(filler)) await new Promise((res) => setTimeout(res, 1));
      sent += filler.length;
      if (i % 50 === 0) await new Promise((res) => setImmediate(res));
    }
    assert.ok(await r.waitFrame((f) => f.type === T.GOAWAY || f.type === T.RST_STREAM, 5000), `refused (sent ${sent} bytes)`);
    assert.ok(sent < 32 * 1024 * 1024, 'refused before 32 MiB were sent');
    assert.ok(process.memoryUsage().rss - heap0 < 200 * 1024 * 1024, 'no unbounded growth');
    r.sock.destroy();
    assert.equal(up.seen.length, before);
  });

  test('an oversize header list (64 KiB in one header) is answered 431 and the session takes no new streams', async () => {
    const before = up.seen.length;
    const r = await raw();
    const block = hpack([...base('/echo/big'), ['x-big', 'b'.repeat(64 * 1024)]]);
    // Split over HEADERS + CONTINUATION frames of 16 KiB (the default max frame size).
    const first = block.subarray(0, 16384);
    const out = [frame(T.HEADERS, 0, 1, first)];
    for (let o = 16384; o < block.length; o += 16384) out.push(frame(T.CONTINUATION, o + 16384 >= block.length ? END_HEADERS : 0, 1, block.subarray(o, o + 16384)));
    r.sock.write(Buffer.concat(out));
    assert.ok(await r.waitFrame((f) => f.type === T.GOAWAY), 'GOAWAY');
    assert.match(r.frames.filter((f) => f.type === T.DATA && f.stream === 1).map((f) => f.payload.toString()).join(''), /request headers too large/);
    r.sock.destroy();
    assert.equal(up.seen.length, before);
  });

  test('rapid reset: streams opened and reset at once, thousands of them, end the session', async () => {
    const r = await raw();
    const before = up.seen.length;
    const batch: Buffer[] = [];
    const rst = Buffer.alloc(4);
    rst.writeUInt32BE(8); // CANCEL
    for (let id = 1; id < 2 * 5000; id += 2) batch.push(frame(T.HEADERS, END_HEADERS, id, hpack(base(`/hang`))), frame(T.RST_STREAM, 0, id, rst));
    r.sock.write(Buffer.concat(batch));
    assert.ok(await r.waitFrame((f) => f.type === T.GOAWAY, 5000), 'GOAWAY');
    await Promise.race([r.closed, new Promise((res) => setTimeout(res, 2000))]);
    assert.ok(up.seen.length - before < 1000, `bounded work upstream (${up.seen.length - before} streams reached it)`);
    r.sock.destroy();
  });
});
