// The cage certificate authority: an RSA-2048 key made by Node's crypto (fast, native) and a self-signed
// X.509 certificate assembled with node-forge whose TBS bytes are signed natively with node:crypto.
import * as crypto from 'node:crypto';
import forge from 'node-forge';
import { derToPem, randomSerialHex, signCertificateDer } from './x509';

export interface CreateCAOptions {
  /** Subject/issuer common name. Default "Caged Agent CA". */
  commonName?: string;
  /** Validity in days from one day ago. Default 825. */
  days?: number;
}

export interface CreatedCA {
  certPem: string;
  /** PKCS#8 PEM of the CA private key. A secret: never log it. */
  keyPem: string;
  /** SHA-256 fingerprint as OpenSSL prints it ("AB:CD:..."). */
  fingerprint256: string;
}

const DAY = 24 * 3600 * 1000;

export function createCA(opts: CreateCAOptions = {}): CreatedCA {
  const commonName = opts.commonName ?? 'Caged Agent CA';
  const days = opts.days ?? 825;
  const { publicKey, privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });

  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }).toString());
  cert.serialNumber = randomSerialHex();
  const now = Date.now();
  cert.validity.notBefore = new Date(now - DAY);
  cert.validity.notAfter = new Date(now + days * DAY);
  const attrs = [
    { name: 'commonName', value: commonName },
    { name: 'organizationName', value: 'Caged Agent' },
  ];
  cert.setSubject(attrs);
  cert.setIssuer(attrs);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    // forge computes this as SHA-1 over the subjectPublicKey bits: the value leaf AKIs carry.
    { name: 'subjectKeyIdentifier' },
  ]);
  const certPem = derToPem(signCertificateDer(cert, privateKey));
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const fingerprint256 = new crypto.X509Certificate(certPem).fingerprint256;
  return { certPem, keyPem, fingerprint256 };
}

export { randomSerialHex, subjectKeyIdFromSpki } from './x509';
