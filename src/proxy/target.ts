// Request targets and authorities as the proxy reads them, and how it writes a host back. Pure.
import { canonicalHost, splitHostPort } from '../policy';

/** A canonical host as written in a URL or an authority: IPv6 gets brackets. */
export function display(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

/** host[:port] as a URL or Host header writes it: the scheme's default port is left out. */
export function hostPort(host: string, port: number, secure: boolean): string {
  return (secure ? port === 443 : port === 80) ? display(host) : `${display(host)}:${port}`;
}

/** True for a canonical host (canonicalHost().host) that is an IP literal: IPv6 has a colon, IPv4 only digits and dots. */
export function isLiteral(host: string): boolean {
  return host.length > 0 && (host.includes(':') || /^[\d.]+$/.test(host));
}

/** Path for events and messages: never the query string or fragment, bounded. */
export function safePath(raw: string): string {
  let end = raw.length;
  const q = raw.indexOf('?');
  if (q >= 0) end = q;
  const h = raw.indexOf('#');
  if (h >= 0 && h < end) end = h;
  if (end > 2048) end = 2048;
  return end === raw.length ? raw : raw.slice(0, end);
}

/**
 * An authority ("host:port", "[v6]:port", or "host" with `defaultPort`) as canonical host and port; undefined
 * when it is not one: userinfo, a bare IPv6 literal, a port that is not 1-65535 in at most five digits.
 */
export function parseAuthority(a: string, defaultPort: number | undefined): { host: string; port: number } | undefined {
  if (a.includes('@')) return undefined;
  const s = splitHostPort(a);
  if ('error' in s) return undefined;
  if (s.host.charCodeAt(0) !== 91 /* [ */ && s.host.includes(':')) return undefined; // a bare IPv6 literal is not a valid authority
  let port = defaultPort;
  if (s.port !== undefined) {
    if (!/^\d{1,5}$/.test(s.port)) return undefined;
    port = Number(s.port);
  }
  if (port === undefined || port < 1 || port > 65535) return undefined;
  const c = canonicalHost(s.host);
  if (!c) return undefined;
  return { host: c.host, port };
}

/**
 * An origin-form request that came to the transparent port 80 (no proxy in the client's view): its Host header
 * names the target, which must be on `port` (the port it connected to, 80). Undefined when it names none.
 */
export function targetFromHost(hostHeader: string | undefined, target: string, port: number): { host: string; port: number; secure: false; path: string } | undefined {
  if (hostHeader === undefined || target.charCodeAt(0) !== 47 /* / */) return undefined;
  const a = parseAuthority(hostHeader, port);
  return a && a.port === port ? { host: a.host, port, secure: false, path: target } : undefined;
}

/** Absolute-form request target ("http://host:port/path?q"). */
export function parseAbsolute(url: string): { host: string; port: number; secure: boolean; path: string } | undefined {
  let secure: boolean;
  let rest: string;
  const c4 = url.charCodeAt(4);
  if ((c4 === 58 /* : */ || c4 === 115 || c4 === 83) && /^https?:\/\//i.test(url)) {
    secure = c4 !== 58;
    rest = url.slice(secure ? 8 : 7);
  } else return undefined;
  let end = rest.length;
  for (let i = 0; i < rest.length; i++) {
    const ch = rest.charCodeAt(i);
    if (ch === 47 /* / */ || ch === 63 /* ? */ || ch === 35 /* # */) {
      end = i;
      break;
    }
  }
  const a = parseAuthority(rest.slice(0, end), secure ? 443 : 80);
  if (!a) return undefined;
  let path = rest.slice(end);
  if (path === '' || path[0] !== '/') path = '/' + path;
  return { host: a.host, port: a.port, secure, path };
}
