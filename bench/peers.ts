// Starting the proxies under test, each as its own process on 127.0.0.1: ours (dist/proxy.js, the program
// that ships), mitmdump (regular mode) and tinyproxy (CONNECT tunnel), and the two reference relays: the bare
// Node TLS relay (floor.ts) and the C byte relay (hop.c). Each gets its own temp config.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { nowMs, sleep } from './common';
import { freePort, spawnTracked, waitForPort, type Started } from './procs';

export interface RunningPeer {
  name: string;
  proc: Started;
  port: number;
  /** CA the client must trust to talk TLS through it (intercepting proxies). */
  caPem?: string;
  startMs: number;
}

/** Names the bench uses, all resolved to 127.0.0.1 inside our proxy by the preload below. */
export const BENCH_DOMAIN = 'bench.test';
export const TUNNEL_HOST = 'tunnel.test';

/**
 * A CommonJS preload for dist/proxy.js: maps *.bench.test and tunnel.test to 127.0.0.1 in dns.lookup and
 * dns.promises.lookup (the proxy's default resolver), so the bench can use thousands of distinct host names
 * without touching /etc/hosts. The CLI has no resolver option; startProxy() does (`resolver`).
 */
const DNS_SHIM = `'use strict';
const dns = require('dns');
const hit = (h) => typeof h === 'string' && /(^|\\.)bench\\.test\\.?$|^tunnel\\.test\\.?$/i.test(h);
const A = { address: '127.0.0.1', family: 4 };
const orig = dns.lookup;
dns.lookup = function (host, options, cb) {
  if (typeof options === 'function') { cb = options; options = {}; }
  if (typeof options === 'number') options = { family: options };
  if (!hit(host)) return orig.call(this, host, options, cb);
  process.nextTick(() => (options && options.all ? cb(null, [A]) : cb(null, A.address, A.family)));
  return {};
};
const p = dns.promises;
const origP = p.lookup;
p.lookup = function (host, options) {
  if (!hit(host)) return origP.call(this, host, options);
  return Promise.resolve(options && options.all ? [A] : A);
};
// Event-loop delay, for the bench only: the first SIGUSR2 starts a 1 ms-resolution histogram, the next one
// writes {max,p50,p99,mean,count,over5Fraction} (ms) to CAGED_BENCH_ELD_FILE and stops it.
const eldFile = process.env.CAGED_BENCH_ELD_FILE;
if (eldFile) {
  const { monitorEventLoopDelay } = require('perf_hooks');
  let h = null;
  process.on('SIGUSR2', () => {
    if (!h) { h = monitorEventLoopDelay({ resolution: 1 }); h.enable(); return; }
    h.disable();
    const ms = (ns) => ns / 1e6;
    let over5 = 0;
    for (const [pct, v] of h.percentiles) if (v > 6e6) { over5 = 1 - pct / 100; break; }
    require('fs').writeFileSync(eldFile, JSON.stringify({ max: ms(h.max), p50: ms(h.percentile(50)), p99: ms(h.percentile(99)), mean: ms(h.mean), count: h.count, over5Fraction: over5 }));
    h = null;
  });
}
`;

export interface OurPolicyInput {
  upstreamPort: number;
  /** The upstream's HTTP/2 port (the h2 rows): localhost intercepted, tunnel.test tunnelled, as on upstreamPort. */
  h2Port?: number;
  /** Extra exact hosts (host:port) allowed, e.g. for the reload phase. */
  extra?: Array<{ host: string; port: number; intercept?: boolean }>;
}

export function ourPolicy(p: OurPolicyInput): string {
  const lines = [
    '# written by npm run bench',
    'version: 1',
    'allow:',
    `  - host: "localhost:${p.upstreamPort}"`,
    '    private: true',
    `  - host: "*.${BENCH_DOMAIN}:${p.upstreamPort}"`,
    '    private: true',
    `  - host: "${TUNNEL_HOST}:${p.upstreamPort}"`,
    '    private: true',
    '    intercept: false',
  ];
  if (p.h2Port !== undefined) {
    lines.push(`  - host: "localhost:${p.h2Port}"`, '    private: true', `  - host: "${TUNNEL_HOST}:${p.h2Port}"`, '    private: true', '    intercept: false');
  }
  for (const e of p.extra ?? []) {
    lines.push(`  - host: "${e.host}:${e.port}"`, '    private: true');
    if (e.intercept === false) lines.push('    intercept: false');
  }
  return lines.join('\n') + '\n';
}

export interface OurProxyFiles {
  dir: string;
  policyFile: string;
  caCertFile: string;
  caKeyFile: string;
  upstreamCaFile: string;
  proxyJs: string;
  /** Extra node flags (e.g. --cpu-prof). */
  nodeArgs?: string[];
  /** Extra proxy flags (e.g. --busy-poll-us 100). */
  proxyArgs?: string[];
}

export interface OurProxy extends RunningPeer {
  /** Event lines the proxy has written so far (null when they go to a file: CAGED_BENCH_EVENTS_TO=file). */
  eventLines(): number | null;
  /** Written by the preload when the proxy gets its second SIGUSR2 (see eventLoopDelay in run.ts). */
  eldFile: string;
}

export async function startOurProxy(name: string, f: OurProxyFiles): Promise<OurProxy> {
  const shim = path.join(f.dir, 'bench-dns-shim.cjs');
  fs.writeFileSync(shim, DNS_SHIM);
  const port = await freePort();
  const eldFile = path.join(f.dir, `${name}-eld.json`);
  // The event lines go to a pipe that this process drains (counting lines), as in a cage, where the proxy's
  // stdout is a pipe that Docker's shim drains. CAGED_BENCH_EVENTS_TO=file writes them to a file instead.
  const toFile = process.env.CAGED_BENCH_EVENTS_TO === 'file';
  const out = toFile ? fs.openSync(path.join(f.dir, `${name}-events.jsonl`), 'w') : 'pipe';
  const t0 = nowMs();
  const proc = spawnTracked(
    name,
    process.execPath,
    [...(f.nodeArgs ?? []), '-r', shim, f.proxyJs, '--policy', f.policyFile, '--ca-cert', f.caCertFile, '--ca-key', f.caKeyFile, '--listen', `127.0.0.1:${port}`, '--upstream-ca', f.upstreamCaFile, ...(f.proxyArgs ?? [])],
    { stdio: ['ignore', out, 'pipe'], cwd: f.dir, env: { ...process.env, CAGED_BENCH_ELD_FILE: eldFile } },
  );
  let lines = 0;
  if (typeof out === 'number') fs.closeSync(out);
  else {
    proc.proc.stdout!.on('data', (d: Buffer) => {
      for (let i = d.indexOf(10); i >= 0; i = d.indexOf(10, i + 1)) lines++;
    });
  }
  await waitForPort(proc, '127.0.0.1', port, 15000);
  return { name, proc, port, startMs: nowMs() - t0, eventLines: () => (toFile ? null : lines), eldFile };
}

export async function startMitmproxy(dir: string, upstreamCaFile: string): Promise<RunningPeer> {
  const confdir = path.join(dir, 'mitmproxy-conf');
  fs.mkdirSync(confdir, { recursive: true });
  const port = await freePort();
  const t0 = nowMs();
  const proc = spawnTracked(
    'mitmdump',
    'mitmdump',
    [
      '--mode', 'regular',
      '--listen-host', '127.0.0.1',
      '--listen-port', String(port),
      '--set', `confdir=${confdir}`,
      '--set', `ssl_verify_upstream_trusted_ca=${upstreamCaFile}`,
      '--set', 'flow_detail=0',
      '--set', 'termlog_verbosity=error',
      '-q',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'], cwd: dir, env: { ...process.env, HOME: dir } },
  );
  await waitForPort(proc, '127.0.0.1', port, 60000);
  const caFile = path.join(confdir, 'mitmproxy-ca-cert.pem');
  for (let i = 0; i < 100 && !fs.existsSync(caFile); i++) await sleep(50);
  return { name: 'mitmproxy', proc, port, caPem: fs.readFileSync(caFile, 'utf8'), startMs: nowMs() - t0 };
}

export async function startTinyproxy(dir: string, upstreamPorts: number[]): Promise<RunningPeer> {
  const port = await freePort();
  const conf = path.join(dir, 'tinyproxy.conf');
  fs.writeFileSync(
    conf,
    [
      'User nobody',
      'Group nogroup',
      `Port ${port}`,
      'Listen 127.0.0.1',
      'Timeout 600',
      'MaxClients 4000',
      'LogLevel Critical',
      'Allow 127.0.0.1',
      'DisableViaHeader Yes',
      ...upstreamPorts.map((p) => `ConnectPort ${p}`),
      '',
    ].join('\n'),
  );
  const t0 = nowMs();
  const proc = spawnTracked('tinyproxy', 'tinyproxy', ['-d', '-c', conf], { stdio: ['ignore', 'ignore', 'pipe'], cwd: dir });
  await waitForPort(proc, '127.0.0.1', port, 15000);
  return { name: 'tinyproxy', proc, port, startMs: nowMs() - t0 };
}

/**
 * The C byte relay of the "one hop" row (bench/hop.c): compiled with the system C compiler ($CC, else cc)
 * into the bench's temp dir, then run as its own process.
 */
export async function startHop(root: string, dir: string): Promise<RunningPeer> {
  const bin = path.join(dir, 'hop');
  if (!fs.existsSync(bin)) {
    const cc = process.env.CC || 'cc';
    try {
      execFileSync(cc, ['-O2', '-o', bin, path.join(root, 'bench', 'hop.c')], { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (e) {
      const err = e as NodeJS.ErrnoException & { stderr?: Buffer };
      const why = err.code === 'ENOENT' ? `no C compiler (${cc}) on PATH: install gcc and libc6-dev (scripts/install-system-deps.sh does)` : String(err.stderr ?? err.message).trim();
      throw new Error(`the one-hop relay (bench/hop.c) could not be compiled: ${why}`);
    }
  }
  const port = await freePort();
  const t0 = nowMs();
  const proc = spawnTracked('hop', bin, [String(port)], { stdio: ['ignore', 'ignore', 'pipe'] });
  await waitForPort(proc, '127.0.0.1', port, 15000);
  return { name: 'hop', proc, port, startMs: nowMs() - t0 };
}

/** The bare Node TLS relay of the "floor" row (floor.ts), as its own process. */
export async function startFloorRelay(benchJs: string, files: { floorCert: string; floorKey: string; upstreamCaCert: string }): Promise<RunningPeer> {
  const port = await freePort();
  const t0 = nowMs();
  const proc = spawnTracked('floor', process.execPath, [benchJs, '--role', 'floor', '--port', String(port), '--cert', files.floorCert, '--key', files.floorKey, '--upstream-ca', files.upstreamCaCert]);
  await waitForPort(proc, '127.0.0.1', port, 15000);
  return { name: 'floor', proc, port, startMs: nowMs() - t0 };
}
