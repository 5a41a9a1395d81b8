import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { createCA } from '../../src/pki/ca';
import { LeafMinter } from '../../src/pki/leaf';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'caged-pki-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

function openssl(args: string[]): string {
  return execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

test('createCA: a self-signed CA with the right extensions that OpenSSL accepts', () => {
  const t0 = Date.now();
  const ca = createCA({ commonName: 'Test Cage CA', days: 30 });
  assert.ok(Date.now() - t0 < 5000);
  const x = new crypto.X509Certificate(ca.certPem);
  assert.equal(x.ca, true);
  assert.match(x.subject, /CN=Test Cage CA/);
  assert.equal(x.subject, x.issuer);
  assert.ok(x.verify(x.publicKey), 'self-signature verifies');
  assert.equal(x.fingerprint256, ca.fingerprint256);
  assert.ok(x.checkPrivateKey(crypto.createPrivateKey(ca.keyPem)));
  assert.equal(crypto.createPrivateKey(ca.keyPem).asymmetricKeyDetails?.modulusLength, 2048);
  // Validity: from ~1 day ago, for `days`.
  const from = Date.parse(x.validFrom);
  const to = Date.parse(x.validTo);
  assert.ok(Date.now() - from > 23 * 3600e3 && Date.now() - from < 25 * 3600e3);
  assert.ok(Math.abs(to - from - 31 * 24 * 3600e3) < 120e3);

  const certFile = path.join(tmp, 'ca.pem');
  fs.writeFileSync(certFile, ca.certPem);
  assert.match(openssl(['verify', '-x509_strict', '-CAfile', certFile, certFile]), /OK/);
  const text = openssl(['x509', '-in', certFile, '-noout', '-text']);
  assert.match(text, /Basic Constraints: critical\s+CA:TRUE/);
  assert.match(text, /Key Usage: critical\s+Certificate Sign, CRL Sign/);
  // SKI = SHA-1 of the subjectPublicKey bits (the RSAPublicKey DER).
  const rsaPub = crypto.createPublicKey(ca.keyPem).export({ type: 'pkcs1', format: 'der' });
  const expected = crypto.createHash('sha1').update(rsaPub).digest('hex').toUpperCase().match(/../g)!.join(':');
  assert.match(text, new RegExp(`Subject Key Identifier:\\s+${expected}`));
});

test('createCA: serials are random, defaults apply', () => {
  const a = new crypto.X509Certificate(createCA().certPem);
  const b = new crypto.X509Certificate(createCA().certPem);
  assert.notEqual(a.serialNumber, b.serialNumber);
  assert.match(a.subject, /CN=Caged Agent CA/);
  const days = (Date.parse(a.validTo) - Date.parse(a.validFrom)) / (24 * 3600e3);
  assert.ok(Math.abs(days - 826) < 0.01);
});

test('LeafMinter: leaves for names and IPs chain to the CA under OpenSSL, fast', () => {
  const ca = createCA();
  const minter = new LeafMinter(ca.certPem, ca.keyPem);
  const caFile = path.join(tmp, 'ca2.pem');
  fs.writeFileSync(caFile, ca.certPem);
  const caX = new crypto.X509Certificate(ca.certPem);
  for (const host of ['api.example.com', '127.0.0.1', '::1', 'xn--bcher-kva.example']) {
    const leaf = minter.mint(host);
    const x = new crypto.X509Certificate(leaf.certPem);
    assert.ok(x.verify(caX.publicKey));
    assert.ok(x.checkIssued(caX));
    assert.equal(x.ca, false);
    if (host.includes('.') && !/^[\d.]+$/.test(host)) assert.equal(x.checkHost(host), host);
    else assert.ok(x.checkIP(host), `${host} in SAN`);
    const f = path.join(tmp, `leaf-${host.replace(/:/g, '_')}.pem`);
    fs.writeFileSync(f, leaf.certPem);
    assert.match(openssl(['verify', '-x509_strict', '-purpose', 'sslserver', '-CAfile', caFile, f]), /OK/);
    // The key in the leaf is the minter's shared leaf key.
    assert.ok(x.checkPrivateKey(crypto.createPrivateKey(minter.leafKeyPem)));
  }
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < 50; i++) minter.mint(`h${i}.example.com`);
  const perMintMs = Number(process.hrtime.bigint() - t0) / 50 / 1e6;
  // ~0.7 ms on an idle 2-core machine; the bound leaves room for a loaded CI box.
  assert.ok(perMintMs < 15, `mint took ${perMintMs} ms`);
});

test('LeafMinter: refuses a key that does not match the CA', () => {
  const a = createCA();
  const b = createCA();
  assert.throws(() => new LeafMinter(a.certPem, b.keyPem), /does not match/);
});
