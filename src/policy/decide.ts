// The one pure decision function on the proxy's hot path, plus the per-policy index it uses.
import { canonicalHost, hostForDisplay, type CanonicalHost } from './host';
import { DEFAULT_POLICY_PATH } from './names';
import { compileGlob, normalizePath, separatorReading, splitTarget } from './path';
import { ruleLabel } from './ruleId';
import type { Decision, Policy, RequestInfo, Rule } from './types';

interface RuleIndex {
  exact: Map<string, Rule[]>;
  wild: Map<string, Rule[]>;
}

interface CompiledPolicy {
  allow: RuleIndex;
  deny: RuleIndex;
  /** The raw TCP entries (`tcp: [...]`): they allow no HTTP, so they are not in `allow`. */
  tcp: RuleIndex;
}

// Side tables keep Rule and Policy plain JSON-serialisable objects.
const compiledPolicies = new WeakMap<Policy, CompiledPolicy>();
const compiledPaths = new WeakMap<Rule, RegExp[]>();
/** The same globs under the separator reading (see separatorReading), compiled when first needed. */
const compiledAltPaths = new WeakMap<Rule, RegExp[]>();

function indexRules(rules: Rule[]): RuleIndex {
  const idx: RuleIndex = { exact: new Map(), wild: new Map() };
  for (const r of rules) {
    if (r.disabled) continue;
    const m = r.kind === 'wildcard' ? idx.wild : idx.exact;
    const list = m.get(r.host);
    if (list) list.push(r);
    else m.set(r.host, [r]);
    if (r.paths && !compiledPaths.has(r)) compiledPaths.set(r, compilePaths(r.paths));
  }
  return idx;
}

function compilePaths(paths: string[], alt = false): RegExp[] {
  const out: RegExp[] = [];
  for (const p of paths) {
    const n = alt ? normalizePath(p) : p;
    const reread = n === undefined ? undefined : alt ? separatorReading(p, n) : n;
    const c = reread === undefined ? { error: 'unusable' } : compileGlob(reread);
    // An uncompilable glob (only possible for hand-built policies) matches nothing: fail closed.
    out.push('error' in c ? /(?!)/ : c.re);
  }
  return out;
}

/** Builds (once) the lookup index for a policy. parsePolicy calls this; decide calls it lazily otherwise. */
export function compilePolicy(policy: Policy): void {
  if (compiledPolicies.has(policy)) return;
  compiledPolicies.set(policy, { allow: indexRules(policy.allow.filter((r) => !r.tcp)), deny: indexRules(policy.deny), tcp: indexRules(policy.allow.filter((r) => r.tcp)) });
}

function compiled(policy: Policy): CompiledPolicy {
  let c = compiledPolicies.get(policy);
  if (!c) {
    compilePolicy(policy);
    c = compiledPolicies.get(policy)!;
  }
  return c;
}

function portMatches(rule: Rule, port: number): boolean {
  if (rule.tcp) return rule.tcp.includes(port);
  return rule.port === undefined ? port === 80 || port === 443 : rule.port === port;
}

/** Enabled rules of one list whose host pattern and port match, in file order. */
function hostMatches(idx: RuleIndex, host: CanonicalHost, port: number, ports: (r: Rule, port: number) => boolean = portMatches): Rule[] {
  const out: Rule[] = [];
  const exact = idx.exact.get(host.host);
  if (exact) for (const r of exact) if (ports(r, port)) out.push(r);
  if (host.kind === 'name' && idx.wild.size > 0) {
    let dot = host.host.indexOf('.');
    while (dot >= 0) {
      const parent = host.host.slice(dot + 1);
      const w = idx.wild.get(parent);
      if (w) for (const r of w) if (ports(r, port)) out.push(r);
      dot = host.host.indexOf('.', dot + 1);
    }
  }
  if (out.length > 1) out.sort((a, b) => a.index - b.index);
  return out;
}

function methodMatches(rule: Rule, method: string | undefined): boolean {
  if (!rule.methods) return true;
  return method !== undefined && rule.methods.includes(method.toUpperCase());
}

function pathMatches(rule: Rule, path: string | undefined, alt = false): boolean {
  if (!rule.paths) return true;
  if (path === undefined) return false;
  const table = alt ? compiledAltPaths : compiledPaths;
  let res = table.get(rule);
  if (!res) {
    res = compilePaths(rule.paths, alt);
    table.set(rule, res);
  }
  for (const re of res) if (re.test(path)) return true;
  return false;
}

function hostPort(host: CanonicalHost, port: number): string {
  const h = hostForDisplay(host);
  return port === 80 || port === 443 ? h : `${h}:${port}`;
}

function list(items: string[]): string {
  return short(items.join(', '));
}

/** Keeps messages one short line whatever the request contained. */
function short(s: string, max = 160): string {
  // eslint-disable-next-line no-control-regex
  const one = s.replace(/[\u0000-\u001f\u007f]/g, '?');
  return one.length > max ? one.slice(0, max - 3) + '...' : one;
}

/**
 * Decides one request. With `req.method` and `req.path` both undefined it is a host-level (CONNECT-time)
 * decision: allowed when an allow rule matches host and port and no unconditional deny rule does; the
 * returned rule is the first matching allow rule (callers read `.intercept`, `.auth`, `.private`).
 * Never throws.
 */
export function decide(req: RequestInfo, policy: Policy | undefined): Decision {
  if (!policy) {
    return {
      action: 'deny',
      reason: 'policy-invalid',
      message: `No valid policy is loaded, so all traffic is blocked; fix the errors in the policy file (${DEFAULT_POLICY_PATH}).`,
    };
  }
  const c = compiled(policy);
  const port = req.port;
  const host = canonicalHost(req.host);
  const hostLevel = req.method === undefined && req.path === undefined;
  let normalizedPath: string | undefined;
  let forwardPath: string | undefined;
  if (req.path !== undefined) {
    normalizedPath = normalizePath(req.path);
    if (normalizedPath === undefined) {
      return {
        action: 'deny',
        reason: 'bad-path',
        message: 'The request path could not be normalised safely (bad percent-escape, control character or "..;" segment), so it was blocked; send a plain path.',
      };
    }
    const q = splitTarget(req.path).query;
    forwardPath = q === undefined ? normalizedPath : `${normalizedPath}?${q}`;
  }
  const withPath = (d: Decision): Decision => {
    if (normalizedPath !== undefined) {
      d.normalizedPath = normalizedPath;
      d.forwardPath = forwardPath;
    }
    return d;
  };
  if (!host || !Number.isInteger(port) || port < 1 || port > 65535) {
    return withPath({
      action: 'deny',
      reason: 'no-matching-rule',
      message: `${short(JSON.stringify(`${String(req.host)}:${String(port)}`), 120)} is not a valid host and port, so the request was blocked.`,
    });
  }
  const hp = hostPort(host, port);
  const method = req.method?.toUpperCase();

  // 1. Deny rules win. A deny with methods/paths blocks only matching requests (never at host level): those
  // are checked with the request (decideRequest).
  const denies = hostMatches(c.deny, host, port);
  for (const r of denies) {
    if (r.methods !== undefined || r.paths !== undefined) continue;
    return withPath({
      action: 'deny',
      reason: 'denied-by-rule',
      rule: r,
      message: `${hp} is blocked by ${ruleLabel(r)} in the policy file; remove or disable that deny entry if the agent really needs it.`,
    });
  }

  // 2. Allow rules.
  const allows = hostMatches(c.allow, host, port);
  if (allows.length === 0) {
    if (host.kind !== 'name') {
      return withPath({
        action: 'deny',
        reason: 'ip-literal',
        message: `${hp} is an IP address and no allow rule names it; use the host name instead, or add "- host: ${hostForDisplay(host)}${port === 80 || port === 443 ? '' : ':' + port}" under allow: in the policy file.`,
      });
    }
    return withPath({
      action: 'deny',
      reason: 'no-matching-rule',
      message: `No allow rule matches ${hp}; add "- host: ${hp}" under allow: in the policy file if the agent needs it.`,
    });
  }

  if (hostLevel) {
    let rule = allows[0];
    // A conditional deny on this host needs request-level inspection: never tunnel such a host blind.
    if (!rule.intercept && denies.length > 0) {
      const intercepting = allows.find((r) => r.intercept);
      if (!intercepting) {
        return {
          action: 'deny',
          reason: 'denied-by-rule',
          rule: denies[0],
          message: `${hp} is allowed only without interception (${ruleLabel(rule)}), but ${ruleLabel(denies[0])} restricts some of its requests, so it is blocked; remove "intercept: false" or that deny entry.`,
        };
      }
      rule = intercepting;
    }
    return { action: 'allow', reason: 'allowed', rule, message: `${hp} is allowed by ${ruleLabel(rule)}.` };
  }

  const d = withPath(decideRequest(denies, allows, method, normalizedPath, hp, false));
  // The decision depends on the path here: it must not change when the server reads encoded separators
  // as separators (or drops ";params"). Requests without a path rule or conditional deny are not affected
  // (e.g. GitLab's "group%2Fproject" keeps working on a host allowed as a whole).
  if (d.action !== 'allow' || normalizedPath === undefined || !(allows.some((r) => r.paths) || denies.some((r) => r.paths))) return d;
  const alt = separatorReading(req.path!, normalizedPath);
  if (alt === normalizedPath) return d;
  if (alt === undefined) {
    return withPath({
      action: 'deny',
      reason: 'bad-path',
      message: `The path ${short(normalizedPath)} hides a "." or ".." segment behind an encoded separator (%2F, %5C or a backslash), which servers resolve differently from the policy, so it was blocked; send the path with the segment resolved.`,
    });
  }
  const a = decideRequest(denies, allows, method, alt, hp, true);
  if (a.action === 'allow' && a.rule === d.rule) return d;
  return withPath({
    action: 'deny',
    reason: 'bad-path',
    rule: a.rule,
    message: `The path ${short(normalizedPath)} is decided differently when a server reads its encoded separators (%2F, %5C, a backslash) or ";" parameters as ${short(alt)}, so it was blocked; send the path with plain "/" separators.`,
  });
}

/** The request-level decision for a normalised path, matched as data or (alt) under the separator reading. */
function decideRequest(denies: Rule[], allows: Rule[], method: string | undefined, normalizedPath: string | undefined, hp: string, alt: boolean): Decision {
  for (const r of denies) {
    if (r.methods === undefined && r.paths === undefined) continue; // unconditional denies returned earlier
    if (methodMatches(r, method) && pathMatches(r, normalizedPath, alt)) {
      return {
        action: 'deny',
        reason: 'denied-by-rule',
        rule: r,
        message: `${short(`${method ?? ''} ${normalizedPath ?? ''}`.trim())} on ${hp} is blocked by ${ruleLabel(r)} in the policy file; remove or disable that deny entry if the agent really needs it.`,
      };
    }
  }
  let methodOk: Rule | undefined;
  for (const r of allows) {
    if (!methodMatches(r, method)) continue;
    methodOk ??= r;
    if (pathMatches(r, normalizedPath, alt)) {
      return { action: 'allow', reason: 'allowed', rule: r, message: `${short(`${method ?? ''} ${normalizedPath ?? ''}`.trim())} on ${hp} is allowed by ${ruleLabel(r)}.` };
    }
  }
  if (methodOk) {
    const globs = allows.filter((r) => methodMatches(r, method)).flatMap((r) => r.paths ?? []);
    return {
      action: 'deny',
      reason: 'path-not-allowed',
      rule: methodOk,
      message: `${short(`${method ?? 'The request'} ${normalizedPath ?? ''}`)} on ${hp} is not allowed: ${ruleLabel(methodOk)} permits only the paths ${list([...new Set(globs)])}; add this path to that entry's paths if the agent needs it.`,
    };
  }
  const methods = [...new Set(allows.flatMap((r) => r.methods ?? []))];
  return {
    action: 'deny',
    reason: 'method-not-allowed',
    rule: allows[0],
    message: `${short(method ?? 'This method', 40)} is not allowed on ${hp}: ${ruleLabel(allows[0])} permits only ${list(methods)}; add ${short(method ?? 'the method', 40)} to that entry's methods if the agent needs it.`,
  };
}

/** A deny entry without methods or paths blocks its host for raw TCP too: on its port, or (none) on every port. */
function denyTcpPort(rule: Rule, port: number): boolean {
  return rule.methods === undefined && rule.paths === undefined && (rule.port === undefined || rule.port === port);
}

/**
 * Decides a raw TCP connection to host:port (no HTTP inside to see): allowed when an allow entry with
 * `tcp: [...]` names the port and no deny entry blocks the host. The rule returned is that entry (callers read
 * `.private`). Never throws.
 */
export function decideTcp(hostText: string, port: number, policy: Policy | undefined): Decision {
  if (!policy) return decide({ host: hostText, port }, policy);
  const c = compiled(policy);
  const host = canonicalHost(hostText);
  if (!host || !Number.isInteger(port) || port < 1 || port > 65535) {
    return { action: 'deny', reason: 'no-matching-rule', message: `${short(JSON.stringify(`${String(hostText)}:${String(port)}`), 120)} is not a valid host and port, so the connection was refused.` };
  }
  const shown = `${hostForDisplay(host)}:${port}`;
  const deny = hostMatches(c.deny, host, port, denyTcpPort)[0];
  if (deny) return { action: 'deny', reason: 'denied-by-rule', rule: deny, message: `Raw TCP to ${shown} is blocked by ${ruleLabel(deny)} in the policy file; remove or disable that deny entry if the agent really needs it.` };
  const allow = hostMatches(c.tcp, host, port)[0];
  if (allow) return { action: 'allow', reason: 'allowed', rule: allow, message: `Raw TCP to ${shown} is allowed by ${ruleLabel(allow)}.` };
  return {
    action: 'deny',
    reason: 'no-matching-rule',
    message: `No allow rule lets raw TCP reach ${shown}; add "- host: ${hostForDisplay(host)}" with "tcp: [${port}]" under allow: in the policy file if the agent needs it.`,
  };
}
