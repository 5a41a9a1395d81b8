// Parsing and validation of .caged/policy.yaml (schema version 1). Every problem becomes a PolicyIssue
// with a 1-based position and plain words; nothing here throws on any input.
import { LineCounter, isAlias, isMap, isPair, isScalar, isSeq, parseDocument, type Document } from 'yaml';
import { compilePolicy } from './decide';
import { canonicalHost, classifyAddress, isPublicSuffix } from './host';
import { compileGlob } from './path';
import type { AuthSpec, HostKind, ParseResult, Policy, PolicyIssue, Rule, RuleList, SourcePos, WorkspacePath, WorkspaceRules } from './types';
import { parseWorkspacePath, WORKSPACE_FIELDS, writableWarning } from './workspace';

export const TOP_FIELDS = ['version', 'allow', 'deny', 'workspace'] as const;
export const ENTRY_FIELDS = ['host', 'methods', 'paths', 'auth', 'intercept', 'private', 'disabled'] as const;
const AUTH_FIELDS = ['scheme', 'secret'] as const;

/** Request methods a rule may name (RFC 9110 plus WebDAV and the QUERY draft). */
export const HTTP_METHODS = new Set([
  'GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE', 'QUERY',
  'PROPFIND', 'PROPPATCH', 'MKCOL', 'COPY', 'MOVE', 'LOCK', 'UNLOCK', 'REPORT', 'SEARCH', 'MKACTIVITY',
  'CHECKOUT', 'MERGE', 'MKCALENDAR', 'ACL', 'BIND', 'UNBIND', 'REBIND', 'LINK', 'UNLINK', 'PURGE',
]);

export interface HostPattern {
  kind: HostKind;
  /** Canonical host; for 'wildcard' the parent domain. */
  host: string;
  port?: number;
  /** The host as written, without the port ("*.Example.com", "[::1]"). */
  text: string;
}

/**
 * Parses the value of a `host:` field: "api.example.com", "*.example.com", "host:8443", "10.0.0.5",
 * "[::1]:8443", "::1". Returns plain-words errors (without the "allow[2].host:" prefix).
 */
export function parseHostPattern(text: string, opts: { list?: RuleList } = {}): HostPattern | { error: string } {
  const raw = text.trim();
  const q = JSON.stringify(text);
  if (raw === '') return { error: 'host is empty; write a host name like "api.example.com"' };
  if (raw.includes('://')) return { error: `${q} contains a URL scheme; write only the host name, like "${raw.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '').split('/')[0]}"` };
  if (raw.includes('/')) return { error: `${q} contains a path; write only the host here and put paths under "paths:"` };
  if (/\s/.test(raw)) return { error: `${q} contains spaces; a host name has none` };
  if (raw.includes('@')) return { error: `${q} contains "@"; write only the host name (credentials go under "auth:")` };
  let hostPart = raw;
  let portText: string | undefined;
  if (raw.startsWith('[')) {
    const close = raw.indexOf(']');
    if (close < 0) return { error: `${q} has "[" without a closing "]"` };
    hostPart = raw.slice(0, close + 1);
    const rest = raw.slice(close + 1);
    if (rest !== '') {
      if (!rest.startsWith(':')) return { error: `${q}: unexpected text after "]"` };
      portText = rest.slice(1);
    }
  } else {
    const colons = raw.split(':').length - 1;
    if (colons === 1) {
      const i = raw.indexOf(':');
      hostPart = raw.slice(0, i);
      portText = raw.slice(i + 1);
    }
  }
  let port: number | undefined;
  if (portText !== undefined) {
    if (!/^[0-9]+$/.test(portText)) return { error: `${q}: port "${portText}" is not a number` };
    port = Number(portText);
    if (port < 1 || port > 65535) return { error: `${q}: port ${portText} is out of range (1-65535)` };
  }
  if (hostPart === '*' || hostPart === '*.') return { error: `${q} would allow every host; list the hosts the agent needs instead` };
  if (hostPart.startsWith('*.')) {
    const parentText = hostPart.slice(2);
    if (parentText.includes('*')) return { error: `${q}: a wildcard is only allowed as a single leading "*." label, like "*.example.com"` };
    const c = canonicalHost(parentText);
    if (!c) return { error: `${q}: "${parentText}" is not a valid host name` };
    if (c.kind !== 'name') return { error: `${q}: a wildcard cannot be used with an IP address` };
    if (isPublicSuffix(c.host) && opts.list !== 'deny') return { error: `${q} would allow a whole public suffix (every site under ".${c.host}"); name the sites the agent needs instead` };
    return { kind: 'wildcard', host: c.host, port, text: hostPart };
  }
  if (hostPart.includes('*')) return { error: `${q}: a wildcard is only allowed as a leading "*." label, like "*.example.com"` };
  let h = hostPart;
  if (/^[0-9]{1,5}$/.test(h) && Number(h) <= 65535) return { error: `${q} looks like a port number; write the host and the port together, like "example.com:${h}"` };
  if (/[\u0080-\uffff]/.test(h)) {
    // Internationalised names: compare in their ASCII (punycode) form, as clients send them.
    try {
      h = new URL(`http://${h}/`).hostname;
    } catch {
      return { error: `${q} is not a valid host name` };
    }
  }
  const c = canonicalHost(h);
  if (!c) {
    if (/^[0-9.]+$/.test(h) || h.startsWith('[') || h.includes(':')) return { error: `${q} is not a valid IP address` };
    return { error: `${q} is not a valid host name (letters, digits, "-" and "." only)` };
  }
  return { kind: c.kind === 'name' ? 'exact' : 'ip', host: c.host, port, text: hostPart };
}

/** Edit distance where swapping two neighbouring letters counts as one edit ("hots" -> "host"). */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/** The closest known name, if it is close enough to be a plausible typo. */
export function suggest(word: string, known: readonly string[]): string | undefined {
  const w = word.toLowerCase();
  if (w.length > 40) return undefined;
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const d = editDistance(w, k);
    if (d < bestD) {
      bestD = d;
      best = k;
    }
  }
  return best !== undefined && bestD <= (best.length <= 3 ? 1 : 2) && bestD < w.length ? best : undefined;
}

type Range = readonly [number, number, number?] | null | undefined;

class Ctx {
  errors: PolicyIssue[] = [];
  warnings: PolicyIssue[] = [];
  /** The errors that make the `workspace:` section unreadable (a subset of errors). */
  workspaceErrors: PolicyIssue[] = [];
  constructor(
    readonly lc: LineCounter,
    readonly doc: Document,
    readonly textLength: number,
  ) {}

  pos(range: Range): SourcePos {
    if (!range) return { line: 1, col: 1, endLine: 1, endCol: 1 };
    const s = Math.max(0, Math.min(range[0], this.textLength));
    const e = Math.max(s, Math.min(range[1], this.textLength));
    const a = this.lc.linePos(s);
    const b = this.lc.linePos(e);
    return { line: a.line, col: a.col, endLine: b.line, endCol: b.col };
  }
  error(message: string, range: Range): void {
    this.errors.push({ severity: 'error', message, pos: this.pos(range) });
  }
  workspaceError(message: string, range: Range): void {
    this.error(message, range);
    this.workspaceErrors.push(this.errors[this.errors.length - 1]);
  }
  warn(message: string, range: Range): void {
    this.warnings.push({ severity: 'warning', message, pos: this.pos(range) });
  }
  warnAt(message: string, pos: SourcePos): void {
    this.warnings.push({ severity: 'warning', message, pos });
  }
  resolve(node: unknown): any {
    if (isAlias(node)) {
      try {
        return node.resolve(this.doc) ?? null;
      } catch {
        return null;
      }
    }
    return node;
  }
}

function rangeOf(node: any): Range {
  return node && Array.isArray(node.range) ? (node.range as Range) : undefined;
}

/** Where a collection's content really ends (before trailing comments/blank lines). */
export function contentEnd(node: any): number {
  if (!node) return 0;
  if (isMap(node) || isSeq(node)) {
    if (node.flow) return node.range ? node.range[1] : 0;
    let end = node.range ? node.range[0] : 0;
    for (const it of node.items as any[]) {
      if (isPair(it)) {
        const v: any = it.value;
        const k: any = it.key;
        if (v && v.range) end = Math.max(end, contentEnd(v));
        else if (k && k.range) end = Math.max(end, k.range[1]);
      } else if (it && it.range) end = Math.max(end, contentEnd(it));
    }
    return end;
  }
  return node.range ? node.range[1] : 0;
}

function describe(v: unknown): string {
  if (v === null || v === undefined) return 'nothing';
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (isMap(v)) return 'a mapping';
  if (isSeq(v)) return 'a list';
  if (isScalar(v)) return describe(v.value);
  return 'an unsupported value';
}

function scalarText(node: any): string | undefined {
  if (!isScalar(node)) return undefined;
  if (typeof node.value === 'string') return node.value;
  // Plain scalars YAML reads as numbers ("host: 2130706433") keep their source text.
  if (typeof node.value === 'number' && typeof node.source === 'string') return node.source;
  return undefined;
}

function unknownField(ctx: Ctx, where: string, name: string, known: readonly string[], range: Range): void {
  const prefix = where ? `${where}: ` : '';
  if (name === 'port') {
    ctx.error(`${prefix}unknown field "port" — write the port in the host, like "host: example.com:8443"`, range);
    return;
  }
  if (name === 'url') {
    ctx.error(`${prefix}unknown field "url" — write the host under "host:" and the path under "paths:"`, range);
    return;
  }
  const s = suggest(name, known);
  ctx.error(`${prefix}unknown field ${JSON.stringify(name)}` + (s ? ` — did you mean "${s}"?` : ` (known fields: ${known.join(', ')})`), range);
}

function parseStringList(ctx: Ctx, where: string, node: any, example: string): { items: string[]; nodes: any[] } | undefined {
  node = ctx.resolve(node);
  if (!isSeq(node)) {
    ctx.error(`${where} must be a list, like ${example}`, rangeOf(node));
    return undefined;
  }
  const items: string[] = [];
  const nodes: any[] = [];
  for (const raw of node.items) {
    const it = ctx.resolve(raw);
    const s = scalarText(it);
    if (s === undefined) {
      ctx.error(`${where}: expected text, got ${describe(it)}`, rangeOf(it) ?? rangeOf(node));
      continue;
    }
    items.push(s);
    nodes.push(it);
  }
  if (node.items.length === 0) {
    ctx.error(`${where} is empty, so the entry would match nothing; remove "${where.split('.').pop()}" to match any`, rangeOf(node));
    return undefined;
  }
  return { items, nodes };
}

function parseBool(ctx: Ctx, where: string, node: any): boolean | undefined {
  node = ctx.resolve(node);
  if (isScalar(node) && typeof node.value === 'boolean') return node.value;
  ctx.error(`${where} must be true or false, not ${describe(node)}`, rangeOf(node));
  return undefined;
}

function parseEntry(ctx: Ctx, list: RuleList, index: number, node: any): Rule | undefined {
  const where = `${list}[${index}]`;
  if (!isMap(node)) {
    const s = scalarText(node);
    if (s !== undefined) ctx.error(`${where}: expected an entry like "- host: ${s}", got a plain value`, rangeOf(node));
    else ctx.error(`${where}: expected an entry like "- host: api.example.com", got ${describe(node)}`, rangeOf(node));
    return undefined;
  }
  const errorsBefore = ctx.errors.length;
  let unknownFields = 0;
  const fields = new Map<string, { key: any; value: any }>();
  for (const pair of node.items) {
    const key = ctx.resolve(pair.key);
    const name = isScalar(key) ? String(key.value) : undefined;
    if (name === undefined) {
      ctx.error(`${where}: field names must be plain words`, rangeOf(key) ?? rangeOf(node));
      continue;
    }
    if (!(ENTRY_FIELDS as readonly string[]).includes(name)) {
      unknownField(ctx, where, name, ENTRY_FIELDS, rangeOf(key));
      unknownFields++;
      continue;
    }
    fields.set(name, { key, value: pair.value });
  }
  const entryRange: Range = [rangeOf(node)?.[0] ?? 0, contentEnd(node)];
  const hostF = fields.get('host');
  let pattern: HostPattern | undefined;
  let hostText = '';
  if (!hostF) {
    if (unknownFields === 0) ctx.error(`${where}: missing "host:" (every entry names a host, like "host: api.example.com")`, entryRange);
  } else {
    const v = ctx.resolve(hostF.value);
    const s = scalarText(v);
    if (s === undefined) ctx.error(`${where}.host must be a host name, not ${describe(v)}`, rangeOf(v) ?? rangeOf(hostF.key));
    else {
      const p = parseHostPattern(s, { list });
      if ('error' in p) ctx.error(`${where}.host: ${p.error}`, rangeOf(v));
      else {
        pattern = p;
        hostText = p.text;
      }
    }
  }
  let methods: string[] | undefined;
  const mF = fields.get('methods');
  if (mF) {
    const l = parseStringList(ctx, `${where}.methods`, mF.value, '[GET, HEAD]');
    if (l) {
      methods = [];
      l.items.forEach((m, i) => {
        const up = m.trim().toUpperCase();
        if (up === '*' || up === 'ANY') ctx.error(`${where}.methods: ${JSON.stringify(m)} — leave "methods" out to allow any method`, rangeOf(l.nodes[i]));
        else if (up === 'CONNECT') ctx.error(`${where}.methods: "CONNECT" is how HTTPS tunnels open, not a request method; leave it out`, rangeOf(l.nodes[i]));
        else if (!HTTP_METHODS.has(up)) ctx.error(`${where}.methods: ${JSON.stringify(m)} is not an HTTP method`, rangeOf(l.nodes[i]));
        else if (!methods!.includes(up)) methods!.push(up);
      });
    }
  }
  let paths: string[] | undefined;
  const pF = fields.get('paths');
  if (pF) {
    const l = parseStringList(ctx, `${where}.paths`, pF.value, '["/my-org/**"]');
    if (l) {
      paths = [];
      l.items.forEach((p, i) => {
        const c = compileGlob(p.trim());
        if ('error' in c) ctx.error(`${where}.paths: ${c.error}`, rangeOf(l.nodes[i]));
        else {
          if (c.glob !== p.trim()) ctx.warn(`${where}.paths: ${JSON.stringify(p)} is matched as ${JSON.stringify(c.glob)} (paths are normalised before matching)`, rangeOf(l.nodes[i]));
          if (!paths!.includes(c.glob)) paths!.push(c.glob);
        }
      });
    }
  }
  let auth: AuthSpec | undefined;
  const aF = fields.get('auth');
  if (aF) {
    const v = ctx.resolve(aF.value);
    if (!isMap(v)) ctx.error(`${where}.auth must look like { scheme: Bearer, secret: github }`, rangeOf(v) ?? rangeOf(aF.key));
    else {
      const a: Record<string, string> = {};
      for (const pair of v.items as any[]) {
        const key = ctx.resolve(pair.key);
        const name = isScalar(key) ? String(key.value) : '';
        if (!(AUTH_FIELDS as readonly string[]).includes(name)) {
          unknownField(ctx, `${where}.auth`, name, AUTH_FIELDS, rangeOf(key));
          continue;
        }
        const val = ctx.resolve(pair.value);
        const s = scalarText(val);
        if (s === undefined || s.trim() === '') ctx.error(`${where}.auth.${name} must be text, not ${describe(val)}`, rangeOf(val) ?? rangeOf(key));
        else if (name === 'scheme' && !/^[A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]*$/.test(s)) ctx.error(`${where}.auth.scheme: ${JSON.stringify(s)} is not a valid scheme (one word, like Bearer or token)`, rangeOf(val));
        else if (name === 'secret' && !/^[A-Za-z0-9_]+$/.test(s)) ctx.error(`${where}.auth.secret: ${JSON.stringify(s)} must be a name made of letters, digits and "_" (the proxy reads CAGED_SECRET_<NAME>)`, rangeOf(val));
        else a[name] = s;
      }
      if (a.scheme && a.secret) auth = { scheme: a.scheme, secret: a.secret };
      else if (ctx.errors.length === errorsBefore) ctx.error(`${where}.auth needs both "scheme" and "secret", like { scheme: Bearer, secret: github }`, rangeOf(v));
    }
  }
  const bool = (name: string, dflt: boolean): boolean => {
    const f = fields.get(name);
    if (!f) return dflt;
    return parseBool(ctx, `${where}.${name}`, f.value) ?? dflt;
  };
  const intercept = bool('intercept', true);
  const priv = bool('private', false);
  const disabled = bool('disabled', false);
  if (ctx.errors.length > errorsBefore || !pattern) return undefined;

  if (list === 'allow' && !intercept) {
    if (methods || paths) ctx.error(`${where}: "intercept: false" cannot be combined with methods or paths — the proxy cannot see requests inside an uninspected tunnel`, rangeOf(fields.get('intercept')!.key));
    if (auth) ctx.error(`${where}: "intercept: false" cannot be combined with auth — the proxy can only add credentials to requests it inspects`, rangeOf(fields.get('intercept')!.key));
    if (methods || paths || auth) return undefined;
  }
  if (list === 'deny') {
    for (const name of ['auth', 'intercept', 'private']) {
      const f = fields.get(name);
      if (f) ctx.warn(`${where}.${name} has no effect on a deny entry`, rangeOf(f.key));
    }
  }
  if (pattern.kind === 'wildcard' && !pattern.host.includes('.')) {
    ctx.warn(`${where}.host: "*.${pattern.host}" matches every host under the top-level domain ".${pattern.host}"`, rangeOf(ctx.resolve(hostF!.value)));
  }
  if (list === 'allow' && pattern.kind === 'exact' && !priv && (pattern.host === 'localhost' || pattern.host.endsWith('.localhost'))) {
    ctx.warn(`${where}.host: ${pattern.host} resolves to a loopback address; add "private: true" or the proxy will refuse to connect to it`, rangeOf(ctx.resolve(hostF!.value)));
  }
  if (pattern.kind === 'ip' && !hostText.startsWith('[') && hostText.includes('::') && /:[0-9]{2,5}$/.test(hostText)) {
    ctx.warn(`${where}.host: "${hostText}" is read as the IPv6 address ${pattern.host}; for a port write it in brackets, like "[::1]:8080"`, rangeOf(ctx.resolve(hostF!.value)));
  }
  if (list === 'allow' && pattern.kind === 'ip' && !priv && classifyAddress(pattern.host) !== 'public') {
    ctx.warn(`${where}.host: ${pattern.host} is a ${classifyAddress(pattern.host)} address; add "private: true" or the proxy will refuse to connect to it`, rangeOf(ctx.resolve(hostF!.value)));
  }
  const rule: Rule = {
    list,
    index,
    hostText,
    host: pattern.host,
    kind: pattern.kind,
    intercept: list === 'allow' ? intercept : true,
    private: list === 'allow' ? priv : false,
    disabled,
    pos: ctx.pos(entryRange),
  };
  if (pattern.port !== undefined) rule.port = pattern.port;
  if (methods) rule.methods = methods;
  if (paths) rule.paths = paths;
  if (auth && list === 'allow') rule.auth = auth;
  return rule;
}

function parseWorkspaceList(ctx: Ctx, list: 'protect' | 'writable', node: any): WorkspacePath[] {
  const where = `workspace.${list}`;
  const out: WorkspacePath[] = [];
  if (node === null || (isScalar(node) && node.value === null)) return out;
  if (!isSeq(node)) {
    ctx.workspaceError(`${where} must be a list of paths, like [".github/workflows/", "Makefile"], not ${describe(node)}`, rangeOf(node));
    return out;
  }
  node.items.forEach((raw: unknown, i: number) => {
    const it = ctx.resolve(raw);
    const text = scalarText(it);
    if (text === undefined) {
      ctx.workspaceError(`${where}[${i}]: expected a path, got ${describe(it)}`, rangeOf(it) ?? rangeOf(node));
      return;
    }
    const p = parseWorkspacePath(text);
    if ('error' in p) {
      ctx.workspaceError(`${where}[${i}]: ${p.error}`, rangeOf(it));
      return;
    }
    const pos = ctx.pos(rangeOf(it));
    const dup = out.find((x) => x.path === p.path);
    if (dup) ctx.warnAt(`${where}[${i}]: "${p.path}" is listed twice`, pos);
    else out.push({ path: p.path, dir: p.dir, text, pos });
    if (list === 'writable') {
      const w = writableWarning(p.path);
      if (w) ctx.warnAt(`${where}[${i}]: ${w}`, pos);
    }
  });
  return out;
}

function parseWorkspaceSection(ctx: Ctx, node: any, keyRange: Range): WorkspaceRules | undefined {
  if (node === null || (isScalar(node) && node.value === null)) return { protect: [], writable: [] };
  if (!isMap(node)) {
    ctx.workspaceError(`workspace must be a mapping with "protect" and/or "writable" lists, not ${describe(node)}`, rangeOf(node) ?? keyRange);
    return undefined;
  }
  const rules: WorkspaceRules = { protect: [], writable: [] };
  for (const pair of node.items as any[]) {
    const key = ctx.resolve(pair.key);
    const name = isScalar(key) ? String(key.value) : '';
    if (!(WORKSPACE_FIELDS as readonly string[]).includes(name)) {
      const before = ctx.errors.length;
      unknownField(ctx, 'workspace', name, WORKSPACE_FIELDS, rangeOf(key));
      ctx.workspaceErrors.push(...ctx.errors.slice(before));
      continue;
    }
    rules[name as 'protect' | 'writable'] = parseWorkspaceList(ctx, name as 'protect' | 'writable', ctx.resolve(pair.value));
  }
  for (const w of rules.writable) {
    if (rules.protect.some((p) => p.path === w.path)) {
      ctx.errors.push({ severity: 'error', message: `workspace: "${w.path}" is both protected and writable; keep it in one list`, pos: w.pos });
      ctx.workspaceErrors.push(ctx.errors[ctx.errors.length - 1]);
    }
  }
  if (ctx.workspaceErrors.length) return undefined;
  return rules;
}

function ruleKey(r: Rule): string {
  return JSON.stringify([r.kind, r.host, r.port ?? null, r.methods ? [...r.methods].sort() : null, r.paths ? [...r.paths].sort() : null]);
}

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

function crossChecks(ctx: Ctx, policy: Policy): void {
  for (const list of [policy.allow, policy.deny]) {
    const seen = new Map<string, Rule>();
    for (const r of list) {
      if (r.disabled) continue;
      const k = ruleKey(r);
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

function byPosition(issues: PolicyIssue[]): PolicyIssue[] {
  return issues.map((x, i) => [x, i] as const).sort(([a, i], [b, j]) => a.pos.line - b.pos.line || a.pos.col - b.pos.col || i - j).map(([x]) => x);
}

const EMPTY: SourcePos = { line: 1, col: 1, endLine: 1, endCol: 1 };

interface Parsed {
  result: ParseResult;
  /** The workspace section as written (also when other parts of the file have errors). */
  workspace?: WorkspaceRules;
  /** Errors that leave the workspace section unreadable (YAML syntax errors included). */
  workspaceErrors: PolicyIssue[];
}

function parseInner(text: string): Parsed {
  const emptyPolicy = (warnings: PolicyIssue[]): Parsed => ({
    result: { errors: [{ severity: 'error', message: 'policy is empty: it needs at least "version: 1" and an "allow:" list', pos: EMPTY }], warnings },
    workspaceErrors: [],
  });
  if (typeof text !== 'string' || text.trim() === '') return emptyPolicy([]);
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true, keepSourceTokens: false });
  const ctx = new Ctx(lc, doc as Document, text.length);
  for (const e of doc.errors) {
    const msg = e.message.replace(/ at line \d+, column \d+:[\s\S]*$/, '');
    ctx.error(`YAML syntax error: ${msg}`, e.pos);
  }
  for (const w of doc.warnings) ctx.warn(w.message.replace(/ at line \d+, column \d+:[\s\S]*$/, ''), w.pos);
  if (ctx.errors.length > 0) return { result: { errors: ctx.errors, warnings: ctx.warnings }, workspaceErrors: ctx.errors };
  const root = ctx.resolve(doc.contents);
  if (root === null || root === undefined || (isScalar(root) && root.value === null)) return emptyPolicy(ctx.warnings);
  if (!isMap(root)) {
    ctx.error(`the policy must be a mapping with "version", "allow" and "deny", not ${describe(root)}`, rangeOf(root));
    return { result: { errors: ctx.errors, warnings: ctx.warnings }, workspaceErrors: ctx.errors };
  }
  let version: number | undefined;
  let workspace: WorkspaceRules | undefined;
  const lists: Record<RuleList, Rule[]> = { allow: [], deny: [] };
  const keys: Record<string, SourcePos> = {};
  for (const pair of root.items) {
    const key = ctx.resolve(pair.key);
    const name = isScalar(key) ? String(key.value) : undefined;
    if (name === undefined) {
      ctx.error('top-level field names must be plain words', rangeOf(key));
      continue;
    }
    if (!(TOP_FIELDS as readonly string[]).includes(name)) {
      unknownField(ctx, '', name, TOP_FIELDS, rangeOf(key));
      continue;
    }
    keys[name] = ctx.pos(rangeOf(key));
    const value = ctx.resolve(pair.value);
    if (name === 'workspace') {
      workspace = parseWorkspaceSection(ctx, value, rangeOf(key));
      continue;
    }
    if (name === 'version') {
      if (isScalar(value) && value.value === 1) version = 1;
      else ctx.error(`version: ${describe(value)} is not supported; this extension understands "version: 1"`, rangeOf(value) ?? rangeOf(key));
      if (version === undefined) version = 0;
      continue;
    }
    const list = name as RuleList;
    if (value === null || (isScalar(value) && value.value === null)) continue; // "allow:" with no entries
    if (!isSeq(value)) {
      ctx.error(`${list} must be a list of entries, like "- host: api.example.com", not ${describe(value)}`, rangeOf(value) ?? rangeOf(key));
      continue;
    }
    value.items.forEach((item: unknown, i: number) => {
      const node = ctx.resolve(item);
      const r = parseEntry(ctx, list, i, node);
      if (r) lists[list].push(r);
    });
  }
  if (version === undefined) ctx.error('missing "version: 1" at the top of the policy', [0, 0]);
  const ws = { workspace, workspaceErrors: byPosition(ctx.workspaceErrors) };
  if (ctx.errors.length > 0) return { result: { errors: byPosition(ctx.errors), warnings: byPosition(ctx.warnings), keys }, ...ws };
  const policy: Policy = { version: 1, allow: lists.allow, deny: lists.deny };
  if (workspace) policy.workspace = workspace;
  crossChecks(ctx, policy);
  compilePolicy(policy);
  return { result: { policy, errors: [], warnings: byPosition(ctx.warnings), keys }, ...ws };
}

/**
 * Parses and validates a policy file. Returns the policy only when there are no errors; never throws.
 * The returned policy is pre-indexed for `decide`.
 */
export function parsePolicy(text: string): ParseResult {
  return parseSafely(text).result;
}

function parseSafely(text: string): Parsed {
  try {
    return parseInner(text);
  } catch (e) {
    const errors: PolicyIssue[] = [{ severity: 'error', message: `the policy could not be read: ${e instanceof Error ? e.message : String(e)}`, pos: EMPTY }];
    return { result: { errors, warnings: [] }, workspaceErrors: errors };
  }
}

/**
 * Only the `workspace:` section, for the engine: it must know which paths to protect also when other parts of
 * the file have errors (the proxy then blocks everything). `errors` are those that leave the section unreadable;
 * `rules` is undefined when the file has no such section (the built-in protections apply).
 */
export function parseWorkspaceRules(text: string): { rules?: WorkspaceRules; errors: PolicyIssue[] } {
  const p = parseSafely(text);
  return p.workspaceErrors.length ? { errors: p.workspaceErrors } : { rules: p.workspace, errors: [] };
}
