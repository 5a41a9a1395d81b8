// What a blocked request can be fixed with, by reason: allow choices for policy blocks, "may reach a private
// address" for private-address blocks on an allowed host, nothing for blocks that allowing would not cure
// (a detected secret, a missing credential, SNI mismatch). Pure: no vscode.
import { allowChoices, canonicalHost, classifyAddress, isPublicSuffix } from '../../policy';
import type { AllowSpec, Policy, Rule, RuleList } from '../../policy/types';

export type FixChoice =
  | { title: string; scope: string; action: 'add'; spec: AllowSpec }
  | { title: string; scope: 'private'; action: 'update'; list: RuleList; index: number; spec: AllowSpec };

export interface BlockedLike {
  host: string;
  port: number;
  method?: string;
  path?: string;
  reason: string;
  /** The rule label from the event ("allow[2]"), if any. */
  rule?: string | null;
}

const POLICY_REASONS = new Set(['no-matching-rule', 'denied-by-rule', 'method-not-allowed', 'path-not-allowed', 'ip-literal', 'policy-invalid']);

export function specOfRule(r: Rule): AllowSpec {
  const s: AllowSpec = { host: r.hostText };
  if (r.port !== undefined) s.port = r.port;
  if (r.methods) s.methods = r.methods;
  if (r.paths) s.paths = r.paths;
  if (r.private) s.private = true;
  if (!r.intercept) s.intercept = false;
  return s;
}

function ruleByLabel(policy: Policy | undefined, label: string | null | undefined): Rule | undefined {
  const m = /^(allow|deny)\[(\d+)\]$/.exec(label ?? '');
  if (!m || !policy) return undefined;
  return policy[m[1] as RuleList][Number(m[2])];
}

export function fixChoices(b: BlockedLike, policy: Policy | undefined): FixChoice[] {
  if (b.reason === 'private-address') {
    const r = ruleByLabel(policy, b.rule);
    if (r && r.list === 'allow') {
      return [{ title: `Allow ${r.hostText} to reach a private address`, scope: 'private', action: 'update', list: r.list, index: r.index, spec: { ...specOfRule(r), private: true } }];
    }
    return [];
  }
  if (!POLICY_REASONS.has(b.reason)) return [];
  const connect = !b.method || b.method === 'CONNECT';
  return allowChoices({ host: b.host, port: b.port, method: connect ? undefined : b.method, path: connect ? undefined : b.path || undefined }).map((c) => ({
    title: c.title,
    scope: c.scope,
    action: 'add' as const,
    spec: c.spec,
  }));
}

/** A name under no public top-level domain (intranet.lan, svc.internal, host.test) or a private IP literal. */
export function looksInternal(host: string): boolean {
  const c = canonicalHost(host.replace(/^\*\./, ''));
  if (!c) return false;
  if (c.kind !== 'name') return classifyAddress(c.host) !== 'public';
  const tld = c.host.slice(c.host.lastIndexOf('.') + 1);
  return !c.host.includes('.') || !isPublicSuffix(tld);
}
