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
import type { RequestHead } from './http1';
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
  const path = d.normalizedPath ?? safePath(target);
  if (d.action !== 'allow' || !d.rule) return { reason: d.reason, message: d.message, rule: d.rule, path };
  const rule = d.rule;

  const priv = privateLiteralBlock(host, rule);
  if (priv) return { ...priv, path };
  if (req.host !== undefined && !(req.host === seen.header && host === seen.host && port === seen.port)) {
    const h = parseAuthority(req.host, port); // a Host header may leave the port out
    if (!h || h.host !== host || h.port !== port) {
      return { reason: 'bad-request', message: `The Host header (${req.host.slice(0, 100)}) does not match the host and port the request is sent to (${display(host)}:${port}).`, rule, path, detail: 'host-mismatch' };
    }
    seen.header = req.host;
    seen.host = host;
    seen.port = port;
  }
  if (ECHO_METHODS.has(req.method)) {
    return { reason: 'method-refused', message: `${req.method} makes the server echo the request back, headers and credentials included, so the cage never forwards it; use another method.`, rule, path, detail: req.method };
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

  const fwd = d.forwardPath ?? d.normalizedPath ?? target;
  const up = upstreamHead(req, fwd, host, port, secure, rule.auth !== undefined);
  // The data-loss guard runs before injection: the injected credential must not trip it.
  // What a server URL-decodes: %XX anywhere, "+" in the query (a header such as
  // "Accept: application/vnd.github+json" is not decoded, and need not cost a decoding pass).
  const scan = up.scan;
  const q = fwd.indexOf('?');
  const hit = secretInHost(host) ?? findSecret(scan) ?? (scan.includes('%') || (q >= 0 && fwd.includes('+', q)) ? findSecret(urlDecodeForScan(scan)) : undefined);
  if (hit) return { ...secretBlock('request', hit, rule), path };
  const allowPrivate = allowsPrivate(rule);
  if (!rule.auth) return { rule, path, head: up.head + '\r\n', allowPrivate };
  const envName = secretEnvName(rule.auth.secret);
  const secret = env[envName];
  if (!secret) {
    return { reason: 'secret-missing', message: `${ruleLabel(rule)} injects the secret "${rule.auth.secret}", but it is not set (${envName} is empty in the proxy); set it in the editor's Caged Agent secrets.`, rule, path, detail: rule.auth.secret };
  }
  return { rule, path, head: `${up.head}Authorization: ${rule.auth.scheme} ${secret}\r\n\r\n`, allowPrivate, secret: Buffer.from(secret, 'latin1') };
}
