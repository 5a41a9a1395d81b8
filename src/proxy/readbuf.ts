// Reads into one process-wide buffer instead of a fresh Buffer per read.
//
// By default every read of a socket allocates (malloc) a new ArrayBuffer, wraps it in a Buffer and pushes it
// through the Readable stream machinery to 'data' listeners; the garbage collector frees it later. For a relay
// that forwards each chunk at once, all of that is overhead. Node's `onread` option ({ buffer, callback })
// makes the socket read into a caller-supplied buffer and call the callback directly. The proxy gives every
// socket the same buffer: a callback always runs to completion before the next read, and consumers copy
// (`own`) whatever they keep beyond it.
//
// Writes of a view of this buffer are only safe when the bytes are consumed during the write call. That holds
// for an established TLS socket whose writable side is empty: SSL_write encrypts (copies) the bytes at once.
// Anything else (a plain TCP socket, where libuv may keep a pointer for a later write; a queued write) gets a
// copy: `writeChunk`.
//
// The public `onread` option only exists for sockets Node creates itself (net.connect, tls.connect without
// an existing socket); accepted sockets and server-side TLSSockets built over them cannot take it. So
// `readInto` sets up the same state on any constructed socket through its own fields (found by their symbol
// names, where net.Socket stores the option) and `useUserBuffer` on its handle. Where a runtime lacks them,
// `readInto` says so and the caller falls back to 'data' events: correct everywhere, faster on the runtime
// the proxy image ships. CAGED_PROXY_NO_READBUF=1 forces the fallback (the integrity tests run both).
import type * as net from 'node:net';
import type * as tls from 'node:tls';
import { busyPolling, noteRead } from './busypoll';

/** TLS delivers at most one record (16 KiB) per callback; plain TCP reads fill what they are given. */
const READ_BUF = Buffer.allocUnsafe(64 * 1024);
const SHARED = READ_BUF.buffer;

/** The callback the socket calls with each chunk: a view of READ_BUF, valid until it returns. */
export type ChunkHandler = (chunk: Buffer) => void;

/** A Buffer the caller may keep: a copy if `b` is a view of the shared read buffer. */
export function own(b: Buffer): Buffer {
  return b.buffer === SHARED ? Buffer.from(b) : b;
}

/**
 * Writes `b` to `sock`; a view of the shared buffer is copied first unless the write consumes it at once
 * (see the header). Small copies land in Buffer's pool; large ones in a recycled block that goes back to
 * its free list when the write completes, so a bulk transfer allocates (and garbage-collects) nothing
 * per chunk. Returns what sock.write returns.
 */
export function writeChunk(sock: net.Socket, b: Buffer): boolean {
  if (b.buffer !== SHARED) return sock.write(b);
  const s = sock as tls.TLSSocket & { writableCorked?: number };
  if (s.encrypted && !s.connecting && s.writableLength === 0 && !s.writableCorked) return sock.write(b);
  if (b.length < 4096) return sock.write(Buffer.from(b));
  const pool = b.length <= SMALL_BLOCK ? small : large;
  const block = pool.take();
  b.copy(block);
  return sock.write(block.subarray(0, b.length), () => pool.give(block));
}

const SMALL_BLOCK = 16 * 1024; // a TLS record
class Blocks {
  private readonly free: Buffer[] = [];
  constructor(
    private readonly size: number,
    private readonly keep: number,
  ) {}
  take(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafeSlow(this.size);
  }
  give(b: Buffer): void {
    if (this.free.length < this.keep) this.free.push(b);
  }
}
const small = new Blocks(SMALL_BLOCK, 64);
const large = new Blocks(READ_BUF.length, 16);

interface Keys {
  buffer: symbol;
  cb: symbol;
  gen: symbol;
}
let keys: Keys | null | undefined;

function keysOf(sock: net.Socket): Keys | null {
  if (keys !== undefined) return keys;
  const find = (name: string) => Object.getOwnPropertySymbols(sock).find((s) => s.description === name);
  const buffer = find('kBuffer');
  const cb = find('kBufferCb');
  const gen = find('kBufferGen');
  keys = buffer && cb && gen ? { buffer, cb, gen } : null;
  return keys;
}

/**
 * Makes an already-constructed socket read into READ_BUF and hand each chunk to `handler` instead of
 * emitting 'data'. Call before its first read (right after construction). False when the runtime does not
 * support it; the socket is then untouched.
 */
export function readInto(sock: net.Socket, handler: ChunkHandler): boolean {
  if (process.env.CAGED_PROXY_NO_READBUF === '1') return false;
  const handle = (sock as unknown as { _handle?: { useUserBuffer?: (b: Uint8Array) => void } })._handle;
  const k = keysOf(sock);
  if (!k || !handle || typeof handle.useUserBuffer !== 'function') return false;
  const fields = sock as unknown as Record<symbol, unknown>;
  if (fields[k.buffer] !== null) return false; // already reading into something else
  fields[k.buffer] = READ_BUF;
  // Called with the byte count and the buffer; returning true keeps the socket reading.
  fields[k.cb] = busyPolling()
    ? (n: number, buf: Buffer) => (noteRead(), handler(buf.subarray(0, n)), true)
    : (n: number, buf: Buffer) => (handler(buf.subarray(0, n)), true);
  fields[k.gen] = null;
  handle.useUserBuffer(READ_BUF);
  return true;
}

/**
 * Relays raw bytes both ways between two sockets (a tunnel) until they close: each chunk read into the
 * shared buffer is copied once (writeChunk) and written, with back-pressure per direction and half-close
 * passed on. No Readable/pipe machinery on the way.
 */
export function relay(a: net.Socket, b: net.Socket): void {
  oneWay(a, b);
  oneWay(b, a);
}

function oneWay(src: net.Socket, dst: net.Socket): void {
  let waiting = false;
  const onDrain = () => {
    waiting = false;
    src.resume();
  };
  const forward = (chunk: Buffer) => {
    if (dst.destroyed) return;
    if (!writeChunk(dst, chunk) && !waiting) {
      waiting = true;
      src.pause();
      dst.once('drain', onDrain);
    }
  };
  // Bytes the socket had already buffered before the relay took over.
  for (let c: Buffer | null; (c = src.read() as Buffer | null) !== null; ) forward(c);
  if (!readInto(src, forward)) src.on('data', forward);
  src.once('end', () => {
    if (!dst.destroyed) dst.end();
  });
  src.resume();
}
