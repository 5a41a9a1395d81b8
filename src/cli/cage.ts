// The cage commands: up, down, status, verify, events, shell, gc, doctor.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { verifySummary, type AskState } from '../engine';
import { secretEnvName } from '../policy';
import { checkFlags, err, flag, type Args } from './args';
import { formatEvent, formatTemporary, makeEngine, printCages, resolveCage } from './common';
export async function cmdUp(a: Args): Promise<number> {
  checkFlags(a, ['--workspace', '--image', '--policy', '--proxy-base-image', '--upstream-ca', '--upstream-proxy', '--secret']);
  const workspace = path.resolve(flag(a, '--workspace') ?? a.positional[0] ?? process.cwd());
  const engine = makeEngine({ proxyBaseImage: flag(a, '--proxy-base-image') });
  let upstreamCaPem: string | undefined;
  const caFile = flag(a, '--upstream-ca');
  if (caFile) {
    try {
      upstreamCaPem = fs.readFileSync(caFile, 'utf8');
    } catch (e) {
      err(`caged-agent: cannot read --upstream-ca ${caFile}: ${(e as NodeJS.ErrnoException).code ?? e}`);
      return 2;
    }
  }
  const secrets: Record<string, string> = {};
  for (const name of a.flags.get('--secret') ?? []) {
    const env = secretEnvName(name);
    const v = process.env[env];
    if (v === undefined) { err(`caged-agent: --secret ${name}: $${env} is not set`); return 2; }
    secrets[name] = v;
  }
  const t0 = Date.now();
  const info = await engine.up({
    workspace,
    agentImage: flag(a, '--image'),
    policyPath: flag(a, '--policy') ? path.resolve(flag(a, '--policy')!) : undefined,
    proxyBaseImage: flag(a, '--proxy-base-image'),
    upstreamCaPem,
    upstreamProxy: flag(a, '--upstream-proxy'),
    secrets,
    onProgress: (step, message) => err(`[${((Date.now() - t0) / 1000).toFixed(1)}s] ${step}: ${message}`),
  });
  err(`cage ${info.id} is ${info.state}: agent ${info.agentContainerId?.slice(0, 12)}, proxy ${info.proxyContainerId?.slice(0, 12)}, workspace at ${info.workspaceInContainer ?? workspace}`);
  if (info.policy && !info.policy.ok) err(`warning: ${info.policy.message}`);
  process.stdout.write(info.id + '\n');
  return 0;
}

export async function cmdDown(a: Args): Promise<number> {
  checkFlags(a, ['--images']);
  const engine = makeEngine();
  const id = await resolveCage(engine, a.positional[0]);
  await engine.down(id, { images: !!flag(a, '--images') });
  err(`cage ${id} is down`);
  return 0;
}

export async function cmdStatus(a: Args): Promise<number> {
  checkFlags(a, ['--json']);
  const engine = makeEngine();
  const cages = await engine.list();
  const ask = new Map<string, AskState>();
  for (const c of cages) {
    if (c.state !== 'healthy' && c.state !== 'paused') continue;
    try { ask.set(c.id, await engine.pending(c.id)); } catch {}
  }
  if (flag(a, '--json')) process.stdout.write(JSON.stringify(cages.map((c) => ({ ...c, ...(ask.get(c.id) ?? {}) })), null, 2) + '\n');
  else {
    printCages(cages);
    for (const c of cages) {
      const s = ask.get(c.id);
      if (!s) continue;
      if (s.temporary.length) process.stdout.write(`    temporary (${c.id}):\n${s.temporary.map((e) => `      ${formatTemporary(e)}`).join('\n')}\n`);
      if (s.pending.length) process.stdout.write(`    waiting for an answer: ${s.pending.map((g) => `${g.host}:${g.port} (${g.count})`).join(', ')}\n`);
    }
  }
  return 0;
}

export async function cmdVerify(a: Args): Promise<number> {
  checkFlags(a, ['--allowed-url', '--blocked-url', '--external-name', '--tcp', '--json']);
  const engine = makeEngine();
  const id = await resolveCage(engine, a.positional[0]);
  const checks = await engine.verify(id, {
    allowedUrl: flag(a, '--allowed-url'),
    blockedUrl: flag(a, '--blocked-url'),
    externalName: flag(a, '--external-name'),
    tcpTarget: flag(a, '--tcp'),
  });
  if (flag(a, '--json')) process.stdout.write(JSON.stringify(checks, null, 2) + '\n');
  else for (const c of checks) process.stdout.write(`${c.skipped ? 'SKIP' : c.ok ? 'PASS' : 'FAIL'}  ${c.name}: ${c.detail}\n`);
  const ok = checks.every((c) => c.ok);
  err(`cage ${id}: ${verifySummary(checks)}`);
  return ok ? 0 : 1;
}

export async function cmdEvents(a: Args): Promise<number> {
  checkFlags(a, ['--json', '--since']);
  const engine = makeEngine();
  const id = await resolveCage(engine, a.positional[0]);
  const json = !!flag(a, '--json');
  const since = flag(a, '--since') ? Math.floor(Date.now() / 1000) - Number(flag(a, '--since')) : undefined;
  return new Promise<number>((resolve) => {
    engine.events(id, (e) => process.stdout.write((json ? JSON.stringify(e) : formatEvent(e)) + '\n'), {
      since,
      onEnd: (e) => {
        err(e ? `event stream failed: ${e.message}` : 'the proxy stopped');
        resolve(e ? 1 : 0);
      },
    }).then((sub) => {
      const stop = () => { sub.stop(); resolve(0); };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    }, (e) => { err(`caged-agent: ${(e as Error).message}`); resolve(1); });
  });
}

export async function cmdShell(a: Args): Promise<number> {
  checkFlags(a, []);
  const engine = makeEngine();
  const id = await resolveCage(engine, a.positional[0]);
  const stdin = process.stdin;
  if (a.rest.length && !stdin.isTTY) {
    // Not interactive (a script): run the command, relay its output and exit code.
    const r = await engine.exec(id, a.rest, { timeoutMs: 24 * 3600_000 });
    process.stdout.write(r.stdout);
    process.stderr.write(r.stderr);
    return r.exitCode;
  }
  const session = await engine.openShell(id, { cols: process.stdout.columns ?? 80, rows: process.stdout.rows ?? 24, cmd: a.rest.length ? a.rest : undefined });
  if (stdin.isTTY) stdin.setRawMode(true);
  stdin.pipe(session.stream, { end: false });
  session.stream.pipe(process.stdout);
  const onResize = () => void session.resize(process.stdout.columns ?? 80, process.stdout.rows ?? 24);
  process.stdout.on('resize', onResize);
  const code = await session.exit;
  if (stdin.isTTY) stdin.setRawMode(false);
  stdin.unpipe(session.stream);
  stdin.pause();
  process.stdout.off('resize', onResize);
  return code;
}

export async function cmdGc(a: Args): Promise<number> {
  checkFlags(a, ['--images']);
  const r = await makeEngine().gc({ images: !!flag(a, '--images') });
  const all = [...r.containers.map((x) => `container ${x}`), ...r.networks.map((x) => `network ${x}`), ...r.volumes.map((x) => `volume ${x}`), ...r.images.map((x) => `image ${x}`)];
  process.stdout.write(all.length ? all.map((x) => `removed ${x}`).join('\n') + '\n' : 'nothing to remove\n');
  return 0;
}

export async function cmdDoctor(a: Args): Promise<number> {
  checkFlags(a, ['--image', '--proxy-base-image']);
  const engine = makeEngine({ proxyBaseImage: flag(a, '--proxy-base-image'), agentImage: flag(a, '--image') });
  const checks = await engine.doctor({ agentImage: flag(a, '--image'), workspace: process.cwd() });
  for (const c of checks) process.stdout.write(`${c.warning ? 'WARN' : c.ok ? 'OK  ' : 'FAIL'}  ${c.name}: ${c.detail}\n`);
  return checks.every((c) => c.ok || c.warning) ? 0 : 1;
}
