// The policy commands: allow (permanent: the policy file, comments kept, then the push; with a scope flag: ask.ts)
// and reload.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { canonicalWorkspace, type CageInfo, type PolicyPushResult } from '../engine';
import { rulesDiffer } from '../engine/protect';
import { addAllow, DEFAULT_POLICY_PATH, parseWorkspaceRules, uploadRisk } from '../policy';
import { checkFlags, err, flag, UsageError, type Args } from './args';
import { answerHeld, scopeOf } from './ask';
import { makeEngine, resolveCage } from './common';
/** The workspace section of the policy applies at the next start only: say so when it changed. */
export function noteWorkspaceRules(info: CageInfo | undefined, text: string): void {
  const rec = info?.protection;
  const r = parseWorkspaceRules(text);
  if (rec?.enabled && !r.errors.length && rulesDiffer(rec, r.rules)) err("note: the policy's workspace section (protect / writable) takes effect at the next start (caged-agent down && caged-agent up)");
}

/** The proxy's verdict on a push, and the exit code: what is known (an unanswered push may or may not be in force). */
export function reportPush(r: PolicyPushResult): number {
  if (r.ok) err(`proxy reloaded: ${r.message}`);
  else if (r.inForce === 'unknown') err(`the proxy did not confirm the policy, so it may or may not be in force: ${r.message}`);
  else err(`proxy rejected the policy${r.line ? ` (line ${r.line}:${r.col ?? 0})` : ''}: ${r.message}`);
  return r.ok ? 0 : 1;
}

export async function cmdAllow(a: Args): Promise<number> {
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

export async function cmdReload(a: Args): Promise<number> {
  checkFlags(a, []);
  const engine = makeEngine();
  const id = await resolveCage(engine, a.positional[0]);
  const r = await engine.reloadPolicy(id);
  const info = await engine.get(id).catch(() => undefined);
  if (info?.policyPath) noteWorkspaceRules(info, fs.readFileSync(info.policyPath, 'utf8'));
  return reportPush(r);
}
