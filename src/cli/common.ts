// What the commands share: the engine from the environment, the CAGE argument, how events, cages and temporary
// entries are printed.
import * as path from 'node:path';
import { CageEngine, cageIdFor, canonicalWorkspace, defaultStateDir, isCageId, type CageInfo, type ProxyEvent, type TemporaryEntry } from '../engine';
import { formatRemaining } from '../policy';
export function makeEngine(extra: { proxyBaseImage?: string; agentImage?: string } = {}): CageEngine {
  const bundle = process.env.CAGED_AGENT_PROXY_BUNDLE || path.join(__dirname, 'proxy.js');
  return new CageEngine({
    stateDir: process.env.CAGED_AGENT_STATE_DIR || defaultStateDir(),
    proxyBundlePath: bundle,
    proxyBaseImage: extra.proxyBaseImage ?? process.env.CAGED_AGENT_PROXY_BASE_IMAGE ?? undefined,
    agentImage: extra.agentImage ?? process.env.CAGED_AGENT_IMAGE ?? undefined,
  });
}

/** CAGE argument → cage id: an id as is; a folder → its cage; default: the cage holding the cwd. */
export async function resolveCage(engine: CageEngine, arg: string | undefined): Promise<string> {
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

/** " [transparent, h2]": how a request arrived and over what, when not the usual (proxy settings, HTTP/1.1). */
function tags(...t: Array<string | undefined>): string {
  const on = t.filter(Boolean);
  return on.length ? ` [${on.join(', ')}]` : '';
}

export function formatEvent(e: ProxyEvent): string {
  const t = e.time?.replace(/^.*T/, '').replace(/Z$/, '') ?? '';
  switch (e.type) {
    case 'allow':
    case 'block':
      return `${t} ${e.type.toUpperCase().padEnd(5)} ${e.method} ${e.host}:${e.port}${e.path ?? ''} ${e.reason}${e.rule ? ` ${e.rule}` : ''}${e.detail ? ` (${e.detail})` : ''}${e.status ? ` -> ${e.status}` : ''}${tags(e.via, e.proto)}`;
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

export function printCages(cages: CageInfo[]): void {
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

export function formatTemporary(e: TemporaryEntry, now = Date.now()): string {
  const what = [e.methods?.join(','), e.paths?.join(' ')].filter(Boolean).join(' ');
  return `${e.kind.toUpperCase().padEnd(5)} ${e.host}${what ? ` ${what}` : ''}${e.private ? ' (private)' : ''}  ${e.expires ? `${formatRemaining(e.expires - now)} left` : 'until the cage stops'}  [${e.id}]`;
}
