// Leaf certificates for intercepted hosts, minted on the fly under the cage CA. One leaf key (EC P-256 by
// default, generated once) serves every host; per host we only build a TBS with forge and sign it natively
// (~1 ms), so minting never needs key generation on the hot path.
import * as crypto from 'node:crypto';
import * as net from 'node:net';
import forge from 'node-forge';
import { assembleCertificate, buildTbs, certificateParts, derToPem, randomSerialHex, signCertificateDer, subjectKeyIdFromSpki } from './x509';

const DAY = 24 * 3600 * 1000;

export interface LeafMinterOptions {
  /** The leaf key shared by all minted certificates. Default: a fresh EC P-256 key. */
  leafKey?: crypto.KeyObject;
  /** Leaf validity in days (capped at the CA's notAfter). Default 365. */
  days?: number;
}

export interface MintedLeaf {
  certPem: string;
  certDer: Buffer;
}

export class LeafMinter {
  readonly leafKeyPem: string;
  private readonly caKey: crypto.KeyObject;
  private readonly caSubjectDer: Buffer;
  private readonly caSkiBinary: string;
  private readonly caNotAfter: number;
  private readonly leafSpkiDer: Buffer;
  private readonly leafIsRsa: boolean;
  private readonly placeholderKey: forge.pki.PublicKey;
  private readonly days: number;

  constructor(caCertPem: string, caKeyPem: string, opts: LeafMinterOptions = {}) {
    const caX509 = new crypto.X509Certificate(caCertPem);
    this.caKey = crypto.createPrivateKey(caKeyPem);
    if (!caX509.checkPrivateKey(this.caKey)) throw new Error('the CA key does not match the CA certificate');
    if (!caX509.ca) throw new Error('the CA certificate is not a CA (basicConstraints CA:true missing)');
    const parts = certificateParts(caX509.raw);
    this.caSubjectDer = parts.subjectDer;
    // Use the CA's own SKI when present so OpenSSL's AKI/SKI matching always lines up.
    const skiExt = readSubjectKeyId(caCertPem);
    this.caSkiBinary = (skiExt ?? subjectKeyIdFromSpki(parts.spkiDer)).toString('binary');
    this.caNotAfter = Date.parse(caX509.validTo);
    const leafKey = opts.leafKey ?? crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
    this.leafIsRsa = leafKey.asymmetricKeyType === 'rsa';
    this.leafKeyPem = leafKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    this.leafSpkiDer = crypto.createPublicKey(leafKey).export({ type: 'spki', format: 'der' });
    // forge insists on an RSA public key to build a TBS; the real SPKI replaces it before signing.
    this.placeholderKey = forge.pki.setRsaPublicKey(new forge.jsbn.BigInteger('3'), new forge.jsbn.BigInteger('3'));
    this.days = opts.days ?? 365;
  }

  /** Mints a certificate for one host name or IP literal (IPv6 without brackets). Synchronous (~1 ms). */
  mint(host: string): MintedLeaf {
    const certDer = signCertificateDer(this.leafCert(host), this.caKey, { issuerDer: this.caSubjectDer, spkiDer: this.leafSpkiDer });
    return { certDer, certPem: derToPem(certDer) };
  }

  /**
   * The same, with the RSA signature computed on libuv's thread pool: the event loop only builds the TBS
   * (well under a millisecond), so minting never stalls other connections.
   */
  mintAsync(host: string): Promise<MintedLeaf> {
    return new Promise((resolve, reject) => {
      const { tbs, der } = buildTbs(this.leafCert(host), this.caKey, { issuerDer: this.caSubjectDer, spkiDer: this.leafSpkiDer });
      crypto.sign('sha256', der, this.caKey, (err, sig) => {
        if (err) return reject(err);
        try {
          const certDer = assembleCertificate(tbs, this.caKey, sig);
          resolve({ certDer, certPem: derToPem(certDer) });
        } catch (e) {
          reject(e);
        }
      });
    });
  }

  private leafCert(host: string): forge.pki.Certificate {
    const cert = forge.pki.createCertificate();
    cert.publicKey = this.placeholderKey;
    cert.serialNumber = randomSerialHex();
    const now = Date.now();
    cert.validity.notBefore = new Date(now - DAY);
    cert.validity.notAfter = new Date(Math.min(now + this.days * DAY, this.caNotAfter));
    const ipFamily = net.isIP(host);
    const cn = host.length <= 64 ? host : host.slice(0, 64);
    cert.setSubject([{ name: 'commonName', value: cn }]);
    cert.setIssuer([{ name: 'commonName', value: 'placeholder' }]); // replaced by the CA subject DER
    cert.setExtensions([
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', critical: true, digitalSignature: true, keyEncipherment: this.leafIsRsa },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: [ipFamily ? { type: 7, ip: host } : { type: 2, value: host }] },
      { name: 'authorityKeyIdentifier', keyIdentifier: this.caSkiBinary },
    ]);
    return cert;
  }
}

function readSubjectKeyId(certPem: string): Buffer | undefined {
  try {
    const c = forge.pki.certificateFromPem(certPem);
    const ext = c.getExtension('subjectKeyIdentifier') as { subjectKeyIdentifier?: string } | null;
    if (ext?.subjectKeyIdentifier) return Buffer.from(ext.subjectKeyIdentifier, 'hex');
  } catch {
    // forge cannot parse non-RSA certificates; fall back to computing the key id.
  }
  return undefined;
}
