// The ClientHello's offered protocols (sni.ts: ALPN, RFC 7301) from real ClientHellos, and the ALPN cache's bounds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { AlpnCache, alpnKey } from '../../src/proxy/alpn';
import { parseClientHello } from '../../src/proxy/sni';

/** The ClientHello node's TLS client sends with these options (read by a plain TCP server, never answered). */
async function hello(opts: tls.ConnectionOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer((s) => {
      let buf = Buffer.alloc(0);
      s.on('data', (d) => {
        buf = Buffer.concat([buf, d]);
        if (parseClientHello(buf).state !== 'partial') {
          resolve(buf);
          s.destroy();
          srv.close();
        }
      });
    });
    srv.listen(0, '127.0.0.1', () => {
      const c = tls.connect({ host: '127.0.0.1', port: (srv.address() as net.AddressInfo).port, ...opts });
      c.on('error', () => {});
    });
    srv.on('error', reject);
  });
}

test('ALPN and SNI are read from a ClientHello, whatever the extension order', async () => {
  const a = parseClientHello(await hello({ servername: 'h2.test', ALPNProtocols: ['h2', 'http/1.1'] }));
  assert.deepEqual(a, { state: 'ok', sni: 'h2.test', alpn: ['h2', 'http/1.1'] });
  const b = parseClientHello(await hello({ servername: 'one.test', ALPNProtocols: ['http/1.1'] }));
  assert.deepEqual(b, { state: 'ok', sni: 'one.test', alpn: ['http/1.1'] });
  const c = parseClientHello(await hello({ servername: 'none.test' }));
  assert.deepEqual(c, { state: 'ok', sni: 'none.test' });
});

test('a malformed ALPN list makes the ClientHello invalid', async () => {
  const buf = await hello({ servername: 'bad.test', ALPNProtocols: ['h2'] });
  // The list is "\x02h2": make its one name claim 9 bytes.
  const i = buf.indexOf(Buffer.from([0x02, 0x68, 0x32]));
  assert.ok(i > 0);
  const bad = Buffer.from(buf);
  bad[i] = 9;
  assert.equal(parseClientHello(bad).state, 'invalid');
});

test('the ALPN cache: entries expire, and the oldest go first past the bound', () => {
  const c = new AlpnCache(2, 1000);
  c.set(alpnKey('a.test', 443, false), 'h2', 0);
  c.set(alpnKey('b.test', 443, false), 'http/1.1', 0);
  assert.equal(c.get(alpnKey('a.test', 443, false), 10), 'h2');
  assert.equal(c.get(alpnKey('a.test', 443, true), 10), undefined, 'the address check is part of the key');
  c.set(alpnKey('c.test', 443, false), 'h2', 10);
  assert.equal(c.size, 2);
  assert.equal(c.get(alpnKey('a.test', 443, false), 10), undefined, 'the oldest stored went');
  assert.equal(c.get(alpnKey('b.test', 443, false), 999), 'http/1.1');
  assert.equal(c.get(alpnKey('b.test', 443, false), 1000), undefined, 'expired');
});
