// Fixtures for the HTTP/2 interception tests: an h2 upstream on 127.0.0.1 (echo, gRPC unary and bidi with trailers,
// a header reflector), names of its own (h2*.test), and an h2 client through a CONNECT of the proxy.
import * as crypto from 'node:crypto';
import * as http2 from 'node:http2';
import type * as net from 'node:net';
import * as tls from 'node:tls';
import { LeafMinter } from '../../src/pki/leaf';
import type { ResolvedAddress } from '../../src/proxy/resolve';
import { cage, connectTunnel, testResolver, web } from './helpers';

export const H2_NAMES = ['h2.test', 'h2b.test', 'h2one.test'];

/** The test resolver plus the h2 names (127.0.0.1: rules need `private: true`). */
export async function h2Resolver(host: string): Promise<ResolvedAddress[]> {
  if (H2_NAMES.includes(host)) return [{ address: '127.0.0.1', family: 4 }];
  return testResolver(host);
}

export interface H2Upstream {
  port: number;
  /** Request headers of every stream the upstream got, in arrival order. */
  seen: http2.IncomingHttpHeaders[];
  /** Streams the upstream saw reset by the proxy. */
  resets: number;
  close(): Promise<void>;
  /** Sends GOAWAY on every open session (a server restarting or rotating connections). */
  goawayAll(): void;
}

/**
 * /echo: JSON of the method, path, headers and the body's length and SHA-256; /grpc/unary: a gRPC-style answer
 * with grpc-status trailers; /grpc/bidi: every chunk echoed back as it comes, trailers at the end; /reflect: the
 * Authorization header in a response header and the body; /hang: headers, then nothing until reset; /download/N.
 */
export async function startH2Upstream(): Promise<H2Upstream> {
  const minter = new LeafMinter(web().certPem, web().keyPem);
  const ctxs = new Map<string, tls.SecureContext>();
  const server = http2.createSecureServer({
    key: minter.leafKeyPem,
    cert: minter.mint('h2.test').certPem,
    SNICallback: (name, cb) => {
      let c = ctxs.get(name);
      if (!c) ctxs.set(name, (c = tls.createSecureContext({ key: minter.leafKeyPem, cert: minter.mint(name).certPem })));
      cb(null, c);
    },
    allowHTTP1: false,
    settings: { maxConcurrentStreams: 1000 },
  });
  const sessions = new Set<http2.ServerHttp2Session>();
  const up: H2Upstream = { port: 0, seen: [], resets: 0, close: () => new Promise<void>((r) => server.close(() => r())), goawayAll: () => sessions.forEach((s) => s.close()) };
  server.on('session', (s) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
  });
  up.close = () =>
    new Promise<void>((r) => {
      for (const s of sessions) s.destroy();
      server.close(() => r());
    });
  server.on('stream', (stream, headers) => {
    up.seen.push(headers);
    stream.on('aborted', () => up.resets++);
    stream.on('error', () => {});
    const path = String(headers[':path']);
    if (path.startsWith('/grpc/bidi')) {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'grpc-message': 'bidi-done' }));
      stream.on('data', (d: Buffer) => stream.write(d));
      stream.on('end', () => stream.end());
      return;
    }
    if (path.startsWith('/download/')) {
      // /download/<bytes>: that many bytes, written as the reader takes them (flow control end to end).
      let left = Number(path.split('/')[2]);
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      stream.respond({ ':status': 200, 'content-type': 'application/octet-stream' });
      const pump = () => {
        while (left > 0) {
          const n = Math.min(left, chunk.length);
          left -= n;
          if (!stream.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return void stream.once('drain', pump);
        }
        stream.end();
      };
      return pump();
    }
    if (path.startsWith('/hang')) {
      stream.respond({ ':status': 200 });
      return;
    }
    const hash = crypto.createHash('sha256');
    let bytes = 0;
    let trailers: http2.IncomingHttpHeaders | undefined;
    stream.on('data', (d: Buffer) => {
      bytes += d.length;
      hash.update(d);
    });
    stream.on('trailers', (t) => (trailers = t));
    stream.on('end', () => {
      if (stream.destroyed || stream.closed) return; // reset by the proxy
      if (path.startsWith('/grpc/unary')) {
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'grpc-message': `got ${bytes}` }));
        return void stream.end(Buffer.concat([Buffer.from([0, 0, 0, 0, 2]), Buffer.from('ok')]));
      }
      if (path.startsWith('/reflect')) {
        const auth = String(headers.authorization ?? '');
        stream.respond({ ':status': 200, 'x-seen-auth': auth });
        return void stream.end(`you sent: ${auth}`);
      }
      stream.respond({ ':status': 200, 'content-type': 'application/json' });
      stream.end(JSON.stringify({ method: headers[':method'], path, authority: headers[':authority'], headers, bytes, sha256: hash.digest('hex'), trailers: trailers ?? null }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  up.port = (server.address() as net.AddressInfo).port;
  return up;
}

/** TLS through `CONNECT host:port` offering `alpn`, trusting the cage CA. */
export async function tlsVia(proxyPort: number, host: string, port: number, alpn = ['h2', 'http/1.1'], servername = host): Promise<tls.TLSSocket> {
  const t = await connectTunnel(proxyPort, `${host}:${port}`);
  if (t.status !== 200) throw new Error(`CONNECT answered ${t.status}`);
  // The leaf names the CONNECT host; a test that sends another server name checks the proxy, not the name.
  const sock = tls.connect({ socket: t.socket, servername, ca: cage().certPem, ALPNProtocols: alpn, checkServerIdentity: servername === host ? tls.checkServerIdentity : () => undefined });
  await new Promise<void>((resolve, reject) => {
    sock.once('secureConnect', () => resolve());
    sock.once('error', reject);
  });
  return sock;
}

/** An h2 client session through the proxy (ALPN must settle on h2). */
export async function h2Via(proxyPort: number, host: string, port: number): Promise<http2.ClientHttp2Session> {
  const sock = await tlsVia(proxyPort, host, port);
  if (sock.alpnProtocol !== 'h2') throw new Error(`ALPN settled on ${sock.alpnProtocol}`);
  const s = http2.connect(`https://${host}:${port}`, { createConnection: () => sock });
  s.on('error', () => {});
  return s;
}

export interface H2Reply {
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: Buffer;
  trailers: http2.IncomingHttpHeaders;
}

/** One request on `s`; resolves when the stream ends (or rejects when it is reset). */
export function h2Request(s: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: Buffer | string): Promise<H2Reply> {
  return new Promise((resolve, reject) => {
    const req = s.request({ ':method': body === undefined ? 'GET' : 'POST', ...headers });
    const parts: Buffer[] = [];
    let head: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    req.on('response', (h) => (head = h));
    req.on('trailers', (t) => (trailers = t));
    req.on('data', (d: Buffer) => parts.push(d));
    req.on('end', () => resolve({ status: Number(head[':status']), headers: head, body: Buffer.concat(parts), trailers }));
    req.on('error', reject);
    req.on('close', () => {
      if (req.rstCode && req.rstCode !== http2.constants.NGHTTP2_NO_ERROR) reject(Object.assign(new Error(`stream reset ${req.rstCode}`), { rstCode: req.rstCode }));
    });
    if (body !== undefined) req.end(body);
    else req.end();
  });
}
