// HTTP/2 through a host with `intercept: false`: tunnelled byte for byte, so HTTP/2 (and gRPC over it: trailers,
// many streams) works end to end there, with the host-level decision and one CONNECT event. An intercepted host
// whose upstream speaks h2 is offered h2 too, and each stream is decided on its own: h2-intercept.test.ts.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import type * as net from 'node:net';
import * as tls from 'node:tls';
import { LeafMinter } from '../../src/pki/leaf';
import { cage, connectTunnel, startTestProxy, web, type TestProxy } from './helpers';

let server: http2.Http2SecureServer;
let P: number;
let proxy: TestProxy;

before(async () => {
  const minter = new LeafMinter(web().certPem, web().keyPem);
  server = http2.createSecureServer({ key: minter.leafKeyPem, cert: minter.mint('tunnel.test').certPem, allowHTTP1: false });
  server.on('stream', (stream, headers) => {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'grpc-message': 'ok' }));
    stream.end(`h2 ${headers[':method']} ${headers[':path']}`);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  P = (server.address() as net.AddressInfo).port;
  proxy = await startTestProxy(`version: 1\nallow:\n  - host: tunnel.test:${P}\n    intercept: false\n    private: true\n  - host: api.test:${P}\n    private: true\n`);
});

after(async () => {
  await proxy.close(500);
  await new Promise<void>((r) => server.close(() => r()));
});

/** An h2 session over `CONNECT host:P`, trusting `ca`. */
async function h2Through(host: string, ca: string): Promise<{ session: http2.ClientHttp2Session; alpn: string | false }> {
  const t = await connectTunnel(proxy.address.port, `${host}:${P}`);
  assert.equal(t.status, 200);
  const sock = tls.connect({ socket: t.socket, servername: host, ca, ALPNProtocols: ['h2', 'http/1.1'] });
  await new Promise<void>((resolve, reject) => {
    sock.once('secureConnect', () => resolve());
    sock.once('error', reject);
  });
  const alpn = sock.alpnProtocol ?? false;
  return { session: http2.connect(`https://${host}:${P}`, { createConnection: () => sock }), alpn };
}

test('intercept: false carries HTTP/2 end to end: 100 concurrent streams on one connection, trailers included', async () => {
  const { session, alpn } = await h2Through('tunnel.test', web().certPem);
  assert.equal(alpn, 'h2');
  const one = (i: number) =>
    new Promise<{ body: string; trailers: http2.IncomingHttpHeaders }>((resolve, reject) => {
      const req = session.request({ ':method': 'POST', ':path': `/svc.Echo/Call${i}` });
      let body = '';
      let trailers: http2.IncomingHttpHeaders = {};
      req.setEncoding('utf8');
      req.on('data', (d) => (body += d));
      req.on('trailers', (t) => (trailers = t));
      req.on('end', () => resolve({ body, trailers }));
      req.on('error', reject);
      req.end();
    });
  const all = await Promise.all(Array.from({ length: 100 }, (_, i) => one(i)));
  all.forEach((r, i) => {
    assert.equal(r.body, `h2 POST /svc.Echo/Call${i}`);
    assert.equal(r.trailers['grpc-status'], '0');
  });
  session.close();
  const events = proxy.decisions().filter((e) => e.host === 'tunnel.test');
  assert.equal(events.length, 1, 'one CONNECT-level event for the tunnel');
  assert.equal(events[0].method, 'CONNECT');
});

test('an intercepted session whose upstream cannot be verified (its certificate names tunnel.test only) is offered http/1.1', async () => {
  const t = await connectTunnel(proxy.address.port, `api.test:${P}`);
  const sock = tls.connect({ socket: t.socket, servername: 'api.test', ca: cage().certPem, ALPNProtocols: ['h2', 'http/1.1'] });
  await new Promise<void>((resolve, reject) => {
    sock.once('secureConnect', () => resolve());
    sock.once('error', reject);
  });
  // The ALPN probe's handshake failed: nothing says the upstream speaks h2 (its request then gets the 502).
  assert.equal(sock.alpnProtocol, 'http/1.1');
  sock.destroy();
});
