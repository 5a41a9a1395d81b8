// The load generator (its own process, driven by the orchestrator over IPC). Raw TLS sockets, pre-encoded
// requests, a minimal response parser, one request in flight per connection (no pipelining).
import * as crypto from 'node:crypto';
import type { Target } from './common';
import { nowMs, percentiles } from './common';
import { Conn, openTls, requestBytes, ProxyRefused, type OpenTimings } from './client';
import { h2Multiplexed } from './h2load';

export type LoadCommand =
  | { cmd: 'keepalive.start'; target: Target; conns: number; path: string }
  | { cmd: 'keepalive.snap' }
  | { cmd: 'keepalive.stop' }
  | { cmd: 'latency'; target: Target; path: string; warmup: number; maxCount: number; maxMs: number }
  | { cmd: 'batch'; items: Target[]; concurrency: number; path: string }
  | { cmd: 'bulk'; target: Target; dir: 'down' | 'up'; bytes: number }
  | { cmd: 'idle.open'; target: Target; path: string; n: number; concurrency: number }
  | { cmd: 'idle.close' }
  | { cmd: 'h2'; target: Target; path: string; streams: number; warmMs: number; ms: number }
  | { cmd: 'cpu' };

export interface KeepAliveSnap {
  t: number;
  count: number;
  errors: number;
  reconnects: number;
  cpuUs: number;
}

export interface BatchItemResult {
  ok: boolean;
  status: number;
  ms: number;
  timings?: OpenTimings;
  /** SHA-256 fingerprint of the certificate the client saw. */
  fingerprint?: string;
  error?: string;
}

function cpuUs(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

function errText(e: unknown): string {
  if (e instanceof ProxyRefused) return `CONNECT ${e.status}`;
  return (e as Error)?.message ?? String(e);
}

// ---- keep-alive load -------------------------------------------------------------------------------

class KeepAliveRun {
  count = 0;
  errors = 0;
  reconnects = 0;
  running = true;
  conns = new Set<Conn>();
  lastError = '';

  constructor(
    private readonly target: Target,
    private readonly req: Buffer,
  ) {}

  async open(n: number): Promise<number> {
    const results = await Promise.allSettled(Array.from({ length: n }, () => this.connect()));
    const failed = results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
    if (failed.length) this.lastError = errText(failed[0].reason);
    return n - failed.length;
  }

  private async connect(): Promise<void> {
    const { socket } = await openTls(this.target);
    const c = new Conn(socket);
    this.conns.add(c);
    const loop = () => {
      c.requestCb(
        this.req,
        (r) => {
          if (r.status === 200) this.count++;
          else this.errors++;
          if (this.running) loop();
        },
        (e) => {
          this.conns.delete(c);
          c.close();
          if (!this.running) return;
          this.errors++;
          this.lastError = errText(e);
          this.reconnects++;
          this.connect().catch((e2) => {
            this.lastError = errText(e2);
          });
        },
      );
    };
    loop();
  }

  stop(): void {
    this.running = false;
    for (const c of this.conns) c.close();
    this.conns.clear();
  }
}

// ---- single requests on fresh connections -----------------------------------------------------------

async function openAndGet(t: Target, path: string): Promise<BatchItemResult> {
  const t0 = nowMs();
  let c: Conn | undefined;
  try {
    const { socket, timings } = await openTls(t);
    const fingerprint = socket.getPeerX509Certificate()?.fingerprint256;
    c = new Conn(socket);
    const r = await c.request(requestBytes(t, 'GET', path));
    const ms = nowMs() - t0;
    return { ok: r.status === 200, status: r.status, ms, timings, fingerprint };
  } catch (e) {
    return { ok: false, status: e instanceof ProxyRefused ? e.status : 0, ms: nowMs() - t0, error: errText(e) };
  } finally {
    c?.close();
  }
}

async function batch(items: Target[], concurrency: number, path: string): Promise<BatchItemResult[]> {
  const out: BatchItemResult[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await openAndGet(items[i], path);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, worker));
  return out;
}

// ---- latency of sequential requests on one warm connection ------------------------------------------

async function latency(t: Target, path: string, warmup: number, maxCount: number, maxMs: number) {
  const { socket } = await openTls(t);
  const c = new Conn(socket);
  const req = requestBytes(t, 'GET', path);
  try {
    for (let i = 0; i < warmup; i++) await c.request(req);
    const samples: number[] = [];
    const cpu0 = cpuUs();
    const end = nowMs() + maxMs;
    let errors = 0;
    while (samples.length < maxCount && nowMs() < end) {
      const t0 = nowMs();
      const r = await c.request(req);
      samples.push(nowMs() - t0);
      if (r.status !== 200) errors++;
    }
    return { ...percentiles(samples), errors, loadgenCpuUsPerReq: (cpuUs() - cpu0) / Math.max(1, samples.length) };
  } finally {
    c.close();
  }
}

// ---- bulk transfer ------------------------------------------------------------------------------------

async function bulk(t: Target, dir: 'down' | 'up', bytes: number) {
  const { socket } = await openTls(t);
  const c = new Conn(socket, { body: dir === 'up' });
  // Watchdog: a transfer that makes no progress for 15 s fails with a clear error instead of hanging.
  let last = -1;
  let still = 0;
  const watchdog = setInterval(() => {
    const moved = socket.bytesRead + socket.bytesWritten;
    if (moved !== last) {
      last = moved;
      still = 0;
    } else if (++still >= 15) socket.destroy(new Error(`${dir === 'down' ? 'download' : 'upload'} stalled: no progress for 15 s (read ${socket.bytesRead} B, wrote ${socket.bytesWritten} B)`));
  }, 1000);
  try {
    const cpu0 = cpuUs();
    const t0 = nowMs();
    let status: number;
    let moved: number;
    if (dir === 'down') {
      const r = await c.request(requestBytes(t, 'GET', `/bulk?bytes=${bytes}`));
      status = r.status;
      moved = r.bodyBytes;
    } else {
      const head = requestBytes(t, 'POST', '/upload', `Content-Type: application/octet-stream\r\nContent-Length: ${bytes}\r\n`);
      const done = new Promise<{ status: number; body?: string }>((resolve, reject) => c.requestCb(head, resolve, reject));
      const chunk = Buffer.alloc(256 * 1024, 0x62);
      let left = bytes;
      while (left > 0) {
        const n = Math.min(left, chunk.length);
        left -= n;
        if (!socket.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
          await new Promise<void>((resolve, reject) => {
            socket.once('drain', resolve);
            socket.once('close', () => reject(new Error('connection closed during upload')));
          });
        }
      }
      const r = await done;
      status = r.status;
      moved = Number(r.body);
    }
    const ms = nowMs() - t0;
    return { status, bytes: moved, ms, mbPerS: moved / 1e6 / (ms / 1000), loadgenCpuMs: (cpuUs() - cpu0) / 1000 };
  } finally {
    clearInterval(watchdog);
    c.close();
  }
}

// ---- idle connections ---------------------------------------------------------------------------------

let idle: Conn[] = [];

async function idleOpen(t: Target, path: string, n: number, concurrency: number) {
  let next = 0;
  let errors = 0;
  let lastError = '';
  const req = requestBytes(t, 'GET', path);
  const worker = async () => {
    while (next < n) {
      next++;
      try {
        const { socket } = await openTls(t);
        const c = new Conn(socket);
        const r = await c.request(req);
        if (r.status !== 200) throw new Error(`status ${r.status}`);
        idle.push(c);
      } catch (e) {
        errors++;
        lastError = errText(e);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { open: idle.filter((c) => !c.closed).length, errors, lastError };
}

// ---- IPC loop -----------------------------------------------------------------------------------------

export function runLoadgen(): void {
  if (!process.send) throw new Error('loadgen must be started with an IPC channel');
  let ka: KeepAliveRun | undefined;
  const handle = async (m: LoadCommand): Promise<unknown> => {
    switch (m.cmd) {
      case 'keepalive.start': {
        ka?.stop();
        ka = new KeepAliveRun(m.target, requestBytes(m.target, 'GET', m.path));
        const opened = await ka.open(m.conns);
        return { opened, lastError: ka.lastError };
      }
      case 'keepalive.snap': {
        if (!ka) throw new Error('no keep-alive run');
        const s: KeepAliveSnap = { t: nowMs(), count: ka.count, errors: ka.errors, reconnects: ka.reconnects, cpuUs: cpuUs() };
        return { ...s, lastError: ka.lastError };
      }
      case 'keepalive.stop':
        ka?.stop();
        ka = undefined;
        return {};
      case 'latency':
        return latency(m.target, m.path, m.warmup, m.maxCount, m.maxMs);
      case 'batch':
        return batch(m.items, m.concurrency, m.path);
      case 'bulk':
        return bulk(m.target, m.dir, m.bytes);
      case 'idle.open':
        return idleOpen(m.target, m.path, m.n, m.concurrency);
      case 'idle.close': {
        const n = idle.length;
        for (const c of idle) c.close();
        idle = [];
        return { closed: n };
      }
      case 'h2':
        return h2Multiplexed(m.target, m.path, m.streams, m.warmMs, m.ms);
      case 'cpu':
        return { cpuUs: cpuUs() };
    }
  };
  process.on('message', (raw: { id: number; msg: LoadCommand }) => {
    handle(raw.msg).then(
      (result) => process.send!({ id: raw.id, result }),
      (e) => process.send!({ id: raw.id, error: errText(e) }),
    );
  });
  // The orchestrator owns us: when the channel goes, we go.
  process.on('disconnect', () => process.exit(0));
  process.send({ ready: true, pid: process.pid, token: crypto.randomUUID() });
}
