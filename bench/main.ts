// `npm run bench`: one run on 127.0.0.1 comparing the caged proxy with a direct connection, mitmproxy and
// tinyproxy. The same bundle (dist/bench.js) also runs the helper processes: `--role upstream` (the origin
// server), `--role loadgen` (the load generator, driven over IPC) and `--role floor` (the bare TLS relay).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runUpstream } from './upstream';
import { runLoadgen } from './loadgen';
import { runFloor } from './floor';
import { PHASES, runBench, type BenchOptions, type Phase } from './run';
import { checkTargets, renderTables } from './report';
import { killAllSync, stopAll } from './procs';
import { runProfile } from './profile';
import { runAskBench } from './ask';

const HELP = `Usage: npm run bench -- [--quick] [--only PHASE[,PHASE...]] [--docker] [--profile] [--json FILE]

Measures on 127.0.0.1 (each phase a few seconds, the whole run a few minutes):
  keepalive  HTTPS keep-alive req/s (16 connections) and sequential p50/p99 for direct, caged proxy
             intercepting and tunnelling, a bare Node TLS relay (the floor), mitmproxy (mitmdump) and
             tinyproxy
  h2         HTTP/2 multiplexed: 1 connection × 100 concurrent streams, req/s and p50, for direct, caged
             proxy intercepting and tunnelling, and mitmproxy (a row whose ALPN answer was http/1.1 says so)
  first      first request to never-seen hosts (leaf minted) vs direct; concurrent burst to one host;
             leaf cache holding 1,000+ hosts
  bulk       large download and upload, direct vs intercepting vs tunnel (MB/s)
  memory     proxy RSS idle and with 1000 idle keep-alive intercepted connections
  reload     policy file rewrite + SIGHUP until a newly allowed host gets through
  docker     (only with --docker or --only docker) real cage start and block → event via dist/cli.js

Options:
  --quick           short phases and small sizes (CI runs it, ~40 s)
  --only LIST       run only these phases (comma-separated)
  --docker          include the docker phase
  --profile         instead of the bench: run the caged proxy under node --cpu-prof with the keep-alive
                    intercepting load and print its hottest functions
  --json FILE       where to write the JSON (default test-results/bench.json)

Prints a table, then one line "BENCH_JSON {...}" with the machine-readable results.

  node dist/bench.js --role ask [--quick] [--docker]
                    the numbers of held requests (issue 17): answer → completion, RSS with 1,000 held,
                    allowed keep-alive req/s with 500 held vs none (see bench/ask.ts)`;

function parseArgs(argv: string[], root: string) {
  const has = (f: string) => argv.includes(f);
  const val = (f: string) => {
    const i = argv.indexOf(f);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const known = new Set(['--quick', '--only', '--docker', '--profile', '--json', '--help', '-h']);
  for (let i = 0; i < argv.length; i++) {
    if (!known.has(argv[i])) throw new Error(`unknown argument ${argv[i]}\n\n${HELP}`);
    if (argv[i] === '--only' || argv[i] === '--json') i++;
  }
  const quick = has('--quick');
  let only: Set<Phase> | undefined;
  const o = val('--only');
  if (o) {
    only = new Set();
    for (const p of o.split(',').map((s) => s.trim()).filter(Boolean)) {
      if (!(PHASES as readonly string[]).includes(p)) throw new Error(`--only: unknown phase ${p} (phases: ${PHASES.join(', ')})`);
      only.add(p as Phase);
    }
  }
  const opts: BenchOptions = {
    quick,
    only,
    docker: has('--docker'),
    root,
    benchJs: path.join(root, 'dist/bench.js'),
    proxyJs: process.env.CAGED_BENCH_PROXY_JS ? path.resolve(process.env.CAGED_BENCH_PROXY_JS) : path.join(root, 'dist/proxy.js'),
    kaMs: quick ? 1500 : 5000,
    kaWarmMs: quick ? 500 : 1000,
    latencyMs: quick ? 1000 : 3000,
    connections: 16,
    firstHosts: quick ? 30 : 200,
    burst: quick ? 16 : 50,
    cacheHosts: quick ? 0 : 1000,
    bulkBytes: (quick ? 32 : 256) * 1024 * 1024,
    idleConns: 1000,
    reloads: quick ? 3 : 10,
    log: (s) => process.stderr.write(s + '\n'),
  };
  return { opts, help: has('--help') || has('-h'), profile: has('--profile'), json: val('--json') ?? path.join(root, 'test-results/bench.json') };
}

async function orchestrate(): Promise<number> {
  const root = path.resolve(__dirname, '..');
  const a = parseArgs(process.argv.slice(2), root);
  if (a.help) {
    console.log(HELP);
    return 0;
  }
  for (const f of [a.opts.benchJs, a.opts.proxyJs]) {
    if (!fs.existsSync(f)) throw new Error(`${f} is missing: run node scripts/build.mjs first`);
  }
  const cleanup = () => killAllSync();
  process.on('exit', cleanup);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      process.stderr.write(`\n[bench] ${sig}: stopping every process the bench started\n`);
      killAllSync();
      process.exit(130);
    });
  }
  try {
    if (a.profile) return await runProfile(a.opts);
    const t0 = Date.now();
    const results = await runBench(a.opts);
    const checks = checkTargets(results);
    const out = { ...results, targets: checks, totalSeconds: (Date.now() - t0) / 1000 };
    console.log('\n' + renderTables(results, checks) + '\n');
    fs.mkdirSync(path.dirname(a.json), { recursive: true });
    fs.writeFileSync(a.json, JSON.stringify(out, null, 2) + '\n');
    console.log(`BENCH_JSON ${JSON.stringify(out)}`);
    process.stderr.write(`[bench] wrote ${path.relative(process.cwd(), a.json) || a.json} (${out.totalSeconds.toFixed(0)} s)\n`);
    return results.errors.length ? 1 : 0;
  } finally {
    await stopAll();
  }
}

function main(): void {
  const argv = process.argv.slice(2);
  const i = argv.indexOf('--role');
  const role = i >= 0 ? argv[i + 1] : undefined;
  if (role === 'upstream') {
    runUpstream(argv).catch((e) => {
      process.stderr.write(`upstream: ${(e as Error).stack}\n`);
      process.exit(1);
    });
    return;
  }
  if (role === 'loadgen') {
    runLoadgen();
    return;
  }
  if (role === 'floor') {
    runFloor(argv);
    return;
  }
  if (role === 'ask') {
    runAskBench({ root: path.resolve(__dirname, '..'), quick: argv.includes('--quick'), docker: argv.includes('--docker'), log: (s) => process.stderr.write(s + '\n') }).then(
      async (code) => {
        await stopAll();
        process.exit(code);
      },
      (e) => {
        process.stderr.write(`[ask bench] ${(e as Error).stack ?? String(e)}\n`);
        killAllSync();
        process.exit(1);
      },
    );
    return;
  }
  orchestrate().then(
    (code) => process.exit(code),
    (e) => {
      process.stderr.write(`[bench] ${(e as Error).stack ?? String(e)}\n`);
      killAllSync();
      process.exit(1);
    },
  );
}

main();
