// Checks across entries, once each entry is valid on its own: duplicates, and allow entries that never apply
// because a deny entry blocks everything they would allow. Warnings only. Pure.
import { entryKey } from './ruleId';
import type { Policy, Rule } from './types';
import type { Ctx } from './yamlNodes';

function portCovers(deny: Rule, allow: Rule): boolean {
  if (deny.port === allow.port) return true;
  return deny.port === undefined && (allow.port === 80 || allow.port === 443);
}

function hostCovers(deny: Rule, allow: Rule): boolean {
  if (deny.kind !== 'wildcard') return deny.kind === allow.kind && deny.host === allow.host;
  if (allow.kind === 'ip') return false;
  if (allow.kind === 'exact') return allow.host.endsWith('.' + deny.host);
  return allow.host === deny.host || allow.host.endsWith('.' + deny.host);
}

/** Whether deny rule `d` blocks everything allow rule `a` could allow. */
export function shadows(d: Rule, a: Rule): boolean {
  if (d.paths) return false;
  if (d.methods && (!a.methods || !a.methods.every((m) => d.methods!.includes(m)))) return false;
  return hostCovers(d, a) && portCovers(d, a);
}

/** Warnings across entries: duplicates (the same entryKey) and allow entries a deny entry always overrides. */
export function crossChecks(ctx: Ctx, policy: Policy): void {
  for (const list of [policy.allow, policy.deny]) {
    const seen = new Map<string, Rule>();
    for (const r of list) {
      if (r.disabled) continue;
      const k = entryKey(r);
      const prev = seen.get(k);
      if (prev) ctx.warnAt(`${r.list}[${r.index}] is the same as ${prev.list}[${prev.index}]; one of them can go`, r.pos);
      else seen.set(k, r);
    }
  }
  for (const a of policy.allow) {
    if (a.disabled) continue;
    const d = policy.deny.find((x) => !x.disabled && shadows(x, a));
    if (d) ctx.warnAt(`allow[${a.index}] never applies: deny[${d.index}] blocks everything it would allow`, a.pos);
  }
}
