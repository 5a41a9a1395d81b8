// A tiny tar writer (ustar, plus a pax header for long names) and reader, enough for Docker build
// contexts, putArchive uploads and getArchive downloads. In memory: the archives involved are small.

export interface TarEntry {
  /** Path inside the archive, "/"-separated, no leading slash. */
  name: string;
  /** File content; omit for directories and symlinks. */
  data?: Buffer | string;
  /** Permission bits; default 0o644 for files, 0o755 for directories. */
  mode?: number;
  uid?: number;
  gid?: number;
  type?: 'file' | 'dir' | 'symlink';
  /** Symlink target (type 'symlink'). */
  linkname?: string;
  mtime?: Date;
}

export interface ReadTarEntry {
  name: string;
  type: 'file' | 'dir' | 'symlink' | 'hardlink' | 'other';
  mode: number;
  uid: number;
  gid: number;
  size: number;
  linkname: string;
  data: Buffer;
}

const BLOCK = 512;

function octal(value: number, width: number): string {
  // width includes the terminating NUL.
  const s = Math.max(0, Math.floor(value)).toString(8);
  if (s.length > width - 1) throw new Error(`tar: value ${value} does not fit in ${width} bytes`);
  return s.padStart(width - 1, '0') + '\0';
}

function writeString(buf: Buffer, offset: number, width: number, s: string): void {
  const b = Buffer.from(s, 'utf8');
  b.copy(buf, offset, 0, Math.min(b.length, width));
}

function paxRecord(key: string, value: string): Buffer {
  // "<len> key=value\n" where len counts the whole record including its own digits.
  const body = ` ${key}=${value}\n`;
  let len = Buffer.byteLength(body) + 1;
  while (String(len).length + Buffer.byteLength(body) !== len) len = String(len).length + Buffer.byteLength(body);
  return Buffer.from(`${len}${body}`, 'utf8');
}

function header(name: string, size: number, typeflag: string, e: TarEntry, linkname = ''): Buffer {
  const h = Buffer.alloc(BLOCK, 0);
  writeString(h, 0, 100, name);
  const mode = e.mode ?? (typeflag === '5' ? 0o755 : typeflag === '2' ? 0o777 : 0o644);
  writeString(h, 100, 8, octal(mode & 0o7777, 8));
  writeString(h, 108, 8, octal(e.uid ?? 0, 8));
  writeString(h, 116, 8, octal(e.gid ?? 0, 8));
  writeString(h, 124, 12, octal(size, 12));
  writeString(h, 136, 12, octal(Math.floor((e.mtime ?? new Date(0)).getTime() / 1000), 12));
  h.fill(0x20, 148, 156); // checksum placeholder: spaces
  writeString(h, 156, 1, typeflag);
  writeString(h, 157, 100, linkname);
  writeString(h, 257, 6, 'ustar\0');
  writeString(h, 263, 2, '00');
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += h[i];
  writeString(h, 148, 8, octal(sum, 7) + ' ');
  return h;
}

function pad(len: number): Buffer {
  const rem = len % BLOCK;
  return Buffer.alloc(rem === 0 ? 0 : BLOCK - rem, 0);
}

/** Builds an uncompressed tar archive from the entries, in order. */
export function createTar(entries: TarEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const type = e.type ?? 'file';
    let name = e.name.replace(/^\/+/, '');
    if (type === 'dir' && !name.endsWith('/')) name += '/';
    const linkname = e.linkname ?? '';
    const typeflag = type === 'dir' ? '5' : type === 'symlink' ? '2' : '0';
    const data = type === 'file' ? (Buffer.isBuffer(e.data) ? e.data : Buffer.from(e.data ?? '', 'utf8')) : Buffer.alloc(0);
    if (Buffer.byteLength(name) > 99 || Buffer.byteLength(linkname) > 99) {
      const pax = Buffer.concat([paxRecord('path', name), ...(linkname ? [paxRecord('linkpath', linkname)] : [])]);
      parts.push(header('PaxHeader', pax.length, 'x', { name: 'PaxHeader' }), pax, pad(pax.length));
    }
    parts.push(header(name.slice(0, 99), data.length, typeflag, e, linkname.slice(0, 99)));
    if (data.length) parts.push(data, pad(data.length));
  }
  parts.push(Buffer.alloc(BLOCK * 2, 0));
  return Buffer.concat(parts);
}

function readString(buf: Buffer, offset: number, width: number): string {
  const slice = buf.subarray(offset, offset + width);
  const nul = slice.indexOf(0);
  return slice.subarray(0, nul < 0 ? width : nul).toString('utf8');
}

function readOctal(buf: Buffer, offset: number, width: number): number {
  // GNU base-256 for big values: high bit of the first byte set.
  if (buf[offset] & 0x80) {
    let v = 0;
    for (let i = 1; i < width; i++) v = v * 256 + buf[offset + i];
    return v;
  }
  const s = readString(buf, offset, width).trim();
  return s ? parseInt(s, 8) : 0;
}

function parsePax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < data.length) {
    const sp = data.indexOf(0x20, i);
    if (sp < 0) break;
    const len = parseInt(data.subarray(i, sp).toString('utf8'), 10);
    if (!len) break;
    const rec = data.subarray(sp + 1, i + len - 1).toString('utf8');
    const eq = rec.indexOf('=');
    if (eq > 0) out[rec.slice(0, eq)] = rec.slice(eq + 1);
    i += len;
  }
  return out;
}

/** Parses an uncompressed tar archive (ustar, pax and GNU long names). */
export function readTar(buf: Buffer): ReadTarEntry[] {
  const out: ReadTarEntry[] = [];
  let off = 0;
  let longName: string | undefined;
  let longLink: string | undefined;
  let pax: Record<string, string> = {};
  while (off + BLOCK <= buf.length) {
    const h = buf.subarray(off, off + BLOCK);
    if (h.every((b) => b === 0)) break;
    const size = readOctal(h, 124, 12);
    const typeflag = String.fromCharCode(h[156] || 0x30);
    const data = buf.subarray(off + BLOCK, off + BLOCK + size);
    off += BLOCK + size + ((BLOCK - (size % BLOCK)) % BLOCK);
    if (typeflag === 'x') { pax = { ...pax, ...parsePax(data) }; continue; }
    if (typeflag === 'g') continue;
    if (typeflag === 'L') { longName = readString(data, 0, data.length); continue; }
    if (typeflag === 'K') { longLink = readString(data, 0, data.length); continue; }
    const prefix = readString(h, 345, 155);
    let name = readString(h, 0, 100);
    if (prefix && readString(h, 257, 6).startsWith('ustar')) name = `${prefix}/${name}`;
    name = pax.path ?? longName ?? name;
    const linkname = pax.linkpath ?? longLink ?? readString(h, 157, 100);
    const type: ReadTarEntry['type'] =
      typeflag === '0' || typeflag === '\0' || typeflag === '7' ? 'file' : typeflag === '5' ? 'dir' : typeflag === '2' ? 'symlink' : typeflag === '1' ? 'hardlink' : 'other';
    out.push({ name, type, mode: readOctal(h, 100, 8), uid: readOctal(h, 108, 8), gid: readOctal(h, 116, 8), size, linkname, data: Buffer.from(data) });
    longName = undefined;
    longLink = undefined;
    pax = {};
  }
  return out;
}
