// The one server-name rule (gate.ts sniBlock), on both paths, with real sockets: the TLS server name (SNI) must
// name the CONNECT host, whether the proxy intercepts the session or tunnels it; a ClientHello without one
// passes only for an IP-literal CONNECT. (Until issue 16 an intercepted session without SNI was served.)
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tls from 'node:tls';
import { askOn, cage, connectTunnel, startTestProxy, startUpstream, web, type TestProxy, type Upstream } from './helpers';

let up: Upstream;
let up2: Upstream;
let proxy: TestProxy;
let S: number;
let S2: number;

before(async () => {
  up = await startUpstream(true);
  up2 = await startUpstream(true);
  S = up.port;
  S2 = up2.port;
  proxy = await startTestProxy(`version: 1
allow:
  - host: tunnel.test:${S}
    intercept: false
    private: true
  - host: api.test:${S}
    private: true
  - host: 127.0.0.1:${S}
  - host: 127.0.0.1:${S2}
    intercept: false
`);
});

after(async () => {
  await proxy.close(500);
  await up.close();
  await up2.close();
});

/**
 * TLS over `CONNECT authority`, sending `servername` as the SNI ('' sends none); the certificate is checked
 * against `verifyAs` with `ca`. Resolves with the session, or with the error when the handshake fails.
 */
async function tlsVia(authority: string, servername: string, verifyAs: string, ca: string): Promise<tls.TLSSocket | Error> {
  const t = await connectTunnel(proxy.address.port, authority);
  assert.equal(t.status, 200, t.head);
  return new Promise((resolve) => {
    // An empty servername sends no SNI; the certificate is still checked, against `verifyAs`.
    const s = tls.connect({ socket: t.socket, servername, ca, ALPNProtocols: ['http/1.1'], checkServerIdentity: (_name, cert) => tls.checkServerIdentity(verifyAs, cert) });
    s.once('secureConnect', () => resolve(s));
    s.once('error', (e) => resolve(e));
    s.once('close', () => resolve(new Error('closed before the handshake completed')));
  });
}

function session(s: tls.TLSSocket | Error): tls.TLSSocket {
  if (s instanceof Error) throw s;
  return s;
}

const get = (host: string, path: string) => `GET ${path} HTTP/1.1\r\nHost: ${host}\r\n\r\n`;

describe('one server-name rule: intercepted sessions', () => {
  test('a host name without SNI is refused inside the session (403, sni-mismatch, detail no-sni)', async () => {
    const s = session(await tlsVia(`api.test:${S}`, '', 'api.test', cage().certPem));
    const r = await askOn(s, get(`api.test:${S}`, '/no-sni'));
    s.destroy();
    assert.match(r, /^HTTP\/1\.1 403 /);
    assert.match(r, /X-Caged-Agent-Block: sni-mismatch/);
    assert.match(r, /names no server \(SNI\)/);
    const e = await proxy.waitEvent((x) => x.type === 'block' && (x as { path?: string }).path === '/no-sni');
    assert.deepEqual([e.type, (e as { reason?: string }).reason, (e as { detail?: string }).detail, (e as { method?: string }).method, (e as { rule?: string }).rule], ['block', 'sni-mismatch', 'no-sni', 'GET', 'allow[1]']);
  });

  test('the CONNECT host as SNI is served; another name is refused like a tunnel refuses it', async () => {
    const ok = session(await tlsVia(`api.test:${S}`, 'api.test', 'api.test', cage().certPem));
    const r = await askOn(ok, get(`api.test:${S}`, '/with-sni'));
    ok.destroy();
    assert.match(r, /^HTTP\/1\.1 200 /);
    assert.match(r, /"url":"\/with-sni"/);

    const other = session(await tlsVia(`api.test:${S}`, 'other.test', 'api.test', cage().certPem));
    const r2 = await askOn(other, get(`api.test:${S}`, '/other-sni'));
    other.destroy();
    assert.match(r2, /^HTTP\/1\.1 403 /);
    const e = await proxy.waitEvent((x) => x.type === 'block' && (x as { path?: string }).path === '/other-sni');
    assert.deepEqual([(e as { reason?: string }).reason, (e as { detail?: string }).detail], ['sni-mismatch', 'sni-mismatch']);
  });

  test('an IP-literal CONNECT without SNI is served', async () => {
    const s = session(await tlsVia(`127.0.0.1:${S}`, '', '127.0.0.1', cage().certPem));
    const r = await askOn(s, get(`127.0.0.1:${S}`, '/literal'));
    s.destroy();
    assert.match(r, /^HTTP\/1\.1 200 /);
  });
});

describe('one server-name rule: tunnels (intercept: false)', () => {
  test('a host name without SNI is refused (the handshake never reaches the server)', async () => {
    const r = await tlsVia(`tunnel.test:${S}`, '', 'tunnel.test', web().certPem);
    assert.ok(r instanceof Error, 'the handshake must not complete');
    const e = await proxy.waitEvent((x) => x.type === 'block' && (x as { host?: string }).host === 'tunnel.test' && (x as { detail?: string }).detail === 'no-sni');
    assert.deepEqual([(e as { reason?: string }).reason, (e as { method?: string }).method, (e as { rule?: string }).rule], ['sni-mismatch', 'CONNECT', 'allow[0]']);
  });

  test('an IP-literal CONNECT without SNI is tunnelled to the server itself', async () => {
    const s = session(await tlsVia(`127.0.0.1:${S2}`, '', '127.0.0.1', web().certPem));
    const r = await askOn(s, get(`127.0.0.1:${S2}`, '/tunnelled'));
    s.destroy();
    assert.match(r, /^HTTP\/1\.1 200 /);
    assert.match(r, /"url":"\/tunnelled"/);
  });
});
