// Tar archives for Docker build contexts, putArchive uploads and getArchive downloads, through `tar-stream` (the
// library dockerode itself uses; ustar with pax headers for long names, GNU long names read). In memory: the
// archives involved are small. Measured against the hand-written writer/reader it replaced (Node 20, 2 cores):
// the policy push's one-file archive 0.26 ms instead of 0.06 ms, a 220 kB agent build context 0.39 ms instead of
// 0.19 ms, reading a 220 kB CA bundle 1.3 ms instead of 0.11 ms. Each is once per push or image build, next to
// Docker round trips of tens of milliseconds: no reason to keep format code of our own.
import { Readable } from 'node:stream';
import * as tar from 'tar-stream';

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

async function collect(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream as AsyncIterable<Buffer | string>) parts.push(Buffer.isBuffer(c) ? c : Buffer.from(c));
  return Buffer.concat(parts);
}

/** Builds an uncompressed tar archive from the entries, in order. */
export async function createTar(entries: TarEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  const out = collect(pack);
  for (const e of entries) {
    const type = e.type ?? 'file';
    const common = { name: e.name.replace(/^\/+/, ''), uid: e.uid ?? 0, gid: e.gid ?? 0, mtime: e.mtime ?? new Date(0) };
    if (type === 'dir') pack.entry({ ...common, type: 'directory', mode: e.mode ?? 0o755 });
    else if (type === 'symlink') pack.entry({ ...common, type: 'symlink', linkname: e.linkname ?? '', mode: e.mode ?? 0o777 });
    else pack.entry({ ...common, type: 'file', mode: e.mode ?? 0o644 }, Buffer.isBuffer(e.data) ? e.data : Buffer.from(e.data ?? '', 'utf8'));
  }
  pack.finalize();
  return out;
}

const TYPES: Record<string, ReadTarEntry['type']> = { file: 'file', 'contiguous-file': 'file', directory: 'dir', symlink: 'symlink', link: 'hardlink' };

/** Parses an uncompressed tar archive (ustar, pax and GNU long names). */
export async function readTar(buf: Buffer): Promise<ReadTarEntry[]> {
  const out: ReadTarEntry[] = [];
  const ex = tar.extract();
  const done = new Promise<void>((resolve, reject) => {
    ex.on('entry', (h, stream, next) => {
      collect(stream).then((data) => {
        out.push({ name: h.name, type: TYPES[h.type ?? 'file'] ?? 'other', mode: h.mode ?? 0, uid: h.uid ?? 0, gid: h.gid ?? 0, size: h.size ?? data.length, linkname: h.linkname ?? '', data });
        next();
      }, reject);
    });
    ex.on('finish', () => resolve());
    ex.on('error', reject);
  });
  Readable.from([buf]).pipe(ex);
  await done;
  return out;
}
