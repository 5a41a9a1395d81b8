// Small shared helpers and the message types exchanged between the bench processes.

/** Where a load-generator client connects: directly to the upstream, or via CONNECT through a proxy. */
export interface Target {
  /** Label for errors and reports. */
  name: string;
  /** Proxy to send CONNECT to; absent: connect straight to the upstream. */
  proxy?: { host: string; port: number };
  /** Host named in the CONNECT request (through a proxy) or dialled (direct). */
  host: string;
  port: number;
  /** TLS server name (SNI) and Host header. */
  servername: string;
  /** PEM of the CA(s) the client trusts for this target. */
  caPem: string;
}

export interface Percentiles {
  n: number;
  min: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

/** Nearest-rank percentiles of a list of numbers (milliseconds in this bench). */
export function percentiles(values: number[]): Percentiles {
  const a = [...values].sort((x, y) => x - y);
  const n = a.length;
  if (n === 0) return { n: 0, min: NaN, p50: NaN, p90: NaN, p99: NaN, max: NaN, mean: NaN };
  const at = (q: number) => a[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))];
  const mean = a.reduce((s, x) => s + x, 0) / n;
  return { n, min: a[0], p50: at(0.5), p90: at(0.9), p99: at(0.99), max: a[n - 1], mean };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function round(x: number, digits = 2): number {
  if (!Number.isFinite(x)) return x;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** Milliseconds since an arbitrary origin, sub-microsecond resolution. */
export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

export class Deadline extends Error {}

/** Rejects after ms with a labelled error (the bench never waits forever). */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<T>((_, rej) => {
      t = setTimeout(() => rej(new Deadline(`${what}: no answer within ${ms} ms`)), ms);
    }),
  ]);
}

/** The value after `name` in a helper role's argv; throws `who: name is required` when it is missing. */
export function requiredArg(argv: string[], name: string, who: string): string {
  const i = argv.indexOf(name);
  if (i < 0 || !argv[i + 1]) throw new Error(`${who}: ${name} is required`);
  return argv[i + 1];
}

/** Watchdog for a helper role: the orchestrator holds our stdin; when it goes away, so do we. */
export function exitWhenStdinCloses(): void {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('error', () => process.exit(0));
  process.stdin.resume();
}
