// Turns results into issue 7's targets (pass/miss) and a readable table.
import type { Results } from './run';

export interface TargetCheck {
  id: string;
  target: string;
  value: number | null;
  unit: string;
  limit: number;
  /** 'min': value must be >= limit; 'max': value must be <= limit. */
  kind: 'min' | 'max';
  pass: boolean | null;
  detail?: string;
}

const ratio = (a?: number, b?: number) => (a !== undefined && b !== undefined && b > 0 ? a / b : undefined);

export function checkTargets(r: Results): TargetCheck[] {
  const out: TargetCheck[] = [];
  const add = (id: string, target: string, value: number | undefined, unit: string, kind: 'min' | 'max', limit: number, detail?: string) => {
    const v = value === undefined || !Number.isFinite(value) ? null : value;
    out.push({ id, target, value: v, unit, limit, kind, pass: v === null ? null : kind === 'min' ? v >= limit : v <= limit, detail });
  };
  const ka = r.keepalive;
  add('rps-vs-mitmproxy', 'intercepting req/s ≥ 20× mitmproxy', ratio(ka.intercept?.rps, ka.mitmproxy?.rps), '×', 'min', 20);
  add('rps-vs-direct', 'intercepting req/s ≥ 0.5× direct', ratio(ka.intercept?.rps, ka.direct?.rps), '×', 'min', 0.5);
  add('tunnel-vs-tinyproxy', 'tunnelling req/s ≥ 0.9× tinyproxy', ratio(ka.tunnel?.rps, ka.tinyproxy?.rps), '×', 'min', 0.9);
  add(
    'added-p50',
    'added p50 per keep-alive request ≤ 0.25 ms (intercepting − direct)',
    ka.intercept && ka.direct ? ka.intercept.latency.p50 - ka.direct.latency.p50 : undefined,
    'ms',
    'max',
    0.25,
  );
  const f = r.first;
  add('first-request-delta', 'first request to a new host ≤ 12 ms more than direct (p50)', f ? f.interceptNewHost.p50 - f.direct.p50 : undefined, 'ms', 'max', 12);
  add(
    'mint-step',
    'no synchronous step over 5 ms for a new host (longest step of a mint, CPU p99)',
    f?.mintStep?.p99,
    'ms',
    'max',
    5,
    'timed in-process with the proxy\'s own CertCache; the proxy\'s event-loop delay during the phase is in first.eventLoopDelay (compare first.referenceEventLoopDelay for machine noise)',
  );
  add('burst-one-mint', 'concurrent first requests to one host share one mint (distinct leaf certs seen)', f ? (f.burst.ok === f.burst.n ? f.burst.distinctCerts : undefined) : undefined, 'certs', 'max', 1);
  add(
    'cache-1000',
    'at least 1,000 hosts\u2019 contexts cached (hosts keeping their leaf after ≥1,000 others)',
    f?.cache && f.cache.filled >= 1000 ? (f.cache.sameCert / Math.max(1, f.cache.revisited)) * 100 : undefined,
    '%',
    'min',
    100,
  );
  const m = r.memory;
  add('kb-per-conn', '≤ 40 KB per idle intercepted connection', m?.perConnKb, 'KB', 'max', 40);
  add('idle-rss', 'idle RSS ≤ 60 MB', m ? m.idleWarmKb / 1024 : undefined, 'MB', 'max', 60);
  add('rss-1000', 'RSS ≤ 150 MB with 1000 idle connections', m && m.idleConns >= 1000 ? m.withIdleKb / 1024 : undefined, 'MB', 'max', 150);
  add('reload', 'policy reload (SIGHUP → enforced) ≤ 100 ms (max of samples)', r.reload && r.reload.samplesMs.length ? r.reload.max : undefined, 'ms', 'max', 100);
  const b = r.bulk;
  add('bulk-down', 'bulk download intercepting ≥ 0.45× direct MB/s', ratio(b?.intercept?.down.mbPerS, b?.direct?.down.mbPerS), '×', 'min', 0.45);
  add('bulk-up', 'bulk upload intercepting ≥ 0.45× direct MB/s', ratio(b?.intercept?.up.mbPerS, b?.direct?.up.mbPerS), '×', 'min', 0.45);
  add('cage-start', 'cage start with cached images ≤ 3 s', r.docker?.startMs !== undefined ? r.docker.startMs / 1000 : undefined, 's', 'max', 3, r.docker?.skipped);
  add('block-event', 'block in the agent → event ≤ 1 s', r.docker?.blockToEventMs !== undefined ? r.docker.blockToEventMs / 1000 : undefined, 's', 'max', 1, r.docker?.skipped);
  return out;
}

function fmt(x: number | undefined | null, d = 2): string {
  if (x === undefined || x === null || !Number.isFinite(x)) return '-';
  return x.toFixed(d);
}

function table(rows: string[][]): string {
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => '| ' + r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join(' | ') + ' |';
  return [line(rows[0]), '|' + w.map((n, i) => (i === 0 ? ':' : '') + '-'.repeat(n + 1) + (i === 0 ? '' : ':')).join('|') + '|', ...rows.slice(1).map(line)].join('\n');
}

export function renderTables(r: Results, checks: TargetCheck[]): string {
  const parts: string[] = [];
  parts.push(
    `${r.meta.date}  node ${r.meta.node}  ${r.meta.cpus} × ${r.meta.cpuModel}${r.meta.quick ? '  (--quick)' : ''}  load average at start ${r.meta.loadavgStart.join(' ')}` +
      (r.meta.loadavgEnd ? `, at end ${r.meta.loadavgEnd.join(' ')}` : ''),
  );
  const ka = r.keepalive;
  const d = ka.direct;
  if (Object.keys(ka).length) {
    const rows = [['keep-alive HTTPS (16 conns, tiny body)', 'req/s', '× direct', 'p50 ms', 'p99 ms', '+p50 ms', 'proxy µs/req', 'proxy %core', 'upstream %core', 'loadgen %core', 'other %core']];
    const names: Array<[keyof typeof ka, string]> = [
      ['direct', 'direct (no proxy)'],
      ['intercept', 'caged proxy, intercepting'],
      ['transparent', 'caged proxy, transparent (client without proxy settings)'],
      ['noPoll', 'caged proxy, intercepting, busy-polling off'],
      ['floor', 'bare Node TLS relay (floor, no proxy logic)'],
      ['hop', 'one hop: C byte relay (no TLS, no logic)'],
      ['tunnel', 'caged proxy, tunnel (intercept: false)'],
      ['mitmproxy', 'mitmproxy (mitmdump, regular)'],
      ['tinyproxy', 'tinyproxy (CONNECT tunnel)'],
    ];
    for (const [k, label] of names) {
      const x = ka[k];
      if (!x) continue;
      rows.push([
        label,
        fmt(x.rps, 0),
        fmt(ratio(x.rps, d?.rps)),
        fmt(x.latency.p50, 3),
        fmt(x.latency.p99, 3),
        k === 'direct' ? '' : fmt(d ? x.latency.p50 - d.latency.p50 : undefined, 3),
        fmt(x.cpu.proxyUsPerReq, 0),
        fmt(x.cpu.proxyCorePct, 0),
        fmt(x.cpu.upstreamCorePct, 0),
        fmt(x.cpu.loadgenCorePct, 0),
        fmt(x.cpu.otherCorePct, 0),
      ]);
    }
    parts.push(table(rows));
    const extra: string[] = [];
    if (ka.intercept && ka.mitmproxy) extra.push(`intercepting vs mitmproxy: ${fmt(ratio(ka.intercept.rps, ka.mitmproxy.rps), 1)}× req/s`);
    if (ka.transparent && ka.mitmproxy) extra.push(`transparent vs mitmproxy: ${fmt(ratio(ka.transparent.rps, ka.mitmproxy.rps), 1)}× req/s`);
    if (ka.intercept && ka.floor) {
      extra.push(`intercepting vs the bare relay: ${fmt(ratio(ka.intercept.rps, ka.floor.rps))}× req/s, ${fmt(ratio(ka.intercept.cpu.proxyUsPerReq, ka.floor.cpu.proxyUsPerReq))}× its CPU per request`);
    }
    if (ka.noPoll && ka.intercept) extra.push(`intercepting with busy-polling (as shipped) vs off: ${fmt(ratio(ka.intercept.rps, ka.noPoll.rps))}× req/s`);
    if (ka.hop) extra.push(`one more process in the path, doing nothing but copy bytes: ${fmt(ratio(ka.hop.rps, d?.rps))}× direct`);
    if (ka.tunnel && ka.tinyproxy) extra.push(`tunnel vs tinyproxy: ${fmt(ratio(ka.tunnel.rps, ka.tinyproxy.rps))}× req/s`);
    if (extra.length) parts.push(extra.join('; '));
    const runs = names.filter(([k]) => ka[k]?.runsRps).map(([k, label]) => `${label.split(' (')[0]} ${ka[k]!.runsRps!.map((x) => fmt(x, 0)).join(' / ')}`);
    if (runs.length) parts.push(`Each row is the mean of its runs, interleaved (req/s of each): ${runs.join('; ')}.`);
    const busiest = Math.max(...Object.values(ka).map((x) => x?.cpu.otherCorePct ?? 0));
    if (busiest > 50) {
      parts.push(`WARNING: other processes on this machine used up to ${busiest.toFixed(0)}% of a core during the keep-alive phases; the figures are unreliable. Rerun on a quiet machine.`);
    }
  }
  const h2 = r.h2;
  if (h2 && Object.keys(h2).length) {
    const hd = h2.direct;
    const rows = [[`h2 multiplexed (1 connection × ${hd?.streams ?? ''} concurrent streams, tiny body)`, 'agent leg', 'upstream leg', 'req/s', '× direct', 'p50 ms', 'p99 ms', 'proxy µs/req', 'proxy %core', 'upstream %core', 'loadgen %core']];
    const names: Array<[keyof typeof h2, string]> = [
      ['direct', 'direct (no proxy)'],
      ['intercept', 'caged proxy, intercepting'],
      ['tunnel', 'caged proxy, tunnel (intercept: false)'],
      ['mitmproxy', 'mitmproxy (mitmdump, regular)'],
    ];
    const notH2: string[] = [];
    for (const [k, label] of names) {
      const x = h2[k];
      if (!x) continue;
      if (x.protocol !== 'h2') notH2.push(`${label}: the client's ALPN offer (h2, http/1.1) was answered with ${x.protocol}, so this row has no h2 figures`);
      const ok = x.protocol === 'h2';
      rows.push([label, x.protocol, x.upstreamProtocol, ok ? fmt(x.rps, 0) : '-', ok ? fmt(ratio(x.rps, hd?.rps)) : '-', ok ? fmt(x.latency.p50, 3) : '-', ok ? fmt(x.latency.p99, 3) : '-', fmt(x.proxyUsPerReq, 0), fmt(x.proxyCorePct, 0), ok ? fmt(x.upstreamCorePct, 0) : '-', fmt(x.loadgenCorePct, 0)]);
    }
    parts.push(table(rows));
    const extra: string[] = [];
    const both = h2.intercept?.rps !== undefined && h2.mitmproxy?.rps !== undefined;
    if (both) extra.push(`h2 intercepting vs mitmproxy: ${fmt(ratio(h2.intercept!.rps, h2.mitmproxy!.rps), 1)}× req/s, p50 ${fmt(h2.intercept!.latency.p50, 3)} vs ${fmt(h2.mitmproxy!.latency.p50, 3)} ms`);
    if (h2.tunnel?.rps !== undefined && h2.mitmproxy?.rps !== undefined) extra.push(`h2 tunnel vs mitmproxy: ${fmt(ratio(h2.tunnel.rps, h2.mitmproxy.rps), 1)}× req/s`);
    if (hd?.runsRps) extra.push(`direct is the mean of a run before and after the others (${hd.runsRps.map((x) => fmt(x, 0)).join(' / ')} req/s); p50/p99 are per request with all streams in flight`);
    if (extra.length) parts.push(extra.join('; '));
    if (notH2.length) parts.push('NOT HTTP/2: ' + notH2.join('; ') + '.');
    const failed = names.filter(([k]) => h2[k]?.errors).map(([k, label]) => `${label} ${h2[k]!.errors} (${h2[k]!.lastError})`);
    if (failed.length) parts.push(`h2 requests failed: ${failed.join('; ')}`);
    const stuck = names.filter(([k]) => h2[k]?.protocol === 'h2' && h2[k]!.requests === 0).map(([k, label]) => `${label} (${h2[k]!.inFlight} streams still waiting)`);
    if (stuck.length) parts.push(`NO h2 STREAM COMPLETED in the window: ${stuck.join('; ')}`);
  }
  const f = r.first;
  if (f) {
    const rows = [['first request (new TCP+TLS connection)', 'p50 ms', 'p90 ms', 'max ms', 'Δ p50 vs direct']];
    rows.push(['direct', fmt(f.direct.p50), fmt(f.direct.p90), fmt(f.direct.max), '']);
    rows.push(['via caged proxy, never-seen host (leaf minted)', fmt(f.interceptNewHost.p50), fmt(f.interceptNewHost.p90), fmt(f.interceptNewHost.max), fmt(f.interceptNewHost.p50 - f.direct.p50)]);
    rows.push(['via caged proxy, same host again (leaf cached)', fmt(f.interceptSeenHost.p50), fmt(f.interceptSeenHost.p90), fmt(f.interceptSeenHost.max), fmt(f.interceptSeenHost.p50 - f.direct.p50)]);
    const rc = f.interceptReconnect;
    if (rc) rows.push(['via caged proxy, same host, new upstream connection', fmt(rc.p50), fmt(rc.p90), fmt(rc.max), fmt(rc.p50 - f.direct.p50)]);
    parts.push(table(rows));
    if (rc) parts.push(`New upstream connections to a seen host (${rc.n}, after the upstream closed the pooled ones): the upstream saw ${rc.upstream.handshakes} TLS handshakes, ${rc.upstream.resumed} of them resumed sessions the proxy kept; proxy CPU ${fmt(rc.proxyCpuMs)} ms per such request (both TLS handshakes and the request).`);
    const bd = f.breakdownP50;
    parts.push(
      `${f.hosts} hosts. Longest synchronous new-host step (CertCache, timed in-process, CPU time): p50 ${fmt(f.mintStep.p50)} ms, p99 ${fmt(f.mintStep.p99)} ms, max ${fmt(f.mintStep.max)} ms ` +
        `(wall: p50 ${fmt(f.mintStepWall.p50)} ms, p99 ${fmt(f.mintStepWall.p99)} ms; per step p50/p99 ms: ` +
        `${Object.entries(f.mintSteps ?? {}).map(([k, v]) => `${k} ${fmt(v?.p50)}/${fmt(v?.p99)}`).join(', ')}). ` +
        `New-host breakdown (p50): TCP ${fmt(bd.tcp)} ms, CONNECT ${fmt(bd.connect)} ms, TLS ${fmt(bd.tls)} ms, request ${fmt(bd.request)} ms. ` +
        `Meanwhile: proxy event-loop delay max ${fmt(f.eventLoopDelay?.max)} ms, p99 ${fmt(f.eventLoopDelay?.p99)} ms, ` +
        `${fmt((f.eventLoopDelay?.over5Fraction ?? NaN) * 100)}% of ticks > 5 ms late (reference process: max ${fmt(f.referenceEventLoopDelay.max)} ms, p99 ${fmt(f.referenceEventLoopDelay.p99)} ms); ` +
        `a paced request on a warm connection through the proxy: p50 ${fmt(f.stallProbe.p50)} ms, max ${fmt(f.stallProbe.max)} ms. ` +
        `Burst of ${f.burst.n} concurrent first requests to one new host: ${f.burst.ok} ok, ${f.burst.distinctCerts} distinct leaf cert(s), ` +
        (f.burst.upstream ? `${f.burst.upstream.handshakes} upstream TLS connections (${f.burst.upstream.resumed} resumed), ` : '') +
        `p50 ${fmt(f.burst.ms.p50)} ms, max ${fmt(f.burst.ms.max)} ms (same burst direct: p50 ${fmt(f.burst.directMs.p50)} ms, max ${fmt(f.burst.directMs.max)} ms).` +
        (f.cache ? ` Cache: ${f.cache.sameCert}/${f.cache.revisited} hosts kept their leaf after ${f.cache.filled} other hosts.` : ''),
    );
  }
  const b = r.bulk;
  if (b && Object.keys(b).length) {
    const rows = [['bulk transfer (one connection)', 'down MB/s', '× direct', 'up MB/s', '× direct', 'proxy CPU s/GB down', 'up']];
    for (const k of ['direct', 'intercept', 'tunnel'] as const) {
      const x = b[k];
      if (!x) continue;
      const gb = x.down.bytes / 1e9;
      rows.push([
        k === 'direct' ? 'direct' : k === 'intercept' ? 'caged proxy, intercepting' : 'caged proxy, tunnel',
        fmt(x.down.mbPerS, 0),
        fmt(ratio(x.down.mbPerS, b.direct?.down.mbPerS)),
        fmt(x.up.mbPerS, 0),
        fmt(ratio(x.up.mbPerS, b.direct?.up.mbPerS)),
        fmt(x.down.proxyCpuMs !== undefined ? x.down.proxyCpuMs / 1000 / gb : undefined),
        fmt(x.up.proxyCpuMs !== undefined ? x.up.proxyCpuMs / 1000 / gb : undefined),
      ]);
    }
    parts.push(table(rows) + `\n(${(Object.values(b)[0]!.down.bytes / 1048576).toFixed(0)} MiB each way per path, in rounds that interleave the paths; MB/s = total bytes / total time)`);
  }
  const m = r.memory;
  if (m) {
    parts.push(
      table([
        ['proxy memory (RSS)', 'MB'],
        ['idle, just started', fmt(m.idleStartKb / 1024, 1)],
        ['idle, after one intercepted request', fmt(m.idleWarmKb / 1024, 1)],
        [`with ${m.idleConns} idle keep-alive intercepted connections`, fmt(m.withIdleKb / 1024, 1)],
        ['→ KB per idle connection', fmt(m.perConnKb, 1)],
        ['baseline: KB per idle TLS connection of a plain Node https server', fmt(m.nodeHttpsPerConnKb, 1)],
        ['after closing them', fmt(m.afterCloseKb / 1024, 1)],
      ]) +
        `\nWith the idle connections open the proxy held ${m.proxySocketsOpened} more file descriptors and the upstream ${m.upstreamConnsHeld} more connections (idle upstream connections kept by the proxy's pool).` + (m.errors ? `\n${m.errors} connections failed (${m.lastError})` : ''),
    );
  }
  if (r.reload) {
    parts.push(`policy reload (write file + SIGHUP → first allowed request): p50 ${fmt(r.reload.p50)} ms, max ${fmt(r.reload.max)} ms over ${r.reload.samplesMs.length} reloads` + (r.reload.errors.length ? `; errors: ${r.reload.errors.join('; ')}` : ''));
  }
  if (r.docker) {
    parts.push(r.docker.skipped ? `docker: skipped — ${r.docker.skipped}` : `docker: cage start ${fmt((r.docker.startMs ?? NaN) / 1000)} s, block → event ${fmt(r.docker.blockToEventMs, 0)} ms`);
  }
  const rows = [['target (issue 7)', 'value', 'limit', 'result']];
  for (const c of checks) rows.push([c.target, c.value === null ? '-' : `${fmt(c.value)} ${c.unit}`, `${c.kind === 'min' ? '≥' : '≤'} ${c.limit} ${c.unit}`, c.pass === null ? 'not measured' : c.pass ? 'pass' : 'MISS']);
  parts.push(table(rows));
  if (r.errors.length) parts.push('ERRORS:\n' + r.errors.map((e) => '  ' + e.split('\n')[0]).join('\n'));
  return parts.join('\n\n');
}
