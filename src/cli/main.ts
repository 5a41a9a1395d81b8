// `caged-agent`: the command line over the same engine the extension uses (bundled to dist/cli.js).
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  CageEngine,
  canonicalWorkspace,
  cageIdFor,
  DEFAULT_AGENT_IMAGE,
  DEFAULT_PROXY_BASE_IMAGE,
  defaultStateDir,
  isCageId,
  type AskAnswer,
  type AskState,
  type CageInfo,
  type TemporaryEntry,
  type PolicyPushResult,
  type ProxyEvent,
  verifySummary,
} from '../engine';
import { rulesDiffer } from '../engine/protect';
import { addAllow, DEFAULT_POLICY_PATH, formatRemaining, parseDuration, parseWorkspaceRules, secretEnvName, uploadRisk } from '../policy';

const HELP = `Usage: caged-agent <command> [options]

Runs an AI coding agent in a Docker container whose only way out is an egress proxy enforcing
a default-deny policy (.caged/policy.yaml in the workspace).

Commands:
  up [--workspace DIR] [--image IMAGE] [--policy FILE] [--proxy-base-image IMAGE]
     [--upstream-ca FILE] [--upstream-proxy URL] [--secret NAME]...
                      start the cage for DIR (default: the current folder). Progress goes to
                      stderr; the cage id is the last line of stdout. Exits 0 once the agent runs.
                      --secret NAME passes $CAGED_SECRET_NAME from this environment to the proxy
                      only (for policy entries with auth: {secret: NAME}).
  down [CAGE] [--images]
                      stop the cage and remove its containers, network and volume (idempotent);
                      --images: also its agent image (it embeds the cage's CA; a restart rebuilds it)
  status [--json]     list cages, their health and their temporary allows and denies
  verify [CAGE] [--allowed-url URL] [--blocked-url URL] [--external-name NAME] [--tcp HOST:PORT] [--json]
                      run the isolation checks from inside the agent; exits 0 only if all pass
  allow HOST [--once | --for DURATION | --session] [--private] [--path GLOB]... [--method M]...
     [--policy FILE] [--cage CAGE]
                      answer the requests waiting for HOST and allow it: --once (only those waiting,
                      nothing added), --for 30s/15m/1h or --session (until the cage stops): a
                      temporary allow, kept out of the policy file. Without one of them: add HOST to
                      the policy's allow list (comments kept) and reload the proxy
  deny HOST [CAGE] [--once]
                      refuse the requests waiting for HOST with 403 and deny it until the cage stops
                      (--once: only the waiting ones)
  revoke HOST|ID [CAGE]
                      end a temporary allow or deny
  pending [CAGE] [--json]
                      list the requests waiting for an answer (policy onUnknown: ask) and the
                      temporary allows and denies in force
  reload [CAGE]       push the cage's policy file to its proxy again
  events [CAGE] [--json] [--since SECONDS]
                      follow the proxy's allow/block/pending events, one line each (Ctrl-C stops)
  shell [CAGE] [-- CMD...]
                      open an interactive shell (or run CMD) in the agent container
  gc [--images]       remove leftovers: proxies without an agent, empty cage networks, unused
                      volumes (--images: also cached images no container uses). Labelled objects only.
  doctor [--image IMAGE] [--proxy-base-image IMAGE]
                      check the Docker engine, its version and known caveats, and the images

CAGE is a cage id (ca-XXXXXXXXXX) or a workspace folder; default: the cage of the current folder.

Environment: DOCKER_HOST (engine address), CAGED_AGENT_STATE_DIR (default $XDG_STATE_HOME/caged-agent
or ~/.local/state/caged-agent: the per-cage CA, key file mode 600), CAGED_AGENT_PROXY_BASE_IMAGE
(default ${DEFAULT_PROXY_BASE_IMAGE}), CAGED_AGENT_IMAGE (default: devcontainer.json image, else
${DEFAULT_AGENT_IMAGE}).`;

interface Args {
  positional: string[];
  flags: Map<string, string[]>;
  rest: string[];
}

const BOOLEAN = new Set(['--json', '--private', '--images', '--help', '-h', '--version', '--once', '--session']);

function parseArgs(argv: string[]): Args {
  const a: Args = { positional: [], flags: new Map(), rest: [] };
  for (let i = 0; i < argv.length; i++) {
    let s = argv[i];
    if (s === '--') { a.rest = argv.slice(i + 1); break; }
    if (s.startsWith('-') && s !== '-') {
      let value: string | undefined;
      const eq = s.indexOf('=');
      if (s.startsWith('--') && eq > 0) { value = s.slice(eq + 1); s = s.slice(0, eq); }
      if (BOOLEAN.has(s)) value = value ?? 'true';
      else if (value === undefined) {
        value = argv[++i];
        if (value === undefined) throw new UsageError(`${s} needs a value`);
      }
      a.flags.set(s, [...(a.flags.get(s) ?? []), value]);
    } else a.positional.push(s);
  }
  return a;
}

class UsageError extends Error {}

function flag(a: Args, name: string): string | undefined {
  const v = a.flags.get(name);
  return v ? v[v.length - 1] : undefined;
}

function checkFlags(a: Args, allowed: string[]): void {
  for (const k of a.flags.keys()) if (!allowed.includes(k)) throw new UsageError(`unknown option ${k}`);
}

function err(s: string): void {
  process.stderr.write(s + '\n');
}

function makeEngine(extra: { proxyBaseImage?: string; agentImage?: string } = {}): CageEngine {
  const bundle = process.env.CAGED_AGENT_PROXY_BUNDLE || path.join(__dirname, 'proxy.js');
  return new CageEngine({
    stateDir: process.env.CAGED_AGENT_STATE_DIR || defaultStateDir(),
    proxyBundlePath: bundle,
    proxyBaseImage: extra.proxyBaseImage ?? process.env.CAGED_AGENT_PROXY_BASE_IMAGE ?? undefined,
    agentImage: extra.agentImage ?? process.env.CAGED_AGENT_IMAGE ?? undefined,
  });
}

/** CAGE argument → cage id: an id as is; a folder → its cage; default: the cage holding the cwd. */
async function resolveCage(engine: CageEngine, arg: string | undefined): Promise<string> {
  if (arg && isCageId(arg)) return arg;
  if (arg) return cageIdFor(arg);
  const cwd = canonicalWorkspace(process.cwd());
  try {
    const cages = await engine.list();
    const holding = cages
      .filter((c) => c.workspace && (cwd === c.workspace || cwd.startsWith(c.workspace.endsWith(path.sep) ? c.workspace : c.workspace + path.sep)))
      .sort((x, y) => y.workspace.length - x.workspace.length)[0];
    if (holding) return holding.id;
  } catch {}
  return cageIdFor(cwd);
}

function formatEvent(e: ProxyEvent): string {
  const t = e.time?.replace(/^.*T/, '').replace(/Z$/, '') ?? '';
  switch (e.type) {
    case 'allow':
    case 'block':
      return `${t} ${e.type.toUpperCase().padEnd(5)} ${e.method} ${e.host}:${e.port}${e.path ?? ''} ${e.reason}${e.rule ? ` ${e.rule}` : ''}${e.detail ? ` (${e.detail})` : ''}${e.status ? ` -> ${e.status}` : ''}`;
    case 'pending':
      return `${t} PENDING ${e.method} ${e.host}:${e.port}${e.path} waiting: ${e.count} (gives up at ${e.until.replace(/^.*T/, '').replace(/\.\d+Z$/, '')})`;
    case 'resolved':
      return `${t} ${e.outcome.toUpperCase().padEnd(7)} ${e.host}:${e.port} held requests answered: ${e.count}`;
    case 'policy-loaded':
      return `${t} POLICY loaded: ${e.allow} allow, ${e.deny} deny (${e.hash.slice(0, 12)})`;
    case 'policy-error':
      return `${t} POLICY error (${e.error})${e.line ? ` at ${e.line}:${e.col ?? 0}` : ''}: ${e.message}${e.keptPrevious ? ' [previous policy kept]' : ' [everything blocked]'}`;
    default:
      return `${t} ${String((e as any).type).toUpperCase()} ${(e as any).message ?? (e as any).address ?? ''}`.trimEnd();
  }
}

function printCages(cages: CageInfo[]): void {
  if (!cages.length) {
    process.stdout.write('no cages\n');
    return;
  }
  for (const c of cages) {
    process.stdout.write(`${c.id}  ${c.state.padEnd(10)}  ${c.workspace}  (agent image ${c.baseImage ?? c.agentImage}, since ${c.createdAt})\n`);
    const p = c.protection;
    if (!p) continue;
    if (!p.enabled) {
      process.stdout.write('    workspace protection OFF: only the policy is read-only for the agent\n');
      continue;
    }
    process.stdout.write(`    read-only for the agent: ${p.protected.map((x) => x.path + (x.kind === 'dir' && !x.placeholder ? '/' : '')).join(', ')}\n`);
    if (p.writable.length) process.stdout.write(`    writable by the policy (workspace.writable): ${p.writable.join(', ')}\n`);
    if (p.placeholders.length) process.stdout.write(`    empty placeholders until "down": ${p.placeholders.length}\n`);
  }
}

async function cmdUp(a: Args): Promise<number> {
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

async function cmdDown(a: Args): Promise<number> {
  checkFlags(a, ['--images']);
  const engine = makeEngine();
  const id = await resolveCage(engine, a.positional[0]);
  await engine.down(id, { images: !!flag(a, '--images') });
  err(`cage ${id} is down`);
  return 0;
}

async function cmdStatus(a: Args): Promise<number> {
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

function formatTemporary(e: TemporaryEntry, now = Date.now()): string {
  const what = [e.methods?.join(','), e.paths?.join(' ')].filter(Boolean).join(' ');
  return `${e.kind.toUpperCase().padEnd(5)} ${e.host}${what ? ` ${what}` : ''}${e.private ? ' (private)' : ''}  ${e.expires ? `${formatRemaining(e.expires - now)} left` : 'until the cage stops'}  [${e.id}]`;
}

async function cmdPending(a: Args): Promise<number> {
  checkFlags(a, ['--json']);
  const engine = makeEngine();
  const id = await resolveCage(engine, a.positional[0]);
  const s = await engine.pending(id);
  if (flag(a, '--json')) {
    process.stdout.write(JSON.stringify(s, null, 2) + '\n');
    return 0;
  }
  const now = Date.now();
  if (!s.pending.length) process.stdout.write('no request is waiting for an answer\n');
  for (const g of s.pending) process.stdout.write(`${g.host}:${g.port}  ${g.count} waiting, first ${g.method} ${g.path}, gives up in ${formatRemaining(g.until - now)}\n`);
  for (const e of s.temporary) process.stdout.write(`temporary ${formatTemporary(e, now)}\n`);
  return 0;
}

/** allow --once / --for / --session, and deny: an answer through the proxy's control channel. */
async function answerHeld(a: Args, answer: AskAnswer, cageArg: string | undefined): Promise<number> {
  const engine = makeEngine();
  const id = await resolveCage(engine, cageArg);
  const r = await engine.answer(id, answer);
  err(r.ok ? r.message : `the proxy did not take it: ${r.message}`);
  return r.ok ? 0 : 1;
}

function scopeOf(a: Args): { scope: 'once' | 'session' | 'for'; forMs?: number } | undefined {
  const once = !!flag(a, '--once');
  const session = !!flag(a, '--session');
  const dur = flag(a, '--for');
  if (Number(once) + Number(session) + Number(dur !== undefined) > 1) throw new UsageError('give one of --once, --for DURATION and --session');
  if (once) return { scope: 'once' };
  if (session) return { scope: 'session' };
  if (dur === undefined) return undefined;
  const forMs = parseDuration(dur);
  if (!forMs) throw new UsageError(`--for needs a duration like 30s, 15m or 1h, not "${dur}"`);
  return { scope: 'for', forMs };
}

async function cmdDeny(a: Args): Promise<number> {
  checkFlags(a, ['--once']);
  const host = a.positional[0];
  if (!host) throw new UsageError('deny needs a HOST');
  return answerHeld(a, { host, decision: 'deny', scope: flag(a, '--once') ? 'once' : 'session' }, a.positional[1]);
}

async function cmdRevoke(a: Args): Promise<number> {
  checkFlags(a, []);
  const what = a.positional[0];
  if (!what) throw new UsageError('revoke needs a HOST or an entry id');
  const engine = makeEngine();
  const r = await engine.revoke(await resolveCage(engine, a.positional[1]), what);
  err(r.message);
  return r.ok ? 0 : 1;
}

async function cmdVerify(a: Args): Promise<number> {
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

/** The workspace section of the policy applies at the next start only: say so when it changed. */
function noteWorkspaceRules(info: CageInfo | undefined, text: string): void {
  const rec = info?.protection;
  const r = parseWorkspaceRules(text);
  if (rec?.enabled && !r.errors.length && rulesDiffer(rec, r.rules)) err("note: the policy's workspace section (protect / writable) takes effect at the next start (caged-agent down && caged-agent up)");
}

/** The proxy's verdict on a push, and the exit code: what is known (an unanswered push may or may not be in force). */
function reportPush(r: PolicyPushResult): number {
  if (r.ok) err(`proxy reloaded: ${r.message}`);
  else if (r.inForce === 'unknown') err(`the proxy did not confirm the policy, so it may or may not be in force: ${r.message}`);
  else err(`proxy rejected the policy${r.line ? ` (line ${r.line}:${r.col ?? 0})` : ''}: ${r.message}`);
  return r.ok ? 0 : 1;
}

async function cmdAllow(a: Args): Promise<number> {
  checkFlags(a, ['--policy', '--private', '--path', '--method', '--cage', '--once', '--for', '--session']);
  const host = a.positional[0];
  if (!host) throw new UsageError('allow needs a HOST');
  const scope = scopeOf(a);
  if (scope) {
    if (flag(a, '--policy')) throw new UsageError('--policy is for a permanent allow; a temporary one never touches the policy file');
    return answerHeld(a, { host, decision: 'allow', ...scope, private: !!flag(a, '--private'), paths: a.flags.get('--path'), methods: a.flags.get('--method') }, flag(a, '--cage'));
  }
  const engine = makeEngine();
  const id = await resolveCage(engine, flag(a, '--cage'));
  let info: CageInfo | undefined;
  try { info = await engine.get(id); } catch {}
  const policyPath = path.resolve(flag(a, '--policy') ?? info?.policyPath ?? path.join(canonicalWorkspace(process.cwd()), DEFAULT_POLICY_PATH));
  let text: string | undefined;
  try { text = fs.readFileSync(policyPath, 'utf8'); } catch {}
  const paths = a.flags.get('--path');
  const methods = a.flags.get('--method')?.map((m) => m.toUpperCase());
  const risk = uploadRisk(host);
  if (risk) err(`warning: ${risk}; "caged-agent allow ${host} --once" or "--for 15m" answer without a standing rule`);
  const edited = addAllow(text, { host, ...(flag(a, '--private') ? { private: true } : {}), ...(paths ? { paths } : {}), ...(methods ? { methods } : {}) });
  if (edited.text === text) err(`${host} is already allowed in ${policyPath}`);
  else {
    fs.mkdirSync(path.dirname(policyPath), { recursive: true });
    fs.writeFileSync(policyPath, edited.text);
    err(`added ${host} to ${policyPath}`);
  }
  if (!info || info.state === 'stopped' || info.state === 'proxy-down') {
    err(`cage ${id} is not running; the policy applies at the next start`);
    return 0;
  }
  const r = await engine.pushPolicy(id, edited.text);
  noteWorkspaceRules(info, edited.text);
  return reportPush(r);
}

async function cmdReload(a: Args): Promise<number> {
  checkFlags(a, []);
  const engine = makeEngine();
  const id = await resolveCage(engine, a.positional[0]);
  const r = await engine.reloadPolicy(id);
  const info = await engine.get(id).catch(() => undefined);
  if (info?.policyPath) noteWorkspaceRules(info, fs.readFileSync(info.policyPath, 'utf8'));
  return reportPush(r);
}

async function cmdEvents(a: Args): Promise<number> {
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

async function cmdShell(a: Args): Promise<number> {
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

async function cmdGc(a: Args): Promise<number> {
  checkFlags(a, ['--images']);
  const r = await makeEngine().gc({ images: !!flag(a, '--images') });
  const all = [...r.containers.map((x) => `container ${x}`), ...r.networks.map((x) => `network ${x}`), ...r.volumes.map((x) => `volume ${x}`), ...r.images.map((x) => `image ${x}`)];
  process.stdout.write(all.length ? all.map((x) => `removed ${x}`).join('\n') + '\n' : 'nothing to remove\n');
  return 0;
}

async function cmdDoctor(a: Args): Promise<number> {
  checkFlags(a, ['--image', '--proxy-base-image']);
  const engine = makeEngine({ proxyBaseImage: flag(a, '--proxy-base-image'), agentImage: flag(a, '--image') });
  const checks = await engine.doctor({ agentImage: flag(a, '--image'), workspace: process.cwd() });
  for (const c of checks) process.stdout.write(`${c.warning ? 'WARN' : c.ok ? 'OK  ' : 'FAIL'}  ${c.name}: ${c.detail}\n`);
  return checks.every((c) => c.ok || c.warning) ? 0 : 1;
}

const COMMANDS: Record<string, (a: Args) => Promise<number>> = {
  up: cmdUp,
  down: cmdDown,
  status: cmdStatus,
  verify: cmdVerify,
  allow: cmdAllow,
  deny: cmdDeny,
  revoke: cmdRevoke,
  pending: cmdPending,
  reload: cmdReload,
  events: cmdEvents,
  shell: cmdShell,
  gc: cmdGc,
  doctor: cmdDoctor,
};

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    process.stdout.write(HELP + '\n');
    return cmd ? 0 : 2;
  }
  if (cmd === '--version') {
    process.stdout.write('caged-agent 0.1.0\n');
    return 0;
  }
  const fn = COMMANDS[cmd];
  if (!fn) {
    err(`caged-agent: unknown command "${cmd}"\n\n${HELP}`);
    return 2;
  }
  try {
    const args = parseArgs(rest);
    if (args.flags.has('--help') || args.flags.has('-h')) {
      process.stdout.write(HELP + '\n');
      return 0;
    }
    return await fn(args);
  } catch (e) {
    if (e instanceof UsageError) {
      err(`caged-agent ${cmd}: ${e.message} (see caged-agent --help)`);
      return 2;
    }
    err(`caged-agent ${cmd}: ${(e as Error).message}`);
    return 1;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    // Exit explicitly: the Docker client keeps sockets alive and event/shell streams hold the loop open.
    // Writes to a pipe are asynchronous: let stdout and stderr drain first, or piped output is lost.
    async (code) => {
      await Promise.all([process.stdout, process.stderr].map((s) => new Promise<void>((r) => s.write('', () => r()))));
      process.exit(code);
    },
    (e) => {
      err(`caged-agent: ${(e as Error).message}`);
      process.exit(1);
    },
  );
}
