// Small helpers over dockerode: error classification, stream collection, the multiplexed log format,
// build/pull progress, removal that waits for an object to be free, the tail of a container's log.
import type Docker from 'dockerode';
import { PassThrough, type Readable } from 'node:stream';

export function statusOf(e: unknown): number | undefined {
  return typeof (e as any)?.statusCode === 'number' ? (e as any).statusCode : undefined;
}

export function isNotFound(e: unknown): boolean {
  return statusOf(e) === 404;
}

/** Plain words for a Docker API error: the daemon's message, without dockerode's "(HTTP code ...)" noise. */
export function dockerMessage(e: unknown): string {
  const any = e as any;
  if (any?.json?.message) return String(any.json.message).trim();
  if (typeof any?.reason === 'string' && typeof any?.json === 'string' && any.json.trim()) return any.json.trim();
  const msg = String(any?.message ?? e);
  return msg.replace(/^\(HTTP code \d+\)\s*[a-z ]*-\s*/i, '').trim();
}

export function isConnectionError(e: unknown): boolean {
  const code = (e as any)?.code;
  return code === 'ENOENT' || code === 'ECONNREFUSED' || code === 'EACCES' || code === 'ECONNRESET' || code === 'EHOSTUNREACH' || code === 'ETIMEDOUT';
}

export function collect(stream: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer | string) => chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c)));
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
  });
}

/**
 * Splits Docker's multiplexed stdout/stderr stream (8-byte frame headers) into two streams. Works on
 * a live stream: frames may arrive split across chunks.
 */
export function demux(src: NodeJS.ReadableStream): { stdout: PassThrough; stderr: PassThrough } {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let buf: Buffer = Buffer.alloc(0);
  src.on('data', (chunk: Buffer) => {
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
    while (buf.length >= 8) {
      const type = buf[0];
      const len = buf.readUInt32BE(4);
      if (buf.length < 8 + len) break;
      const payload = buf.subarray(8, 8 + len);
      (type === 2 ? stderr : stdout).write(payload);
      buf = buf.subarray(8 + len);
    }
  });
  const end = () => { stdout.end(); stderr.end(); };
  src.on('end', end);
  src.on('close', end);
  src.on('error', (e) => { stdout.destroy(e); stderr.destroy(e); });
  return { stdout, stderr };
}

/** Demuxes a complete (non-live) multiplexed buffer. */
export function demuxBuffer(buf: Buffer): { stdout: string; stderr: string } {
  let out = '';
  let err = '';
  let off = 0;
  while (off + 8 <= buf.length) {
    const type = buf[off];
    const len = buf.readUInt32BE(off + 4);
    const payload = buf.subarray(off + 8, off + 8 + len).toString('utf8');
    if (type === 2) err += payload;
    else out += payload;
    off += 8 + len;
  }
  return { stdout: out, stderr: err };
}

/** Calls onLine for each complete line of a text stream. */
export function splitLines(stream: Readable, onLine: (line: string) => void): void {
  let rest = '';
  stream.setEncoding('utf8');
  stream.on('data', (s: string) => {
    rest += s;
    let i: number;
    while ((i = rest.indexOf('\n')) >= 0) {
      const line = rest.slice(0, i).replace(/\r$/, '');
      rest = rest.slice(i + 1);
      onLine(line);
    }
  });
  stream.on('end', () => { if (rest) onLine(rest); rest = ''; });
}

/** Waits for a build or pull progress stream; rejects with the daemon's error text. */
export function followProgress(docker: Docker, stream: NodeJS.ReadableStream, onMessage?: (s: string) => void): Promise<any[]> {
  return new Promise((resolve, reject) => {
    docker.modem.followProgress(
      stream,
      (err: any, output: any[]) => {
        if (err) return reject(err instanceof Error ? err : new Error(String(err?.message ?? err)));
        const failed = output.find((o) => o && (o.error || o.errorDetail));
        if (failed) return reject(new Error(String(failed.errorDetail?.message ?? failed.error).trim()));
        resolve(output);
      },
      (ev: any) => {
        if (!onMessage || !ev) return;
        const s = ev.stream ?? ev.status;
        if (typeof s === 'string' && s.trim()) onMessage(s.trim() + (ev.progress ? ` ${ev.progress}` : ''));
      },
    );
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Removes a Docker object: true when removed, false when it was already gone. While the engine answers with
 * one of `busy` (still in use right after its containers went) it retries for about two seconds.
 */
export async function removeWhenFree(remove: () => Promise<unknown>, busy: number[], stillBusy: string): Promise<boolean> {
  for (let i = 0; i < 10; i++) {
    try {
      await remove();
      return true;
    } catch (e) {
      if (isNotFound(e)) return false;
      if (busy.includes(statusOf(e) ?? 0)) {
        await sleep(200);
        continue;
      }
      throw e;
    }
  }
  throw new Error(stillBusy);
}

/** The last lines a container wrote (stdout and stderr), for error messages; '' when they cannot be read. */
export async function logTail(container: Docker.Container, lines = 20): Promise<string> {
  try {
    const buf = (await container.logs({ stdout: true, stderr: true, tail: lines, follow: false } as any)) as unknown as Buffer;
    const { stdout, stderr } = demuxBuffer(Buffer.isBuffer(buf) ? buf : Buffer.from(String(buf)));
    return (stdout + stderr).trim();
  } catch {
    return '';
  }
}
