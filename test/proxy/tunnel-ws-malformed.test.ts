// Tunnels (intercept: false) with the SNI check, WebSockets, upstream-proxy chaining and malformed input.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as net from 'node:net';
import * as tls from 'node:tls';
import WebSocket from 'ws';
import { cage, connectTunnel, curl, rawExchange, startTestProxy, startUpstream, web, type EchoReply, type TestProxy, type Upstream } from './helpers';

let plain: Upstream;
let secure: Upstream;
let proxy: TestProxy;
let H: number;
let S: number;

before(async () => {
  plain = await startUpstream(false);
  secure = await startUpstream(true);
  H = plain.port;
  S = secure.port;
  proxy = await startTestProxy(`version: 1
allow:
  - host: tunnel.test:${S}
    intercept: false               # tunnelled: the agent sees the upstream's own certificate
    private: true                  # the test upstream lives on 127.0.0.1
  - host: localhost:${S}
    intercept: false               # tunnelled but NOT opted in to private addresses
  - host: ws.test:${S}
    private: true
  - host: ws.test:${H}
    private: true
  - host: api.test:${S}
    private: true
  - host: api.test:${H}
    private: true
`);
});

after(async () => {
  await proxy.close(500);
  await plain.close();
  await secure.close();
});

describe('tunnels (intercept: false)', () => {
  test('curl sees the upstream certificate, not the cage CA', async () => {
    // Trusting only the cage CA fails: the proxy does not intercept this host.
    const noTrust = await curl(proxy.url, `https://tunnel.test:${S}/t`);
    assert.notEqual(noTrust.code, 0);
    const r = await curl(proxy.url, `https://tunnel.test:${S}/t`, ['--cacert', web().certFile]);
    assert.equal(r.status, 200, r.stderr);
    assert.equal((JSON.parse(r.body) as EchoReply).url, '/t');
    const e = proxy.decisions().filter((d) => d.host === 'tunnel.test').at(-1)!;
    assert.deepEqual([e.type, e.method, e.path, e.rule, e.status], ['allow', 'CONNECT', '', 'allow[0]', 200]);
  });

  test('SNI different from the CONNECT host is blocked (no domain fronting)', async () => {
    const t = await connectTunnel(proxy.address.port, `tunnel.test:${S}`);
    assert.equal(t.status, 200);
    const err = await new Promise<Error | undefined>((resolve) => {
      const s = tls.connect({ socket: t.socket, servername: 'other.test', ca: web().certPem });
      s.once('secureConnect', () => resolve(undefined));
      s.once('error', (e) => resolve(e));
      s.once('close', () => resolve(new Error('closed')));
    });
    assert.ok(err, 'the handshake must not complete');
    const e = await proxy.waitEvent((x) => x.type === 'block' && x.reason === 'sni-mismatch');
    assert.equal((e as { detail?: string }).detail, 'sni-mismatch');
  });

  test('non-TLS bytes in a tunnel are refused', async () => {
    const t = await connectTunnel(proxy.address.port, `tunnel.test:${S}`);
    const out = await new Promise<string>((resolve) => {
      let got = '';
      t.socket.on('data', (d) => (got += d));
      t.socket.on('close', () => resolve(got));
      t.socket.resume();
      t.socket.write('GET / HTTP/1.1\r\nHost: evil.test\r\n\r\n');
    });
    assert.equal(out, '');
    await proxy.waitEvent((x) => x.type === 'block' && x.reason === 'sni-mismatch' && (x as { detail?: string }).detail === 'not-tls');
  });

  test('a tunnelled host resolving to loopback without private: true is refused at CONNECT', async () => {
    const t = await connectTunnel(proxy.address.port, `localhost:${S}`);
    assert.equal(t.status, 403);
    assert.match(t.head, /X-Caged-Agent-Block: private-address/);
    t.socket.destroy();
  });
});

describe('WebSockets', () => {
  test('wss:// through CONNECT, intercepted, after the policy check', async () => {
    const t = await connectTunnel(proxy.address.port, `ws.test:${S}`);
    const tlsSock = tls.connect({ socket: t.socket, servername: 'ws.test', ca: cage().certPem });
    const ws = new WebSocket(`wss://ws.test:${S}/chat?room=1`, { createConnection: () => tlsSock } as WebSocket.ClientOptions);
    const reply = await new Promise<string>((resolve, reject) => {
      ws.on('open', () => ws.send('hello'));
      ws.on('message', (m) => resolve(m.toString()));
      ws.on('error', reject);
    });
    assert.equal(reply, 'echo:hello:/chat?room=1');
    ws.close();
    const e = proxy.decisions().filter((d) => d.host === 'ws.test').at(-1)!;
    assert.deepEqual([e.type, e.path, e.status], ['allow', '/chat', 101]);
  });

  test('ws:// absolute-form upgrade through the proxy', async () => {
    const s = net.connect(proxy.address.port, '127.0.0.1');
    const key = crypto.randomBytes(16).toString('base64');
    s.write(`GET http://ws.test:${H}/plain HTTP/1.1\r\nHost: ws.test:${H}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${key}\r\n\r\n`);
    const head = await new Promise<string>((resolve) => {
      let got = '';
      s.on('data', (d) => {
        got += d.toString('latin1');
        if (got.includes('\r\n\r\n')) resolve(got);
      });
    });
    s.destroy();
    assert.match(head, /^HTTP\/1\.1 101/);
    const accept = crypto.createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
    assert.match(head, new RegExp(`Sec-WebSocket-Accept: ${accept.replace(/[+/]/g, '\\$&')}`, 'i'));
  });

  test('a WebSocket to a host without a rule is refused before any upgrade', async () => {
    const t = await connectTunnel(proxy.address.port, `nows.test:${S}`);
    const tlsSock = tls.connect({ socket: t.socket, servername: 'nows.test', ca: cage().certPem });
    const ws = new WebSocket(`wss://nows.test:${S}/`, { createConnection: () => tlsSock } as WebSocket.ClientOptions);
    const status = await new Promise<number>((resolve) => {
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('error', () => resolve(-1));
    });
    assert.equal(status, 403);
  });
});

describe('upstream proxy chaining', () => {
  test('--upstream-proxy: HTTP and HTTPS go through the next proxy', async () => {
    const front = await startTestProxy(`version: 1\nallow:\n  - host: api.test:${S}\n    private: true\n  - host: api.test:${H}\n    private: true\n`, {
      upstreamProxy: proxy.url,
      // The next proxy intercepts with the cage CA too, so the front proxy must trust it upstream.
      upstreamCaPem: web().certPem + cage().certPem,
    });
    try {
      const before = proxy.decisions().length;
      const r = await curl(front.url, `https://api.test:${S}/chained`);
      assert.equal(r.status, 200, r.stderr + r.body);
      const r2 = await curl(front.url, `http://api.test:${H}/chained-plain`);
      assert.equal(r2.status, 200, r2.stderr + r2.body);
      const seen = proxy.decisions().slice(before);
      assert.ok(seen.some((d) => d.method === 'CONNECT' || d.path === '/chained'), 'the next proxy saw the HTTPS request');
      assert.ok(seen.some((d) => d.path === '/chained-plain'), 'the next proxy saw the HTTP request');
    } finally {
      await front.close(200);
    }
  });
});

describe('malformed requests', () => {
  test('a bad CONNECT line gets 400 and the proxy keeps serving', async () => {
    const out = await rawExchange(proxy.address.port, 'CONNECT not a target HTTP/1.1\r\n\r\n');
    assert.match(out, /^HTTP\/1\.1 400/);
    const out2 = await rawExchange(proxy.address.port, 'CONNECT nohostport HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.match(out2, /^HTTP\/1\.1 400/);
    const out3 = await rawExchange(proxy.address.port, 'CONNECT user@api.test:443 HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.match(out3, /^HTTP\/1\.1 400/);
    const ok = await curl(proxy.url, `https://api.test:${S}/after-bad-connect`);
    assert.equal(ok.status, 200);
  });

  test('oversized headers get 431', async () => {
    const out = await rawExchange(proxy.address.port, `GET http://api.test:${H}/ HTTP/1.1\r\nHost: api.test:${H}\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n\r\n`);
    assert.match(out, /^HTTP\/1\.1 431/);
    const ok = await curl(proxy.url, `http://api.test:${H}/after-big`);
    assert.equal(ok.status, 200);
  });

  test('garbage instead of TLS after CONNECT is dropped', async () => {
    const t = await connectTunnel(proxy.address.port, `api.test:${S}`);
    assert.equal(t.status, 200);
    const closed = await new Promise<boolean>((resolve) => {
      t.socket.on('close', () => resolve(true));
      t.socket.on('error', () => undefined);
      t.socket.resume();
      t.socket.write(Buffer.from([0x00, 0xff, 0x13, 0x37, 0x42, 0x00, 0x00]));
      setTimeout(() => resolve(false), 3000);
    });
    assert.ok(closed);
    const t2 = await connectTunnel(proxy.address.port, `api.test:${S}`);
    const closed2 = await new Promise<boolean>((resolve) => {
      t2.socket.on('close', () => resolve(true));
      t2.socket.on('error', () => undefined);
      t2.socket.resume();
      // Looks like a TLS record header, then junk.
      t2.socket.write(Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x00, 0x20]), crypto.randomBytes(32)]));
      setTimeout(() => resolve(false), 3000);
    });
    assert.ok(closed2);
    const ok = await curl(proxy.url, `https://api.test:${S}/after-garbage`);
    assert.equal(ok.status, 200);
  });

  test('a malformed request line and a non-proxy request', async () => {
    const out = await rawExchange(proxy.address.port, 'THIS IS NOT HTTP\r\n\r\n');
    assert.match(out, /^HTTP\/1\.1 400/);
    const out2 = await rawExchange(proxy.address.port, 'GET /just/a/path HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.match(out2, /^HTTP\/1\.1 400/);
    assert.match(out2, /egress proxy/);
    const ok = await curl(proxy.url, `http://api.test:${H}/after-junk`);
    assert.equal(ok.status, 200);
  });
});
