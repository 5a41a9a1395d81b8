// The hot-path shortcuts must produce exactly what the straightforward code would: event lines equal to
// JSON.stringify of the event object, leaf certificates (DER template) that OpenSSL accepts for names,
// IPv4 and IPv6 literals, and secure contexts built in separate steps that complete a real handshake.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { execFileSync } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { createCA } from '../../src/pki/ca';
import { ipv6Bytes, LeafMinter } from '../../src/pki/leaf';
import { CertCache } from '../../src/proxy/certs';
import { EventLog, jsonString } from '../../src/proxy/events';
import { startProxy } from '../../src/proxy/server';

/** The lines an EventLog writes for these decision() calls. */
async function linesOf(cases: Array<Parameters<EventLog['decision']>>): Promise<string[]> {
  const out = new PassThrough();
  const chunks: string[] = [];
  out.on('data', (d: Buffer) => chunks.push(d.toString()));
  const log = new EventLog(out);
  for (const c of cases) log.decision(...c);
  log.flush();
  await new Promise((r) => setImmediate(r));
  return chunks.join('').trim().split('\n');
}

test('event lines: the template equals JSON.stringify of the same event', async () => {
  const cases: Array<Parameters<EventLog['decision']>> = [
    ['2026-01-01T00:00:00.000Z', 'allow', 'api.example.com', 443, 'GET', '/repos/x', 'allowed', 'allow[3]', 200, 41.2, undefined],
    ['2026-01-01T00:00:00.001Z', 'block', '[::1]', 8443, 'CONNECT', '', 'private-address', null, 403, 0.05, 'loopback'],
    ['2026-01-01T00:00:00.002Z', 'block', 'h"o\\st\u0001', 80, 'PO"ST', '/p\u2028a"t\\h/\ud800x', 'bad-request', 'deny[0]', undefined, 0, 'de"tail\n'],
    ['2026-01-01T00:00:00.003Z', 'allow', 'xn--bcher-kva.example', 443, 'GET', '/ü/😀', 'upstream-error', 'allow[0]', 502, 1234.57, 'ECONNRESET'],
  ];
  const lines = await linesOf(cases);
  assert.equal(lines.length, cases.length);
  cases.forEach(([time, type, host, port, method, p, reason, rule, status, ms, detail], i) => {
    const e: Record<string, unknown> = { time, type, host, port, method, path: p, reason, rule, status, ms };
    if (detail !== undefined) e.detail = detail;
    assert.equal(lines[i], JSON.stringify(e));
    assert.deepEqual(JSON.parse(lines[i]), JSON.parse(JSON.stringify(e)));
  });
  for (const s of ['plain', 'q"', 'b\\', '\u0000', '\u001f', '\ud83d\ude00', '\udc00']) assert.equal(jsonString(s), JSON.stringify(s));
});

test('event lines with a ruleKey: the template equals JSON.stringify, the key right after the rule', async () => {
  const cases: Array<Parameters<EventLog['decision']>> = [
    ['2026-01-01T00:00:00.000Z', 'allow', 'api.example.com', 443, 'GET', '/v1/x', 'allowed', 'allow[3]', 200, 41.2, undefined, 'allow api.example.com GET,HEAD /v1/**'],
    ['2026-01-01T00:00:00.001Z', 'block', 'gist.github.com', 443, 'CONNECT', '', 'denied-by-rule', 'deny[0]', 403, 0.05, 'x', 'deny gist.github.com * *'],
    ['2026-01-01T00:00:00.002Z', 'block', 'h', 80, 'GET', '/', 'path-not-allowed', 'allow[0]', undefined, 0, undefined, 'allow h * /a"b\\c\u0001'],
  ];
  const lines = await linesOf(cases);
  assert.equal(lines.length, cases.length);
  cases.forEach(([time, type, host, port, method, p, reason, rule, status, ms, detail, ruleKey], i) => {
    const e: Record<string, unknown> = { time, type, host, port, method, path: p, reason, rule, ruleKey, status, ms };
    if (detail !== undefined) e.detail = detail;
    assert.equal(lines[i], JSON.stringify(e));
  });
  const seen: unknown[] = [];
  new EventLog(null, (e) => seen.push(e)).decision(...cases[0]);
  assert.deepEqual(seen, [{ time: cases[0][0], type: 'allow', host: 'api.example.com', port: 443, method: 'GET', path: '/v1/x', reason: 'allowed', rule: 'allow[3]', ruleKey: 'allow api.example.com GET,HEAD /v1/**', status: 200, ms: 41.2 }]);
});

test('event lines with how the request arrived (via): the template equals JSON.stringify, the field last', async () => {
  const cases: Array<Parameters<EventLog['decision']>> = [
    ['2026-01-01T00:00:00.000Z', 'block', 'db.example', 5432, 'TCP', '', 'no-matching-rule', null, undefined, 0.1, undefined, undefined, false, 'tcp'],
    ['2026-01-01T00:00:00.001Z', 'allow', 'api.example', 443, 'GET', '/x', 'allowed', 'allow[0]', 200, 2, undefined, 'allow api.example * *', true, 'transparent'],
    ['2026-01-01T00:00:00.002Z', 'allow', 'api.example', 443, 'GET', '/x', 'allowed', 'allow[0]', 200, 2, undefined, 'allow api.example * *', false, undefined],
  ];
  const lines = await linesOf(cases);
  cases.forEach(([time, type, host, port, method, p, reason, rule, status, ms, detail, ruleKey, probe, via], i) => {
    const e: Record<string, unknown> = { time, type, host, port, method, path: p, reason, rule, ruleKey, status, ms, detail };
    if (probe) e.probe = true;
    if (via) e.via = via;
    assert.equal(lines[i], JSON.stringify(e));
  });
  const seen: Array<{ via?: string }> = [];
  new EventLog(null, (e) => seen.push(e as { via?: string })).decision(...cases[0]);
  assert.equal(seen[0].via, 'tcp');
});

test('event objects still reach an in-process listener', () => {
  const seen: unknown[] = [];
  const log = new EventLog(null, (e) => seen.push(e));
  log.decision('t', 'allow', 'h', 1, 'GET', '/', 'allowed', 'allow[0]', 200, 1, undefined);
  assert.deepEqual(seen, [{ time: 't', type: 'allow', host: 'h', port: 1, method: 'GET', path: '/', reason: 'allowed', rule: 'allow[0]', status: 200, ms: 1 }]);
});

test('ipv6Bytes encodes every IPv6 form', () => {
  const hexOf = (s: string) => ipv6Bytes(s)?.toString('hex');
  assert.equal(hexOf('::1'), '00000000000000000000000000000001');
  assert.equal(hexOf('::'), '00000000000000000000000000000000');
  assert.equal(hexOf('2001:db8::8a2e:370:7334'), '20010db80000000000008a2e03707334');
  assert.equal(hexOf('fe80::'), 'fe800000000000000000000000000000');
  assert.equal(hexOf('1:2:3:4:5:6:7:8'), '00010002000300040005000600070008');
  assert.equal(hexOf('::ffff:192.0.2.1'), '00000000000000000000ffffc0000201');
  assert.equal(hexOf('64:ff9b::10.1.2.3'), '0064ff9b00000000000000000a010203');
  assert.equal(ipv6Bytes('1.2.3.4'), undefined);
  assert.equal(ipv6Bytes('not-an-ip'), undefined);
});

test('template leaves: OpenSSL accepts them for names, IPv4 and IPv6 (strict), and the fields are right', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'caged-fast-'));
  try {
    const ca = createCA();
    const minter = new LeafMinter(ca.certPem, ca.keyPem);
    const caFile = path.join(tmp, 'ca.pem');
    fs.writeFileSync(caFile, ca.certPem);
    const caX = new crypto.X509Certificate(ca.certPem);
    const long = 'a'.repeat(60) + '.' + 'b'.repeat(60) + '.example.com';
    for (const host of ['api.example.com', '10.1.2.3', '2001:db8::1', '::ffff:192.0.2.1', long]) {
      const leaf = minter.mint(host);
      const x = new crypto.X509Certificate(leaf.certPem);
      assert.ok(x.verify(caX.publicKey) && x.checkIssued(caX), host);
      if (net.isIP(host)) assert.ok(x.checkIP(host), `${host} in SAN`);
      else assert.equal(x.checkHost(host), host);
      assert.equal(x.ca, false);
      assert.equal(x.issuer, caX.subject);
      assert.match(x.subject, new RegExp(`CN=${host.slice(0, 64).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
      const from = Date.parse(x.validFrom);
      assert.ok(Date.now() - from > 23 * 3600e3 && Date.now() - from < 25 * 3600e3);
      const f = path.join(tmp, 'leaf.pem');
      fs.writeFileSync(f, leaf.certPem);
      assert.match(execFileSync('openssl', ['verify', '-x509_strict', '-purpose', 'sslserver', '-CAfile', caFile, f], { encoding: 'utf8' }), /OK/);
      const text = execFileSync('openssl', ['x509', '-in', f, '-noout', '-text'], { encoding: 'utf8' });
      assert.match(text, /Key Usage: critical\s+Digital Signature/);
      assert.match(text, /Extended Key Usage:\s+TLS Web Server Authentication/);
      assert.match(text, /Authority Key Identifier/);
      assert.match(text, /Version: 3/);
    }
    // Serial numbers differ.
    assert.notEqual(new crypto.X509Certificate(minter.mint('a.example').certPem).serialNumber, new crypto.X509Certificate(minter.mint('a.example').certPem).serialNumber);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test('CertCache builds contexts in separate steps; a real handshake succeeds with them', async () => {
  const ca = createCA();
  const cache = new CertCache(new LeafMinter(ca.certPem, ca.keyPem), 10);
  const steps: string[] = [];
  cache.tracer = { begin: (s) => steps.push(`+${s}`), end: (s) => steps.push(`-${s}`) };
  const p1 = cache.get('one.example');
  const p2 = cache.get('one.example');
  assert.ok(p1 instanceof Promise);
  assert.equal(p1, p2, 'concurrent gets share one mint');
  const ctx = await p1;
  assert.equal(cache.get('one.example'), ctx, 'cached');
  assert.equal(cache.split, true, 'this Node exposes the native setters (the split path is in use)');
  assert.deepEqual(steps, ['+template', '-template', '+assemble', '-assemble', '+context', '-context', '+cert', '-cert', '+key', '-key']);
  const server = net.createServer((sock) => {
    const t = new tls.TLSSocket(sock, { isServer: true, secureContext: ctx });
    t.on('error', () => {});
    t.on('secure', () => t.end('hello'));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const port = (server.address() as net.AddressInfo).port;
    const got = await new Promise<string>((resolve, reject) => {
      const c = tls.connect({ host: '127.0.0.1', port, servername: 'one.example', ca: ca.certPem }, () => {
        let s = '';
        c.on('data', (d) => (s += d));
        c.on('end', () => resolve(s));
      });
      c.on('error', reject);
    });
    assert.equal(got, 'hello');
  } finally {
    server.close();
  }
});

test('a keep-alive client repeating one request sees a reload at once (memoised decisions start over)', async () => {
  const upstream = http.createServer((_req, res) => res.end('ok'));
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const upPort = (upstream.address() as net.AddressInfo).port;
  const ca = createCA();
  const deny = `version: 1\nallow:\n  - host: other.invalid\n`;
  const allow = `version: 1\nallow:\n  - host: localhost:${upPort}\n    private: true\n`;
  const proxy = await startProxy({ policyText: deny, caCertPem: ca.certPem, caKeyPem: ca.keyPem, events: null, resolver: async () => [{ address: '127.0.0.1', family: 4 }] });
  const sock = net.connect(proxy.address.port, '127.0.0.1');
  let buf = '';
  sock.on('data', (d) => (buf += d.toString('latin1')));
  const ask = async (): Promise<number> => {
    buf = '';
    sock.write(`GET http://localhost:${upPort}/x HTTP/1.1\r\nHost: localhost:${upPort}\r\n\r\n`);
    for (let i = 0; i < 200; i++) {
      const m = /^HTTP\/1\.1 (\d{3})[\s\S]*?\r\n\r\n/.exec(buf);
      const len = /content-length: (\d+)/i.exec(buf);
      if (m && len && buf.length >= m[0].length + Number(len[1])) return Number(m[1]);
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`no response: ${buf}`);
  };
  try {
    assert.equal(await ask(), 403);
    assert.equal(await ask(), 403);
    assert.equal(proxy.reload(allow).ok, true);
    assert.equal(await ask(), 200);
    assert.equal(proxy.reload(deny).ok, true);
    assert.equal(await ask(), 403);
  } finally {
    sock.destroy();
    await proxy.close(100);
    upstream.close();
  }
});
