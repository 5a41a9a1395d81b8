// The proxy's final verdict, pure (no sockets, no I/O): for a CONNECT and for each request, what the policy
// decided plus what only the proxy can check — the address class of IP literals, the TLS server name against
// the CONNECT host, the Host header, refused methods, the data-loss guard — and the credential it injects, folded
// into one result with one reason and one message. Every block the proxy answers or logs is made here, the
// late ones too (a name that resolved to a private address, a secret in the first bytes of a body), so each
// check and its wording exist once. Deciding is policy/decide.ts; carrying a verdict out is connect.ts,
// tunnel.ts, intercept.ts and conn.ts.
import { canonicalHost, classifyAddress, ruleLabel, secretEnvName } from '../policy';
import type { Decision, ReasonCode, Rule } from '../policy/types';
import { findSecret, urlDecodeForScan } from './dlp';
import { methodCaseProblem, type RequestHead } from './http1';
import type { ClientHelloResult } from './sni';
import { display, hostPort, isLiteral, parseAuthority, safePath } from './target';
import { upstreamHead } from './upstreamHead';

/** Why something is refused: the reason code, one sentence for the agent, the rule that decided, a safe detail. */
export interface Block {
  reason: ReasonCode;
  message: string;
  rule?: Rule;
  /** Safe to show (never a secret): the DLP pattern, the address class, which check failed. */
  detail?: string;
}

/** An allowed request, ready to go upstream. */
export interface Forward {
  rule: Rule;
  /** The normalised path, for events and messages (no query). */
  path: string;
  /** The complete upstream request head. */
  head: string;
  allowPrivate: boolean;
  /** The credential the proxy injected (responses are scanned for it), if any. */
  secret?: Buffer;
}

/** A refused request: the block, and the path its event and 403 name. */
export interface Refused extends Block {
  path: string;
}

// ------------------------------------------------------------------ addresses

/** The rule lets its host be a non-public address: it says `private: true`, or it names the IP literal itself. */
export function allowsPrivate(rule: Rule): boolean {
  return rule.private || rule.kind === 'ip';
}

/** The refusal of a non-public address: an IP literal, or (`resolvedTo`) a name that resolved to one. */
export function privateAddressBlock(host: string, rule: Rule, cls: string, resolvedTo?: string): Block {
  const message =
    resolvedTo === undefined
      ? `${display(host)} is a ${cls} address; add "private: true" to ${ruleLabel(rule)} if the agent may reach it.`
      : `${display(host)} resolves to a ${cls} address (${resolvedTo}); connections to loopback, private and link-local addresses are refused unless the rule says "private: true" (${ruleLabel(rule)}).`;
  return { reason: 'private-address', message, rule, detail: cls };
}

/** An IP-literal host (canonical) that `rule` may not reach; undefined when it may. Names are checked when they resolve. */
export function privateLiteralBlock(host: string, rule: Rule): Block | undefined {
  if (allowsPrivate(rule) || !isLiteral(host)) return undefined;
  const cls = classifyAddress(host);
  return cls === 'public' ? undefined : privateAddressBlock(host, rule, cls);
}

// ------------------------------------------------------------------ secrets

/** The last host name scanned, and what it held: a memo of a pure function (connections repeat their host). */
const hostScanned = { host: '', hit: undefined as string | undefined };

/**
 * A credential in a host name (e.g. a token as a DNS label of a wildcard-allowed domain): the name goes out
 * in DNS lookups, the SNI and the Host header. Names are lower-cased, so upper-case formats are matched
 * too (a lower-cased AWS key id is still the key id).
 */
export function secretInHost(host: string): string | undefined {
  if (host === hostScanned.host) return hostScanned.hit;
  hostScanned.host = host;
  return (hostScanned.hit = host.length < 10 ? undefined : (findSecret(host) ?? findSecret(host.toUpperCase())));
}

const SECRET_PLACES = {
  'connect-host': (hit: string) => `The CONNECT host name carries what looks like a credential (${hit})`,
  request: (hit: string) => `The request carries what looks like a credential (${hit}) in its host, URL or headers`,
  body: (hit: string) => `The request body carries what looks like a credential (${hit})`,
};

/** The data-loss guard found credential pattern `hit` (a pattern name, never the text) in the CONNECT host, a request head or a body. */
export function secretBlock(place: keyof typeof SECRET_PLACES, hit: string, rule: Rule | undefined): Block {
  return { reason: 'secret-detected', message: `${SECRET_PLACES[place](hit)}; sending secrets out of the cage is blocked.`, rule, detail: hit };
}

// ------------------------------------------------------------------ CONNECT

/** A CONNECT target that is not host:port. */
export function badConnectTarget(authority: string): Block {
  return { reason: 'bad-request', message: `the CONNECT target "${authority.slice(0, 200)}" is not a valid host:port.`, detail: 'bad-connect-target' };
}

/** What followed an intercepted CONNECT was neither TLS nor an HTTP request. */
export function notTlsBlock(host: string, rule: Rule | undefined): Block {
  return { reason: 'bad-request', message: `What was sent after CONNECT ${display(host)} is neither TLS nor an HTTP request.`, rule, detail: 'not-tls' };
}

/**
 * The one server-name rule, for intercepted sessions and tunnels alike: the TLS server name (SNI) must name
 * the CONNECT host. A ClientHello without one passes only when the CONNECT host is an IP literal (SNI cannot
 * carry literals, RFC 6066); for a host name it is refused like a mismatch, since nothing then says which
 * site the session is for (a tunnel's server would pick its default site) and every client sends the name.
 */
export function sniBlock(host: string, sni: string | undefined, rule: Rule | undefined): Block | undefined {
  if (!sni) {
    if (isLiteral(host)) return undefined;
    return { reason: 'sni-mismatch', message: `The TLS ClientHello names no server (SNI), so it cannot be checked against the CONNECT host (${display(host)}); send the server name.`, rule, detail: 'no-sni' };
  }
  const c = canonicalHost(sni);
  if (c && c.host === host) return undefined;
  return { reason: 'sni-mismatch', message: `The TLS server name (${sni.slice(0, 100)}) does not match the CONNECT host (${display(host)}).`, rule, detail: 'sni-mismatch' };
}

/** The first bytes of a tunnel (intercept: false): a ClientHello whose server name passes sniBlock, or a block. */
export function clientHelloBlock(host: string, hello: ClientHelloResult, rule: Rule): Block | undefined {
  if (hello.state === 'ok') return sniBlock(host, hello.sni, rule);
  if (hello.state === 'not-tls') return { reason: 'sni-mismatch', message: `What was sent through the tunnel to ${display(host)} is not TLS; a host with "intercept: false" carries TLS only.`, rule, detail: 'not-tls' };
  return { reason: 'sni-mismatch', message: `The TLS ClientHello sent to ${display(host)} could not be read, so its server name cannot be checked.`, rule, detail: 'bad-client-hello' };
}

// ------------------------------------------------------------------ requests

/** Methods that echo the request back (headers included, so an injected credential too): never forwarded. */
const ECHO_METHODS = new Set(['TRACE', 'TRACK']);

/** The last Host header one connection found to name its host and port (keep-alive clients repeat it). */
export interface HostMemo {
  header: string;
  host: string;
  port: number;
}

export function newHostMemo(): HostMemo {
  return { header: '', host: '', port: 0 };
}

/** A request whose absolute-form target names another host than the CONNECT it came through. */
export function targetMismatchBlock(): Block {
  return { reason: 'bad-request', message: 'The request target names a different host than the tunnel it was sent in.', detail: 'target-mismatch' };
}

/**
 * The verdict for one request to host:port with origin-form `target`, given the policy's decision `d`: the
 * decision itself, the IP-literal check, the Host header (it must name host and port; the checked one is sent),
 * refused methods, no credential over plain HTTP, the data-loss guard over what is forwarded (the host, the path
 * and query as sent and as a server decodes them, header names and values), then credential injection
 * (`env` holds the secrets) and the complete upstream head. `seen` is the connection's Host memo.
 */
export function gateRequest(d: Decision, req: RequestHead, host: string, port: number, secure: boolean, target: string, env: NodeJS.ProcessEnv, seen: HostMemo): Forward | Refused {
  const a = admitRequest(d, req.method, req.host, host, port, secure, target, seen);
  if ('reason' in a) return a;
  const up = upstreamHead(req, a.fwd, host, port, secure, a.rule.auth !== undefined);
  const c = credentialFor(a, up.scan, host, env);
  if ('reason' in c) return c;
  if (c.secret === undefined) return { rule: a.rule, path: a.path, head: up.head + '\r\n', allowPrivate: c.allowPrivate };
  return { rule: a.rule, path: a.path, head: `${up.head}Authorization: ${a.rule.auth!.scheme} ${c.secret}\r\n\r\n`, allowPrivate: c.allowPrivate, secret: Buffer.from(c.secret, 'latin1') };
}

/** A request the policy allowed and the proxy's own checks passed so far: its rule, shown path and forwarded target. */
interface Admitted {
  rule: Rule;
  path: string;
  fwd: string;
}

/**
 * The checks of a request before its headers are rewritten, for HTTP/1.1 and HTTP/2 alike: the decision, the
 * IP-literal check, the Host header (or :authority) against host:port, refused methods, no credential over plain HTTP.
 */
function admitRequest(d: Decision, method: string, hostHeader: string | undefined, host: string, port: number, secure: boolean, target: string, seen: HostMemo): Admitted | Refused {
  const path = d.normalizedPath ?? safePath(target);
  if (d.action !== 'allow' || !d.rule) return { reason: d.reason, message: d.message, rule: d.rule, path };
  const rule = d.rule;

  const priv = privateLiteralBlock(host, rule);
  if (priv) return { ...priv, path };
  if (hostHeader !== undefined && !(hostHeader === seen.header && host === seen.host && port === seen.port)) {
    const h = parseAuthority(hostHeader, port); // a Host header may leave the port out
    if (!h || h.host !== host || h.port !== port) {
      return { reason: 'bad-request', message: `The Host header (${hostHeader.slice(0, 100)}) does not match the host and port the request is sent to (${display(host)}:${port}).`, rule, path, detail: 'host-mismatch' };
    }
    seen.header = hostHeader;
    seen.host = host;
    seen.port = port;
  }
  if (ECHO_METHODS.has(method)) {
    return { reason: 'method-refused', message: `${method} makes the server echo the request back, headers and credentials included, so the cage never forwards it; use another method.`, rule, path, detail: method };
  }
  if (rule.auth && !secure) {
    return {
      reason: 'insecure-auth',
      message: `${ruleLabel(rule)} injects the secret "${rule.auth.secret}", but this request is plain HTTP, so the credential would cross the network unencrypted; send it to https://${hostPort(host, port === 80 ? 443 : port, true)} instead.`,
      rule,
      path,
      detail: rule.auth.secret,
    };
  }
  return { rule, path, fwd: d.forwardPath ?? d.normalizedPath ?? target };
}

/**
 * The data-loss guard over what is forwarded (`scan`: the target and header lines; the host), then the
 * credential to inject, if the rule has one. The guard runs before injection: the injected credential must not
 * trip it. What a server URL-decodes: %XX anywhere, "+" in the query (a header such as
 * "Accept: application/vnd.github+json" is not decoded, and need not cost a decoding pass).
 */
function credentialFor(a: Admitted, scan: string, host: string, env: NodeJS.ProcessEnv): { allowPrivate: boolean; secret?: string } | Refused {
  const { rule, path, fwd } = a;
  const q = fwd.indexOf('?');
  const hit = secretInHost(host) ?? findSecret(scan) ?? (scan.includes('%') || (q >= 0 && fwd.includes('+', q)) ? findSecret(urlDecodeForScan(scan)) : undefined);
  if (hit) return { ...secretBlock('request', hit, rule), path };
  const allowPrivate = allowsPrivate(rule);
  if (!rule.auth) return { allowPrivate };
  const envName = secretEnvName(rule.auth.secret);
  const secret = env[envName];
  if (!secret) {
    return { reason: 'secret-missing', message: `${ruleLabel(rule)} injects the secret "${rule.auth.secret}", but it is not set (${envName} is empty in the proxy); set it in the editor's Caged Agent secrets.`, rule, path, detail: rule.auth.secret };
  }
  return { allowPrivate, secret };
}

// ------------------------------------------------------------------ HTTP/2 streams

/** An allowed HTTP/2 stream, ready to go upstream: the headers to send (pseudo-headers included). */
export interface StreamForward {
  rule: Rule;
  path: string;
  headers: Record<string, string | string[]>;
  allowPrivate: boolean;
  secret?: Buffer;
}

/** The HTTP/2 request of one stream, as node:http2 delivers it (names lower-case, pseudo-headers first). */
export type StreamHeaders = Record<string, string | string[] | undefined>;

/**
 * Request headers never forwarded from an HTTP/2 stream: connection-specific ones (RFC 9113 8.2.2; nghttp2
 * already refuses most), proxy credentials, Host (the :authority checked is sent), and the length (restated by
 * the upstream session from the body).
 */
const H2_DROP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'proxy-authenticate', 'transfer-encoding', 'upgrade', 'http2-settings', 'host', 'expect']);
const PSEUDO = new Set([':method', ':path', ':scheme', ':authority']);

/** A stream the proxy refuses for its framing before any policy decision (pseudo-header abuse, CONNECT). */
export function streamFramingBlock(detail: string, message: string, rule: Rule | undefined): Block {
  return { reason: 'bad-request', message, rule, detail };
}

/**
 * What is wrong with the framing of an HTTP/2 request, before the policy: CONNECT (plain or extended: the cage
 * carries no tunnels inside a session), a missing or unknown pseudo-header, a :path that is not origin-form,
 * a :scheme other than the session's, `te` other than "trailers". undefined when it is well formed.
 */
export function streamHeadersBlock(h: StreamHeaders, secure: boolean, rule: Rule | undefined): Block | undefined {
  const method = h[':method'];
  if (method === 'CONNECT') return streamFramingBlock('h2-connect', 'CONNECT (and extended CONNECT) inside an HTTP/2 session is not supported by the cage; open a new connection to the host instead.', rule);
  for (const k of Object.keys(h)) {
    if (k.charCodeAt(0) === 58 /* : */ && !PSEUDO.has(k)) return streamFramingBlock('h2-pseudo-header', `The HTTP/2 request carries the unknown pseudo-header ${k.slice(0, 40)}.`, rule);
  }
  const path = h[':path'];
  if (typeof method !== 'string' || typeof path !== 'string' || method === '') return streamFramingBlock('h2-pseudo-header', 'The HTTP/2 request lacks :method or :path.', rule);
  // As on HTTP/1.1: methods are case-sensitive, and a lower-case "trace" must not slip past the refused methods.
  const caseProblem = methodCaseProblem(method, 'The HTTP/2 :method');
  if (caseProblem) return streamFramingBlock('h2-method', `${caseProblem}.`, rule);
  if (path.charCodeAt(0) !== 47 /* / */) return streamFramingBlock('h2-path', `The HTTP/2 :path (${path.slice(0, 100)}) is not a path starting with "/".`, rule);
  const scheme = h[':scheme'];
  if (scheme !== (secure ? 'https' : 'http')) return streamFramingBlock('h2-scheme', `The HTTP/2 :scheme (${String(scheme).slice(0, 20)}) is not the session's (${secure ? 'https' : 'http'}).`, rule);
  const te = h.te;
  if (te !== undefined && te !== 'trailers') return streamFramingBlock('h2-te', 'The HTTP/2 request carries a "te" header other than "trailers".', rule);
  return undefined;
}

/**
 * The verdict for one HTTP/2 stream to host:port, given the policy's decision `d` (made on its :method and
 * :path): the same checks as gateRequest — :authority (or Host) must name host and port, refused methods, the
 * data-loss guard over the forwarded path and headers, credential injection — and the headers for the upstream.
 */
export function gateStream(d: Decision, h: StreamHeaders, host: string, port: number, env: NodeJS.ProcessEnv, seen: HostMemo): StreamForward | Refused {
  const method = h[':method'] as string;
  const target = h[':path'] as string;
  const authority = (h[':authority'] ?? h.host) as string | undefined;
  const a = admitRequest(d, method, authority, host, port, true, target, seen);
  if ('reason' in a) return a;
  const dropAuth = a.rule.auth !== undefined;
  const headers: Record<string, string | string[]> = { ':method': method, ':path': a.fwd, ':scheme': 'https', ':authority': hostPort(host, port, true) };
  let scan = method + ' ' + a.fwd;
  for (const k of Object.keys(h)) {
    const v = h[k];
    if (v === undefined || k.charCodeAt(0) === 58 || H2_DROP.has(k) || (dropAuth && k === 'authorization')) continue;
    headers[k] = v;
    scan += '\n' + k + ': ' + (typeof v === 'string' ? v : v.join(', '));
  }
  const c = credentialFor(a, scan, host, env);
  if ('reason' in c) return c;
  if (c.secret !== undefined) headers.authorization = `${a.rule.auth!.scheme} ${c.secret}`;
  return { rule: a.rule, path: a.path, headers, allowPrivate: c.allowPrivate, secret: c.secret === undefined ? undefined : Buffer.from(c.secret, 'latin1') };
}
