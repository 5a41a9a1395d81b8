// The orchestrator: sets up certificates, the upstream and the load generator, starts each proxy in turn
// and runs the phases. Every figure is measured in this one run, next to its baseline.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Percentiles, Target } from './common';
import { nowMs, percentiles, round, sleep } from './common';
import { makeCerts, type BenchCerts } from './certs';
import { ResponseParser, type ResponseDone } from './http1';
import { LoadGen } from './lgclient';
import type { BatchItemResult, KeepAliveSnap } from './loadgen';
import type { H2LoadResult } from './h2load';
import { BENCH_DOMAIN, TUNNEL_HOST, ourPolicy, startFloorRelay, startHop, startMitmproxy, startOurProxy, startTinyproxy, type OurProxy, type OurProxyFiles, type RunningPeer } from './peers';
import { Conn, openTls, requestBytes } from './client';
import { fdCount, firstLine, machineBusyMs, registerTempDir, sample, spawnTracked, stop, type Started } from './procs';
import { runDockerPhase, type DockerResult } from './docker';
import { LeafMinter } from '../src/pki/leaf';
import { CertCache } from '../src/proxy/certs';

export const PHASES = ['keepalive', 'h2', 'first', 'bulk', 'memory', 'reload', 'docker'] as const;
export type Phase = (typeof PHASES)[number];

export interface BenchOptions {
  quick: boolean;
  only?: Set<Phase>;
  docker: boolean;
  root: string;
  benchJs: string;
  proxyJs: string;
  /** Keep-alive measuring window and warm-up (ms). */
  kaMs: number;
  kaWarmMs: number;
  latencyMs: number;
  connections: number;
  firstHosts: number;
  burst: number;
  cacheHosts: number;
  bulkBytes: number;
  idleConns: number;
  reloads: number;
  log: (s: string) => void;
}

export interface CpuFigures {
  /** CPU µs spent per completed request by the process (user+system, all threads). */
  proxyUsPerReq?: number;
  proxyCorePct?: number;
  upstreamUsPerReq: number;
  upstreamCorePct: number;
  loadgenUsPerReq: number;
  loadgenCorePct: number;
  /**
   * CPU the rest of the machine used meanwhile (% of one core): busy time from /proc/stat minus the bench's
   * processes. Kernel work for loopback traffic lands partly here; large values mean a noisy machine.
   */
  otherCorePct: number;
}

export interface KeepAliveResult {
  rps: number;
  requests: number;
  seconds: number;
  errors: number;
  reconnects: number;
  cpu: CpuFigures;
  latency: Percentiles & { errors: number };
  proxyRssKb?: number;
  /** Our proxy's event-loop delay during the measuring window (ms, 1 ms resolution). */
  eventLoopDelay?: EventLoopDelay;
  /** Our proxy's event lines per completed request in the window (1 when intercepting: one per request). */
  eventLinesPerReq?: number;
  note?: string;
  /** req/s of each run when the row was measured more than once (rps is their mean). */
  runsRps?: number[];
}

export interface EventLoopDelay {
  max: number;
  p50: number;
  p99: number;
  mean: number;
  count: number;
  /** Share of 1 ms timer ticks that came more than 5 ms late. */
  over5Fraction?: number;
}

/** One h2 row: 1 connection × `streams` concurrent streams (see h2load.ts). */
export interface H2Result extends H2LoadResult {
  streams: number;
  /** Absent when the connection did not negotiate h2 (no load was sent). */
  rps?: number;
  proxyUsPerReq?: number;
  proxyCorePct?: number;
  /** What the upstream got the requests in meanwhile ('h2', 'http/1.1', 'h2+http/1.1', 'none'): a proxy's leg to it. */
  upstreamProtocol: string;
  /** The upstream's CPU over the whole call (warm-up included), % of one core. */
  upstreamCorePct: number;
  /** The load generator's over the measuring window. */
  loadgenCorePct?: number;
  /** req/s of each run when the row was measured more than once (rps is their mean). */
  runsRps?: number[];
}

export const H2_STREAMS = 100;

export interface BulkResult {
  mbPerS: number;
  ms: number;
  bytes: number;
  proxyCpuMs?: number;
  loadgenCpuMs: number;
}

export interface Results {
  meta: { date: string; node: string; cpus: number; cpuModel: string; quick: boolean; mitmproxy?: string; tinyproxy?: string; phases: string[]; loadavgStart: number[]; loadavgEnd?: number[] };
  keepalive: Partial<Record<'direct' | 'intercept' | 'transparent' | 'noPoll' | 'floor' | 'hop' | 'tunnel' | 'mitmproxy' | 'tinyproxy', KeepAliveResult>>;
  /** HTTP/2 multiplexed: direct, through our proxy intercepting and tunnelling, through mitmproxy. */
  h2?: Partial<Record<'direct' | 'intercept' | 'tunnel' | 'mitmproxy', H2Result>>;
  first?: {
    hosts: number;
    direct: Percentiles;
    interceptNewHost: Percentiles;
    interceptSeenHost: Percentiles;
    /**
     * A seen host again after the upstream closed the proxy's pooled connections: leaf cached, new upstream
     * TLS connection. `upstream` counts the handshakes the upstream saw meanwhile and how many resumed.
     */
    interceptReconnect?: Percentiles & { proxyCpuMs: number; upstream: { handshakes: number; resumed: number } };
    /** Breakdown of the new-host requests through the proxy (p50 ms). */
    breakdownP50: { tcp: number; connect: number; tls: number; request: number };
    errors: string[];
    /** Paced requests on a warm connection through the proxy meanwhile (client-side view of stalls). */
    stallProbe: Percentiles & { errors: number };
    /** The proxy's own event-loop delay meanwhile (ms; max ≈ the longest synchronous step + 1 ms). */
    eventLoopDelay?: EventLoopDelay;
    /**
     * The proxy's longest synchronous step per new host (CertCache: certificate template, assembling the
     * signed certificate, tls.createSecureContext — each in its own event-loop turn), timed in this process
     * with the cache's own code on the same machine (ms of CPU).
     */
    mintStep: Percentiles;
    /** The same in wall time (includes preemption on a busy machine). */
    mintStepWall: Percentiles;
    /** Each step on its own (ms of CPU). */
    mintSteps: Partial<Record<'template' | 'assemble' | 'context' | 'cert' | 'key', Percentiles>>;
    /** The same measured in the bench orchestrator meanwhile: the machine's scheduling noise. */
    referenceEventLoopDelay: EventLoopDelay;
    /** `upstream`: the TLS handshakes the upstream saw for the burst through the proxy, and the resumed ones. */
    burst: { n: number; distinctCerts: number; ok: number; ms: Percentiles; directMs: Percentiles; errors: string[]; upstream?: { handshakes: number; resumed: number } };
    cache?: { filled: number; revisited: number; sameCert: number };
  };
  bulk?: Partial<Record<'direct' | 'intercept' | 'tunnel', { down: BulkResult; up: BulkResult }>>;
  memory?: {
    idleStartKb: number;
    idleWarmKb: number;
    withIdleKb: number;
    idleConns: number;
    perConnKb: number;
    errors: number;
    lastError?: string;
    afterCloseKb: number;
    /** New file descriptors in the proxy with the idle connections open (client + upstream sockets). */
    proxySocketsOpened: number;
    /** New connections the upstream saw from the proxy meanwhile (its fd count). */
    upstreamConnsHeld: number;
    /** Baseline: RSS per idle keep-alive TLS connection of the plain Node https upstream (direct connections). */
    nodeHttpsPerConnKb: number;
  };
  reload?: { samplesMs: number[]; p50: number; max: number; errors: string[] };
  docker?: DockerResult;
  errors: string[];
}

interface Ctx {
  o: BenchOptions;
  dir: string;
  certs: BenchCerts;
  upstream: Started;
  httpsPort: number;
  h2Port: number;
  httpPort: number;
  lg: LoadGen;
  files: OurProxyFiles;
  extraAllowed: Array<{ host: string; port: number }>;
}

const want = (o: BenchOptions, p: Phase) => (o.only ? o.only.has(p) : p !== 'docker' || o.docker);

/**
 * What every measurement starts from: certificates, the upstream server process, the load generator, and our
 * proxy's files (policy allowing the upstream, cage CA, upstream CA). Used by the bench and by --profile.
 */
export async function startBenchBase(o: BenchOptions, dir: string): Promise<{ certs: BenchCerts; upstream: Started; ports: { httpsPort: number; h2Port: number; httpPort: number }; lg: LoadGen; files: OurProxyFiles }> {
  const certs = makeCerts(dir);
  const upstream = spawnTracked('upstream', process.execPath, [o.benchJs, '--role', 'upstream', '--cert', certs.files.upstreamCert, '--key', certs.files.upstreamKey]);
  const ports = JSON.parse(await firstLine(upstream, 10000)) as { httpsPort: number; h2Port: number; httpPort: number };
  const lg = await LoadGen.start(o.benchJs, dir);
  const policyFile = path.join(dir, 'policy.yaml');
  fs.writeFileSync(policyFile, ourPolicy({ upstreamPort: ports.httpsPort, h2Port: ports.h2Port }));
  const files: OurProxyFiles = {
    dir,
    policyFile,
    caCertFile: certs.files.cageCaCert,
    caKeyFile: certs.files.cageCaKey,
    upstreamCaFile: certs.files.upstreamCaCert,
    proxyJs: o.proxyJs,
  };
  return { certs, upstream, ports, lg, files };
}

export async function runBench(o: BenchOptions): Promise<Results> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'caged-bench-'));
  registerTempDir(dir);
  const res: Results = {
    meta: {
      date: new Date().toISOString(),
      node: process.version,
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model ?? '',
      quick: o.quick,
      phases: PHASES.filter((p) => want(o, p)),
      loadavgStart: os.loadavg().map((x) => round(x)),
    },
    keepalive: {},
    errors: [],
  };
  try {
    o.log(`[bench] temp dir ${dir}`);
    const { certs, upstream, ports, lg, files } = await startBenchBase(o, dir);
    const c: Ctx = { o, dir, certs, upstream, httpsPort: ports.httpsPort, h2Port: ports.h2Port, httpPort: ports.httpPort, lg, files, extraAllowed: [] };
    o.log(`[bench] upstream https://127.0.0.1:${c.httpsPort} (pid ${upstream.pid}), loadgen pid ${lg.proc.pid}`);

    const phase = async (name: string, fn: () => Promise<void>) => {
      const t0 = nowMs();
      try {
        await fn();
      } catch (e) {
        const msg = `${name}: ${(e as Error).stack ?? String(e)}`;
        res.errors.push(msg);
        o.log(`[bench] ERROR in ${msg}`);
      }
      o.log(`[bench] ${name} done in ${((nowMs() - t0) / 1000).toFixed(1)} s`);
    };

    // Keep-alive rounds: direct, then per round intercepting (as shipped, then with busy-polling off), the
    // bare relay (floor.ts), the C byte relay (hop.c), tunnel, tinyproxy, mitmproxy, direct again. Every row
    // is the mean of its runs, so a shared VM drifting over the phase (the same direct row moved by up to 35%
    // within a minute) affects all rows alike, and the tunnel runs next to tinyproxy. Three rounds (one with --quick): with two, one slow direct
    // run still moved the intercepting ratio by ±0.05, and one mitmproxy run moved the mitmproxy ratio from
    // 24× to 20×.
    type KaKey = keyof Results['keepalive'];
    const kaRuns: Partial<Record<KaKey, KeepAliveResult[]>> = {};
    const addRun = (k: KaKey, r: KeepAliveResult): void => void (kaRuns[k] ??= []).push(r);
    const kaRounds = o.quick ? 1 : 3;
    if (want(o, 'keepalive')) {
      await phase('keep-alive direct', async () => addRun('direct', await keepAlive(c, directTarget(c, 'localhost'), undefined)));
    }

    if (process.env.CAGED_BENCH_AB) await abRounds(c, process.env.CAGED_BENCH_AB);

    const needOurs = want(o, 'keepalive') || want(o, 'h2') || want(o, 'first') || want(o, 'bulk') || want(o, 'reload');
    // Also on 127.0.0.2, on the upstream's port: a client that ignores proxy settings (transparent capture).
    const ours = needOurs ? await startOurProxy('caged-proxy', { ...files, proxyArgs: ['--transparent', '--transparent-at', `${TRANSPARENT_ADDR}:${c.httpsPort},0,0`] }) : undefined;
    try {
      if (ours) o.log(`[bench] our proxy on 127.0.0.1:${ours.port} (pid ${ours.proc.pid}), up in ${ours.startMs.toFixed(0)} ms`);
      if (ours && want(o, 'keepalive')) {
        const floor = await startFloorRelay(o.benchJs, certs.files);
        // The same program with its busy-polling turned off: what sleeping and being woken up per request
        // costs on this machine.
        const noPoll = await startOurProxy('caged-proxy-no-poll', { ...files, proxyArgs: ['--busy-poll-us', '0'] });
        let hop: RunningPeer | undefined;
        try {
          await phase('keep-alive one hop: compile bench/hop.c', async () => void (hop = await startHop(o.root, dir)));
          for (let round = 1; round <= kaRounds; round++) {
            const of = ` (round ${round}/${kaRounds})`;
            await phase(`keep-alive our proxy intercepting${of}`, async () => addRun('intercept', await keepAlive(c, viaTarget(c, ours, 'localhost', certs.cageCaCert), ours.proc, ours)));
            await phase(`keep-alive our proxy, transparent (no proxy settings)${of}`, async () => addRun('transparent', await keepAlive(c, transparentTarget(c), ours.proc, ours)));
            await phase(`keep-alive our proxy intercepting, busy-polling off${of}`, async () => addRun('noPoll', await keepAlive(c, viaTarget(c, noPoll, 'localhost', certs.cageCaCert), noPoll.proc, noPoll)));
            await phase(`keep-alive bare TLS relay${of}`, async () => addRun('floor', await keepAlive(c, viaTarget(c, floor, 'localhost', certs.cageCaCert), floor.proc)));
            if (hop) {
              const h = hop;
              await phase(`keep-alive one hop (C byte relay)${of}`, async () => addRun('hop', await keepAlive(c, viaTarget(c, h, '127.0.0.1', c.certs.upstreamCaCert, 'localhost'), h.proc)));
            }
            await phase(`keep-alive our proxy tunnelling${of}`, async () => addRun('tunnel', await keepAlive(c, viaTarget(c, ours, TUNNEL_HOST, certs.upstreamCaCert), ours.proc, ours)));
            await phase(`keep-alive tinyproxy${of}`, async () => {
              const tp = await startTinyproxy(dir, [c.httpsPort]);
              try {
                addRun('tinyproxy', await keepAlive(c, viaTarget(c, tp, '127.0.0.1', c.certs.upstreamCaCert, 'localhost'), tp.proc));
              } finally {
                await stop(tp.proc);
              }
            });
            await phase(`keep-alive mitmproxy${of}`, async () => {
              const mp = await startMitmproxy(dir, certs.files.upstreamCaCert);
              try {
                addRun('mitmproxy', await keepAlive(c, viaTarget(c, mp, 'localhost', mp.caPem!), mp.proc));
              } finally {
                await stop(mp.proc);
              }
            });
            await phase(`keep-alive direct again${of}`, async () => addRun('direct', await keepAlive(c, directTarget(c, 'localhost'), undefined)));
          }
        } finally {
          await stop(floor.proc);
          await stop(noPoll.proc);
          if (hop) await stop(hop.proc);
        }
        for (const [k, runs] of Object.entries(kaRuns) as Array<[KaKey, KeepAliveResult[]]>) res.keepalive[k] = meanOfRuns(runs);
      }
      if (ours) {
        if (want(o, 'h2')) await phase('h2 multiplexed', async () => void (res.h2 = await h2Rows(c, ours)));
        if (want(o, 'first')) await phase('first request', async () => void (res.first = await firstRequests(c, ours)));
        if (want(o, 'bulk')) await phase('bulk', async () => void (res.bulk = await bulk(c, ours)));
        if (want(o, 'reload')) await phase('reload', async () => void (res.reload = await reloads(c, ours)));
      }
    } finally {
      if (ours) await stop(ours.proc);
    }
    if (want(o, 'memory')) await phase('memory', async () => void (res.memory = await memory(c)));
    if (want(o, 'docker')) {
      await phase('docker', async () => {
        res.docker = await runDockerPhase({ root: o.root, dir, log: o.log, quick: o.quick });
      });
    }
    if (want(o, 'keepalive')) {
      try {
        res.meta.mitmproxy = (await import('node:child_process')).execFileSync('mitmdump', ['--version'], { encoding: 'utf8' }).split('\n')[0];
        res.meta.tinyproxy = (await import('node:child_process')).execFileSync('tinyproxy', ['-v'], { encoding: 'utf8' }).trim();
      } catch {}
    }
    await stop(lg.proc);
    await stop(upstream);
    res.meta.loadavgEnd = os.loadavg().map((x) => round(x));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return res;
}

// ---------------------------------------------------------------------------------------------- targets

function directTarget(c: Ctx, servername: string): Target {
  return { name: 'direct', host: '127.0.0.1', port: c.httpsPort, servername, caPem: c.certs.upstreamCaCert };
}

/** The address the transparent listeners of our proxy bind (what the cage's DNS answers, in a cage). */
const TRANSPARENT_ADDR = '127.0.0.2';

/** A client without proxy settings whose lookup of "localhost" answered the proxy's address. */
function transparentTarget(c: Ctx): Target {
  return { name: 'transparent', host: TRANSPARENT_ADDR, port: c.httpsPort, servername: 'localhost', caPem: c.certs.cageCaCert };
}

function viaTarget(c: Ctx, p: RunningPeer, host: string, caPem: string, servername = host): Target {
  return { name: p.name, proxy: { host: '127.0.0.1', port: p.port }, host, port: c.httpsPort, servername, caPem };
}

// ---------------------------------------------------------------------------------------------- keep-alive

/** One row from several runs: mean req/s and CPU figures; sequential latency and memory of the first run. */
function meanOfRuns(runs: KeepAliveResult[]): KeepAliveResult {
  if (runs.length === 1) return runs[0];
  const mean = (f: (r: KeepAliveResult) => number | undefined): number | undefined => {
    const xs = runs.map(f);
    return xs.every((x) => x !== undefined) ? (xs as number[]).reduce((a, b) => a + b, 0) / xs.length : undefined;
  };
  const c = runs[0].cpu;
  const cpu: CpuFigures = {
    proxyUsPerReq: mean((r) => r.cpu.proxyUsPerReq),
    proxyCorePct: mean((r) => r.cpu.proxyCorePct),
    upstreamUsPerReq: mean((r) => r.cpu.upstreamUsPerReq) ?? c.upstreamUsPerReq,
    upstreamCorePct: mean((r) => r.cpu.upstreamCorePct) ?? c.upstreamCorePct,
    loadgenUsPerReq: mean((r) => r.cpu.loadgenUsPerReq) ?? c.loadgenUsPerReq,
    loadgenCorePct: mean((r) => r.cpu.loadgenCorePct) ?? c.loadgenCorePct,
    otherCorePct: mean((r) => r.cpu.otherCorePct) ?? c.otherCorePct,
  };
  return {
    ...runs[0],
    rps: mean((r) => r.rps)!,
    requests: runs.reduce((a, r) => a + r.requests, 0),
    seconds: runs.reduce((a, r) => a + r.seconds, 0),
    errors: runs.reduce((a, r) => a + r.errors, 0),
    reconnects: runs.reduce((a, r) => a + r.reconnects, 0),
    cpu,
    runsRps: runs.map((r) => r.rps),
  };
}

async function keepAlive(c: Ctx, target: Target, proxy: Started | undefined, ours?: OurProxy): Promise<KeepAliveResult> {
  const { o, lg } = c;
  const start = await lg.call<{ opened: number; lastError: string }>({ cmd: 'keepalive.start', target, conns: o.connections, path: '/tiny' }, 60000);
  if (start.opened < o.connections) {
    await lg.call({ cmd: 'keepalive.stop' });
    throw new Error(`${target.name}: only ${start.opened}/${o.connections} connections opened (${start.lastError})`);
  }
  await sleep(o.kaWarmMs);
  const s0 = await lg.call<KeepAliveSnap>({ cmd: 'keepalive.snap' });
  const u0 = sample(c.upstream.pid);
  const p0 = proxy ? sample(proxy.pid) : undefined;
  const l0 = sample(lg.proc.pid);
  const m0 = machineBusyMs();
  const e0 = ours?.eventLines();
  if (ours) eldStart(ours);
  await sleep(o.kaMs);
  const s1 = await lg.call<KeepAliveSnap & { lastError: string }>({ cmd: 'keepalive.snap' });
  const u1 = sample(c.upstream.pid);
  const p1 = proxy ? sample(proxy.pid) : undefined;
  const l1 = sample(lg.proc.pid);
  const m1 = machineBusyMs();
  const e1 = ours?.eventLines();
  const eventLoopDelay = ours ? await eldStop(ours) : undefined;
  await lg.call({ cmd: 'keepalive.stop' });
  const n = s1.count - s0.count;
  const secs = (s1.t - s0.t) / 1000;
  const wall = (u1.t - u0.t) / 1000;
  const per = (a: number, b: number) => ((b - a) * 1000) / Math.max(1, n);
  const pct = (a: number, b: number) => ((b - a) / 1000 / wall) * 100;
  const cpu: CpuFigures = {
    upstreamUsPerReq: per(u0.cpuMs, u1.cpuMs),
    upstreamCorePct: pct(u0.cpuMs, u1.cpuMs),
    loadgenUsPerReq: per(l0.cpuMs, l1.cpuMs),
    loadgenCorePct: pct(l0.cpuMs, l1.cpuMs),
    otherCorePct: pct(m0, m1) - pct(u0.cpuMs, u1.cpuMs) - pct(l0.cpuMs, l1.cpuMs) - (p0 && p1 ? pct(p0.cpuMs, p1.cpuMs) : 0),
  };
  if (p0 && p1) {
    cpu.proxyUsPerReq = per(p0.cpuMs, p1.cpuMs);
    cpu.proxyCorePct = pct(p0.cpuMs, p1.cpuMs);
  }
  const latency = await lg.call({ cmd: 'latency', target, path: '/tiny', warmup: 100, maxCount: 20000, maxMs: o.latencyMs }, 60000);
  const r: KeepAliveResult = {
    rps: n / secs,
    requests: n,
    seconds: secs,
    errors: s1.errors - s0.errors,
    reconnects: s1.reconnects - s0.reconnects,
    cpu,
    latency,
    proxyRssKb: p1?.rssKb,
    eventLoopDelay,
  };
  if (typeof e0 === 'number' && typeof e1 === 'number') r.eventLinesPerReq = (e1 - e0) / Math.max(1, n);
  if (r.errors) r.note = `last error: ${s1.lastError}`;
  o.log(
    `[bench]   ${target.name.padEnd(12)} ${r.rps.toFixed(0).padStart(6)} req/s  p50 ${latency.p50.toFixed(3)} ms  p99 ${latency.p99.toFixed(3)} ms` +
      `  cpu/req: proxy ${cpu.proxyUsPerReq?.toFixed(0) ?? '-'} µs, upstream ${cpu.upstreamUsPerReq.toFixed(0)} µs, loadgen ${cpu.loadgenUsPerReq.toFixed(0)} µs (${cpu.loadgenCorePct.toFixed(0)}% core)` +
      (r.eventLinesPerReq !== undefined ? `, event lines/req ${r.eventLinesPerReq.toFixed(2)}` : '') +
      (r.errors ? `  errors ${r.errors}` : ''),
  );
  return r;
}

// ---------------------------------------------------------------------------------------------- h2

/**
 * The h2 rows: one connection with H2_STREAMS requests in flight, direct, through our proxy (intercepting and
 * tunnelling) and through mitmproxy, one after the other. A proxy that answers the client's ALPN with
 * http/1.1 gets a row that says so instead of figures (not an error: it is what a build without HTTP/2 on
 * intercepted sessions does).
 */
async function h2Rows(c: Ctx, ours: OurProxy): Promise<NonNullable<Results['h2']>> {
  const { o } = c;
  const warmMs = o.kaWarmMs;
  const ms = o.quick ? o.kaMs : 3000;
  const at = (t: Target): Target => ({ ...t, port: c.h2Port });
  const row = async (key: keyof NonNullable<Results['h2']>, t: Target, proc: Started | undefined): Promise<H2Result> => {
    const seen0 = await upstreamStats<{ h2: number; http1: number }>(c, '/h2-stats');
    const p0 = proc ? sample(proc.pid) : undefined;
    const u0 = sample(c.upstream.pid);
    const r = await c.lg.call<H2LoadResult>({ cmd: 'h2', target: t, path: '/tiny', streams: H2_STREAMS, warmMs, ms }, 60000);
    const u1 = sample(c.upstream.pid);
    const p1 = proc ? sample(proc.pid) : undefined;
    const seen1 = await upstreamStats<{ h2: number; http1: number }>(c, '/h2-stats');
    const legs = [seen1.h2 > seen0.h2 ? 'h2' : '', seen1.http1 > seen0.http1 ? 'http/1.1' : ''].filter(Boolean);
    const out: H2Result = { ...r, streams: H2_STREAMS, upstreamProtocol: legs.join('+') || 'none', upstreamCorePct: ((u1.cpuMs - u0.cpuMs) / (u1.t - u0.t)) * 100 };
    if (r.seconds > 0) out.loadgenCorePct = (r.loadgenCpuUs / 1000 / (r.seconds * 1000)) * 100;
    if (r.protocol !== 'h2') {
      o.log(`[bench]   h2 ${key.padEnd(10)} the connection negotiated ${r.protocol}, not h2: no h2 figures for this row`);
      return out;
    }
    out.rps = r.requests / r.seconds;
    // Proxy CPU over the whole call, spread evenly over warm-up and window (the load is steady throughout).
    if (p0 && p1 && r.requests > 0) {
      out.proxyUsPerReq = ((p1.cpuMs - p0.cpuMs) * 1000) / Math.max(1, r.requests) / ((warmMs + ms) / ms);
      out.proxyCorePct = ((p1.cpuMs - p0.cpuMs) / (p1.t - p0.t)) * 100;
    }
    // Percentiles of no samples are NaN here and null after the IPC hop (all streams failed).
    const ms3 = (x: number | null) => (typeof x === 'number' && Number.isFinite(x) ? x.toFixed(3) : '-');
    o.log(
      `[bench]   h2 ${key.padEnd(10)} ${out.rps.toFixed(0).padStart(6)} req/s  p50 ${ms3(r.latency.p50)} ms  p99 ${ms3(r.latency.p99)} ms  upstream got ${out.upstreamProtocol}` +
        (out.proxyUsPerReq !== undefined ? `  proxy ${out.proxyUsPerReq.toFixed(0)} µs/req` : '') +
        (r.errors ? `  errors ${r.errors} (${r.lastError})` : '') +
        (r.requests === 0 ? `  NO STREAM COMPLETED (${r.inFlight} still waiting at the end of the window)` : ''),
    );
    return out;
  };
  const out: NonNullable<Results['h2']> = {};
  const direct = await row('direct', at(directTarget(c, 'localhost')), undefined);
  if (direct.protocol !== 'h2') throw new Error(`the h2 upstream negotiated ${direct.protocol} with a direct client`);
  out.intercept = await row('intercept', at(viaTarget(c, ours, 'localhost', c.certs.cageCaCert)), ours.proc);
  out.tunnel = await row('tunnel', at(viaTarget(c, ours, TUNNEL_HOST, c.certs.upstreamCaCert)), ours.proc);
  const mp = await startMitmproxy(c.dir, c.certs.files.upstreamCaCert);
  try {
    out.mitmproxy = await row('mitmproxy', at(viaTarget(c, mp, 'localhost', mp.caPem!)), mp.proc);
  } finally {
    await stop(mp.proc);
  }
  // Direct before and after the others (its req/s the mean, its latency the first run's), as in keep-alive.
  const again = await row('direct', at(directTarget(c, 'localhost')), undefined);
  out.direct = { ...direct, rps: (direct.rps! + again.rps!) / 2, runsRps: [direct.rps!, again.rps!] };
  return out;
}

// ---------------------------------------------------------------------------------------------- first request

/** SIGUSR2 to our proxy starts / stops the event-loop-delay histogram of the bench preload. */
function eldStart(p: OurProxy): void {
  try {
    fs.rmSync(p.eldFile, { force: true });
    process.kill(p.proc.pid, 'SIGUSR2');
  } catch {}
}

async function eldStop(p: OurProxy): Promise<EventLoopDelay | undefined> {
  try {
    process.kill(p.proc.pid, 'SIGUSR2');
  } catch {
    return undefined;
  }
  for (let i = 0; i < 100; i++) {
    try {
      const v = JSON.parse(fs.readFileSync(p.eldFile, 'utf8')) as EventLoopDelay;
      fs.rmSync(p.eldFile, { force: true });
      return v;
    } catch {
      await sleep(20);
    }
  }
  return undefined;
}

/**
 * Paced sequential requests on one warm connection through the proxy, run from the orchestrator (its own
 * event loop, separate from the load generator's): a stall in the proxy shows up as one slow request.
 */
class Probe {
  samples: number[] = [];
  errors = 0;
  private running = true;
  private readonly done: Promise<void>;
  constructor(t: Target, intervalMs: number) {
    this.done = (async () => {
      const { socket } = await openTls(t);
      const conn = new Conn(socket);
      const req = requestBytes(t, 'GET', '/tiny');
      try {
        for (let i = 0; i < 20; i++) await conn.request(req);
        while (this.running) {
          const t0 = nowMs();
          const r = await conn.request(req);
          this.samples.push(nowMs() - t0);
          if (r.status !== 200) this.errors++;
          await sleep(intervalMs);
        }
      } finally {
        conn.close();
      }
    })();
    this.done.catch(() => {});
  }
  async stop(): Promise<Percentiles & { errors: number }> {
    this.running = false;
    await this.done;
    return { ...percentiles(this.samples), errors: this.errors };
  }
}

async function firstRequests(c: Ctx, ours: OurProxy): Promise<NonNullable<Results['first']>> {
  const { o, lg } = c;
  const run = crypto.randomBytes(3).toString('hex');
  const name = (label: string) => `${label}-${run}.${BENCH_DOMAIN}`;
  const direct = (host: string): Target => ({ ...directTarget(c, host), name: 'direct' });
  const via = (host: string): Target => viaTarget(c, ours, host, c.certs.cageCaCert);
  // Warm both paths (JIT, code caches) with hosts that are not part of the sample.
  await lg.call({ cmd: 'batch', items: [direct(name('warm-d')), via(name('warm-p')), via(name('warm-p2')), direct(name('warm-d2'))], concurrency: 1, path: '/tiny' });

  // Interleaved: a direct first request, a first request to a never-seen host through the proxy, and a
  // second new connection to that same host (leaf cached, upstream connection pooled).
  const probe = new Probe(viaTarget(c, ours, 'localhost', c.certs.cageCaCert), 2);
  await sleep(100);
  eldStart(ours);
  // Reference: the same histogram in this (nearly idle) process shows the machine's own scheduling noise.
  const ref = monitorEventLoopDelay({ resolution: 1 });
  ref.enable();
  const items: Target[] = [];
  for (let i = 0; i < o.firstHosts; i++) {
    const h = name(`h${i}`);
    items.push(direct(name(`d${i}`)), via(h), via(h));
  }
  const out = await lg.call<BatchItemResult[]>({ cmd: 'batch', items, concurrency: 1, path: '/tiny' }, 300000);
  const eventLoopDelay = await eldStop(ours);
  ref.disable();
  const referenceEventLoopDelay = { max: ref.max / 1e6, p50: ref.percentile(50) / 1e6, p99: ref.percentile(99) / 1e6, mean: ref.mean / 1e6, count: ref.count };
  const stallProbe = await probe.stop();
  const errors: string[] = [];
  const d: number[] = [];
  const pNew: BatchItemResult[] = [];
  const pSeen: number[] = [];
  out.forEach((r, i) => {
    if (!r.ok) errors.push(`${items[i].name} ${items[i].servername}: ${r.error ?? r.status}`);
    else if (i % 3 === 0) d.push(r.ms);
    else if (i % 3 === 1) pNew.push(r);
    else pSeen.push(r.ms);
  });
  const p50 = (xs: number[]) => percentiles(xs).p50;
  const breakdownP50 = {
    tcp: p50(pNew.map((r) => r.timings!.tcpMs)),
    connect: p50(pNew.map((r) => r.timings!.connectMs)),
    tls: p50(pNew.map((r) => r.timings!.tlsMs)),
    request: p50(pNew.map((r) => r.ms - r.timings!.tcpMs - r.timings!.connectMs - r.timings!.tlsMs)),
  };

  // A seen host whose pooled upstream connection the upstream has closed (as servers do with idle
  // keep-alive connections): the leaf is cached, the upstream connection is new, and the proxy resumes the
  // TLS session it kept for that host. The upstream counts its handshakes and the resumed ones.
  const pReconnect: number[] = [];
  const seen0 = await upstreamTls(c, '/tls-stats');
  const rc0 = sample(ours.proc.pid!);
  for (let i = 0; i < Math.min(o.firstHosts, 100); i++) {
    await upstreamTls(c, '/close-idle');
    await sleep(20); // the proxy sees the close before the next CONNECT
    const [r] = await lg.call<BatchItemResult[]>({ cmd: 'batch', items: [via(name(`h${i}`))], concurrency: 1, path: '/tiny' });
    if (r.ok) pReconnect.push(r.ms);
    else errors.push(`reconnect h${i}: ${r.error ?? r.status}`);
  }
  const seen1 = await upstreamTls(c, '/tls-stats');
  const rc1 = sample(ours.proc.pid!);
  const interceptReconnect = {
    ...percentiles(pReconnect),
    proxyCpuMs: (rc1.cpuMs - rc0.cpuMs) / Math.max(1, pReconnect.length),
    upstream: { handshakes: seen1.handshakes - seen0.handshakes, resumed: seen1.resumed - seen0.resumed },
  };

  // Burst: concurrent first connections to one never-seen host must all see the same (single) leaf.
  // Baseline: the same number of concurrent new connections straight to the upstream.
  const bd = await lg.call<BatchItemResult[]>({ cmd: 'batch', items: Array.from({ length: o.burst }, () => direct(name('burst-d'))), concurrency: o.burst, path: '/tiny' });
  const bh = name('burst');
  const tls0 = await upstreamTls(c, '/tls-stats');
  const bout = await lg.call<BatchItemResult[]>({ cmd: 'batch', items: Array.from({ length: o.burst }, () => via(bh)), concurrency: o.burst, path: '/tiny' });
  const tls1 = await upstreamTls(c, '/tls-stats');
  const burst = {
    n: o.burst,
    upstream: { handshakes: tls1.handshakes - tls0.handshakes, resumed: tls1.resumed - tls0.resumed },
    ok: bout.filter((r) => r.ok).length,
    distinctCerts: new Set(bout.filter((r) => r.fingerprint).map((r) => r.fingerprint)).size,
    ms: percentiles(bout.map((r) => r.ms)),
    directMs: percentiles(bd.map((r) => r.ms)),
    errors: [...new Set([...bout, ...bd].filter((r) => !r.ok).map((r) => r.error ?? String(r.status)))],
  };

  // Cache: a set of hosts, then cacheHosts other hosts, then the first set again: same certificates?
  let cache: { filled: number; revisited: number; sameCert: number } | undefined;
  if (o.cacheHosts > 0) {
    const probeHosts = Array.from({ length: 20 }, (_, i) => via(name(`c-keep${i}`)));
    const first = await lg.call<BatchItemResult[]>({ cmd: 'batch', items: probeHosts, concurrency: 4, path: '/tiny' });
    const fill = await lg.call<BatchItemResult[]>({ cmd: 'batch', items: Array.from({ length: o.cacheHosts }, (_, i) => via(name(`c${i}`))), concurrency: 8, path: '/tiny' }, 300000);
    const again = await lg.call<BatchItemResult[]>({ cmd: 'batch', items: probeHosts, concurrency: 4, path: '/tiny' });
    cache = {
      filled: fill.filter((r) => r.ok).length,
      revisited: again.filter((r) => r.ok).length,
      sameCert: again.filter((r, i) => r.ok && r.fingerprint && r.fingerprint === first[i].fingerprint).length,
    };
  }
  // The synchronous step a never-seen host costs the proxy's event loop, timed directly (same code).
  const minter = new LeafMinter(c.certs.cageCaCert, c.certs.cageCaKey);
  const cc = new CertCache(minter, 4000);
  // A new host costs the event loop several separate synchronous steps (fill the certificate template;
  // assemble the signed certificate when the thread-pool signature returns; then, each in its own turn,
  // create the secure context, load the certificate, load the key). Each is timed with the cache's tracer; the figure per host is its longest step.
  // CPU time (not wall time) so that preemption by other processes on a busy machine does not count.
  const mintTimes: number[] = [];
  const mintWall: number[] = [];
  const stepCpu: Record<string, number[]> = { template: [], assemble: [], context: [], cert: [], key: [] };
  let cur: { c0: NodeJS.CpuUsage; t0: number } | undefined;
  let hostMax = 0;
  let hostMaxWall = 0;
  cc.tracer = {
    begin: () => {
      cur = { c0: process.cpuUsage(), t0: nowMs() };
    },
    end: (step) => {
      if (!cur) return;
      const cu = process.cpuUsage(cur.c0);
      const cpu = (cu.user + cu.system) / 1000;
      stepCpu[step].push(cpu);
      hostMax = Math.max(hostMax, cpu);
      hostMaxWall = Math.max(hostMaxWall, nowMs() - cur.t0);
      cur = undefined;
    },
  };
  for (let i = 0; i < Math.max(50, o.firstHosts); i++) {
    hostMax = 0;
    hostMaxWall = 0;
    await cc.get(`m${i}-${run}.${BENCH_DOMAIN}`);
    mintWall.push(hostMaxWall);
    mintTimes.push(hostMax);
    if (i % 10 === 9) await sleep(1);
  }
  cc.tracer = undefined;
  const mintStep = percentiles(mintTimes.slice(5));
  const mintStepWall = percentiles(mintWall.slice(5));
  const result = {
    hosts: o.firstHosts,
    mintStep,
    mintStepWall,
    mintSteps: Object.fromEntries(Object.entries(stepCpu).filter(([, v]) => v.length > 5).map(([k, v]) => [k, percentiles(v.slice(5))])),
    direct: percentiles(d),
    interceptNewHost: percentiles(pNew.map((r) => r.ms)),
    interceptSeenHost: percentiles(pSeen),
    interceptReconnect,
    breakdownP50,
    errors: errors.slice(0, 10),
    stallProbe,
    eventLoopDelay,
    referenceEventLoopDelay,
    burst,
    cache,
  };
  o.log(
    `[bench]   first request p50: direct ${result.direct.p50.toFixed(2)} ms, new host via proxy ${result.interceptNewHost.p50.toFixed(2)} ms, ` +
      `seen host ${result.interceptSeenHost.p50.toFixed(2)} ms, seen host with a new upstream connection ${interceptReconnect.p50.toFixed(2)} ms ` +
      `(${interceptReconnect.upstream.resumed}/${interceptReconnect.upstream.handshakes} upstream handshakes resumed, proxy CPU ${interceptReconnect.proxyCpuMs.toFixed(2)} ms each); proxy event-loop delay max ${eventLoopDelay?.max.toFixed(1) ?? '-'} ms; ` +
      `burst ${burst.n} → ${burst.distinctCerts} cert(s), ${burst.upstream.handshakes} upstream handshakes (${burst.upstream.resumed} resumed), p50 ${burst.ms.p50.toFixed(1)} ms (direct ${burst.directMs.p50.toFixed(1)} ms)` +
      (cache ? `; cache ${cache.sameCert}/${cache.revisited} kept after ${cache.filled} more hosts` : ''),
  );
  return result;
}

/** The upstream's TLS handshake counters (`/tls-stats`), or after closing its idle connections (`/close-idle`). */
function upstreamTls(c: Ctx, path: '/tls-stats' | '/close-idle'): Promise<{ handshakes: number; resumed: number }> {
  return upstreamStats(c, path);
}

/** A JSON answer of the upstream's plain listener (its counters). */
function upstreamStats<T>(c: Ctx, path: string): Promise<T> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port: c.httpPort, path, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => {
          try {
            resolve(JSON.parse(body) as T);
          } catch (e) {
            reject(e as Error);
          }
        });
      })
      .on('error', reject);
  });
}

// ---------------------------------------------------------------------------------------------- bulk

async function bulk(c: Ctx, ours: RunningPeer): Promise<NonNullable<Results['bulk']>> {
  const { o, lg } = c;
  const out: NonNullable<Results['bulk']> = {};
  const targets: Array<['direct' | 'intercept' | 'tunnel', Target, Started | undefined]> = [
    ['direct', directTarget(c, 'localhost'), undefined],
    ['intercept', viaTarget(c, ours, 'localhost', c.certs.cageCaCert), ours.proc],
    ['tunnel', viaTarget(c, ours, TUNNEL_HOST, c.certs.upstreamCaCert), ours.proc],
  ];
  // Warm-up (JIT, TCP windows, allocator): a short transfer each way on every path, not measured.
  for (const [key, t] of targets) {
    for (const dir of ['down', 'up'] as const) {
      await lg.call({ cmd: 'bulk', target: t, dir, bytes: 16 * 1048576 }, 600000).catch((e: Error) => {
        throw new Error(`${key} ${dir} (warm-up): ${e.message}`);
      });
    }
  }
  // Rounds interleave the paths (direct, intercepting, tunnel, direct, …) so that a machine drifting over
  // the phase affects them alike; each figure is total bytes over total time of its rounds.
  const rounds = o.quick ? 1 : 3;
  const sum = (a: BulkResult | undefined, b: BulkResult): BulkResult =>
    a
      ? {
          bytes: a.bytes + b.bytes,
          ms: a.ms + b.ms,
          mbPerS: (a.bytes + b.bytes) / 1e3 / (a.ms + b.ms),
          loadgenCpuMs: a.loadgenCpuMs + b.loadgenCpuMs,
          proxyCpuMs: a.proxyCpuMs !== undefined && b.proxyCpuMs !== undefined ? a.proxyCpuMs + b.proxyCpuMs : undefined,
        }
      : b;
  for (let round = 0; round < rounds; round++) {
    for (const [key, t, proc] of targets) {
      const one = async (dir: 'down' | 'up'): Promise<BulkResult> => {
        const p0 = proc ? sample(proc.pid) : undefined;
        const r = await lg
          .call<{ status: number; bytes: number; ms: number; mbPerS: number; loadgenCpuMs: number }>({ cmd: 'bulk', target: t, dir, bytes: o.bulkBytes }, 600000)
          .catch((e: Error) => {
            throw new Error(`${key} ${dir}: ${e.message}`);
          });
        const p1 = proc ? sample(proc.pid) : undefined;
        if (r.status !== 200 || r.bytes !== o.bulkBytes) throw new Error(`${key} ${dir}: status ${r.status}, ${r.bytes}/${o.bulkBytes} bytes`);
        return { mbPerS: r.mbPerS, ms: r.ms, bytes: r.bytes, loadgenCpuMs: r.loadgenCpuMs, proxyCpuMs: p0 && p1 ? p1.cpuMs - p0.cpuMs : undefined };
      };
      const down = await one('down');
      const up = await one('up');
      out[key] = { down: sum(out[key]?.down, down), up: sum(out[key]?.up, up) };
      o.log(`[bench]   bulk ${key.padEnd(9)} round ${round + 1}/${rounds}: down ${down.mbPerS.toFixed(0)} MB/s, up ${up.mbPerS.toFixed(0)} MB/s`);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------- memory

async function memory(c: Ctx): Promise<NonNullable<Results['memory']>> {
  const { o, lg } = c;
  const p = await startOurProxy('caged-proxy-mem', c.files);
  try {
    await sleep(1000);
    const idleStartKb = sample(p.proc.pid).rssKb;
    const t = viaTarget(c, p, 'localhost', c.certs.cageCaCert);
    await lg.call({ cmd: 'batch', items: [t, t], concurrency: 1, path: '/tiny' });
    await sleep(500);
    const idleWarmKb = sample(p.proc.pid).rssKb;
    const fd0 = { proxy: fdCount(p.proc.pid), upstream: fdCount(c.upstream.pid) };
    const opened = await lg.call<{ open: number; errors: number; lastError: string }>({ cmd: 'idle.open', target: t, path: '/tiny', n: o.idleConns, concurrency: 32 }, 300000);
    await sleep(1500);
    const withIdleKb = sample(p.proc.pid).rssKb;
    const fd1 = { proxy: fdCount(p.proc.pid), upstream: fdCount(c.upstream.pid) };
    await lg.call({ cmd: 'idle.close' });
    await sleep(500);
    const afterCloseKb = sample(p.proc.pid).rssKb;
    // Baseline: what 1000 idle keep-alive TLS connections cost a plain Node https server (a fresh upstream).
    const fresh = spawnTracked('upstream-mem', process.execPath, [o.benchJs, '--role', 'upstream', '--cert', c.certs.files.upstreamCert, '--key', c.certs.files.upstreamKey]);
    let u0 = 0;
    let u1 = 0;
    let dOpen = { open: 0 };
    try {
      const fp = JSON.parse(await firstLine(fresh, 10000)) as { httpsPort: number };
      const ft: Target = { ...directTarget(c, 'localhost'), port: fp.httpsPort };
      await lg.call({ cmd: 'batch', items: [ft, ft], concurrency: 1, path: '/tiny' });
      await sleep(500);
      u0 = sample(fresh.pid).rssKb;
      dOpen = await lg.call<{ open: number; errors: number; lastError: string }>({ cmd: 'idle.open', target: ft, path: '/tiny', n: o.idleConns, concurrency: 32 }, 300000);
      await sleep(1500);
      u1 = sample(fresh.pid).rssKb;
      await lg.call({ cmd: 'idle.close' });
    } finally {
      await stop(fresh);
    }
    const r = {
      nodeHttpsPerConnKb: (u1 - u0) / Math.max(1, dOpen.open),
      idleStartKb,
      idleWarmKb,
      withIdleKb,
      idleConns: opened.open,
      perConnKb: (withIdleKb - idleWarmKb) / Math.max(1, opened.open),
      errors: opened.errors,
      lastError: opened.errors ? opened.lastError : undefined,
      afterCloseKb,
      proxySocketsOpened: fd1.proxy - fd0.proxy,
      upstreamConnsHeld: fd1.upstream - fd0.upstream,
    };
    o.log(`[bench]   memory: idle ${(idleStartKb / 1024).toFixed(1)} MB, warm ${(idleWarmKb / 1024).toFixed(1)} MB, ${r.idleConns} idle conns ${(withIdleKb / 1024).toFixed(1)} MB → ${r.perConnKb.toFixed(1)} KB/conn`);
    return r;
  } finally {
    await stop(p.proc);
  }
}

// ---------------------------------------------------------------------------------------------- reload

/** One plain-HTTP keep-alive connection to the proxy, for absolute-form requests. */
class PlainProxyConn {
  private sock: net.Socket | undefined;
  private waiting: ((r: ResponseDone) => void) | undefined;
  private failing: ((e: Error) => void) | undefined;
  constructor(private readonly port: number) {}
  private open(): Promise<net.Socket> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port: this.port });
      s.setNoDelay(true);
      const parser = new ResponseParser((r) => {
        const w = this.waiting;
        this.waiting = this.failing = undefined;
        w?.(r);
      });
      s.on('data', (d: Buffer) => {
        try {
          parser.feed(d);
        } catch (e) {
          s.destroy(e as Error);
        }
      });
      const fail = (e: Error) => {
        if (this.sock === s) this.sock = undefined;
        const f = this.failing;
        this.waiting = this.failing = undefined;
        f?.(e);
      };
      s.on('error', fail);
      s.on('close', () => fail(new Error('closed')));
      s.once('connect', () => resolve(s));
      s.once('error', reject);
    });
  }
  async get(url: string, hostHeader: string): Promise<ResponseDone> {
    if (!this.sock || this.sock.destroyed) this.sock = await this.open();
    const s = this.sock;
    return new Promise((resolve, reject) => {
      this.waiting = resolve;
      this.failing = reject;
      s.write(`GET ${url} HTTP/1.1\r\nHost: ${hostHeader}\r\nUser-Agent: caged-bench\r\n\r\n`);
    });
  }
  close(): void {
    this.sock?.destroy();
  }
}

async function reloads(c: Ctx, ours: OurProxy): Promise<NonNullable<Results['reload']>> {
  const { o } = c;
  const run = crypto.randomBytes(3).toString('hex');
  const samples: number[] = [];
  const errors: string[] = [];
  const conn = new PlainProxyConn(ours.port);
  try {
    for (let i = 0; i < o.reloads; i++) {
      const host = `reload${i}-${run}.${BENCH_DOMAIN}`;
      const url = `http://${host}:${c.httpPort}/tiny`;
      const hh = `${host}:${c.httpPort}`;
      const before = await conn.get(url, hh);
      if (before.status !== 403) {
        errors.push(`${host} answered ${before.status} before it was allowed`);
        continue;
      }
      c.extraAllowed.push({ host, port: c.httpPort });
      const tmp = `${c.files.policyFile}.tmp`;
      fs.writeFileSync(tmp, ourPolicy({ upstreamPort: c.httpsPort, h2Port: c.h2Port, extra: c.extraAllowed }));
      fs.renameSync(tmp, c.files.policyFile);
      const t0 = nowMs();
      process.kill(ours.proc.pid, 'SIGHUP');
      let ok = false;
      while (nowMs() - t0 < 5000) {
        const r = await conn.get(url, hh).catch(() => undefined);
        if (r?.status === 200) {
          samples.push(nowMs() - t0);
          ok = true;
          break;
        }
      }
      if (!ok) errors.push(`${host} still not allowed 5 s after SIGHUP`);
      await sleep(100);
    }
  } finally {
    conn.close();
  }
  const p = percentiles(samples);
  o.log(`[bench]   reload: ${samples.map((x) => x.toFixed(2)).join(', ')} ms`);
  return { samplesMs: samples.map((x) => round(x, 3)), p50: p.p50, max: p.max, errors };
}

// ---------------------------------------------------------------------------------------------- A/B (dev)

/**
 * Developer A/B of proxy builds (not part of the report): CAGED_BENCH_AB="label=path/to/proxy.js[ node-args…][ -- proxy-args…],…"
 * runs the intercepting keep-alive row (and with CAGED_BENCH_AB_BULK=1 the intercepted bulk transfer) for
 * each build in turn, CAGED_BENCH_AB_ROUNDS times (default 2), and logs one line per build and round.
 */
async function abRounds(c: Ctx, spec: string): Promise<void> {
  const variants = spec.split(',').map((v) => {
    const eq = v.indexOf('=');
    const label = v.slice(0, eq);
    const rest = v.slice(eq + 1);
    const [js, ...args] = rest.trim().split(/\s+/);
    const dd = args.indexOf('--');
    const nodeArgs = dd >= 0 ? args.slice(0, dd) : args;
    const proxyArgs = dd >= 0 ? args.slice(dd + 1) : [];
    return { label, js: path.resolve(js), nodeArgs, proxyArgs };
  });
  const rounds = Number(process.env.CAGED_BENCH_AB_ROUNDS ?? 2);
  const withBulk = process.env.CAGED_BENCH_AB_BULK === '1';
  for (let r = 0; r < rounds; r++) {
    for (const v of variants) {
      const ours = await startOurProxy(`ab-${v.label}`, { ...c.files, proxyJs: v.js, nodeArgs: v.nodeArgs, proxyArgs: v.proxyArgs });
      try {
        const t = viaTarget(c, ours, 'localhost', c.certs.cageCaCert);
        if (process.env.CAGED_BENCH_AB_KA !== '0') {
          const k = await keepAlive(c, t, ours.proc, ours);
          c.o.log(`[ab] round ${r} ${v.label.padEnd(10)} ka ${k.rps.toFixed(0).padStart(6)} req/s  proxy ${k.cpu.proxyUsPerReq?.toFixed(1)} µs/req ${k.cpu.proxyCorePct?.toFixed(0)}%  p50 ${k.latency.p50.toFixed(3)}  other ${k.cpu.otherCorePct.toFixed(0)}%  rss ${((k.proxyRssKb ?? 0) / 1024).toFixed(1)} MB`);
        }
        if (withBulk) {
          for (const dir of ['down', 'up'] as const) {
            await c.lg.call({ cmd: 'bulk', target: t, dir, bytes: 16 * 1048576 }, 600000);
            const p0 = sample(ours.proc.pid);
            const b = await c.lg.call<{ mbPerS: number; bytes: number }>({ cmd: 'bulk', target: t, dir, bytes: c.o.bulkBytes }, 600000);
            const p1 = sample(ours.proc.pid);
            const d = await c.lg.call<{ mbPerS: number }>({ cmd: 'bulk', target: directTarget(c, 'localhost'), dir, bytes: c.o.bulkBytes }, 600000);
            c.o.log(`[ab] round ${r} ${v.label.padEnd(10)} bulk ${dir.padEnd(4)} ${b.mbPerS.toFixed(0).padStart(5)} MB/s  direct ${d.mbPerS.toFixed(0)} MB/s  ratio ${(b.mbPerS / d.mbPerS).toFixed(3)}  proxy ${((p1.cpuMs - p0.cpuMs) / (b.bytes / 1e6)).toFixed(2)} s/GB`);
          }
        }
      } finally {
        await stop(ours.proc);
      }
    }
  }
}
