// Small X.509 helpers shared by the CA and the leaf minter: forge builds the TBSCertificate, Node's
// crypto signs its DER bytes (native speed, never forge's pure-JS RSA), and we assemble the final DER.
import * as crypto from 'node:crypto';
import forge from 'node-forge';

const asn1 = forge.asn1;
const OID_SHA256_RSA = '1.2.840.113549.1.1.11';
const OID_ECDSA_SHA256 = '1.2.840.10045.4.3.2';

/** A random positive 16-byte serial number, hex. */
export function randomSerialHex(): string {
  const b = crypto.randomBytes(16);
  b[0] = (b[0] & 0x7f) | 0x01; // positive, and no leading zero byte to strip
  return b.toString('hex');
}

function derToAsn1(der: Buffer): forge.asn1.Asn1 {
  return asn1.fromDer(forge.util.createBuffer(der.toString('binary')));
}

/** SHA-1 of the subjectPublicKey BIT STRING contents (RFC 5280 4.2.1.2 method 1), from an SPKI DER. */
export function subjectKeyIdFromSpki(spkiDer: Buffer): Buffer {
  const spki = derToAsn1(spkiDer);
  const bitString = (spki.value as forge.asn1.Asn1[])[1];
  const bits = Buffer.from(bitString.value as string, 'binary').subarray(1); // drop the "unused bits" byte
  return crypto.createHash('sha1').update(bits).digest();
}

function algorithmIdentifier(key: crypto.KeyObject): forge.asn1.Asn1 {
  if (key.asymmetricKeyType === 'rsa') {
    return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
      asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(OID_SHA256_RSA).getBytes()),
      asn1.create(asn1.Class.UNIVERSAL, asn1.Type.NULL, false, ''),
    ]);
  }
  if (key.asymmetricKeyType === 'ec') {
    return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
      asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(OID_ECDSA_SHA256).getBytes()),
    ]);
  }
  throw new Error(`unsupported issuer key type: ${key.asymmetricKeyType}`);
}

export interface TbsOverrides {
  /** Raw DER of the issuer Name (copied byte for byte from the CA certificate). */
  issuerDer?: Buffer;
  /** Raw DER of the subjectPublicKeyInfo (lets us certify EC keys, which forge cannot encode). */
  spkiDer?: Buffer;
}

/** The DER bytes of a certificate's TBS, ready to be signed (forge does the X.509 encoding). */
export function buildTbs(cert: forge.pki.Certificate, issuerKey: crypto.KeyObject, o: TbsOverrides = {}): { tbs: forge.asn1.Asn1; der: Buffer } {
  cert.siginfo.algorithmOid = forge.pki.oids.sha256WithRSAEncryption;
  const tbs = (forge.pki as unknown as { getTBSCertificate(c: forge.pki.Certificate): forge.asn1.Asn1 }).getTBSCertificate(cert);
  const parts = tbs.value as forge.asn1.Asn1[];
  parts[2] = algorithmIdentifier(issuerKey);
  if (o.issuerDer) parts[3] = derToAsn1(o.issuerDer);
  if (o.spkiDer) parts[6] = derToAsn1(o.spkiDer);
  return { tbs, der: Buffer.from(asn1.toDer(tbs).getBytes(), 'binary') };
}

/** Certificate DER from a TBS and its signature. */
export function assembleCertificate(tbs: forge.asn1.Asn1, issuerKey: crypto.KeyObject, sig: Buffer): Buffer {
  const certAsn1 = asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
    tbs,
    algorithmIdentifier(issuerKey),
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BITSTRING, false, '\u0000' + sig.toString('binary')),
  ]);
  return Buffer.from(asn1.toDer(certAsn1).getBytes(), 'binary');
}

/**
 * Builds the TBS of a forge certificate (its publicKey may be a placeholder when spkiDer is given),
 * signs it with `issuerKey` via node:crypto and returns the certificate DER.
 */
export function signCertificateDer(cert: forge.pki.Certificate, issuerKey: crypto.KeyObject, o: TbsOverrides = {}): Buffer {
  const { tbs, der } = buildTbs(cert, issuerKey, o);
  return assembleCertificate(tbs, issuerKey, crypto.sign('sha256', der, issuerKey));
}

export function derToPem(der: Buffer, label = 'CERTIFICATE'): string {
  const b64 = der.toString('base64');
  let out = `-----BEGIN ${label}-----\n`;
  for (let i = 0; i < b64.length; i += 64) out += b64.slice(i, i + 64) + '\n';
  return out + `-----END ${label}-----\n`;
}

/** Raw DER pieces of a certificate we need when issuing under it (works for any key type). */
export function certificateParts(certDer: Buffer): { subjectDer: Buffer; spkiDer: Buffer } {
  const cert = derToAsn1(certDer);
  const tbs = (cert.value as forge.asn1.Asn1[])[0];
  const parts = tbs.value as forge.asn1.Asn1[];
  // Without an explicit [0] version (v1), everything shifts by one.
  const off = parts[0].tagClass === asn1.Class.CONTEXT_SPECIFIC ? 0 : -1;
  const subject = parts[5 + off];
  const spki = parts[6 + off];
  return {
    subjectDer: Buffer.from(asn1.toDer(subject).getBytes(), 'binary'),
    spkiDer: Buffer.from(asn1.toDer(spki).getBytes(), 'binary'),
  };
}
