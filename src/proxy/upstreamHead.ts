// The request head the proxy sends upstream, rewritten from the client's: the checked Host first, hop-by-hop
// headers and proxy credentials dropped, the framing restated, and, alongside it, the text the data-loss
// guard scans (the forwarded target and every forwarded header line). One pass over the headers for both.
import type { RequestHead } from './http1';
import { hostPort } from './target';

// Request headers never forwarded: hop-by-hop (RFC 9110 7.6.1), proxy credentials, Expect (we answer
// 100-continue ourselves once the policy allowed the request), and Host (the checked one is always sent).
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'proxy-authenticate', 'te', 'trailer', 'upgrade', 'expect', 'http2-settings', 'transfer-encoding', 'content-length', 'host']);
/** Name lengths worth lower-casing for the checks below: HOP names, and 13 for Authorization. */
const CHECK_LEN = new Uint8Array(64);
for (const n of [...HOP, 'authorization']) CHECK_LEN[n.length] = 1;

export interface UpstreamHead {
  /** The head up to (not including) the blank line that ends it: credentials may still be added. */
  head: string;
  /** What the data-loss guard scans: the method and forwarded target, then the header lines, "\n"-separated. */
  scan: string;
}

/**
 * The upstream head for `req`, sent to host:port with `fwd` on the request line. `dropAuthorization`: the rule
 * injects a credential, so the client's Authorization is neither forwarded nor scanned.
 */
export function upstreamHead(req: RequestHead, fwd: string, host: string, port: number, secure: boolean, dropAuthorization: boolean): UpstreamHead {
  const upgrade = req.upgrade !== undefined && req.connection.includes('upgrade');
  const extraHop = req.connection.length > 0 ? req.connection : undefined;
  let head = `${req.method} ${fwd} HTTP/1.${req.minor}\r\nHost: ${hostPort(host, port, secure)}\r\n`;
  let scan = req.method + ' ' + fwd; // the method too: it is the agent's bytes like the rest
  const raw = req.headers;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    if (extraHop !== undefined || name.length >= 64 || CHECK_LEN[name.length] === 1) {
      const lower = name.toLowerCase();
      if (HOP.has(lower) || (extraHop !== undefined && extraHop.includes(lower))) continue;
      if (lower === 'authorization' && dropAuthorization) continue; // replaced by the injected one
    }
    const line = name + ': ' + raw[i + 1];
    scan += '\n' + line;
    head += line + '\r\n';
  }
  if (req.bodyLength === -1) head += 'Transfer-Encoding: chunked\r\n';
  else if (req.bodyLength > 0 || (req.method !== 'GET' && req.method !== 'HEAD' && hasContentLength(raw))) head += `Content-Length: ${req.bodyLength}\r\n`;
  if (upgrade) head += `Connection: Upgrade\r\nUpgrade: ${req.upgrade}\r\n`;
  else if (req.minor === 0) head += 'Connection: close\r\n';
  return { head, scan };
}

function hasContentLength(raw: string[]): boolean {
  for (let i = 0; i < raw.length; i += 2) if (raw[i].length === 14 && raw[i].toLowerCase() === 'content-length') return true;
  return false;
}
