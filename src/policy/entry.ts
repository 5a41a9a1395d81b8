// The schema of one allow/deny entry: its fields, what each may hold, the warnings about entries that do not
// do what they seem to (a wildcard over a top-level domain, a private address without "private: true"), and
// the Rule it becomes. Pure.
import { isMap, isScalar } from 'yaml';
import { classifyAddress } from './host';
import { parseHostPattern, type HostPattern } from './hostPattern';
import { compileGlob } from './path';
import { unknownFieldMessage } from './suggest';
import type { AuthSpec, Rule, RuleList } from './types';
import { contentEnd, describe, parseBool, parseStringList, rangeOf, scalarText, type Ctx, type Range } from './yamlNodes';

export const ENTRY_FIELDS = ['host', 'methods', 'paths', 'auth', 'intercept', 'private', 'disabled', 'tcp'] as const;

/**
 * Ports a raw TCP rule cannot name: the cage's own listeners (DNS 53, the proxy 3128) and the HTTP(S) ports,
 * which host rules decide with what they see inside (use "intercept: false" for TLS the proxy must not open).
 */
export const TCP_RESERVED_PORTS: ReadonlyMap<number, string> = new Map([
  [53, 'the cage\'s own DNS'],
  [80, 'HTTP, decided by host rules (leave "tcp" out)'],
  [443, 'HTTPS, decided by host rules (leave "tcp" out; "intercept: false" passes TLS through unopened)'],
  [3128, 'the egress proxy itself'],
]);
const AUTH_FIELDS = ['scheme', 'secret'] as const;

/** Request methods a rule may name (RFC 9110 plus WebDAV and the QUERY draft). */
export const HTTP_METHODS = new Set([
  'GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE', 'QUERY',
  'PROPFIND', 'PROPPATCH', 'MKCOL', 'COPY', 'MOVE', 'LOCK', 'UNLOCK', 'REPORT', 'SEARCH', 'MKACTIVITY',
  'CHECKOUT', 'MERGE', 'MKCALENDAR', 'ACL', 'BIND', 'UNBIND', 'REBIND', 'LINK', 'UNLINK', 'PURGE',
]);

/** One entry of `list` at `index`: a Rule, or undefined with its errors in ctx. */
export function parseEntry(ctx: Ctx, list: RuleList, index: number, node: any): Rule | undefined {
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
      ctx.error(unknownFieldMessage(where, name, ENTRY_FIELDS), rangeOf(key));
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
          ctx.error(unknownFieldMessage(`${where}.auth`, name, AUTH_FIELDS), rangeOf(key));
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
  let tcp: number[] | undefined;
  const tF = fields.get('tcp');
  if (tF) tcp = parseTcpPorts(ctx, `${where}.tcp`, tF.value);
  const intercept = bool('intercept', true);
  const priv = bool('private', false);
  const disabled = bool('disabled', false);
  if (ctx.errors.length > errorsBefore || !pattern) return undefined;

  if (list === 'allow' && !intercept) {
    if (methods || paths) ctx.error(`${where}: "intercept: false" cannot be combined with methods or paths — the proxy cannot see requests inside an uninspected tunnel`, rangeOf(fields.get('intercept')!.key));
    if (auth) ctx.error(`${where}: "intercept: false" cannot be combined with auth — the proxy can only add credentials to requests it inspects`, rangeOf(fields.get('intercept')!.key));
    if (methods || paths || auth) return undefined;
  }
  if (tF) {
    const at = rangeOf(tF.key);
    const errs = ctx.errors.length;
    if (list === 'deny') ctx.error(`${where}.tcp: deny entries take no "tcp"; a deny entry blocks its host on every port it names`, at);
    else if (methods || paths) ctx.error(`${where}: "tcp" cannot be combined with methods or paths — raw TCP carries no HTTP requests to match`, at);
    else if (auth) ctx.error(`${where}: "tcp" cannot be combined with auth — the proxy cannot add credentials to a raw TCP stream`, at);
    else if (fields.has('intercept')) ctx.error(`${where}: "tcp" cannot be combined with "intercept" — raw TCP is never inspected`, at);
    else if (pattern.port !== undefined) ctx.error(`${where}.host: write the ports in "tcp" only, like "host: ${pattern.host}" with "tcp: [${pattern.port}]"`, rangeOf(ctx.resolve(hostF!.value)));
    else if (pattern.kind === 'ip') ctx.error(`${where}.host: a raw TCP rule names a host name — the cage catches such connections through the name's lookup, and an address literal is never looked up`, rangeOf(ctx.resolve(hostF!.value)));
    if (ctx.errors.length > errs) return undefined;
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
  if (tcp) rule.tcp = tcp;
  return rule;
}

/** `tcp: [22, 5432]`: whole port numbers, not the cage's own, no repeats; undefined (with errors) otherwise. */
function parseTcpPorts(ctx: Ctx, where: string, node: any): number[] | undefined {
  const l = parseStringList(ctx, where, node, '[22]');
  if (!l) return undefined;
  const out: number[] = [];
  const errs = ctx.errors.length;
  l.items.forEach((raw, i) => {
    const s = raw.trim();
    const n = Number(s);
    if (!/^\d{1,5}$/.test(s) || n < 1 || n > 65535) ctx.error(`${where}: ${JSON.stringify(raw)} is not a port (a whole number from 1 to 65535)`, rangeOf(l.nodes[i]));
    else if (TCP_RESERVED_PORTS.has(n)) ctx.error(`${where}: port ${n} is ${TCP_RESERVED_PORTS.get(n)}`, rangeOf(l.nodes[i]));
    else if (!out.includes(n)) out.push(n);
  });
  return ctx.errors.length > errs ? undefined : out;
}
