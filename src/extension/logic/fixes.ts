// What a blocked request can be fixed with, by reason: allow choices for policy blocks, "may reach a private
// address" for private-address blocks on an allowed host, nothing for blocks that allowing would not cure
// (a detected secret, a missing credential, SNI mismatch); and whether a policy now cures a block (pruning).
// Pure: no vscode.
import { allowChoices, canonicalHost, classifyAddress, decide, decideTcp, entryKey, isPublicSuffix, TCP_METHOD } from '../../policy';
import type { AllowSpec, Policy, Rule, RuleList } from '../../policy/types';

export type FixChoice =
  | { title: string; scope: string; action: 'add'; spec: AllowSpec }
  | { title: string; scope: 'private'; action: 'update'; list: RuleList; index: number; spec: AllowSpec };

/** A fix as offered, with the block it was offered for: enough to decide again when it is picked. */
export interface FixPayload {
  fix: FixChoice;
  block: BlockedLike;
  /** The user said the host is internal: the new entry opts into private addresses. */
  optInPrivate?: boolean;
}

export interface BlockedLike {
  host: string;
  port: number;
  method?: string;
  path?: string;
  reason: string;
  /** The rule label from the event ("allow[2]"), if any. */
  rule?: string | null;
  /** The rule as data (entryKey() of the entry), from the event; preferred over the label, which shifts. */
  ruleKey?: string;
}

/** The reasons the policy itself gave: an edit of the policy cures them. */
export const POLICY_REASONS: ReadonlySet<string> = new Set(['no-matching-rule', 'denied-by-rule', 'method-not-allowed', 'path-not-allowed', 'ip-literal', 'policy-invalid', 'no-decision']);

export function specOfRule(r: Rule): AllowSpec {
  const s: AllowSpec = { host: r.hostText };
  if (r.port !== undefined) s.port = r.port;
  if (r.methods) s.methods = r.methods;
  if (r.paths) s.paths = r.paths;
  if (r.private) s.private = true;
  if (!r.intercept) s.intercept = false;
  if (r.tcp) s.tcp = r.tcp;
  return s;
}

/**
 * The rule an event names, in this (possibly newer) parse of the policy: the one lookup from an event to a rule.
 * By `ruleKey` (the entry's content, entryKey()), so an edit that moved entries still finds the rule; the label
 * "allow[3]" only for an event without a key (a proxy older than the key).
 */
export function ruleOfEvent(policy: Policy | undefined, b: Pick<BlockedLike, 'rule' | 'ruleKey'>): Rule | undefined {
  if (!policy) return undefined;
  if (b.ruleKey !== undefined) return [...policy.allow, ...policy.deny].find((r) => entryKey(r) === b.ruleKey);
  const m = /^(allow|deny)\[(\d+)\]$/.exec(b.rule ?? '');
  return m ? policy[m[1] as RuleList][Number(m[2])] : undefined;
}

export function fixChoices(b: BlockedLike, policy: Policy | undefined): FixChoice[] {
  if (b.reason === 'private-address') {
    const r = ruleOfEvent(policy, b);
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

/**
 * Whether a block still stands under `policy` (false: the policy now lets the request through, and the block can
 * go). A private-address block is cured once the matching rule opts in; reasons decided outside the policy (a
 * detected secret, a missing credential, SNI) stay until the user dismisses them.
 */
export function stillBlocked(b: BlockedLike, policy: Policy): boolean {
  const connect = b.method === 'CONNECT';
  const d = b.method === TCP_METHOD ? decideTcp(b.host, b.port, policy) : decide({ host: b.host, port: b.port, method: connect ? undefined : b.method, path: connect ? undefined : b.path || '/' }, policy);
  if (d.action !== 'allow') return true;
  if (b.reason === 'private-address') return !d.rule?.private;
  return !POLICY_REASONS.has(b.reason);
}

/** A name under no public top-level domain (intranet.lan, svc.internal, host.test) or a private IP literal. */
export function looksInternal(host: string): boolean {
  const c = canonicalHost(host.replace(/^\*\./, ''));
  if (!c) return false;
  if (c.kind !== 'name') return classifyAddress(c.host) !== 'public';
  const tld = c.host.slice(c.host.lastIndexOf('.') + 1);
  return !c.host.includes('.') || !isPublicSuffix(tld);
}
