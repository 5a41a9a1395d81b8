// --profile: runs the caged proxy (dist/proxy.js) under `node --cpu-prof` with the keep-alive intercepting
// load, then prints its hottest functions by self and by inclusive time, mapped back to src/ through the
// bundle's source map. The raw profile is kept in test-results/ for Chrome DevTools.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Target } from './common';
import { sleep } from './common';
import { TUNNEL_HOST, startOurProxy } from './peers';
import { registerTempDir, sample, stop } from './procs';
import { startBenchBase, type BenchOptions } from './run';
import { SourceMap } from './sourcemap';

interface ProfNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface HotSpot {
  key: string;
  selfPct: number;
  totalPct: number;
}

export function summarize(prof: Profile, map: SourceMap | undefined, bundleUrlSuffix: string): { self: HotSpot[]; total: HotSpot[]; buckets: Record<string, number>; samples: number } {
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of prof.nodes) for (const ch of n.children ?? []) parent.set(ch, n.id);
  const keyCache = new Map<number, string>();
  const keyOf = (n: ProfNode): string => {
    let k = keyCache.get(n.id);
    if (k) return k;
    const cf = n.callFrame;
    const name = cf.functionName || '(anonymous)';
    if (!cf.url) k = name;
    else if (cf.url.endsWith(bundleUrlSuffix) && map) {
      const pos = map.lookup(cf.lineNumber, cf.columnNumber);
      k = pos ? `${name} ${pos.source.replace(/^(\.\.\/)+/, '')}:${pos.line}` : `${name} ${path.basename(cf.url)}:${cf.lineNumber + 1}`;
    } else k = `${name} ${cf.url.replace(/^file:\/\//, '').replace(/^.*node_modules\//, 'node_modules/')}:${cf.lineNumber + 1}`;
    keyCache.set(n.id, k);
    return k;
  };
  // Sample weights: time deltas (µs) attributed to the sampled node.
  const selfT = new Map<string, number>();
  const totalT = new Map<string, number>();
  const buckets: Record<string, number> = {};
  let all = 0;
  const bucketOf = (k: string): string => {
    if (k === '(idle)' || k === '(program)' || k === '(garbage collector)') return k;
    if (k.includes(' node:') || k.includes(' internal/')) return 'node internals (JS)';
    if (k.includes('node_modules/')) return k.includes('node-forge') ? 'node-forge' : 'node_modules';
    if (k.includes('src/')) return 'src/' + (k.split(' src/')[1]?.split('/')[0] ?? '');
    return 'native/other';
  };
  for (let i = 0; i < prof.samples.length; i++) {
    const dt = prof.timeDeltas[i + 1] ?? prof.timeDeltas[i] ?? 0;
    const n = byId.get(prof.samples[i]);
    if (!n) continue;
    const k = keyOf(n);
    all += dt;
    selfT.set(k, (selfT.get(k) ?? 0) + dt);
    const b = bucketOf(k);
    buckets[b] = (buckets[b] ?? 0) + dt;
    const seen = new Set<string>();
    for (let id: number | undefined = n.id; id !== undefined; id = parent.get(id)) {
      const kk = keyOf(byId.get(id)!);
      if (seen.has(kk)) continue;
      seen.add(kk);
      totalT.set(kk, (totalT.get(kk) ?? 0) + dt);
    }
  }
  const busy = all - (selfT.get('(idle)') ?? 0);
  const pct = (x: number) => (100 * x) / Math.max(1, busy);
  const list = (m: Map<string, number>) =>
    [...m]
      .filter(([k]) => k !== '(idle)' && k !== '(root)')
      .sort((a, b) => b[1] - a[1])
      .map(([key]) => ({ key, selfPct: pct(selfT.get(key) ?? 0), totalPct: pct(totalT.get(key) ?? 0) }));
  const b2: Record<string, number> = {};
  for (const [k, v] of Object.entries(buckets)) if (k !== '(idle)') b2[k] = Math.round(pct(v) * 10) / 10;
  return { self: list(selfT).slice(0, 30), total: list(totalT).slice(0, 40), buckets: b2, samples: prof.samples.length };
}

export async function runProfile(o: BenchOptions): Promise<number> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'caged-bench-prof-'));
  registerTempDir(dir);
  const profDir = path.join(dir, 'prof');
  fs.mkdirSync(profDir);
  const envMode = process.env.CAGED_BENCH_PROFILE_TARGET;
  const mode = envMode === 'tunnel' || envMode === 'bulk' ? envMode : 'intercept';
  try {
    const { certs, upstream, ports, lg, files } = await startBenchBase(o, dir);
    const ours = await startOurProxy('caged-proxy-prof', { ...files, nodeArgs: ['--cpu-prof', '--cpu-prof-dir', profDir] });
    const host = mode === 'tunnel' ? TUNNEL_HOST : 'localhost';
    const target: Target = { name: `caged-proxy ${mode}`, proxy: { host: '127.0.0.1', port: ours.port }, host, port: ports.httpsPort, servername: host, caPem: mode === 'tunnel' ? certs.upstreamCaCert : certs.cageCaCert };
    let n: number;
    let rps: number;
    let usPerReq: number;
    let secs: number;
    let what: string;
    if (mode === 'bulk') {
      // Intercepted bulk transfer: 256 MiB down, then 256 MiB up, one connection each.
      const p0 = sample(ours.proc.pid);
      const t0 = Date.now();
      let bytes = 0;
      for (const dir of ['down', 'up'] as const) {
        const r = await lg.call<{ bytes: number; mbPerS: number }>({ cmd: 'bulk', target, dir, bytes: o.bulkBytes }, 600000);
        bytes += r.bytes;
        console.log(`bulk ${dir}: ${r.mbPerS.toFixed(0)} MB/s`);
      }
      const p1 = sample(ours.proc.pid);
      secs = (Date.now() - t0) / 1000;
      n = bytes;
      rps = bytes / 1e6 / secs;
      usPerReq = (p1.cpuMs - p0.cpuMs) / 1000 / (bytes / 1e9);
      what = `${rps.toFixed(0)} MB/s, ${usPerReq.toFixed(2)} s proxy CPU per GB`;
    } else {
      const start = await lg.call<{ opened: number; lastError: string }>({ cmd: 'keepalive.start', target, conns: o.connections, path: '/tiny' });
      if (start.opened < o.connections) throw new Error(`only ${start.opened} connections: ${start.lastError}`);
      secs = Math.max(3, o.kaMs / 1000);
      const s0 = await lg.call<{ count: number; t: number }>({ cmd: 'keepalive.snap' });
      const p0 = sample(ours.proc.pid);
      await sleep(secs * 1000);
      const s1 = await lg.call<{ count: number; t: number }>({ cmd: 'keepalive.snap' });
      const p1 = sample(ours.proc.pid);
      await lg.call({ cmd: 'keepalive.stop' });
      n = s1.count - s0.count;
      rps = n / ((s1.t - s0.t) / 1000);
      usPerReq = ((p1.cpuMs - p0.cpuMs) * 1000) / Math.max(1, n);
      what = `${rps.toFixed(0)} req/s, ${usPerReq.toFixed(0)} µs proxy CPU per request`;
    }
    await stop(ours.proc, 10000);
    await stop(lg.proc);
    await stop(upstream);
    const file = fs.readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
    if (!file) throw new Error('the proxy wrote no .cpuprofile (did it exit gracefully on SIGTERM?)');
    const keep = path.join(o.root, 'test-results', `proxy-${mode}.cpuprofile`);
    fs.mkdirSync(path.dirname(keep), { recursive: true });
    fs.copyFileSync(path.join(profDir, file), keep);
    const prof = JSON.parse(fs.readFileSync(keep, 'utf8')) as Profile;
    const mapFile = o.proxyJs + '.map';
    const map = fs.existsSync(mapFile) ? new SourceMap(mapFile) : undefined;
    const s = summarize(prof, map, path.basename(o.proxyJs));
    console.log(`\nCPU profile of the caged proxy, ${mode === 'bulk' ? 'bulk intercepting' : `keep-alive ${mode}, ${o.connections} connections`}, ${secs.toFixed(0)} s (note: profiling slows it down)`);
    console.log(`${what}; ${s.samples} samples; profile: ${path.relative(o.root, keep)}`);
    console.log('\nWhere the busy time goes (% of non-idle samples):');
    for (const [k, v] of Object.entries(s.buckets).sort((a, b) => b[1] - a[1])) console.log(`  ${v.toFixed(1).padStart(5)}%  ${k}`);
    console.log('\nTop functions by self time:');
    for (const h of s.self.slice(0, 25)) console.log(`  ${h.selfPct.toFixed(1).padStart(5)}% self ${h.totalPct.toFixed(1).padStart(5)}% total  ${h.key}`);
    console.log('\nTop functions by inclusive time (src/ and node-forge only):');
    for (const h of s.total.filter((x) => x.key.includes('src/') || x.key.includes('node-forge')).slice(0, 25)) {
      console.log(`  ${h.totalPct.toFixed(1).padStart(5)}% total ${h.selfPct.toFixed(1).padStart(5)}% self  ${h.key}`);
    }
    console.log(`PROFILE_JSON ${JSON.stringify({ mode, rps, usPerReq, ...s })}`);
    return 0;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
