// Shared fixtures for the proxy tests: a cage CA, a separate "internet" CA for the upstream servers,
// upstream HTTP/HTTPS echo servers (with WebSocket echo), a name resolver that maps test names to
// 127.0.0.1, and clients (curl and Node) that go through the proxy.
import * as crypto from 'node:crypto';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { WebSocketServer } from 'ws';
import { createCA, type CreatedCA } from '../../src/pki/ca';
import { LeafMinter } from '../../src/pki/leaf';
import { startProxy, type ProxyOptions, type RunningProxy } from '../../src/proxy/server';
import type { ProxyEvent, DecisionEvent } from '../../src/policy/events';
import type { ResolvedAddress } from '../../src/proxy/resolve';

export const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'caged-proxy-test-'));
process.on('exit', () => fs.rmSync(tmpDir, { recursive: true, force: true }));

let cageCA: CreatedCA | undefined;
let webCA: CreatedCA | undefined;

/** The cage CA (what the proxy mints under) and its PEM file for curl --cacert. */
export function cage(): CreatedCA & { certFile: string; keyFile: string } {
  cageCA ??= createCA({ commonName: 'Test Cage CA' });
  const certFile = path.join(tmpDir, 'cage-ca.pem');
  const keyFile = path.join(tmpDir, 'cage-ca.key');
  if (!fs.existsSync(certFile)) {
    fs.writeFileSync(certFile, cageCA.certPem);
    fs.writeFileSync(keyFile, cageCA.keyPem, { mode: 0o600 });
  }
  return { ...cageCA, certFile, keyFile };
}

/** The CA of the fake internet: upstream HTTPS servers use leaves from it; the proxy trusts it via upstreamCaPem. */
export function web(): CreatedCA & { certFile: string } {
  webCA ??= createCA({ commonName: 'Test Upstream CA' });
  const certFile = path.join(tmpDir, 'web-ca.pem');
  if (!fs.existsSync(certFile)) fs.writeFileSync(certFile, webCA.certPem);
  return { ...webCA, certFile };
}

/** Test DNS: these names resolve to 127.0.0.1 (private: rules need `private: true` to reach them). */
export const TEST_NAMES = ['api.test', 'other.test', 'tunnel.test', 'ws.test', 'big.test', 'localhost', 'dlp.test', 'auth.test'];
export async function testResolver(host: string): Promise<ResolvedAddress[]> {
  if (TEST_NAMES.includes(host)) return [{ address: '127.0.0.1', family: 4 }];
  if (host === 'public.test') return [{ address: '93.184.216.34', family: 4 }]; // never connected to in tests
  if (host === 'mixed.test') return [{ address: '93.184.216.34', family: 4 }, { address: '10.1.2.3', family: 4 }];
  const e = new Error(`getaddrinfo ENOTFOUND ${host}`) as NodeJS.ErrnoException;
  e.code = 'ENOTFOUND';
  throw e;
}

export interface EchoReply {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  bodyBytes: number;
  /** SHA-256 (hex) of the request body as the upstream received it. */
  sha256: string;
  secure: boolean;
}

/** Deterministic pseudo-random bytes in chunks of up to 64 KiB (AES-CTR keystream of the seed). */
export function* randomBytes(seed: string, n: number): Generator<Buffer> {
  const key = crypto.createHash('sha256').update(seed).digest().subarray(0, 16);
  const c = crypto.createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  const zeros = Buffer.alloc(64 * 1024);
  for (let left = n; left > 0; ) {
    const k = Math.min(left, zeros.length);
    left -= k;
    yield c.update(k === zeros.length ? zeros : zeros.subarray(0, k));
  }
}

export interface Upstream {
  port: number;
  server: http.Server;
  close(): Promise<void>;
}

function echoHandler(secure: boolean) {
  return (req: http.IncomingMessage, res: http.ServerResponse) => {
    const url = req.url ?? '/';
    if (url.startsWith('/download/')) {
      // /download/<bytes>: streams that many bytes.
      let left = Number(url.split('/')[2]);
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': String(left) });
      const pump = () => {
        while (left > 0) {
          const n = Math.min(left, chunk.length);
          left -= n;
          if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return void res.once('drain', pump);
        }
        res.end();
      };
      return pump();
    }
    if (url.startsWith('/random/') || url.startsWith('/random-chunked/')) {
      // /random/<bytes>/<seed>: that many pseudo-random bytes (randomBytes(), same seed → same bytes);
      // /random-chunked/...: the same without Content-Length (a chunked response).
      const left = Number(url.split('/')[2]);
      res.writeHead(200, url.startsWith('/random/') ? { 'Content-Type': 'application/octet-stream', 'Content-Length': String(left) } : { 'Content-Type': 'application/octet-stream' });
      const gen = randomBytes(url.split('/')[3] ?? '', left);
      const pump = () => {
        for (let c = gen.next(); !c.done; c = gen.next()) if (!res.write(c.value)) return void res.once('drain', pump);
        res.end();
      };
      return pump();
    }
    if (url.startsWith('/sse/')) {
      // /sse/<n>/<ms>: a server-sent event stream (chunked, no length), n events ms apart, each carrying
      // the moment it was written (performance.now() of this process) so a client can tell when it arrived.
      const [n, ms] = url.split('/').slice(2).map(Number);
      res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
      let i = 0;
      const tick = () => {
        res.write(`id: ${i}\ndata: ${performance.now()}\n\n`);
        if (++i < n) setTimeout(tick, ms);
        else res.end();
      };
      return tick();
    }
    let bodyBytes = 0;
    const hash = crypto.createHash('sha256');
    req.on('data', (d: Buffer) => {
      bodyBytes += d.length;
      hash.update(d);
    });
    req.on('end', () => {
      const reply: EchoReply = { method: req.method ?? '', url, headers: req.headers, bodyBytes, sha256: hash.digest('hex'), secure };
      const body = JSON.stringify(reply);
      res.writeHead(url.startsWith('/status/') ? Number(url.split('/')[2]) : 200, { 'Content-Type': 'application/json', 'X-Upstream': secure ? 'https' : 'http' });
      res.end(body);
    });
  };
}

function withWs(server: http.Server): void {
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws, req) => {
    ws.on('message', (m, isBinary) => ws.send(isBinary ? m : `echo:${m.toString()}:${req.url}`));
  });
}

/**
 * TLS server options for a test upstream: a leaf from the "internet" CA for each SNI name (for names not in
 * `names`, the first of them, when a list is given), made once per name; 127.0.0.1 without SNI.
 */
function webServerTls(names?: string[]): tls.TlsOptions {
  const minter = new LeafMinter(web().certPem, web().keyPem);
  const contexts = new Map<string, tls.SecureContext>();
  const ctxFor = (n: string) => {
    let c = contexts.get(n);
    if (!c) contexts.set(n, (c = tls.createSecureContext({ key: minter.leafKeyPem, cert: minter.mint(n).certPem })));
    return c;
  };
  for (const n of names ?? []) ctxFor(n);
  return {
    SNICallback: (name, cb) => cb(null, ctxFor(!names || names.includes(name) ? name : names[0])),
    key: minter.leafKeyPem,
    cert: minter.mint('127.0.0.1').certPem,
  };
}

export async function startUpstream(secure: boolean, names = ['api.test', 'other.test', 'tunnel.test', 'ws.test', 'big.test', 'localhost', 'dlp.test', 'auth.test', '127.0.0.1']): Promise<Upstream> {
  const server = secure ? https.createServer(webServerTls(names), echoHandler(true)) : http.createServer(echoHandler(false));
  withWs(server);
  server.keepAliveTimeout = 30000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    server,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

export interface TestProxy extends RunningProxy {
  events: ProxyEvent[];
  decisions(): DecisionEvent[];
  lastDecision(): DecisionEvent | undefined;
  /** Resolves when an event matching `pred` has been seen (already or later). */
  waitEvent(pred: (e: ProxyEvent) => boolean, timeoutMs?: number): Promise<ProxyEvent>;
}

export async function startTestProxy(policyText: string, extra: Partial<ProxyOptions> = {}): Promise<TestProxy> {
  const events: ProxyEvent[] = [];
  const waiters: Array<{ pred: (e: ProxyEvent) => boolean; resolve: (e: ProxyEvent) => void }> = [];
  const p = await startProxy({
    policyText,
    caCertPem: cage().certPem,
    caKeyPem: cage().keyPem,
    upstreamCaPem: web().certPem,
    resolver: testResolver,
    events: null,
    onEvent: (e) => {
      events.push(e);
      for (const w of [...waiters]) {
        if (w.pred(e)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(e);
        }
      }
    },
    ...extra,
  });
  const decisions = () => events.filter((e): e is DecisionEvent => e.type === 'allow' || e.type === 'block');
  return Object.assign(p, {
    events,
    decisions,
    lastDecision: () => decisions().at(-1),
    waitEvent: (pred: (e: ProxyEvent) => boolean, timeoutMs = 5000) =>
      new Promise<ProxyEvent>((resolve, reject) => {
        const found = events.find(pred);
        if (found) return resolve(found);
        const t = setTimeout(() => reject(new Error('timed out waiting for a proxy event')), timeoutMs);
        waiters.push({ pred, resolve: (e) => (clearTimeout(t), resolve(e)) });
      }),
  });
}

export interface CurlResult {
  code: number;
  status: number;
  headers: Record<string, string>;
  body: string;
  stderr: string;
}

/** Runs curl through the proxy (trusting only the cage CA unless told otherwise) and parses the final response. */
export function curl(proxyUrl: string, url: string, args: string[] = [], opts: { input?: string } = {}): Promise<CurlResult> {
  const a = ['-s', '-S', '-i', '--max-time', '20', '--proxy', proxyUrl, '--cacert', cage().certFile, ...args, url];
  return new Promise((resolve) => {
    const child = execFile('curl', a, { encoding: 'latin1', maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? ((err as unknown as { code?: number }).code ?? 1) : 0;
      let rest = stdout;
      let status = 0;
      let headers: Record<string, string> = {};
      // Skip the proxy's "200 Connection established" block(s); keep the last response.
      while (rest.startsWith('HTTP/')) {
        const end = rest.indexOf('\r\n\r\n');
        if (end < 0) break;
        const block = rest.slice(0, end);
        const lines = block.split('\r\n');
        status = Number(lines[0].split(' ')[1]);
        headers = {};
        for (const l of lines.slice(1)) {
          const c = l.indexOf(':');
          if (c > 0) headers[l.slice(0, c).toLowerCase()] = l.slice(c + 1).trim();
        }
        rest = rest.slice(end + 4);
        if (!/connection established/i.test(lines[0]) && !(status === 100)) break;
      }
      resolve({ code: typeof code === 'number' ? code : 1, status, headers, body: rest, stderr });
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** Opens a CONNECT tunnel through the proxy; resolves with the socket and the proxy's status line. */
export function connectTunnel(proxyPort: number, authority: string): Promise<{ socket: net.Socket; status: number; head: string }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(proxyPort, '127.0.0.1');
    let buf = Buffer.alloc(0);
    socket.once('error', reject);
    socket.on('connect', () => socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`));
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.removeListener('data', onData);
      socket.pause();
      const head = buf.subarray(0, end).toString('latin1');
      if (end + 4 < buf.length) socket.unshift(buf.subarray(end + 4));
      resolve({ socket, status: Number(head.split(' ')[1]), head: head + '\r\n\r\n' + buf.subarray(end + 4).toString('latin1') });
    };
    socket.on('data', onData);
  });
}

/** TLS over a CONNECT tunnel, verifying against `ca` (default: the cage CA). */
export async function tlsThroughProxy(proxyPort: number, host: string, port: number, opts: { servername?: string; ca?: string } = {}): Promise<tls.TLSSocket> {
  const t = await connectTunnel(proxyPort, `${host}:${port}`);
  if (t.status !== 200) throw new Error(`CONNECT answered ${t.status}`);
  return new Promise((resolve, reject) => {
    const s = tls.connect({ socket: t.socket, servername: opts.servername ?? (net.isIP(host) ? undefined : host), ca: opts.ca ?? cage().certPem, ALPNProtocols: ['http/1.1'] });
    s.once('secureConnect', () => resolve(s));
    s.once('error', reject);
  });
}

/**
 * Writes one request on an open (keep-alive) socket and resolves with the whole response, read until its
 * Content-Length or, without one, the end of a chunked body. For tests that reuse one session.
 */
export function askOn(s: tls.TLSSocket, request: string | Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    const onData = (d: Buffer) => {
      got += d.toString('latin1');
      const end = got.indexOf('\r\n\r\n');
      const len = /content-length: (\d+)/i.exec(got);
      const done = len ? got.length >= end + 4 + Number(len[1]) : got.endsWith('\r\n0\r\n\r\n');
      if (end < 0 || !done) return;
      s.removeListener('data', onData);
      s.removeListener('error', reject);
      resolve(got);
    };
    s.on('data', onData);
    s.once('error', reject);
    s.write(request);
  });
}

/** A Node HTTPS request through the proxy (one tunnel per request). */
export async function nodeHttps(
  proxyPort: number,
  host: string,
  port: number,
  reqPath: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string; peer: tls.PeerCertificate }> {
  const s = await tlsThroughProxy(proxyPort, host, port);
  const peer = s.getPeerCertificate(true);
  return new Promise((resolve, reject) => {
    const req = https.request({ host, port, path: reqPath, method: opts.method ?? 'GET', headers: opts.headers, createConnection: () => s }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => {
        s.destroy();
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, peer });
      });
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** A plain-HTTP absolute-form request through the proxy with Node. */
export function nodeHttp(
  proxyPort: number,
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: proxyPort, path: url, method: opts.method ?? 'GET', headers: { Host: u.host, ...opts.headers }, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** Sends raw bytes to the proxy and collects whatever comes back until it closes (or timeout). */
export function rawExchange(proxyPort: number, data: string | Buffer, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(proxyPort, '127.0.0.1');
    let out = '';
    const t = setTimeout(() => s.destroy(), timeoutMs);
    s.on('connect', () => s.write(data));
    s.on('data', (d) => (out += d.toString('latin1')));
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(t);
      resolve(out);
    });
  });
}

/** One request as a recording upstream received it: the head as text (latin1) and the body. */
export interface Recorded {
  head: string;
  body: Buffer;
}

export interface RecordingUpstream {
  port: number;
  /** Every byte received, on every connection (latin1). */
  raw(): string;
  requests: Recorded[];
  close(): Promise<void>;
}

/**
 * A hand-written upstream (plain or TLS) that records every byte it receives and answers each complete
 * request (Content-Length bodies) with `answer`, by default a 200 "ok". For tests that must see exactly what
 * the proxy sent, and that nothing was sent.
 */
export async function startRecordingUpstream(secure: boolean, answer?: (r: Recorded, sock: net.Socket) => void): Promise<RecordingUpstream> {
  const chunks: Buffer[] = [];
  const requests: Recorded[] = [];
  const sockets = new Set<net.Socket>();
  const onConn = (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      chunks.push(d);
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.subarray(0, end + 4).toString('latin1');
        const len = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
        if (buf.length < end + 4 + len) return;
        const r = { head, body: buf.subarray(end + 4, end + 4 + len) };
        buf = buf.subarray(end + 4 + len);
        requests.push(r);
        if (answer) answer(r, s);
        else s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      }
    });
  };
  const server = secure ? tls.createServer(webServerTls(), onConn) : net.createServer(onConn);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    raw: () => Buffer.concat(chunks).toString('latin1'),
    requests,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** Writes `data` on a socket and collects what comes back until `done(text)` says so, it closes, or timeout. */
export function collect(s: net.Socket, data: string | Buffer, done: (got: string) => boolean, timeoutMs = 10000): Promise<{ got: string; closed: boolean }> {
  return new Promise((resolve) => {
    let got = '';
    let closed = false;
    const finish = () => {
      clearTimeout(t);
      s.removeListener('data', onData);
      resolve({ got, closed });
    };
    const onData = (d: Buffer) => {
      got += d.toString('latin1');
      if (done(got)) finish();
    };
    const t = setTimeout(finish, timeoutMs);
    s.on('data', onData);
    s.once('close', () => {
      closed = true;
      finish();
    });
    s.on('error', () => undefined);
    s.resume();
    s.write(data);
  });
}

/** How many times `needle` occurs in `hay`. */
export function count(hay: string, needle: string): number {
  let n = 0;
  for (let i = hay.indexOf(needle); i >= 0; i = hay.indexOf(needle, i + needle.length)) n++;
  return n;
}
