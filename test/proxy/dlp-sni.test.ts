// The data-loss patterns and the ClientHello SNI reader, on their own.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { DLP_PATTERN_NAMES, findSecret, findSecretInBuffer } from '../../src/proxy/dlp';
import { parseClientHello } from '../../src/proxy/sni';

describe('data-loss patterns', () => {
  // Assembled at run time so this file itself does not look like it leaks credentials.
  const j = (...p: string[]) => p.join('');
  const hits: Array<[string, string]> = [
    ['aws-access-key-id', j('AKIA', 'Z7ABCDEFGHIJKLMN')],
    ['aws-access-key-id', j('ASIA', 'Z7ABCDEFGHIJKLMN')],
    ['github-token', j('ghp_', 'a'.repeat(36))],
    ['github-token', j('gho_', 'B1'.repeat(18))],
    ['github-token', j('ghs_', 'c'.repeat(36))],
    ['github-fine-grained-pat', j('github_pat_', '11ABCDEFG0', 'x'.repeat(72))],
    ['gitlab-token', j('glpat-', 'abcdefghij0123456789')],
    ['slack-token', j('xoxb-', '1234567890-abcdefghij')],
    ['anthropic-api-key', j('sk-ant-', 'api03-', 'A'.repeat(40))],
    ['openai-api-key', j('sk-proj-', 'Ab9_'.repeat(12))],
    ['openai-api-key', j('sk-', 'a'.repeat(20), 'T3BlbkFJ', 'b'.repeat(20))],
    ['google-api-key', j('AIza', 'S'.repeat(35))],
    ['stripe-secret-key', j('sk_live_', '4eC39HqLyjWDarjtT1zdp7dc')],
    ['private-key-block', j('-----BEGIN ', 'RSA PRIVATE KEY-----')],
    ['private-key-block', j('-----BEGIN ', 'PRIVATE KEY-----')],
    ['private-key-block', j('-----BEGIN ', 'OPENSSH PRIVATE KEY-----')],
  ];
  for (const [name, secret] of hits) {
    test(`finds ${name} (${secret.slice(0, 8)}...)`, () => {
      assert.equal(findSecret(`GET /x?key=${secret}&y=1`), name);
      assert.equal(findSecretInBuffer(Buffer.from(`{"token":"${secret}"}`)), name);
    });
  }

  test('every pattern has a test', () => {
    assert.deepEqual([...new Set(hits.map((h) => h[0]))].sort(), [...DLP_PATTERN_NAMES].sort());
  });

  test('ordinary traffic passes', () => {
    for (const s of [
      'GET /repos/octocat/hello-world/contents/README.md',
      'Authorization: Bearer not-a-known-format-token-1234567890',
      'sk-learn-is-a-package-name and task-ant-colony',
      'AKIA is a prefix; AKIA1234 is too short',
      'ghp_short',
      '-----BEGIN CERTIFICATE-----\nMIIB...\n-----END CERTIFICATE-----',
      'User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36',
      'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.abc', // JWTs are not scanned (too noisy)
    ]) {
      assert.equal(findSecret(s), undefined, s);
    }
  });
});

describe('ClientHello SNI', () => {
  /** Captures the first bytes a real Node TLS client sends. */
  function captureHello(opts: tls.ConnectionOptions): Promise<Buffer> {
    return new Promise((resolve) => {
      const server = net.createServer((s) => {
        s.once('data', (d) => {
          resolve(d);
          s.destroy();
          server.close();
        });
      });
      server.listen(0, '127.0.0.1', () => {
        const c = tls.connect({ port: (server.address() as net.AddressInfo).port, host: '127.0.0.1', rejectUnauthorized: false, ...opts });
        c.on('error', () => undefined);
      });
    });
  }

  test('reads the server name, across fragments', async () => {
    const hello = await captureHello({ servername: 'api.example.test' });
    assert.deepEqual(parseClientHello(hello), { state: 'ok', sni: 'api.example.test' });
    assert.deepEqual(parseClientHello(hello.subarray(0, 3)), { state: 'partial' });
    assert.deepEqual(parseClientHello(hello.subarray(0, hello.length - 1)), { state: 'partial' });
    // The same handshake split over two TLS records.
    const body = hello.subarray(5);
    const cut = 40;
    const rec = (b: Buffer) => Buffer.concat([Buffer.from([0x16, 0x03, 0x01, b.length >> 8, b.length & 255]), b]);
    const two = Buffer.concat([rec(body.subarray(0, cut)), rec(body.subarray(cut))]);
    assert.deepEqual(parseClientHello(two), { state: 'ok', sni: 'api.example.test' });
  });

  test('no SNI, not TLS, and garbage', async () => {
    const noSni = await captureHello({});
    assert.deepEqual(parseClientHello(noSni), { state: 'ok' });
    assert.deepEqual(parseClientHello(Buffer.from('GET / HTTP/1.1\r\n')), { state: 'not-tls' });
    assert.equal(parseClientHello(Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05, 0x02, 0, 0, 1, 0])).state, 'invalid');
    assert.equal(parseClientHello(Buffer.from([0x16, 0x03, 0x01, 0x00, 0x00])).state, 'invalid');
  });
});
