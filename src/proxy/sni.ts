// Reads the server name (SNI) and the offered application protocols (ALPN) from a TLS ClientHello without
// terminating TLS: tunnelled hosts are checked by the name, intercepted sessions offer h2 only to a client that asks.

export type ClientHelloResult =
  | { state: 'partial' }
  | { state: 'not-tls' }
  | { state: 'invalid' }
  | { state: 'ok'; sni?: string; alpn?: string[] };

const MAX_HELLO = 64 * 1024;

/** Inspects the bytes received so far. 'partial' means: wait for more data. */
export function parseClientHello(buf: Buffer): ClientHelloResult {
  if (buf.length === 0) return { state: 'partial' };
  if (buf[0] !== 0x16) return { state: 'not-tls' };
  // Reassemble the handshake layer from as many records as needed.
  const parts: Buffer[] = [];
  let have = 0;
  let off = 0;
  let need = -1;
  while (true) {
    if (off + 5 > buf.length) return buf.length > MAX_HELLO ? { state: 'invalid' } : { state: 'partial' };
    if (buf[off] !== 0x16 || buf[off + 1] !== 0x03) return { state: 'invalid' };
    const len = buf.readUInt16BE(off + 3);
    if (len === 0 || len > 16384 + 2048) return { state: 'invalid' };
    if (off + 5 + len > buf.length) return buf.length > MAX_HELLO ? { state: 'invalid' } : { state: 'partial' };
    parts.push(buf.subarray(off + 5, off + 5 + len));
    have += len;
    off += 5 + len;
    if (need < 0 && have >= 4) {
      const hs = parts.length === 1 ? parts[0] : Buffer.concat(parts);
      if (hs[0] !== 0x01) return { state: 'invalid' }; // not a ClientHello
      need = 4 + hs.readUIntBE(1, 3);
      if (need > MAX_HELLO) return { state: 'invalid' };
    }
    if (need >= 0 && have >= need) break;
  }
  const hs = parts.length === 1 ? parts[0] : Buffer.concat(parts);
  return readSni(hs.subarray(4, need));
}

function readSni(b: Buffer): ClientHelloResult {
  try {
    let p = 2 + 32; // client_version, random
    p += 1 + b[p]; // session_id
    p += 2 + b.readUInt16BE(p); // cipher_suites
    p += 1 + b[p]; // compression_methods
    if (p === b.length) return { state: 'ok' }; // no extensions
    const extEnd = p + 2 + b.readUInt16BE(p);
    p += 2;
    if (extEnd > b.length) return { state: 'invalid' };
    const r: ClientHelloResult = { state: 'ok' };
    while (p + 4 <= extEnd) {
      const type = b.readUInt16BE(p);
      const len = b.readUInt16BE(p + 2);
      p += 4;
      if (p + len > extEnd) return { state: 'invalid' };
      if (type === 0 && r.sni === undefined) {
        const sni = readServerName(b, p, len);
        if (sni === false) return { state: 'invalid' };
        if (sni !== undefined) r.sni = sni;
      } else if (type === 16 && r.alpn === undefined) {
        const alpn = readProtocols(b, p, len);
        if (!alpn) return { state: 'invalid' };
        r.alpn = alpn;
      }
      p += len;
    }
    return r;
  } catch {
    return { state: 'invalid' };
  }
}

/** The host name of a server_name extension at b[p, p+len); false when it is malformed. */
function readServerName(b: Buffer, p: number, len: number): string | undefined | false {
  let q = p + 2;
  const listEnd = p + 2 + b.readUInt16BE(p);
  if (listEnd > p + len) return false;
  while (q + 3 <= listEnd) {
    const nameType = b[q];
    const nameLen = b.readUInt16BE(q + 1);
    q += 3;
    if (q + nameLen > listEnd) return false;
    if (nameType === 0) return b.toString('latin1', q, q + nameLen);
    q += nameLen;
  }
  return undefined;
}

/** The protocol names of an application_layer_protocol_negotiation extension (RFC 7301); undefined when malformed. */
function readProtocols(b: Buffer, p: number, len: number): string[] | undefined {
  const listEnd = p + 2 + b.readUInt16BE(p);
  if (listEnd > p + len) return undefined;
  const out: string[] = [];
  for (let q = p + 2; q < listEnd; ) {
    const n = b[q];
    if (n === 0 || q + 1 + n > listEnd) return undefined;
    out.push(b.toString('latin1', q + 1, q + 1 + n));
    q += 1 + n;
  }
  return out;
}
