// Small pure helpers shared by the proxy modules.
import { canonicalHost } from '../policy';

export function display(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

export function hostPort(host: string, port: number, secure: boolean): string {
  return (secure ? port === 443 : port === 80) ? display(host) : `${display(host)}:${port}`;
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

/** Splits "host:port" / "[v6]:port" / "host" (authority form) into canonical host and port. */
export function parseAuthority(a: string, defaultPort: number | undefined): { host: string; port: number } | undefined {
  if (a.includes('@')) return undefined;
  let hostText: string;
  let portText: string | undefined;
  if (a.startsWith('[')) {
    const close = a.indexOf(']');
    if (close < 0) return undefined;
    hostText = a.slice(0, close + 1);
    const rest = a.slice(close + 1);
    if (rest) {
      if (rest[0] !== ':') return undefined;
      portText = rest.slice(1);
    }
  } else {
    const c = a.lastIndexOf(':');
    if (c >= 0) {
      if (a.indexOf(':') !== c) return undefined; // a bare IPv6 literal is not a valid authority
      hostText = a.slice(0, c);
      portText = a.slice(c + 1);
    } else hostText = a;
  }
  let port = defaultPort;
  if (portText !== undefined) {
    if (!/^\d{1,5}$/.test(portText)) return undefined;
    port = Number(portText);
  }
  if (port === undefined || port < 1 || port > 65535) return undefined;
  const c = canonicalHost(hostText);
  if (!c) return undefined;
  return { host: c.host, port };
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

export function secretEnvName(name: string): string {
  return `CAGED_SECRET_${name.toUpperCase().replace(/[^A-Z0-9_]/g, '_')}`;
}

export function blockText(what: string, reason: string, message: string): string {
  return (
    `Caged Agent blocked ${what}\n` +
    `Reason: ${reason}\n` +
    `${message}\n` +
    `This is the cage's network policy, not a network failure. The user can allow it from the editor ` +
    `(Caged Agent: Allow... on the block notification) or by editing .caged/policy.yaml.\n`
  );
}

/** A complete HTTP/1.1 response with a plain-text body, as one string. */
export function textResponse(status: number, statusText: string, headers: Array<[string, string]>, body: string, close: boolean, headOnly = false): string {
  let head = `HTTP/1.1 ${status} ${statusText}\r\n`;
  for (const [k, v] of headers) head += `${k}: ${v}\r\n`;
  head += `Content-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n`;
  if (close) head += 'Connection: close\r\n';
  return head + '\r\n' + (headOnly ? '' : body);
}
