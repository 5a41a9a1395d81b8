// Leaf certificates for intercepted hosts, minted on the fly under the cage CA. One leaf key (EC P-256 by
// default, generated once) serves every host. Per host we only fill a precomputed DER template (serial,
// validity, CN, SAN: a few Buffer.concat calls, a few microseconds) and sign it natively, so minting never
// needs key generation or an ASN.1 library on the hot path.
import * as crypto from 'node:crypto';
import * as net from 'node:net';
import forge from 'node-forge';
import { certificateParts, derToPem, subjectKeyIdFromSpki } from './x509';

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

// ---------------------------------------------------------------- minimal DER encoding

function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  if (n < 0x100) return Buffer.from([0x81, n]);
  if (n < 0x10000) return Buffer.from([0x82, n >> 8, n & 0xff]);
  return Buffer.from([0x83, n >> 16, (n >> 8) & 0xff, n & 0xff]);
}

/** A DER TLV. */
function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = content.length === 1 ? content[0] : Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), derLength(body.length), body]);
}

const SEQ = 0x30;
const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const OID_CN = hex('06 03 55 04 03');
const OID_SHA256_RSA = hex('06 09 2a 86 48 86 f7 0d 01 01 0b');
const OID_ECDSA_SHA256 = hex('06 08 2a 86 48 ce 3d 04 03 02');
const EXT_BASIC_CONSTRAINTS = tlv(SEQ, hex('06 03 55 1d 13'), tlv(0x04, tlv(SEQ, Buffer.alloc(0))));
const EXT_EKU_SERVER = tlv(SEQ, hex('06 03 55 1d 25'), tlv(0x04, tlv(SEQ, hex('06 08 2b 06 01 05 05 07 03 01'))));
const OID_SAN = hex('06 03 55 1d 11');
const VERSION_V3 = hex('a0 03 02 01 02');

function keyUsageExt(keyEncipherment: boolean): Buffer {
  // digitalSignature is bit 0 (0x80), keyEncipherment bit 2 (0x20); DER drops trailing zero bits.
  const bits = keyEncipherment ? hex('03 02 05 a0') : hex('03 02 07 80');
  return tlv(SEQ, hex('06 03 55 1d 0f'), hex('01 01 ff'), tlv(0x04, bits));
}

function akiExt(keyId: Buffer): Buffer {
  return tlv(SEQ, hex('06 03 55 1d 23'), tlv(0x04, tlv(SEQ, tlv(0x80, keyId))));
}

/** UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280 4.1.2.5), always seconds and Z. */
function derTime(ms: number): Buffer {
  const d = new Date(Math.floor(ms / 1000) * 1000);
  const y = d.getUTCFullYear();
  const p2 = (n: number) => (n < 10 ? '0' : '') + n;
  const rest = p2(d.getUTCMonth() + 1) + p2(d.getUTCDate()) + p2(d.getUTCHours()) + p2(d.getUTCMinutes()) + p2(d.getUTCSeconds()) + 'Z';
  if (y >= 1950 && y < 2050) return tlv(0x17, Buffer.from(p2(y % 100) + rest, 'latin1'));
  return tlv(0x18, Buffer.from(String(y).padStart(4, '0') + rest, 'latin1'));
}

/** The 16 bytes of an IPv6 literal (no brackets, no zone), or undefined. */
export function ipv6Bytes(s: string): Buffer | undefined {
  if (net.isIPv6(s) !== true || s.includes('%')) return undefined;
  let text = s;
  let tail: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (text.indexOf('.', lastColon) > 0) {
    // Embedded IPv4 in the last 32 bits: parse it, and let two zero groups hold its place.
    const v4 = text.slice(lastColon + 1).split('.').map(Number);
    tail = [(v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]];
    text = text.slice(0, lastColon + 1) + '0:0';
  }
  const [left, right] = text.includes('::') ? text.split('::') : [text, undefined];
  const parse = (part: string) => (part ? part.split(':').map((g) => parseInt(g, 16)) : []);
  const l = parse(left);
  const r = right === undefined ? [] : parse(right);
  let groups: number[];
  if (right === undefined) groups = l;
  else groups = [...l, ...new Array(8 - l.length - r.length).fill(0), ...r];
  if (tail.length === 2) groups.splice(6, 2, tail[0], tail[1]);
  if (groups.length !== 8) return undefined;
  const out = Buffer.alloc(16);
  for (let i = 0; i < 8; i++) out.writeUInt16BE(groups[i] & 0xffff, i * 2);
  return out;
}

function sanValue(host: string): Buffer {
  const fam = net.isIP(host);
  if (fam === 4) return tlv(0x87, Buffer.from(host.split('.').map(Number)));
  if (fam === 6) {
    const b = ipv6Bytes(host);
    if (!b) throw new Error(`cannot encode the IPv6 address ${host}`);
    return tlv(0x87, b);
  }
  return tlv(0x82, Buffer.from(host, 'latin1')); // dNSName, IA5String (hosts are ASCII / punycode here)
}

// ---------------------------------------------------------------- the minter

export class LeafMinter {
  readonly leafKeyPem: string;
  private readonly caKey: crypto.KeyObject;
  private readonly caNotAfter: number;
  private readonly days: number;
  /** Constant DER pieces of every leaf TBS. */
  private readonly sigAlg: Buffer;
  private readonly sigAlgAndIssuer: Buffer; // signature AlgorithmIdentifier + issuer Name
  private readonly spki: Buffer;
  private readonly fixedExts: Buffer; // basicConstraints, keyUsage, extKeyUsage
  private readonly aki: Buffer;

  constructor(caCertPem: string, caKeyPem: string, opts: LeafMinterOptions = {}) {
    const caX509 = new crypto.X509Certificate(caCertPem);
    this.caKey = crypto.createPrivateKey(caKeyPem);
    if (!caX509.checkPrivateKey(this.caKey)) throw new Error('the CA key does not match the CA certificate');
    if (!caX509.ca) throw new Error('the CA certificate is not a CA (basicConstraints CA:true missing)');
    const parts = certificateParts(caX509.raw);
    // Use the CA's own SKI when present so OpenSSL's AKI/SKI matching always lines up.
    const ski = readSubjectKeyId(caCertPem) ?? subjectKeyIdFromSpki(parts.spkiDer);
    this.caNotAfter = Date.parse(caX509.validTo);
    const leafKey = opts.leafKey ?? crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
    this.leafKeyPem = leafKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    this.spki = crypto.createPublicKey(leafKey).export({ type: 'spki', format: 'der' });
    this.days = opts.days ?? 365;
    const t = this.caKey.asymmetricKeyType;
    if (t === 'rsa') this.sigAlg = tlv(SEQ, OID_SHA256_RSA, hex('05 00'));
    else if (t === 'ec') this.sigAlg = tlv(SEQ, OID_ECDSA_SHA256);
    else throw new Error(`unsupported CA key type: ${t}`);
    this.sigAlgAndIssuer = Buffer.concat([this.sigAlg, parts.subjectDer]);
    this.fixedExts = Buffer.concat([EXT_BASIC_CONSTRAINTS, keyUsageExt(leafKey.asymmetricKeyType === 'rsa'), EXT_EKU_SERVER]);
    this.aki = akiExt(ski);
  }

  /** The DER of the TBSCertificate for one host name or IP literal (IPv6 without brackets). */
  tbs(host: string): Buffer {
    const serial = crypto.randomBytes(16);
    serial[0] = (serial[0] & 0x7f) | 0x01; // positive, and no leading zero byte to strip
    const now = Date.now();
    const validity = tlv(SEQ, derTime(now - DAY), derTime(Math.min(now + this.days * DAY, this.caNotAfter)));
    const cn = host.length <= 64 ? host : host.slice(0, 64);
    const subject = tlv(SEQ, tlv(0x31, tlv(SEQ, OID_CN, tlv(0x0c, Buffer.from(cn, 'utf8')))));
    const san = tlv(SEQ, OID_SAN, tlv(0x04, tlv(SEQ, sanValue(host))));
    const exts = tlv(0xa3, tlv(SEQ, this.fixedExts, san, this.aki));
    return tlv(SEQ, VERSION_V3, tlv(0x02, serial), this.sigAlgAndIssuer, validity, subject, this.spki, exts);
  }

  private assemble(tbs: Buffer, sig: Buffer): MintedLeaf {
    const certDer = tlv(SEQ, tbs, this.sigAlg, tlv(0x03, Buffer.from([0]), sig));
    return { certDer, certPem: derToPem(certDer) };
  }

  /** Mints a certificate for one host name or IP literal (IPv6 without brackets). Synchronous (~1 ms). */
  mint(host: string): MintedLeaf {
    const tbs = this.tbs(host);
    return this.assemble(tbs, crypto.sign('sha256', tbs, this.caKey));
  }

  /**
   * The same, with the signature computed on libuv's thread pool: the event loop only fills the template
   * (microseconds) and assembles the result, so minting never stalls other connections.
   */
  mintAsync(host: string, tracer?: { begin(step: 'assemble'): void; end(step: 'assemble'): void }): Promise<MintedLeaf> {
    return new Promise((resolve, reject) => {
      let tbs: Buffer;
      try {
        tbs = this.tbs(host);
      } catch (e) {
        return reject(e);
      }
      crypto.sign('sha256', tbs, this.caKey, (err, sig) => {
        if (err) return reject(err);
        tracer?.begin('assemble');
        try {
          resolve(this.assemble(tbs, sig));
        } catch (e) {
          reject(e);
        }
        tracer?.end('assemble');
      });
    });
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
