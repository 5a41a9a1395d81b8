// The upstream origin (its own process): a Node HTTPS server with keep-alive and a tiny fixed body, plus
// a bulk download and an upload sink; the same routes over HTTP/2 (node:http2, ALPN h2 and http/1.1) on a
// port of their own; and a plain-HTTP listener with the same routes (used to poll policy reloads cheaply).
// Prints {"httpsPort","h2Port","httpPort"} on stdout, exits when its stdin closes. On the plain
// listener, GET /tls-stats answers how many TLS handshakes the TLS listener has seen and how many of them
// resumed a session; GET /close-idle also closes its idle keep-alive connections (a proxy's pooled ones);
// GET /h2-stats answers how many requests the HTTP/2 listener got over h2 and over http/1.1.
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import { exitWhenStdinCloses, requiredArg } from './common';

const BULK_CHUNK = Buffer.alloc(256 * 1024, 0x61);
const TINY = Buffer.from('ok');

function handler(req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse): void {
  const url = req.url ?? '/';
  if (url === '/tiny') {
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': TINY.length });
    res.end(TINY);
    return;
  }
  if (res instanceof http2.Http2ServerResponse) {
    res.writeHead(404, { 'Content-Length': 0 }).end();
    return;
  }
  if (url.startsWith('/bulk?bytes=')) {
    let left = Number(url.slice('/bulk?bytes='.length));
    if (!Number.isSafeInteger(left) || left < 0) {
      res.writeHead(400).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': left });
    const pump = () => {
      while (left > 0) {
        const n = Math.min(left, BULK_CHUNK.length);
        left -= n;
        const more = res.write(n === BULK_CHUNK.length ? BULK_CHUNK : BULK_CHUNK.subarray(0, n));
        if (!more && left > 0) {
          res.once('drain', pump);
          return;
        }
      }
      res.end();
    };
    pump();
    return;
  }
  if (url === '/upload' && req.method === 'POST') {
    let n = 0;
    req.on('data', (d: Buffer) => {
      n += d.length;
    });
    req.on('end', () => {
      const body = Buffer.from(String(n));
      res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': body.length });
      res.end(body);
    });
    return;
  }
  res.writeHead(404, { 'Content-Length': 0 }).end();
}

function tune(s: http.Server): void {
  s.keepAliveTimeout = 10 * 60 * 1000;
  s.headersTimeout = 10 * 60 * 1000 + 1000;
  s.requestTimeout = 0;
  s.maxConnections = 20000;
  s.on('clientError', (_e, socket) => socket.destroy());
}

export async function runUpstream(argv: string[]): Promise<void> {
  const arg = (name: string) => requiredArg(argv, name, 'upstream');
  const cert = fs.readFileSync(arg('--cert'), 'utf8');
  const key = fs.readFileSync(arg('--key'), 'utf8');
  const tlsServer = https.createServer({ cert, key, ALPNProtocols: ['http/1.1'] }, handler);
  const seen = { handshakes: 0, resumed: 0 };
  tlsServer.on('secureConnection', (s: import('node:tls').TLSSocket) => {
    seen.handshakes++;
    if (s.isSessionReused()) seen.resumed++;
  });
  // HTTP/2 (the h2 rows): the compatibility API, so h2 streams and http/1.1 fallbacks share the handler.
  // It counts the requests it got in each protocol (what a proxy's leg to it spoke).
  const h2Seen = { h2: 0, http1: 0 };
  const h2Server = http2.createSecureServer({ cert, key, allowHTTP1: true, settings: { maxConcurrentStreams: 1000 } }, (req, res) => {
    if (req.httpVersionMajor === 2) h2Seen.h2++;
    else h2Seen.http1++;
    handler(req, res);
  });
  h2Server.on('sessionError', () => {});
  const plain = http.createServer((req, res) => {
    if (req.url !== '/close-idle' && req.url !== '/tls-stats' && req.url !== '/h2-stats') return handler(req, res);
    if (req.url === '/close-idle') tlsServer.closeIdleConnections();
    const body = JSON.stringify(req.url === '/h2-stats' ? h2Seen : seen);
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) }).end(body);
  });
  tune(tlsServer);
  tune(plain);
  await Promise.all([
    new Promise<void>((r) => tlsServer.listen(0, '127.0.0.1', r)),
    new Promise<void>((r) => plain.listen(0, '127.0.0.1', r)),
    new Promise<void>((r) => h2Server.listen(0, '127.0.0.1', r)),
  ]);
  const port = (s: { address(): unknown }) => (s.address() as AddressInfo).port;
  process.stdout.write(JSON.stringify({ httpsPort: port(tlsServer), h2Port: port(h2Server), httpPort: port(plain) }) + '\n');
  exitWhenStdinCloses();
}
