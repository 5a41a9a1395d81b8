// Test certificates for the bench: the cage CA (createCA, what the proxy uses to mint leaves) and a separate
// upstream CA with one EC P-256 server certificate for localhost, 127.0.0.1, bench.test, *.bench.test
// and tunnel.test.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import forge from 'node-forge';
import { createCA } from '../src/pki/ca';
import { certificateParts, derToPem, randomSerialHex, signCertificateDer } from '../src/pki/x509';

export interface BenchCerts {
  cageCaCert: string;
  cageCaKey: string;
  upstreamCaCert: string;
  upstreamCert: string;
  upstreamKey: string;
  /** floorCert/floorKey: one leaf for localhost signed by the cage CA, for the floor relay (floor.ts). */
  files: { cageCaCert: string; cageCaKey: string; upstreamCaCert: string; upstreamCert: string; upstreamKey: string; floorCert: string; floorKey: string };
}

const DAY = 24 * 3600 * 1000;

function serverCert(caCertPem: string, caKeyPem: string): { certPem: string; keyPem: string } {
  const caKey = crypto.createPrivateKey(caKeyPem);
  const caDer = new crypto.X509Certificate(caCertPem).raw;
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const cert = forge.pki.createCertificate();
  // forge needs an RSA public key object to build the TBS; the real EC SPKI replaces it when signing.
  cert.publicKey = forge.pki.setRsaPublicKey(new forge.jsbn.BigInteger('3'), new forge.jsbn.BigInteger('3'));
  cert.serialNumber = randomSerialHex();
  cert.validity.notBefore = new Date(Date.now() - DAY);
  cert.validity.notAfter = new Date(Date.now() + 30 * DAY);
  cert.setSubject([{ name: 'commonName', value: 'localhost' }]);
  cert.setIssuer([{ name: 'commonName', value: 'placeholder' }]);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', critical: true, digitalSignature: true },
    { name: 'extKeyUsage', serverAuth: true },
    {
      name: 'subjectAltName',
      altNames: [
        { type: 2, value: 'localhost' },
        { type: 2, value: 'bench.test' },
        { type: 2, value: '*.bench.test' },
        { type: 2, value: 'tunnel.test' },
        { type: 7, ip: '127.0.0.1' },
      ],
    },
  ]);
  const der = signCertificateDer(cert, caKey, {
    issuerDer: certificateParts(caDer).subjectDer,
    spkiDer: publicKey.export({ type: 'spki', format: 'der' }),
  });
  return { certPem: derToPem(der), keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
}

export function makeCerts(dir: string): BenchCerts {
  const cage = createCA({ commonName: 'Caged Agent Bench CA', days: 30 });
  const up = createCA({ commonName: 'Bench Upstream CA', days: 30 });
  const leaf = serverCert(up.certPem, up.keyPem);
  const floor = serverCert(cage.certPem, cage.keyPem);
  const files = {
    cageCaCert: path.join(dir, 'cage-ca.pem'),
    cageCaKey: path.join(dir, 'cage-ca.key'),
    upstreamCaCert: path.join(dir, 'upstream-ca.pem'),
    upstreamCert: path.join(dir, 'upstream.pem'),
    upstreamKey: path.join(dir, 'upstream.key'),
    floorCert: path.join(dir, 'floor.pem'),
    floorKey: path.join(dir, 'floor.key'),
  };
  fs.writeFileSync(files.cageCaCert, cage.certPem);
  fs.writeFileSync(files.cageCaKey, cage.keyPem, { mode: 0o600 });
  fs.writeFileSync(files.upstreamCaCert, up.certPem);
  fs.writeFileSync(files.upstreamCert, leaf.certPem);
  fs.writeFileSync(files.upstreamKey, leaf.keyPem, { mode: 0o600 });
  fs.writeFileSync(files.floorCert, floor.certPem);
  fs.writeFileSync(files.floorKey, floor.keyPem, { mode: 0o600 });
  return {
    cageCaCert: cage.certPem,
    cageCaKey: cage.keyPem,
    upstreamCaCert: up.certPem,
    upstreamCert: leaf.certPem,
    upstreamKey: leaf.keyPem,
    files,
  };
}
