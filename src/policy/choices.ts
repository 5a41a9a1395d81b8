// "Allow ..." quick-fix choices for a blocked request, narrowest first (issue 17): the exact host with the
// method and a path prefix, the path prefix for any method, the exact host, then "*.parent". A choice carries a
// one-line risk note where one applies (risk.ts: upload and paste hosts).
import { canonicalHost, hostForDisplay, isPublicSuffix, type CanonicalHost } from './host';
import { HTTP_METHODS } from './entry';
import { normalizePath } from './path';
import { uploadRisk } from './risk';
import type { AllowSpec } from './types';

export interface AllowChoice {
  /** Starts with "Allow", e.g. "Allow GET /v1/** on api.example.com". */
  title: string;
  spec: AllowSpec;
  scope: 'exact' | 'parent' | 'path' | 'method-path' | 'tcp';
  /** What an allow here risks, in one line (upload/paste hosts), when it applies. */
  risk?: string;
}

export interface BlockedRequest {
  host: string;
  port: number;
  method?: string;
  path?: string;
}

/** The method of a raw TCP connection's events (no HTTP inside). */
export const TCP_METHOD = 'TCP';

const NARROWEST: Record<AllowChoice['scope'], number> = { 'method-path': 0, path: 1, exact: 2, tcp: 2, parent: 3 };

/** The quick-fix choices for one blocked request (empty when the host is not valid). */
export function allowChoices(block: BlockedRequest): AllowChoice[] {
  const c = canonicalHost(block.host);
  if (!c) return [];
  if (block.method === TCP_METHOD) return tcpChoices(c, block.port);
  const defaultPort = block.port === 80 || block.port === 443;
  const port = defaultPort || !Number.isInteger(block.port) ? undefined : block.port;
  const hostText = hostForDisplay(c);
  const shown = port === undefined ? hostText : `${hostText}:${port}`;
  const base = (host: string): AllowSpec => (port === undefined ? { host } : { host, port });
  const out: AllowChoice[] = [{ title: `Allow ${shown}`, spec: base(hostText), scope: 'exact' }];
  if (c.kind === 'name') {
    const dot = c.host.indexOf('.');
    const parent = dot >= 0 ? c.host.slice(dot + 1) : '';
    if (parent.includes('.') && !isPublicSuffix(parent)) {
      const wild = `*.${parent}`;
      out.push({ title: `Allow ${port === undefined ? wild : `${wild}:${port}`}`, spec: base(wild), scope: 'parent' });
    }
  }
  const method = block.method?.toUpperCase();
  const glob = block.path !== undefined ? pathGlob(block.path) : undefined;
  if (method && method !== 'CONNECT' && glob) {
    out.push({ title: `Allow ${glob} on ${shown} (any method)`, spec: { ...base(hostText), paths: [glob] }, scope: 'path' });
    // Only a method a rule may name (the request's method is whatever the agent sent).
    if (HTTP_METHODS.has(method)) out.push({ title: `Allow ${method} ${glob} on ${shown}`, spec: { ...base(hostText), methods: [method], paths: [glob] }, scope: 'method-path' });
  }
  // Offered narrowest first (a stable sort keeps equal scopes in order).
  out.sort((a, b) => NARROWEST[a.scope] - NARROWEST[b.scope]);
  for (const c of out) {
    const risk = uploadRisk(c.spec.host);
    if (risk) c.risk = risk;
  }
  return out;
}

/** "Allow TCP 22 to github.com": a raw TCP entry for the host, then for its parent domain. */
function tcpChoices(c: CanonicalHost, port: number): AllowChoice[] {
  if (c.kind !== 'name' || !Number.isInteger(port) || port < 1 || port > 65535) return [];
  const out: AllowChoice[] = [{ title: `Allow TCP ${port} to ${c.host}`, spec: { host: c.host, tcp: [port] }, scope: 'tcp' }];
  const dot = c.host.indexOf('.');
  const parent = dot >= 0 ? c.host.slice(dot + 1) : '';
  if (parent.includes('.') && !isPublicSuffix(parent)) out.push({ title: `Allow TCP ${port} to *.${parent}`, spec: { host: `*.${parent}`, tcp: [port] }, scope: 'tcp' });
  return out;
}

/**
 * The path glob a quick fix offers for a request path: the path itself when it has one segment, else its
 * first segment and everything below. The path comes from the agent: a segment with "*" (which a glob
 * reads as a wildcard, and cannot escape) would make the choice wider than its title reads, so there is
 * no path choice then. Undefined for "/" too (the host choice covers it).
 */
function pathGlob(raw: string): string | undefined {
  const path = normalizePath(raw);
  if (!path || path === '/') return undefined;
  const segs = path.split('/').filter((s) => s !== '');
  const whole = segs.length <= 1 && !path.endsWith('/');
  // The part taken from the request must be literal: a `*` there (even `/**` itself) would read wider than it is.
  const literal = whole ? path : `/${segs[0]}`;
  if (literal.includes('*')) return undefined;
  return whole ? path : `${literal}/**`;
}
